package ftp

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

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/tproxy"
)

// maxLine bounds a command or reply line.
const maxLine = 4096

// session is one client's control connection and its server's.
type session struct {
	p *Proxy
	proxy.LineClient
	srv     net.Conn
	sr      *bufio.Reader
	host    string // the server, as the client named it
	srvPort int
	cwd     string // the server's working directory, "" until asked (PWD)
	log     *zap.Logger

	pasv   *net.TCPListener // our passive port for the client
	taken  bool             // the client's data connection was accepted from pasv
	active *net.TCPAddr     // the client's PORT/EPRT
	rest   int64
	// open150: 150- progress lines went out, and the 150 reply they open
	// is still to be closed.
	open150 bool

	protP  bool        // PROT P: the client's data connections are TLS
	srvTLS *tls.Config // the server's TLS (parent_tls), its data connections' too; nil: clear
	srvP   bool        // the server took PROT P
}

func (p *Proxy) serve(c net.Conn) {
	lc, firstBy, ok := p.OpenLine(c, maxLine)
	if !ok {
		return
	}
	s := &session{p: p, LineClient: lc, log: p.Log}
	defer func() {
		s.closeData()
		if s.srv != nil {
			s.srv.Close()
		}
	}()
	s.reply("220 fsigkd FTP proxy ready. Log in as USER name@host[:port].")
	p.Commands(c, s.CR, maxLine, firstBy, s.reply,
		proxy.Replies{TooLong: "500 Command line too long.", Timeout: "421 Timeout: closing the control connection."},
		func(line string) bool {
			cmd, err := ParseCommand(line)
			if err != nil {
				s.reply("500 Syntax error, command unrecognized.")
				return true
			}
			return s.handle(cmd)
		})
}

// reply writes lines to the client.
func (s *session) reply(lines ...string) error {
	for _, l := range lines {
		if strings.HasPrefix(l, "150 ") {
			s.open150 = false // the 150 reply is closed
		}
	}
	return s.Reply(lines...)
}

// toServer sends a command to the server and reads its reply.
func (s *session) toServer(line string) (Reply, error) {
	s.srv.SetDeadline(time.Now().Add(s.p.Svc.IdleTimeout))
	defer s.srv.SetDeadline(time.Time{})
	if _, err := io.WriteString(s.srv, line+"\r\n"); err != nil {
		return Reply{}, err
	}
	return ReadReply(s.sr, maxLine)
}

// serverReply reads one more reply of the server (after a transfer).
func (s *session) serverReply() (Reply, error) {
	s.srv.SetReadDeadline(time.Now().Add(s.p.Svc.IdleTimeout))
	defer s.srv.SetReadDeadline(time.Time{})
	return ReadReply(s.sr, maxLine)
}

// relay sends a command on and the server's reply back; false: the server
// is gone and the session ends.
func (s *session) relay(line string) bool {
	r, err := s.toServer(line)
	if err != nil {
		s.reply("421 The server closed the connection.")
		return false
	}
	s.reply(r.Raw())
	return true
}

