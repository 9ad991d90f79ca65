package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/internal/lines"
	"github.com/fsigkd/fsigkd/internal/sessions"
	"github.com/fsigkd/fsigkd/slots"
)

// SessionServer is the equipment of a service that accepts its own
// clients (all but the SMTP relay and the milter, whose libraries accept
// theirs): its sessions in the one session set (accept, idle, eviction
// when the slots run out, the goodbye at a stop), and tls_cert's TLS.
type SessionServer struct {
	Common
	Sessions sessions.Set
	// TLS is tls_cert's: offered to clients (FTP's AUTH TLS, POP3's
	// STLS) and spoken on tls_port; nil: none.
	TLS *tls.Config

	session func(net.Conn) // the protocol's session
}

// NewSessionServer is a SessionServer with the services' shared
// equipment (FromEnv, or a test's).
func NewSessionServer(c Common) SessionServer { return SessionServer{Common: c} }

// InitServer fills in the defaults; session serves a client, and
// goodbye, when not "", is the line said to a client waiting between
// requests at a stop, or whose slot goes to a waiting client.
func (s *SessionServer) InitServer(session func(net.Conn), goodbye string) error {
	s.session = session
	if goodbye != "" {
		s.Sessions.Goodbye = func(c sessions.Conn) { io.WriteString(c, goodbye+"\r\n") }
	}
	s.Sessions.OnPanic = s.PanicLogger()
	var err error
	if s.TLS, err = s.ClientTLS(); err != nil {
		return err
	}
	return s.Common.Init()
}

// Serve accepts clients on ln until it is closed, each served by the
// protocol's session: with every slot busy, the session idle longest
// between requests gives its slot (after the goodbye) to a waiting
// client.
func (s *SessionServer) Serve(ln net.Listener) error {
	s.Listening(ln.Addr())
	if sl, ok := ln.(*slots.Listener); ok {
		sl.Evict = s.Sessions.EvictOldestIdle
		s.Sessions.Spoke = func(c sessions.Conn) bool { return slots.Spoke(c) }
		s.Sessions.OnIdle(sl.Wake)
	}
	return s.Sessions.Serve(ln, s.session)
}

// ServeTLS is Serve for the implicit-TLS listener (tls_port: FTPS on
// 990, POP3S on 995, ICAP over TLS): the session gets *tls.Conn
// connections, whose handshake is its to do (Handshake).
func (s *SessionServer) ServeTLS(ln net.Listener) error {
	if s.TLS == nil {
		return errors.New("tls_port needs tls_cert")
	}
	return s.Sessions.Serve(s.ImplicitTLS(ln, s.TLS, &s.Sessions), s.session)
}

// Shutdown closes idle sessions and waits for the busy ones until ctx
// ends; the admin notices still queued go out.
func (s *SessionServer) Shutdown(ctx context.Context) error {
	return s.Common.Shutdown(ctx, &s.Sessions)
}

// LineService is a SessionServer of a line-based protocol whose clients
// name the servers it reaches (FTP, POP3): with the servers
// allow_servers and deny_servers let it reach, and the command loop.
type LineService struct {
	SessionServer
	Reach Reach
}

// NewLineService is a LineService with the services' shared equipment.
func NewLineService(c Common) LineService {
	return LineService{SessionServer: NewSessionServer(c)}
}

// InitLine is InitServer, with the servers its clients may reach.
func (l *LineService) InitLine(session func(net.Conn), goodbye string) error {
	l.Reach = ReachOf(l.Svc)
	return l.InitServer(session, goodbye)
}

// LineClient is the client's side of a line-based session (FTP, POP3):
// its connection as it now is (TLS from the start on tls_port, or after
// AUTH TLS or STLS), and the bounded reader of its commands.
type LineClient struct {
	C        net.Conn      // the client's connection, as it now is
	In       *ClientConn   // what CR reads: C
	CR       *bufio.Reader // the client's command lines
	Client   net.IP        // the client's address
	Implicit bool          // it came to tls_port (in transparent mode, the server it was going to speaks TLS at once too)
	TLSOn    bool          // the session is in TLS
	timeout  time.Duration // a reply's write deadline (idle_timeout)
}

