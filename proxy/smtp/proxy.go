// Package smtp is fsigkd's SMTP service: an inline relay between mail
// clients (or MTAs) and the next mail server, never a queue. For each
// client session it opens a session to the next hop (parent_server_host,
// or the original destination in transparent mode) and relays MAIL and
// RCPT with the next hop's own replies; the message is spooled after DATA,
// scanned (and checked for spam), and only then sent on. The client gets
// 250 only when the next hop said 250 for that mail, so a proxy that dies
// mid-mail leaves the sender holding it. Nothing is ever queued here.
//
// The client side is github.com/emersion/go-smtp's server (RFC 5321):
// EHLO offers what this proxy really implements (PIPELINING, CHUNKING,
// 8BITMIME, ENHANCEDSTATUSCODES, SIZE capped by max_message_size,
// STARTTLS when a certificate is set, SMTPUTF8 and DSN, their parameters
// passed on as far as the next hop takes them), not the next hop's list. Towards
// the next hop STARTTLS is used per parent_tls (proxy/parenttls.go; as
// shipped whenever it is offered: encrypted, not
// authenticated, as between MTAs), and forward_client sends XFORWARD or
// XCLIENT so that the next hop sees the real client.
//
// With parent_protocol = lmtp the next hop is a mailbox server's LMTP
// (RFC 2033) and the service is an LMTP server to its clients (an MTA's
// LMTP delivery): after the message each recipient gets the next hop's
// own reply for it, so that the MTA retries or bounces each alone; the
// gateway could not give mixed replies to an SMTP client without
// queueing or bouncing itself.
//
// Line endings: the message is spooled with every line ending made CRLF
// (a bare LF or CR becomes CRLF), and sent on dot-stuffed with our own
// terminator, so that the next hop reads exactly the message that was
// scanned and no client can end DATA in a way the next hop reads
// differently (the SMTP smuggling family).
//
// Actions on a detection (action): pass (deliver, with X-Virus-Status:
// infected(...)), deny (RSET upstream, 554 Infected by <name>), blackhole
// (drop, 250), delete (drop, notice to the recipients), sendback (drop,
// notice to the sender); notify_admin adds the administrator's notice to
// any of them. A mail carrying this gateway's X-Admin-Notification-Id is
// its own notice: neither scanned nor notified about.
package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/internal/netlist"
	"github.com/fsigkd/fsigkd/internal/sendwait"
	"github.com/fsigkd/fsigkd/internal/sessions"
	"github.com/fsigkd/fsigkd/notify"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/worker"
)

// Proxy is the SMTP service.
type Proxy struct {
	proxy.Common

	srv      *gosmtp.Server
	srvTLS   *gosmtp.Server // tls_port's clients: STARTTLS not offered
	tlsConf  *tls.Config    // tls_cert; nil: none
	hostname string
	id       string

	relay   RelayRule    // local_domains and relay_clients
	trusted netlist.List // trusted_mtas: who may XFORWARD

	sessions sessions.Set // for a stop, and for eviction when the slots run out
	hops     hopCache     // the next hop's sessions, kept between clients
}

// warnUntold says, at most once an hour, that the next hop was not told
// who the clients are: it sees this relay's address for all of them, and
// must not trust that address to relay.
func (p *Proxy) warnUntold(next string) {
	if !p.OnceIn("next-hop-untold", time.Hour) {
		return
	}
	p.Log.Named("relay").Warn("the next hop does not take XCLIENT or XFORWARD from this relay: it sees the relay's address for every client, so it must not relay for that address (set local_domains, or authorize the relay: smtpd_authorized_xclient_hosts)",
		zap.String("next_hop", next), zap.String("forward_client", p.Svc.ForwardClient))
}

// New builds the service from a worker's environment.
func New(env *worker.Env) (worker.Service, error) {
	return proxy.Build(env, func(c proxy.Common) *Proxy { return &Proxy{Common: c} }, (*Proxy).init)
}

func (p *Proxy) init() error {
	if err := p.Common.Init(); err != nil {
		return err
	}
	p.hostname = p.Hostname()
	var err error
	p.relay, p.trusted = RelayRuleOf(p.Svc), p.Svc.TrustedMTAs
	p.id = notify.NotificationID(p.Svc, p.hostname)
	if p.tlsConf, err = p.ClientTLS(); err != nil {
		return err
	}
	p.sessions.Goodbye = func(c sessions.Conn) {
		// Only a mail being received, scanned or delivered is worth the
		// grace.
		io.WriteString(c, "421 4.3.2 The gateway is shutting down; try again later\r\n")
	}
	p.sessions.Evicted = func(c sessions.Conn) {
		io.WriteString(c, "421 4.4.2 Idle too long while others wait; try again later\r\n")
	}
	p.srv = p.newServer(p.tlsConf)
	p.srvTLS = p.newServer(nil)
	return nil
}