// handle serves one command; false ends the session.
func (s *session) handle(cmd Command) bool {
	if s.srv == nil {
		switch cmd.Verb {
		case "USER":
			return s.login(cmd.Arg)
		case "QUIT":
			s.reply("221 Goodbye.")
			return false
		case "AUTH":
			return s.authTLS(cmd.Arg)
		case "PBSZ", "PROT":
			s.protection(cmd)
		case "FEAT":
			s.reply(append(append([]string{"211-Features:"}, s.tlsFeatures()...), " UTF8", "211 End")...)
		default:
			s.reply("530 Please log in with USER name@host first.")
		}
		return true
	}
	switch cmd.Verb {
	case "QUIT":
		s.relay("QUIT")
		return false
	case "USER":
		s.reply("530 Already logged in; QUIT and connect again to change servers.")
	case "AUTH":
		s.reply("503 AUTH comes before USER.")
	case "PBSZ", "PROT":
		s.protection(cmd)
	case "CCC":
		s.reply("534 The control connection stays encrypted.")
	case "FEAT":
		return s.feat()
	case "PASV", "EPSV":
		s.passive(cmd.Verb == "EPSV", cmd.Arg)
	case "PORT", "EPRT":
		s.port(cmd)
	case "REST":
		n, err := strconv.ParseInt(cmd.Arg, 10, 64)
		if err != nil || n < 0 {
			s.reply("501 REST needs a byte offset.")
			break
		}
		s.rest = n
		s.reply(fmt.Sprintf("350 Restarting at %d. Send RETR.", n))
	case "RETR":
		return s.retr(cmd.Arg)
	case "APPE", "COMB":
		if !s.p.Svc.AllowAppend {
			// Each piece alone is clean; joined on the server they need not be.
			s.reply("550 " + cmd.Verb + " is refused: a file sent in pieces cannot be scanned whole; send it whole with STOR.")
			return true
		}
		if cmd.Verb == "COMB" {
			return s.relay(cmd.Verb + argSuffix(cmd.Arg))
		}
		return s.store(cmd)
	case "MODE":
		// Only the stream mode is read as the file's own bytes: a
		// compressed (Z) or block (B) transfer would be scanned as its
		// coding.
		if !strings.EqualFold(strings.TrimSpace(cmd.Arg), "S") {
			s.reply("504 Only MODE S is supported by this gateway.")
			return true
		}
		return s.relay("MODE S")
	case "STOR", "STOU":
		return s.store(cmd)
	case "LIST", "NLST", "MLSD":
		return s.listing(cmd)
	case "CWD", "CDUP", "XCWD", "XCUP":
		s.cwd = "" // asked again when a transfer is logged
		return s.relay(cmd.Verb + argSuffix(cmd.Arg))
	default:
		return s.relay(cmd.Verb + argSuffix(cmd.Arg))
	}
	return true
}

// url names a file of the server for the access log, with the server's
// port when not 21 and the working directory for a relative name (asked
// with PWD, once per directory change).
func (s *session) url(name string) string {
	hp := s.host
	if strings.Contains(hp, ":") {
		hp = "[" + hp + "]"
	}
	if s.srvPort != 0 && s.srvPort != 21 {
		hp += ":" + strconv.Itoa(s.srvPort)
	}
	if !strings.HasPrefix(name, "/") {
		if s.cwd == "" && s.srv != nil {
			if r, err := s.toServer("PWD"); err == nil && r.Code == 257 {
				s.cwd = pwdDir(r.Text())
			}
		}
		name = strings.TrimSuffix(s.cwd, "/") + "/" + name
	}
	return "ftp://" + hp + name
}

// pwdDir reads the directory of a 257 reply: "/pub" is the current
// directory ("" doubled inside the quotes stands for one).
func pwdDir(text string) string {
	i := strings.IndexByte(text, '"')
	if i < 0 {
		return ""
	}
	var b strings.Builder
	for j := i + 1; j < len(text); j++ {
		if text[j] == '"' {
			if j+1 < len(text) && text[j+1] == '"' {
				b.WriteByte('"')
				j++
				continue
			}
			break
		}
		b.WriteByte(text[j])
	}
	return b.String()
}

func argSuffix(arg string) string {
	if arg == "" {
		return ""
	}
	return " " + arg
}