// OpenLine begins a line session on c, its commands read through a
// buffer of size bytes; on tls_port the handshake comes first, within
// header_timeout. firstBy is when the first command must have come;
// false: the client is gone.
func (l *LineService) OpenLine(c net.Conn, size int) (lc LineClient, firstBy time.Time, ok bool) {
	lc = LineClient{C: c, In: &ClientConn{Conn: c}, timeout: l.Svc.IdleTimeout}
	lc.CR = bufio.NewReaderSize(lc.In, size)
	if a, isTCP := c.RemoteAddr().(*net.TCPAddr); isTCP {
		lc.Client = a.IP
	}
	firstBy = time.Now().Add(l.Svc.HeaderTimeout)
	if lc.Implicit, ok = l.Handshake(c, l.Svc.HeaderTimeout); !ok {
		return lc, firstBy, false
	}
	lc.TLSOn = lc.Implicit
	return lc, firstBy, true
}

// Reply writes lines to the client, each ended by CRLF, within
// idle_timeout.
func (lc *LineClient) Reply(lines ...string) error {
	lc.C.SetWriteDeadline(time.Now().Add(lc.timeout))
	defer lc.C.SetWriteDeadline(time.Time{})
	_, err := io.WriteString(lc.C, strings.Join(lines, "\r\n")+"\r\n")
	return err
}

// StartTLS turns the session to TLS when the client asked for it (AUTH
// TLS, STLS) and the protocol refused none of its reasons: a client that
// sent more behind its command is told pipelined and the session ends
// (what it sent would be read in the clear); else it is told yes and the
// handshake follows, within header_timeout. false ends the session.
func (l *LineService) StartTLS(lc *LineClient, yes, pipelined string) bool {
	if lc.CR.Buffered() > 0 {
		lc.Reply(pipelined)
		return false
	}
	if lc.Reply(yes) != nil {
		return false
	}
	tc, err := l.UpgradeTLS(lc.In, l.TLS, l.Svc.HeaderTimeout)
	if err != nil {
		l.Log.Info("a client's TLS upgrade failed", zap.String("client", lc.Client.String()), zap.Error(err))
		return false
	}
	lc.C, lc.TLSOn = tc, true
	return true
}

// Replies are what a line-based service says when it ends a session for
// a line too long or a client gone silent.
type Replies struct {
	TooLong, Timeout string
}

// Commands is the loop of a line-based session: it reads the client's
// command lines from br (at most max bytes each), the first by firstBy
// (header_timeout from the accept: a silent client does not hold a slot
// for idle_timeout), each later one within idle_timeout; marks the
// session idle while it waits, so that a stop or an eviction may close
// it; and gives each line to handle until handle returns false. A line
// too long or a timeout is answered with say and ends the session.
func (l *LineService) Commands(conn net.Conn, br *bufio.Reader, max int, firstBy time.Time,
	say func(...string) error, r Replies, handle func(line string) bool) {
	set := &l.Sessions
	for first := true; ; first = false {
		if !set.SetIdle(conn, true) {
			return
		}
		if first {
			conn.SetReadDeadline(firstBy)
		} else {
			conn.SetReadDeadline(time.Now().Add(l.Svc.IdleTimeout))
		}
		line, err := lines.Read(br, max)
		if !set.SetIdle(conn, false) {
			return
		}
		if err != nil {
			if errors.Is(err, lines.ErrTooLong) {
				say(r.TooLong)
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				say(r.Timeout)
			}
			return
		}
		conn.SetReadDeadline(time.Time{})
		if first {
			slots.Started(conn) // no longer a silent client to evict
		}
		if !handle(line) {
			return
		}
	}
}
