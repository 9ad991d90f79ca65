package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/internal/lines"
	"github.com/fsigkd/fsigkd/proxy"
)

// session is one client's connection and its server's.
type session struct {
	p *Proxy
	proxy.LineClient
	srv    net.Conn
	sr     *bufio.Reader
	server string // host:port, as the client named it (or where it went)
	user   string // the mailbox, for the access log
	authed bool
	log    *zap.Logger
}

// The answers of the proxy's own making.
const (
	greeting    = "+OK fsigkd POP3 proxy ready. Log in as USER name@server[:port]."
	errLoginFst = "-ERR Log in first with USER name@server[:port]."
	errServer   = "-ERR [SYS/TEMP] The mail server closed the connection."
	errBusy     = "-ERR [SYS/TEMP] The gateway is busy; try again later."
)

// forward tells whether clients name their server (USER name@server):
// neither parent_server_host nor transparent mode fixes it.
func (p *Proxy) forward() bool { return !p.Svc.Transparent && p.Svc.ParentServerHost == "" }

// defaultPort is the server's port when USER names none.
func (p *Proxy) defaultPort() int {
	if p.Svc.ParentServerPort != 0 {
		return p.Svc.ParentServerPort
	}
	return 110
}

func (p *Proxy) serve(c net.Conn) {
	lc, firstBy, ok := p.OpenLine(c, 4096)
	if !ok {
		return
	}
	s := &session{p: p, LineClient: lc, log: p.Log}
	defer func() {
		if s.srv != nil {
			s.srv.Close()
		}
	}()
	if !s.greet() {
		return
	}
	p.Commands(c, s.CR, MaxLine, firstBy, s.Reply,
		proxy.Replies{TooLong: "-ERR Command line too long.", Timeout: "-ERR Timeout: closing the connection."},
		func(line string) bool {
			cmd, err := ParseCommand(line)
			if err != nil {
				return s.Reply("-ERR Syntax error.") == nil
			}
			return s.handle(cmd)
		})
}