// login connects to the server named in USER and logs in there.
func (s *session) login(arg string) bool {
	var user, host string
	var port int
	var err error
	if s.p.Svc.Transparent && s.p.OriginalDst != nil && !strings.Contains(arg, "@") {
		a, err := s.p.Destination(s.C)
		if errors.Is(err, proxy.ErrNotDiverted) {
			s.reply("530 This connection was not diverted to the gateway: log in as user@host.")
			return true
		} else if err != nil {
			s.reply("530 The original destination is unknown.")
			return true
		}
		user, host, port = arg, a.IP.String(), a.Port
	} else if user, host, port, err = proxy.ParseUser(arg, 21); err != nil {
		s.reply("530 " + err.Error() + ".")
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Checked on the address connected to (see proxy.Reach): 0.0.0.0 or
	// the gateway's own address would chain the proxy into itself.
	srv, err := s.p.DialServer(ctx, &s.p.Reach, s.Client, host, port)
	if s.p.OutOfFiles(err, "connect") {
		s.reply("421 The gateway is busy; try again later.")
		return false
	}
	if errors.Is(err, proxy.ErrServerRefused) {
		if s.p.Once("server-refused") { // once a minute: a client can ask as often as it likes
			s.p.Log.Named("login").Warn("a client named a server it may not reach", zap.String("client", s.Client.String()), zap.String("server", host))
		}
		s.reply(fmt.Sprintf("500 Can't Connect to (%s: %d) errmsg=server not allowed", host, port))
		return true
	}
	if err != nil {
		s.reply(fmt.Sprintf("500 Can't Connect to (%s: %d) errmsg=%s", host, port, errText(err)))
		return true
	}
	s.srv, s.sr, s.host, s.srvPort = srv, bufio.NewReaderSize(srv, maxLine), host, port
	if s.Implicit && s.p.Svc.Transparent {
		// Diverted from port 990: the server speaks TLS at once.
		if err := s.startServerTLS(host); err != nil {
			s.log.Info("the server's TLS failed", zap.String("server", net.JoinHostPort(host, strconv.Itoa(port))), zap.Error(err))
			s.srv.Close()
			s.srv = nil
			s.reply(fmt.Sprintf("500 Can't Connect to (%s: %d) errmsg=its TLS failed", host, port))
			return true
		}
	}
	s.srv.SetReadDeadline(time.Now().Add(s.p.Svc.IdleTimeout))
	greet, err := ReadReply(s.sr, maxLine)
	if err != nil || greet.Code/100 != 2 {
		s.reply(fmt.Sprintf("500 Can't Connect to (%s: %d) errmsg=%s", host, port, greet.Text()))
		return false
	}
	if err := s.serverTLS(host); err != nil {
		s.log.Info("the server's TLS failed", zap.String("server", net.JoinHostPort(host, strconv.Itoa(port))), zap.Error(err))
		s.srv.Close()
		s.srv, s.srvTLS = nil, nil
		why := "its TLS failed"
		if errors.Is(err, proxy.ErrParentTLS) {
			why = "its TLS could not be verified"
		}
		s.reply(fmt.Sprintf("500 Can't Connect to (%s: %d) errmsg=%s", host, port, why))
		return true
	}
	return s.relay("USER " + user)
}

func errText(err error) string {
	if err == nil {
		return "no address"
	}
	if en, ok := catalog.Errno(err); ok {
		return catalog.Strerror(en)
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Err
	}
	return err.Error()
}

func (s *session) closeData() {
	if s.pasv != nil {
		// A client that connected for a transfer that was then refused
		// (a detection, a full spool) is waiting in our listener's queue:
		// it is taken and closed in order, so that it reads the end of
		// the data and then the reply already sent (closing the listener
		// alone would reset it, and clients report the reset, not the
		// 550).
		if !s.taken {
			// Only then: after a transfer the connection was taken, and
			// waiting here would delay every next command.
			s.pasv.SetDeadline(time.Now().Add(50 * time.Millisecond)) // an expired one would not even look
			if c, err := s.pasv.Accept(); err == nil {
				c.Close()
			}
		}
		s.pasv.Close()
		s.pasv, s.taken = nil, false
	}
	s.active = nil
}

// passive opens our port for the client's data connection.
func (s *session) passive(extended bool, arg string) {
	s.closeData()
	local := s.C.LocalAddr().(*net.TCPAddr)
	var ln *net.TCPListener
	var err error
	if s.p.Svc.Transparent {
		// Intercepted, our address is the server's: the passive port
		// must be a transparent socket for the rules to divert to it.
		ln, err = tproxy.Listen("tcp", net.JoinHostPort(local.IP.String(), "0"))
	} else {
		ln, err = net.ListenTCP("tcp", &net.TCPAddr{IP: local.IP})
	}
	if err != nil {
		s.reply("425 Cannot open a data port.")
		return
	}
	s.pasv = ln
	a := ln.Addr().(*net.TCPAddr)
	if extended {
		s.reply(fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)", a.Port))
		return
	}
	if local.IP.To4() == nil {
		s.closeData()
		s.reply("522 Use EPSV over IPv6.")
		return
	}
	s.reply("227 Entering Passive Mode (" + FormatHostPort(a) + ").")
}

// port takes the client's PORT or EPRT, for its own address only.
func (s *session) port(cmd Command) {
	s.closeData()
	var a *net.TCPAddr
	var err error
	if cmd.Verb == "PORT" {
		a, err = ParseHostPort(cmd.Arg)
	} else {
		a, err = ParseEPRT(cmd.Arg)
	}
	if err != nil {
		s.reply("501 Syntax error in parameters.")
		return
	}
	if !a.IP.Equal(s.Client) || a.Port < 1024 {
		s.log.Info("PORT to another address refused (bounce)", zap.String("client", s.Client.String()), zap.String("port", a.String()))
		s.reply("500 Illegal " + cmd.Verb + " command: only your own address, ports from 1024.")
		return
	}
	s.active = a
	s.reply("200 " + cmd.Verb + " command successful.")
}

// clientData makes the data connection with the client.
// With PROT P it is TLS, the gateway its server whichever side
// connected (RFC 4217).
func (s *session) clientData() (net.Conn, error) {
	deadline := time.Now().Add(s.p.Svc.DataTimeout)
	var c net.Conn
	var err error
	if s.active != nil {
		d := net.Dialer{Deadline: deadline, LocalAddr: &net.TCPAddr{IP: s.C.LocalAddr().(*net.TCPAddr).IP}}
		c, err = d.Dial("tcp", s.active.String())
	} else {
		c, err = acceptFrom(s.pasv, deadline, s.Client)
		s.taken = s.taken || err == nil
		if errors.Is(err, errSource) {
			s.log.Info("data connection from another address refused", zap.String("client", s.Client.String()))
		}
	}
	if err != nil || !s.protP {
		return c, err
	}
	return dataTLS(tls.Server(c, s.p.TLS), time.Until(deadline))
}

// dataTLS does the handshake of a data connection within d.
func dataTLS(tc *tls.Conn, d time.Duration) (net.Conn, error) {
	if err := proxy.Shake(tc, d); err != nil {
		tc.Close()
		return nil, err
	}
	return tc, nil
}

// acceptFrom takes the next data connection on ln, which must come from ip:
// one from anywhere else is closed (someone found our port) and refused.
func acceptFrom(ln *net.TCPListener, deadline time.Time, ip net.IP) (net.Conn, error) {
	ln.SetDeadline(deadline)
	c, err := ln.Accept()
	if err != nil {
		return nil, err
	}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); !ok || !a.IP.Equal(ip) {
		c.Close()
		return nil, errSource
	}
	return c, nil
}

