// Package sessions keeps the connections a server is serving, so that
// Shutdown can close the ones waiting between requests at once, let the
// busy ones finish, and cut them when the grace period ends. The HTTP
// proxy, the bundled fsavd and the other services share it.
package sessions

import (
	"context"
	"net"
	"sync"
)

// Set is the connections of one server.
type Set struct {
	mu      sync.Mutex
	conns   map[net.Conn]bool // true while idle between requests
	closing bool
	wg      sync.WaitGroup
}

// Add registers c as busy; false when the server is shutting down (c is
// then closed).
func (s *Set) Add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		c.Close()
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]bool{}
	}
	s.conns[c] = false
	s.wg.Add(1)
	return true
}

// Done forgets c (closing it is the caller's).
func (s *Set) Done(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// SetIdle marks c as waiting between requests, or busy; false means the
// server is shutting down and the session should end.
func (s *Set) SetIdle(c net.Conn, idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns[c] = idle
	return !s.closing
}

// Shutdown closes the idle connections and waits for the busy ones until
// ctx ends, then closes those too. Safe to call twice.
func (s *Set) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for c, idle := range s.conns {
		if idle {
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