// greet opens the session: with a fixed server (parent_server_host, or
// the original destination) the server's own greeting is relayed, so
// that APOP's timestamp is the server's; in forward mode the proxy greets.
func (s *session) greet() bool {
	if s.p.forward() {
		return s.Reply(greeting) == nil
	}
	var addr string
	if s.p.Svc.Transparent {
		a, err := s.p.Destination(s.C)
		if errors.Is(err, proxy.ErrNotDiverted) {
			s.Reply("-ERR This connection was not diverted to the gateway.")
			return false
		} else if err != nil {
			s.Reply("-ERR The original destination is unknown.")
			return false
		}
		addr = a.String()
	} else {
		addr = s.p.ParentAddr()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := s.p.Dial(ctx, s.Client, "tcp", addr)
	if s.p.OutOfFiles(err, "connect") {
		s.Reply(errBusy)
		return false
	}
	if err != nil {
		if s.p.Once("server-down") {
			s.log.Warn("the mail server cannot be reached; clients are told to try later", zap.String("server", addr), zap.Error(err))
		}
		s.Reply("-ERR [SYS/TEMP] The mail server cannot be reached; try again later.")
		return false
	}
	if s.Implicit && s.p.Svc.Transparent {
		// Diverted from port 995: the server speaks TLS from its first
		// byte, its certificate checked per parent_tls.
		if nc, err = s.p.DialTLS(nc, addr, s.p.Svc.IdleTimeout); err != nil {
			s.log.Info("mail server session failed", zap.String("server", addr), zap.Error(err))
			s.Reply("-ERR [SYS/TEMP] The mail server's TLS could not be verified; try again later.")
			return false
		}
	}
	greet, err := s.open(nc, addr)
	if err != nil {
		s.log.Info("mail server session failed", zap.String("server", addr), zap.Error(err))
		if errors.Is(err, proxy.ErrParentTLS) {
			s.Reply("-ERR [SYS/TEMP] The mail server's TLS could not be verified; try again later.")
		} else {
			s.Reply("-ERR [SYS/TEMP] The mail server did not greet; try again later.")
		}
		return false
	}
	return s.Reply(greet.String()) == nil
}

// open takes nc as the server's connection: it reads the greeting (which
// it returns) and starts TLS with STLS per parent_tls (proxy/parenttls.go).
func (s *session) open(nc net.Conn, addr string) (Status, error) {
	if s.srv != nil {
		s.srv.Close()
	}
	s.srv, s.sr, s.server, s.authed = nc, s.reader(nc), addr, false
	greet, err := s.serverStatus()
	if err != nil {
		return greet, err
	}
	if !greet.OK {
		return greet, errors.New("greeting: " + greet.String())
	}
	mode := s.p.ParentTLSMode()
	if _, on := nc.(*tls.Conn); mode == "none" || on {
		return greet, nil
	}
	capa, err := s.toServer("CAPA")
	if err != nil {
		return greet, err
	}
	offered := false
	if capa.OK {
		err = s.serverLines(func(l string) error {
			offered = offered || strings.EqualFold(strings.TrimSpace(l), "STLS")
			return nil
		})
		if err != nil {
			return greet, err
		}
	}
	if !offered {
		return greet, s.p.ParentTLSMissing(errors.New("no STLS offered"))
	}
	st, err := s.toServer("STLS")
	if err != nil || !st.OK {
		// Refused after all: the session goes on in the clear, unless
		// parent_tls says it must not.
		return greet, s.p.ParentTLSMissing(fmt.Errorf("STLS refused: %v %s", err, st))
	}
	tc, err := s.p.DialTLS(nc, addr, s.p.Svc.IdleTimeout)
	if err != nil {
		return greet, err
	}
	s.srv, s.sr = tc, s.reader(tc)
	return greet, nil
}

// toServer sends a command line and reads the status line of the reply.
func (s *session) toServer(line string) (Status, error) {
	s.srv.SetWriteDeadline(time.Now().Add(s.p.Svc.IdleTimeout))
	if _, err := io.WriteString(s.srv, line+"\r\n"); err != nil {
		return Status{}, err
	}
	return s.serverStatus()
}

// serverStatus reads a status line of the server.
func (s *session) serverStatus() (Status, error) {
	l, err := s.serverLine()
	if err != nil {
		return Status{}, err
	}
	return ParseStatus(l)
}

func (s *session) serverLine() (string, error) { return lines.Read(s.sr, MaxLine) }

// reader reads the server's connection, each read given idle_timeout.
func (s *session) reader(c net.Conn) *bufio.Reader {
	return bufio.NewReaderSize(idleReader{c, s.p.Svc.IdleTimeout}, 16<<10)
}

// serverLines reads the lines of a multi-line response to its end,
// undoing the dot-stuffing, and gives each to f.
func (s *session) serverLines(f func(string) error) error {
	for {
		l, err := s.serverLine()
		if err != nil {
			return err
		}
		if l == "." {
			return nil
		}
		if err := f(strings.TrimPrefix(l, ".")); err != nil {
			return err
		}
	}
}

// handle serves one command; false ends the session.
func (s *session) handle(cmd Command) bool {
	if s.srv == nil {
		switch cmd.Verb {
		case "USER":
			return s.login(cmd.Arg)
		case "CAPA":
			s.Reply(append(append([]string{"+OK Capability list follows", "USER", "TOP", "UIDL", "RESP-CODES", "PIPELINING"}, s.stls()...), "IMPLEMENTATION fsigkd", ".")...)
		case "QUIT":
			s.Reply("+OK Goodbye.")
			return false
		case "STLS":
			return s.startTLS()
		default:
			s.Reply(errLoginFst)
		}
		return true
	}
	switch cmd.Verb {
	case "QUIT":
		s.relay(cmd)
		return false
	case "USER":
		if s.p.forward() && !s.authed {
			return s.login(cmd.Arg) // another try, perhaps at another server
		}
		s.user = cmd.Arg
		return s.relay(cmd)
	case "APOP":
		if a := cmd.Args(); len(a) > 0 {
			s.user = a[0]
		}
		return s.relay(cmd)
	case "PASS":
		return s.relay(cmd)
	case "STLS":
		if s.authed {
			s.Reply("-ERR STLS only before logging in.")
			return true
		}
		return s.startTLS()
	case "CAPA":
		return s.relayCapa()
	case "AUTH":
		return s.auth(cmd)
	case "RETR", "TOP":
		return s.retrieve(cmd)
	case "LIST", "UIDL":
		if cmd.Arg == "" {
			return s.relayList(cmd)
		}
		return s.relay(cmd)
	case "STAT", "DELE", "NOOP", "RSET", "UTF8":
		return s.relay(cmd)
	default:
		// Relayed, an unknown command could have a multi-line answer the
		// proxy would not know to read.
		s.Reply("-ERR Unknown command.")
	}
	return true
}

// relay sends a single-line command on and the server's status line back;
// false: the server is gone and the session ends.
func (s *session) relay(cmd Command) bool {
	st, err := s.toServer(cmd.Line())
	if err != nil {
		s.Reply(errServer)
		return false
	}
	switch cmd.Verb {
	case "PASS", "APOP":
		s.authed = s.authed || st.OK
	}
	return s.Reply(st.String()) == nil
}

// relayList relays a multi-line answer (LIST, UIDL) line by line.
func (s *session) relayList(cmd Command) bool {
	st, body, cont := s.ask(cmd.Line())
	if !body {
		return cont
	}
	w := bufio.NewWriterSize(s.C, 4096)
	s.C.SetWriteDeadline(time.Now().Add(s.p.Svc.IdleTimeout))
	defer s.C.SetWriteDeadline(time.Time{})
	w.WriteString(st.String() + "\r\n")
	err := s.serverLines(func(l string) error {
		if strings.HasPrefix(l, ".") {
			l = "." + l
		}
		_, err := w.WriteString(l + "\r\n")
		return err
	})
	if err != nil {
		// A list cut short must not look whole to the client.
		s.log.Info("mail server broke off a list", zap.String("server", s.server), zap.Error(err))
		return false
	}
	w.WriteString(".\r\n")
	return w.Flush() == nil
}

// carried are the SASL mechanisms an exchange of lines relayed as they
// are can carry: none bound to the TLS channel (-PLUS, EXTERNAL) or with
// a security layer after it (GSSAPI, DIGEST-MD5).
var carried = map[string]bool{
	"PLAIN": true, "LOGIN": true, "CRAM-MD5": true, "CRAM-SHA1": true, "CRAM-SHA256": true,
	"SCRAM-SHA-1": true, "SCRAM-SHA-256": true, "XOAUTH2": true, "OAUTHBEARER": true,
	"NTLM": true, "ANONYMOUS": true,
}

// capaKept are the capabilities relayed to the client (RFC 2449, RFC 6856).
var capaKept = map[string]bool{
	"TOP": true, "UIDL": true, "USER": true, "RESP-CODES": true, "AUTH-RESP-CODE": true,
	"PIPELINING": true, "EXPIRE": true, "LOGIN-DELAY": true, "UTF8": true,
}

// filterCapa keeps a CAPA line the proxy can honour, with only the SASL
// mechanisms it can carry; "" drops the line.
func filterCapa(l string) string {
	f := strings.Fields(l)
	if len(f) == 0 {
		return ""
	}
	kw := strings.ToUpper(f[0])
	if kw == "SASL" {
		out := []string{"SASL"}
		for _, m := range f[1:] {
			if carried[strings.ToUpper(m)] {
				out = append(out, m)
			}
		}
		if len(out) == 1 {
			return ""
		}
		return strings.Join(out, " ")
	}
	if capaKept[kw] {
		return l
	}
	return ""
}

// relayCapa relays the server's capabilities, less what the proxy cannot
// carry, and with its own IMPLEMENTATION line.
func (s *session) relayCapa() bool {
	return s.relayFiltered("CAPA", 256, filterCapa, append(s.stls(), "IMPLEMENTATION fsigkd")...)
}

// stls is the STLS capability, when the proxy offers it now: a
// certificate is set (tls_cert) and the session is not encrypted yet.
func (s *session) stls() []string {
	if s.p.TLS == nil || s.TLSOn || s.authed {
		return nil
	}
	return []string{"STLS"}
}

// startTLS answers STLS (RFC 2595): the client's session is encrypted
// from here, with tls_cert. Nothing may follow the command in the same
// packet (it would be read in the clear): such a client is refused.
func (s *session) startTLS() bool {
	switch {
	case s.p.TLS == nil:
		return s.Reply("-ERR STLS is not offered here (no tls_cert).") == nil
	case s.TLSOn:
		return s.Reply("-ERR TLS is on already.") == nil
	}
	return s.p.StartTLS(&s.LineClient, "+OK Begin TLS negotiation.", "-ERR Commands sent after STLS before TLS began: closing.")
}

// relayFiltered relays the multi-line answer to line, each line through
// keep ("" drops it), at most max lines read, extra lines added at the end.
func (s *session) relayFiltered(line string, max int, keep func(string) string, extra ...string) bool {
	st, body, cont := s.ask(line)
	if !body {
		return cont
	}
	out := []string{st.String()}
	n := 0
	err := s.serverLines(func(l string) error {
		if n++; n > max {
			return errors.New("too many lines")
		}
		if l = keep(l); l != "" {
			out = append(out, l)
		}
		return nil
	})
	if err != nil {
		s.Reply(errServer)
		return false
	}
	return s.Reply(append(append(out, extra...), ".")...) == nil
}

// ask sends a command whose +OK opens a multi-line answer. body: the
// answer follows. Otherwise the client has the server's -ERR (cont: the
// session goes on) or was told that the server is gone (cont false).
func (s *session) ask(line string) (st Status, body, cont bool) {
	st, err := s.toServer(line)
	if err != nil {
		s.Reply(errServer)
		return st, false, false
	}
	if !st.OK {
		return st, false, s.Reply(st.String()) == nil
	}
	return st, true, true
}

// maxAuthSteps bounds the lines of one AUTH exchange.
const maxAuthSteps = 16

// auth relays an AUTH exchange (RFC 5034) line by line, for the mechanisms
// the proxy can carry; AUTH alone lists them.
func (s *session) auth(cmd Command) bool {
	args := cmd.Args()
	if len(args) == 0 {
		return s.relayFiltered("AUTH", 64, func(l string) string {
			if l = strings.TrimSpace(l); carried[strings.ToUpper(l)] {
				return l
			}
			return ""
		})
	}
	if !carried[strings.ToUpper(args[0])] {
		return s.Reply("-ERR [SYS/PERM] This gateway cannot carry that mechanism.") == nil
	}
	line := cmd.Line()
	s.srv.SetWriteDeadline(time.Now().Add(s.p.Svc.IdleTimeout))
	for step := 0; ; step++ {
		if _, err := io.WriteString(s.srv, line+"\r\n"); err != nil {
			s.Reply(errServer)
			return false
		}
		l, err := s.serverLine()
		if err != nil {
			s.Reply(errServer)
			return false
		}
		if st, err := ParseStatus(l); err == nil {
			s.authed = s.authed || st.OK
			return s.Reply(st.String()) == nil
		}
		if !(l == "+" || strings.HasPrefix(l, "+ ")) || step >= maxAuthSteps {
			s.log.Info("mail server: bad AUTH exchange", zap.String("server", s.server))
			s.Reply(errServer)
			return false
		}
		if s.Reply(l) != nil {
			return false
		}
		s.C.SetReadDeadline(time.Now().Add(s.p.Svc.IdleTimeout))
		if line, err = lines.Read(s.CR, MaxLine); err != nil {
			return false
		}
		s.C.SetReadDeadline(time.Time{})
		if strings.ContainsAny(line, "\r\x00") {
			line = "*" // cancel: nothing that could end the line early goes on
		}
	}
}

// login connects to the server named in USER name@server[:port] and logs
// in there.
func (s *session) login(arg string) bool {
	user, host, port, err := proxy.ParseUser(arg, s.p.defaultPort())
	if err != nil {
		return s.Reply("-ERR "+err.Error()+".") == nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Checked on the address connected to (see proxy.Reach): 0.0.0.0 or
	// the gateway's own address would chain the proxy into itself.
	nc, err := s.p.DialServer(ctx, &s.p.Reach, s.Client, host, port)
	if s.p.OutOfFiles(err, "connect") {
		s.Reply(errBusy)
		return false
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if errors.Is(err, proxy.ErrServerRefused) {
		if s.p.Once("server-refused") { // once a minute: a client can ask as often as it likes
			s.log.Named("login").Warn("a client named a server it may not reach", zap.String("client", s.Client.String()), zap.String("server", host))
		}
		return s.Reply("-ERR [SYS/PERM] The gateway may not connect to "+addr+".") == nil
	}
	if err != nil {
		return s.Reply("-ERR [SYS/TEMP] The mail server "+addr+" cannot be reached.") == nil
	}
	if _, err := s.open(nc, addr); err != nil {
		s.log.Info("mail server session failed", zap.String("server", addr), zap.Error(err))
		s.srv.Close()
		s.srv = nil
		if errors.Is(err, proxy.ErrParentTLS) {
			return s.Reply("-ERR [SYS/TEMP] The TLS of the mail server "+addr+" could not be verified.") == nil
		}
		return s.Reply("-ERR [SYS/TEMP] The mail server "+addr+" did not greet.") == nil
	}
	s.user = user
	return s.relay(Command{Verb: "USER", Arg: user})
}
