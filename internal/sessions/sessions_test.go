package sessions

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestShutdownClosesIdleAndWaitsForBusy: an idle connection is closed at
// once, a busy one is let finish, and one still busy at the deadline is
// cut.
func TestShutdownClosesIdleAndWaitsForBusy(t *testing.T) {
	var s Set
	idleA, idleB := net.Pipe()
	busyA, busyB := net.Pipe()
	defer idleB.Close()
	defer busyB.Close()
	s.Add(idleA)
	s.Add(busyA)
	s.SetIdle(idleA, true)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	if _, err := idleB.Read(make([]byte, 1)); err == nil {
		t.Fatal("the idle connection was not closed")
	}
	s.Done(idleA)
	if s.SetIdle(busyA, false) {
		t.Fatal("SetIdle did not say the server is stopping")
	}
	select {
	case <-done:
		t.Fatal("Shutdown returned while a session was busy")
	case <-time.After(50 * time.Millisecond):
	}
	s.Done(busyA)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c, _ := net.Pipe()
	if s.Add(c) {
		t.Fatal("a connection added after Shutdown")
	}
}

func TestShutdownCutsAtTheDeadline(t *testing.T) {
	var s Set
	a, b := net.Pipe()
	defer b.Close()
	s.Add(a)
	go func() {
		b.Read(make([]byte, 1)) // returns when a is cut
		s.Done(a)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("err %v", err)
	}
}
