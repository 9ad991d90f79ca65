package sessions

import (
	"context"
	"io"
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

// TestServeClosesAndForgetsAPanickedSession: a session that panics is
// reported, closed and forgotten; the server goes on.
// panicking is a set serving on a loopback listener, whose sessions'
// panics go to the channel.
func panicking(t *testing.T) (*Set, net.Listener, chan any) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := new(Set)
	panics := make(chan any, 1)
	s.OnPanic = func(r any) { panics <- r }
	return s, ln, panics
}

func TestServeClosesAndForgetsAPanickedSession(t *testing.T) {
	s, ln, panics := panicking(t)
	go s.Serve(ln, func(c net.Conn) { panic("boom") })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := <-panics; r != "boom" {
		t.Fatalf("reported %v", r)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the panicked session was not closed")
	}
	for deadline := time.Now().Add(5 * time.Second); s.Len() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the panicked session was not forgotten")
		}
	}
}

// TestGoodbyeToASessionIdleAfterTheStop: a session that comes to wait for
// a command only after Shutdown began (it had just connected) is told
// goodbye too, not closed silently.
func TestGoodbyeToASessionIdleAfterTheStop(t *testing.T) {
	var s Set
	s.Goodbye = func(c Conn) { c.Write([]byte("421 bye\r\n")) }
	a, b := net.Pipe()
	defer b.Close()
	s.Add(a)
	go s.Shutdown(context.Background())
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 16)
		n, _ := b.Read(buf)
		got <- string(buf[:n])
	}()
	for deadline := time.Now().Add(time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if closing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no stop began")
		}
	}
	if s.SetIdle(a, true) {
		t.Fatal("SetIdle said go on during a stop")
	}
	if g := <-got; g != "421 bye\r\n" {
		t.Fatalf("the client read %q", g)
	}
	a.Close()
	s.Done(a)
}

// TestShutdownRightAfterAConnect: a client that connected just before the
// stop, whose session sets its own (longer) first-request deadline after
// the stop set its short one, is closed once the short one is past: the
// stop does not wait for the session's deadline.
func TestShutdownRightAfterAConnect(t *testing.T) {
	var s Set
	a, b := net.Pipe()
	defer b.Close()
	s.Add(a)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	time.Sleep(10 * time.Millisecond)
	a.SetReadDeadline(time.Now().Add(time.Hour)) // the session's own, after the stop's
	go func() {
		a.Read(make([]byte, 1))
		s.Done(a)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * FreshGrace):
		t.Fatal("the stop waited for a silent client's own deadline")
	}
}

// TestEvictedIsToldItsOwnGoodbye: the connection evicted for a waiting
// client hears Evicted, not the stop's Goodbye; without Evicted it hears
// Goodbye; a busy one is never evicted.
func TestEvictedIsToldItsOwnGoodbye(t *testing.T) {
	for _, c := range []struct {
		evicted bool
		want    string
	}{{true, "421 idle\r\n"}, {false, "421 bye\r\n"}} {
		var s Set
		s.Goodbye = func(c Conn) { c.Write([]byte("421 bye\r\n")) }
		if c.evicted {
			s.Evicted = func(c Conn) { c.Write([]byte("421 idle\r\n")) }
		}
		busy, busyPeer := net.Pipe()
		idle, idlePeer := net.Pipe()
		s.Add(busy)
		s.Add(idle)
		s.SetIdle(idle, true)
		got := make(chan string, 1)
		go func() {
			b, _ := io.ReadAll(idlePeer)
			got <- string(b)
		}()
		if !s.EvictOldestIdle() {
			t.Fatal("nothing evicted")
		}
		if g := <-got; g != c.want {
			t.Errorf("evicted heard %q, want %q", g, c.want)
		}
		if s.EvictOldestIdle() {
			t.Error("a busy session was evicted")
		}
		busy.Close()
		busyPeer.Close()
	}
}

// TestEvictionPassesOverAClientThatSpoke: the session idle longest whose
// client has already sent its next request (Spoke) is not evicted; the
// next idle one is, and with none other, none.
func TestEvictionPassesOverAClientThatSpoke(t *testing.T) {
	var s Set
	spoke, spokeB := net.Pipe()
	quiet, quietB := net.Pipe()
	defer spokeB.Close()
	defer quietB.Close()
	s.Spoke = func(c Conn) bool { return c == spoke }
	s.Add(spoke)
	s.Add(quiet)
	s.SetIdle(spoke, true)
	time.Sleep(time.Millisecond)
	s.SetIdle(quiet, true)
	if !s.EvictOldestIdle() {
		t.Fatal("nothing evicted")
	}
	if _, err := quietB.Read(make([]byte, 1)); err == nil {
		t.Error("the quiet session was not the one evicted")
	}
	s.Done(quiet)
	if s.EvictOldestIdle() {
		t.Error("a session whose client spoke was evicted")
	}
}

// TestOnIdleIsToldOfEverySessionGoingIdle: a listener waiting for a slot
// hears of each session that comes to wait, and of no busy one.
func TestOnIdleIsToldOfEverySessionGoingIdle(t *testing.T) {
	var s Set
	told := 0
	s.OnIdle(func() { told++ })
	a, b := net.Pipe()
	defer b.Close()
	s.Add(a)
	s.SetIdle(a, false)
	s.SetIdle(a, true)
	s.SetIdle(a, false)
	s.SetIdle(a, true)
	if told != 2 {
		t.Fatalf("told %d times, want 2", told)
	}
}

// TestThenGoesOnInANewGoroutine: a session that asks to go on (Then) is
// neither closed nor forgotten when its function returns; its next step
// runs on a goroutine of its own, can ask again, and the connection is
// closed and forgotten when the last step ends, a panicking one too;
// Shutdown waits for it through its steps.
func TestThenGoesOnInANewGoroutine(t *testing.T) {
	s, ln, panics := panicking(t)
	steps := make(chan string, 8)
	go s.Serve(ln, func(c net.Conn) {
		c.Write([]byte("1"))
		s.Then(c, func() {
			c.Write([]byte("2")) // written: the connection was not closed
			s.Then(c, func() {
				buf := make([]byte, 1)
				c.Read(buf)
				steps <- string(buf)
				panic("last")
			})
		})
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 2)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "12" {
		t.Fatalf("read %q, %v", got, err)
	}
	if s.Len() != 1 {
		t.Fatalf("%d sessions while the last step waits, want 1", s.Len())
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	select {
	case <-shut:
		t.Fatal("Shutdown returned while a session's step was busy")
	case <-time.After(50 * time.Millisecond):
	}
	c.Write([]byte("x"))
	if got := <-steps; got != "x" {
		t.Fatalf("the last step read %q", got)
	}
	if r := <-panics; r != "last" {
		t.Fatalf("reported %v", r)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the session was not closed after its last step")
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 {
		t.Fatal("the session was not forgotten")
	}
}
