package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	"github.com/fsigkd/fsigkd/internal/lines"
	"github.com/fsigkd/fsigkd/internal/sessions"
	"github.com/fsigkd/fsigkd/slots"
)

// LineService is the equipment of a line-based service whose clients
// name the servers it reaches (FTP, POP3): its sessions, and the servers
// allow_servers and deny_servers let it reach.
type LineService struct {
	Common
	Reach    Reach
	Sessions sessions.Set
}

// InitLine fills in the defaults; goodbye is the line said to a client
// waiting between commands at a stop, or whose slot goes to a waiting
// client.
func (l *LineService) InitLine(goodbye string) error {
	l.Sessions.Goodbye = func(c sessions.Conn) { io.WriteString(c, goodbye+"\r\n") }
	l.Sessions.OnPanic = l.PanicLogger()
	l.Reach = ReachOf(l.Svc)
	return l.Common.Init()
}

// ServeLines accepts clients on ln, serving each with serve: with every
// slot busy, the session idle longest between commands gives its slot
// (after the goodbye) to a waiting client.
func (l *LineService) ServeLines(ln net.Listener, serve func(net.Conn)) error {
	l.Listening(ln.Addr())
	if sl, ok := ln.(*slots.Listener); ok {
		sl.Evict = l.Sessions.EvictOldestIdle
	}
	return l.Sessions.Serve(ln, serve)
}

// ServeLinesTLS is ServeLines for the implicit-TLS listener (tls_port):
// serve gets *tls.Conn connections, whose handshake is its to do
// (Handshake).
func (l *LineService) ServeLinesTLS(ln net.Listener, cfg *tls.Config, serve func(net.Conn)) error {
	return l.Sessions.Serve(l.ImplicitTLS(ln, cfg, l.Sessions.EvictOldestIdle), serve)
}

// Shutdown closes idle sessions and waits for the busy ones until ctx
// ends; the admin notices still queued go out.
func (l *LineService) Shutdown(ctx context.Context) error {
	return l.Common.Shutdown(ctx, &l.Sessions)
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