// newServer is the SMTP server of a listener; with tlsConf it offers
// STARTTLS.
func (p *Proxy) newServer(tlsConf *tls.Config) *gosmtp.Server {
	s := gosmtp.NewServer(gosmtp.BackendFunc(p.newSession))
	s.Domain = p.hostname
	s.MaxMessageBytes = p.Svc.MaxMessageSize
	s.MaxRecipients = p.Svc.MaxRecipients
	s.MaxLineLength = p.Svc.MaxLineLength
	// Passed on when the next hop takes them (session.go): SMTPUTF8 mail
	// is refused (553 5.6.7) at MAIL when it does not; DSN parameters are
	// then dropped, as a hop that does not know them would.
	// An LMTP next hop has an LMTP client in front (parent_protocol):
	// each recipient then gets its own reply after the message.
	s.LMTP = p.Svc.ParentProtocol == "lmtp"
	s.EnableSMTPUTF8 = true
	s.EnableDSN = true
	s.ReadTimeout = p.Svc.IdleTimeout
	s.WriteTimeout = p.Svc.IdleTimeout
	s.ErrorLog = zapPrinter{p.Log.Named("conn")}
	s.TLSConfig = tlsConf
	return s
}

// Serve accepts clients until ln is closed.
func (p *Proxy) Serve(ln net.Listener) error {
	p.Listening(ln.Addr())
	if sl, ok := ln.(*slots.Listener); ok {
		// With every slot busy, the session idle longest between
		// commands gives its slot (after a 421) to a waiting client.
		sl.Evict = p.sessions.EvictOldestIdle
		p.sessions.Spoke = func(c sessions.Conn) bool { return slots.Spoke(c.(sessionConn).c.Conn()) }
		p.sessions.OnIdle(sl.Wake)
	}
	return serveErr(p.srv.Serve(firstCommandBy{ln, p.Svc.HeaderTimeout, p.trusted}))
}

// ServeTLS accepts SMTP clients that speak TLS at once (tls_port, 465)
// until ln is closed. Its server offers no STARTTLS; the handshake, within
// header_timeout, comes before the greeting.
func (p *Proxy) ServeTLS(ln net.Listener) error {
	if p.tlsConf == nil {
		return errors.New("tls_port needs tls_cert")
	}
	return serveErr(p.srvTLS.Serve(firstCommandBy{p.ImplicitTLS(ln, p.tlsConf, &p.sessions), p.Svc.HeaderTimeout, p.trusted}))
}

func serveErr(err error) error {
	if errors.Is(err, gosmtp.ErrServerClosed) {
		return net.ErrClosed
	}
	return err
}

// Shutdown stops accepting and waits for the sessions until ctx ends; the
// admin notices still queued go out.
func (p *Proxy) Shutdown(ctx context.Context) error {
	// The sessions waiting for a command are told 421 and closed at
	// once; those receiving or delivering a mail are waited for until ctx
	// ends. The library's servers are then stopped (they hold nothing
	// more than a session still connecting to its next hop).
	p.sessions.Shutdown(ctx)
	defer p.hops.close() // after the sessions: none is kept from now on
	var tlsErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if tlsErr = p.srvTLS.Shutdown(ctx); errors.Is(tlsErr, context.DeadlineExceeded) {
			p.srvTLS.Close()
		}
	}()
	err := p.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		p.srv.Close()
	}
	<-done
	if err == nil || errors.Is(err, net.ErrClosed) {
		err = tlsErr
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil // the listener was closed first, by the worker
	}
	p.CloseNotices()
	return err
}

type zapPrinter struct{ l *zap.Logger }

func (z zapPrinter) Printf(format string, v ...interface{}) { z.log(fmt.Sprintf(format, v...)) }
func (z zapPrinter) Println(v ...interface{})               { z.log(fmt.Sprint(v...)) }

