// Package sessions keeps the connections a server is serving, so that
// Shutdown can close the ones waiting between requests at once, let the
// busy ones finish, and cut them when the grace period ends; Serve is the
// accept loop that fills the set. Every service shares it: the HTTP, FTP,
// POP3 and ICAP proxies and the bundled fsavd through Serve; the SMTP
// relay, whose library accepts its own clients, by adding its sessions
// (Add, SetIdle, Done) from the library's hooks.
package sessions

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/fsigkd/fsigkd/internal/backoff"
)

// FreshGrace is how long, at a stop, a client that connected but has not
// begun a request has to begin one.
const FreshGrace = 500 * time.Millisecond

// Conn is what the set keeps of a session: its connection, or a session
// that speaks through its connection as it now is (an SMTP session whose
// client turned to TLS after the accept).
type Conn interface {
	io.Writer
	Close() error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// Set is the connections of one server.
type Set struct {
	// Goodbye, when set, is said to an idle connection before Shutdown
	// closes it (FTP's 421), and before EvictOldestIdle does unless
	// Evicted is set too.
	Goodbye func(Conn)
	// Evicted, when set, is said instead of Goodbye to the connection
	// EvictOldestIdle closes (SMTP's 421 4.4.2).
	Evicted func(Conn)
	// OnPanic, when set, is told of a session that panicked (Serve closes
	// it and goes on).
	OnPanic func(any)
	// Spoke, when set, tells whether a connection's client has sent
	// something its session has not read yet (slots.Spoke): such a
	// session is about to be busy, and EvictOldestIdle passes it over.
	Spoke func(Conn) bool

	mu      sync.Mutex
	idled   []func()           // told when a session comes to wait (OnIdle)
	conns   map[Conn]time.Time // since when idle between requests; zero while busy
	fresh   map[Conn]bool      // accepted, no request begun yet
	next    map[Conn]func()    // what a session goes on with (Then)
	closing bool
	wg      sync.WaitGroup
}

// Serve accepts clients on ln until it is closed, serving each with serve
// in a goroutine of its own; when serve returns (or panics) the client is
// closed and forgotten. An
// accept that fails for another reason than the listener's closing is
// tried again after a back-off doubling up to a second: never a spin.
func (s *Set) Serve(ln net.Listener, serve func(net.Conn)) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				delay = backoff.Next(delay, time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if s.Add(c) {
			go s.run(c, serve)
		}
	}
}

// run serves c, and whatever happens (a panic included, reported to
// OnPanic) closes it and forgets it, unless its session asked to go on
// in a goroutine of its own (Then).
func (s *Set) run(c net.Conn, serve func(net.Conn)) {
	defer func() {
		r := recover()
		if r != nil && s.OnPanic != nil {
			s.OnPanic(r)
		}
		if next := s.takeNext(c); next != nil && r == nil {
			go s.run(c, func(net.Conn) { next() })
			return
		}
		c.Close()
		s.Done(c)
	}()
	serve(c)
}

// Then has the session of c, a connection of Serve's, go on with next in
// a new goroutine once the serving function returns, instead of ending.
// A session that comes to wait for its client's next request does so to
// wait on a small stack: a goroutine keeps the stack its deepest request
// grew (8 KiB and more) until a collection shrinks it, and halves at the
// most; a new one starts small (see docs/benchmarks.md, idle clients).
func (s *Set) Then(c Conn, next func()) {
	s.mu.Lock()
	if s.next == nil {
		s.next = map[Conn]func(){}
	}
	s.next[c] = next
	s.mu.Unlock()
}

// takeNext is what c's session asked to go on with (nil: nothing).
func (s *Set) takeNext(c Conn) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.next[c]
	delete(s.next, c)
	return next
}

// Add registers c as busy; false when the server is shutting down (c is
// then closed).
func (s *Set) Add(c Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		c.Close()
		return false
	}
	if s.conns == nil {
		s.conns = map[Conn]time.Time{}
		s.fresh = map[Conn]bool{}
	}
	s.conns[c] = time.Time{}
	s.fresh[c] = true
	s.wg.Add(1)
	return true
}

// Len is the number of connections being served.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Done forgets c (closing it is the caller's).
func (s *Set) Done(c Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	delete(s.fresh, c)
	s.mu.Unlock()
	s.wg.Done()
}

// OnIdle has f called whenever a session comes to wait between requests
// (a listener's Wake: a client waiting for a slot may have it now).
func (s *Set) OnIdle(f func()) {
	s.mu.Lock()
	s.idled = append(s.idled, f)
	s.mu.Unlock()
}

// SetIdle marks c as waiting between requests (since now, also when it
// was waiting already), or busy; false means the server is shutting down
// and the session should end. A session that comes to wait after the
// stop began (it was busy, or had just connected, when Shutdown looked)
// is told Goodbye here, as the idle ones were.
func (s *Set) SetIdle(c Conn, idle bool) bool {
	s.mu.Lock()
	var since time.Time
	if idle {
		since = time.Now()
	}
	s.conns[c] = since
	delete(s.fresh, c)
	if s.closing && idle && s.Goodbye != nil {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		s.Goodbye(c)
	}
	closing, idled := s.closing, s.idled
	s.mu.Unlock()
	if idle {
		for _, f := range idled {
			f()
		}
	}
	return !closing
}

// EvictOldestIdle closes the connection that has waited longest between
// requests, so that its slot goes to a client waiting for one; false when
// none is idle.
func (s *Set) EvictOldestIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The idle ones, longest waiting first; one whose next request is
	// already in (Spoke) is busy in a moment, and passed over.
	type idle struct {
		c     Conn
		since time.Time
	}
	var waiting []idle
	for c, since := range s.conns {
		if !since.IsZero() {
			waiting = append(waiting, idle{c, since})
		}
	}
	slices.SortFunc(waiting, func(a, b idle) int { return a.since.Compare(b.since) })
	i := slices.IndexFunc(waiting, func(w idle) bool { return s.Spoke == nil || !s.Spoke(w.c) })
	if i < 0 {
		return false
	}
	oldest := waiting[i].c
	s.conns[oldest] = time.Time{} // closing: not to be picked twice
	say := s.Evicted
	if say == nil {
		say = s.Goodbye
	}
	if say != nil {
		oldest.SetWriteDeadline(time.Now().Add(time.Second))
		say(oldest)
	}
	oldest.Close()
	return true
}

// closeFresh closes c if it has still begun no request.
func (s *Set) closeFresh(c Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh[c] {
		c.Close()
	}
}

// Shutdown closes the idle connections and waits for the busy ones until
// ctx ends, then closes those too. Safe to call twice.
func (s *Set) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for c := range s.fresh {
		// Connected but silent: a moment to send its request (one that
		// connected just before the stop is served), not the grace. The
		// deadline alone is not enough: a session that had not yet begun
		// sets its own first-request deadline after this one (a stop
		// right after a connect then waited for header_timeout).
		c.SetReadDeadline(time.Now().Add(FreshGrace))
		time.AfterFunc(FreshGrace, func() { s.closeFresh(c) })
	}
	for c, since := range s.conns {
		if !since.IsZero() {
			if s.Goodbye != nil {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				s.Goodbye(c)
			}
			c.Close()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}