var errSource = errors.New("data connection from another address")

// serverData prepares the data connection with the server: dialed now
// (passive, the default), or, with server_active, a listener the server
// connects to once it has the transfer command.
func (s *session) serverData() (net.Conn, *net.TCPListener, error) {
	srvIP := s.srv.RemoteAddr().(*net.TCPAddr).IP
	if s.p.Svc.ServerActive {
		local := s.srv.LocalAddr().(*net.TCPAddr)
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: local.IP})
		if err != nil {
			return nil, nil, err
		}
		a := ln.Addr().(*net.TCPAddr)
		cmd := "PORT " + FormatHostPort(a)
		if local.IP.To4() == nil {
			cmd = fmt.Sprintf("EPRT |2|%s|%d|", local.IP, a.Port)
		}
		r, err := s.toServer(cmd)
		if err != nil || r.Code != 200 {
			ln.Close()
			return nil, nil, fmt.Errorf("server refused %s: %s", strings.Fields(cmd)[0], r.Text())
		}
		return nil, ln, nil
	}
	var port int
	if srvIP.To4() != nil {
		r, err := s.toServer("PASV")
		if err != nil || r.Code != 227 {
			return nil, nil, fmt.Errorf("server refused PASV: %s", r.Text())
		}
		a, err := ParseHostPort(r.Lines[len(r.Lines)-1][4:])
		if err != nil {
			return nil, nil, err
		}
		port = a.Port // its address is ignored: always the control peer's
	} else {
		r, err := s.toServer("EPSV")
		if err != nil || r.Code != 229 {
			return nil, nil, fmt.Errorf("server refused EPSV: %s", r.Text())
		}
		if port, err = ParseEPSV(r.Text()); err != nil {
			return nil, nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.p.Svc.DataTimeout)
	defer cancel()
	c, err := s.p.Dial(ctx, s.Client, "tcp", net.JoinHostPort(srvIP.String(), strconv.Itoa(port)))
	return c, nil, err
}