// log writes what the SMTP library says; a client that went away (reset,
// closed, timed out, or evicted for a waiting client) is the client's
// business, kept for debug level, so that a flood cannot fill the log.
func (z zapPrinter) log(s string) {
	for _, quiet := range []string{"connection reset by peer", "use of closed network connection", "i/o timeout", "broken pipe", "EOF"} {
		if strings.Contains(s, quiet) {
			z.l.Debug(s)
			return
		}
	}
	z.l.Info(s)
}

// nextHop is where a client's mail goes: where it was going, in
// transparent mode; parent_server_host otherwise.
func (p *Proxy) nextHop(c net.Conn) (string, error) {
	if p.Svc.Transparent {
		a, err := p.Destination(c)
		if err != nil {
			return "", err
		}
		return a.String(), nil
	}
	if p.Svc.ParentServerHost == "" {
		return "", errors.New("no parent_server_host")
	}
	return p.ParentAddr(), nil
}

var errShuttingDown = &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2}, Message: "The gateway is shutting down; try again later"}

var errTempNextHop = &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 4, 1}, Message: "The next mail server cannot be reached; try again later"}

// newSession opens the session to the next hop for a client: one kept
// from an earlier client, or a new one.
func (p *Proxy) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	addr, err := p.nextHop(c.Conn())
	if err != nil {
		p.Log.Warn("no next hop", zap.Error(err))
		return nil, errTempNextHop
	}
	key := hopKey(addr, p.Svc.Transparent && proxy.IsTLS(c.Conn()))
	var up *upstream
	if !p.Svc.TransparentTproxy {
		up = p.hops.take(key)
	}
	reused := up != nil
	if !reused {
		if up, err = p.dialHop(c, addr); err != nil {
			return nil, err
		}
	}
	s := &session{p: p, conn: c, up: up, upAddr: addr, hopKey: key, greeted: reused, reused: reused, log: p.Log}
	if a, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		s.peer = a.IP.String()
	}
	s.client = s.peer
	if a, ok := up.c.RemoteAddr().(*net.TCPAddr); ok {
		s.server = a.IP.String()
	}
	s.key = sessionConn{c}
	// (The library makes a session at the client's first EHLO or HELO:
	// from its reply on, the session waits for a command.)
	if !p.sessions.Add(s.key) {
		s.up.c.Close()
		return nil, errShuttingDown
	}
	if !s.waiting() {
		p.sessions.Done(s.key) // no session: no Logout
		s.up.c.Close()
		return nil, errShuttingDown
	}
	return s, nil
}

// dialHop connects to the next hop at addr for the client c: a new
// session, not yet greeted; an error is the reply for the client.
func (p *Proxy) dialHop(c *gosmtp.Conn, addr string) (*upstream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var client net.IP
	if a, ok := c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		client = a.IP
	}
	nc, err := p.Dial(ctx, client, "tcp", addr)
	if p.OutOfFiles(err, "connect") {
		return nil, errTempNextHop
	}
	if err != nil {
		// Once a minute: a next hop that is down is one fault, whatever
		// the number of clients told to try later.
		if p.Once("next-hop-down") {
			p.Log.Warn("the next hop cannot be reached; clients are told to try later (421)", zap.String("next_hop", addr), zap.Error(err))
		}
		return nil, errTempNextHop
	}
	if p.Svc.Transparent && proxy.IsTLS(c.Conn()) {
		// Diverted from port 465: the next hop speaks TLS from its
		// first byte, its certificate checked per parent_tls.
		if nc, err = p.DialTLS(nc, addr, p.Svc.IdleTimeout); err != nil {
			p.Log.Info("the next hop's TLS failed", zap.String("next_hop", addr), zap.Error(err))
			if errors.Is(err, proxy.ErrParentTLS) {
				return nil, errTLSUnverified
			}
			return nil, errTempNextHop
		}
	}
	up := newUpstream(nc, p.Svc.IdleTimeout)
	up.lmtp = p.Svc.ParentProtocol == "lmtp"
	return up, nil
}

// firstCommandBy gives each client header_timeout from its accept to send
// its first command: the SMTP library's own read timeout (idle_timeout)
// would let a silent client hold its slot that long.
type firstCommandBy struct {
	net.Listener
	within  time.Duration
	trusted netlist.List // their connections are read for XFORWARD
}

func (l firstCommandBy) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	// Every reply is followed by a read of the client's next command (or
	// a close): held until then, it goes out with the wait for it.
	fc := slots.FirstLine(sendwait.Hold(c), time.Now().Add(l.within))
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok && l.trusted.Contains(a.IP) {
		return &xforwardConn{Conn: fc}, nil
	}
	return fc, nil
}