func (s *session) hasDataMode() bool { return s.pasv != nil || s.active != nil }

// begin starts a transfer, its access record as the session knows it.
func (s *session) begin(verb, arg string) *proxy.Transfer {
	rec := &logs.Access{Client: s.Client.String(), Result: "FTP", Method: verb,
		URL: s.url(arg), Service: "ftp", Slot: slots.SlotOf(s.C)}
	if s.srv != nil {
		rec.Server = s.srv.RemoteAddr().(*net.TCPAddr).IP.String()
	}
	return s.p.Begin(rec)
}

// judge scans the spooled file: pass, or the reason to refuse.
func (s *session) judge(o *proxy.Object) (bool, string) {
	out := o.Judge(proxy.Subject{Meta: scanner.Meta{Service: "ftp", URL: o.Rec.URL, Client: s.Client.String()}})
	if out.Delivered() {
		return true, ""
	}
	switch out.Kind {
	case outcome.NotScanned:
		return false, "the file could not be scanned"
	case outcome.Oversize:
		return false, "larger than this gateway scans"
	case outcome.Blocked:
		return false, "refused by the gateway's policy (" + out.Name + ")"
	case outcome.Infected, outcome.Riskware, outcome.Suspected, outcome.Encrypted, outcome.Clean, outcome.Skipped:
	}
	return false, "virus found (" + out.Name + ")"
}

// keepAlive runs f while telling the client (150- lines) and, with noop
// (only when the server's control connection is idle: no transfer under
// way there), the server (NOOP) that the session goes on. A client that
// closes its control connection meanwhile is noticed within GoneCheck:
// cancel (if set) is called to end f early, and gone says so, for the
// session to end there rather than hold its slot and spool until the
// server has sent everything or idle_timeout.
func (s *session) keepAlive(noop bool, f func(), progress func() string, cancel func()) (gone bool) {
	done := make(chan struct{})
	go func() { f(); close(done) }()
	tick := time.NewTicker(min(s.p.Svc.ProgressInterval, s.p.Svc.NoopInterval))
	defer tick.Stop()
	look := time.NewTicker(proxy.GoneCheck)
	defer look.Stop()
	lastNoop, lastProgress := time.Now(), time.Now()
	for {
		select {
		case <-done:
			return gone
		case <-look.C:
			if !gone && proxy.PeerClosed(s.C) {
				gone = true
				if cancel != nil {
					cancel()
				}
			}
		case now := <-tick.C:
			if gone {
				continue
			}
			if now.Sub(lastProgress) >= s.p.Svc.ProgressInterval {
				lastProgress = now
				s.reply("150-" + progress())
				s.open150 = true
			}
			if noop && now.Sub(lastNoop) >= s.p.Svc.NoopInterval {
				lastNoop = now
				s.noop()
			}
		}
	}
}

// endPreliminary answers a transfer that ends without data: with lines
// alone when nothing was said yet, so that the client reads a plain 550 or
// 451 (as from a server); after 150- progress lines, which open a 150
// reply, that reply is closed with text first. The progress lines start
// only after progress_interval, so a file refused within it gets the
// plain answer.
func (s *session) endPreliminary(text string, lines ...string) {
	if s.open150 {
		lines = append([]string{"150 " + text}, lines...)
		s.open150 = false
	}
	s.reply(lines...)
}

// noop keeps the server's control connection alive; not 200: M12.
func (s *session) noop() {
	r, err := s.toServer("NOOP")
	if err != nil || r.Code != 200 {
		text := r.Text()
		if err != nil {
			text = err.Error()
		}
		logs.Emit(s.log.Named("noop"), catalog.M12(text))
	}
}
