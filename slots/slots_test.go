package slots

import (
	"context"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/fsigkd/fsigkd/ipc"
)

func TestLowestFreeSlotFirst(t *testing.T) {
	sem, err := ipc.Create(4)
	if err != nil {
		t.Fatal(err)
	}
	defer sem.Remove()
	p := NewPool(4, sem)
	for want := 0; want < 4; want++ {
		if got, ok, err := p.TryAcquire(); !ok || err != nil || got != want {
			t.Fatalf("acquire: %d %v %v, want %d", got, ok, err, want)
		}
	}
	if _, ok, _ := p.TryAcquire(); ok {
		t.Fatal("a fifth slot out of four")
	}
	p.Release(2)
	p.Release(1)
	if n, _ := sem.InUse(); n != 2 {
		t.Fatalf("semaphores show %d in use, want 2", n)
	}
	if got, _, _ := p.TryAcquire(); got != 1 {
		t.Fatalf("got slot %d, want the lowest free, 1", got)
	}
	p.TryAcquire()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx); err == nil {
		t.Fatal("Wait on a full pool returned without a release")
	}
	p.Release(3)
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _ := sem.InUse(); n != 3 {
		t.Fatalf("Wait took a slot: %d in use", n)
	}
}

func newListener(t *testing.T, n int) (*Listener, *observer.ObservedLogs) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	l := &Listener{Listener: ln, Pool: NewPool(n, nil), Log: zap.New(core).Named("echo")}
	t.Cleanup(func() { l.Close() })
	return l, logs
}

func messages(o *observer.ObservedLogs) []string {
	var out []string
	for _, e := range o.All() {
		out = append(out, e.LoggerName+" "+e.Level.String()+" "+e.Message)
	}
	return out
}

// TestAllSlotsBusyStopsAccepting: with every slot taken the listener logs
// M02 and accepts nothing more until a connection closes.
func TestAllSlotsBusyStopsAccepting(t *testing.T) {
	l, obs := newListener(t, 2)
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	if SlotOf(first) != 0 || SlotOf(second) != 1 {
		t.Fatalf("slots %d, %d", SlotOf(first), SlotOf(second))
	}
	// The third client is connected (kernel backlog) but not accepted.
	select {
	case c := <-accepted:
		t.Fatalf("accepted a third connection into slot %d of 2", SlotOf(c))
	case <-time.After(50 * time.Millisecond):
	}
	want := "echo.accept warn Maximum connections: warning: Client connections reached maximum connections(2). More request will be blocked/rejected. If there is many warnings, please increase 'Maximum Connections' settings(pre_spawn value of virusgw.ini) of this service. (4 will be good value as start line)."
	if got := messages(obs); len(got) != 1 || got[0] != want {
		t.Fatalf("log: %q", got)
	}
	first.Close()
	third := <-accepted
	if SlotOf(third) != 0 {
		// (and a fourth, after the third and second close, also gets 0)
		t.Fatalf("third connection got slot %d, want the freed 0", SlotOf(third))
	}
	third.Close()
	second.Close()
}

// resetListener fails its first Accept as Linux never does for TCP but
// other kernels and socket types do: a client that left at once. Go's
// net package retries ECONNABORTED itself, and Linux hands a reset
// connection to accept as a connection, so no real socket gives this error
// here: the one fake of this package.
type resetListener struct {
	net.Listener
	failed bool
}

func (r *resetListener) Accept() (net.Conn, error) {
	if !r.failed {
		r.failed = true
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ECONNRESET)}
	}
	return r.Listener.Accept()
}

func TestClientResetBeforeAcceptIsLoggedAndServiceGoesOn(t *testing.T) {
	l, obs := newListener(t, 2)
	l.Listener = &resetListener{Listener: l.Listener}
	fd := l.fd()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sc.Close()
	want := "echo.accept warn accept=Connection reset by peer(104) main/accept_loop/accept(s=" + itoa(fd) + ")"
	if got := messages(obs); len(got) != 1 || got[0] != want {
		t.Fatalf("log: %q, want %q", got, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestEMFILEBacksOffAndRecovers runs out of descriptors for real (a low
// RLIMIT_NOFILE) with clients waiting: M13 as a warning, once however
// many tries, no busy loop, and the clients are served once descriptors
// are free again.
func TestEMFILEBacksOffAndRecovers(t *testing.T) {
	l, obs := newListener(t, 4)
	l.MaxBackoff = 20 * time.Millisecond
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	// The lowest free descriptor number becomes the limit: every number
	// below it is taken, so accept has none to give.
	probe, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(probe.Fd())
	probe.Close()
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	got := make(chan net.Conn, 1)
	go func() {
		sc, err := l.Accept()
		if err == nil {
			got <- sc
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(obs.All()) < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Many tries in this time (20 ms back-off at most), one line: the
	// shortage is said once a minute, not once a try.
	time.Sleep(300 * time.Millisecond)
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	sc := <-got
	sc.Close()
	lines := messages(obs)
	if len(lines) != 1 {
		t.Fatalf("log: %q", lines)
	}
	for _, line := range lines {
		if line != "echo.accept warn System call=Too many open files(24) main/accept_loop/accept" {
			t.Fatalf("log line %q", line)
		}
	}
}

// TestSlotIsTheLowestFreeOnArrival: a slot freed while the listener waits
// in accept is the one the next client gets.
func TestSlotIsTheLowestFreeOnArrival(t *testing.T) {
	l, _ := newListener(t, 4)
	c0, _ := net.Dial("tcp", l.Addr().String())
	defer c0.Close()
	s0, err := l.Accept()
	if err != nil || SlotOf(s0) != 0 {
		t.Fatalf("first: %v %d", err, SlotOf(s0))
	}
	next := make(chan net.Conn)
	go func() {
		c, _ := l.Accept() // waits while slot 0 is busy
		next <- c
	}()
	time.Sleep(20 * time.Millisecond)
	s0.Close()
	c1, _ := net.Dial("tcp", l.Addr().String())
	defer c1.Close()
	s1 := <-next
	defer s1.Close()
	if SlotOf(s1) != 0 {
		t.Fatalf("second client got slot %d; slot 0 was free when it came", SlotOf(s1))
	}
}

// maxBacklog is the listen backlog of the listener's socket, as the kernel
// has it (TCP_INFO's tcpi_sacked holds it for a listening socket).
func maxBacklog(t *testing.T, l *Listener) uint32 {
	rc, err := l.Listener.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n uint32
	rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			n = info.Sacked
		}
	})
	return n
}

// TestBacklogIsFullUntilTheLimit: with a slot free the socket has the full
// backlog, so that a burst is taken at once; with every slot busy it keeps
// it while no client waits, and while the busy slots can give way; with a
// client waiting and none that can (every connection has begun its
// work), it has the documented 5; a slot freed gives the full one back.
func TestBacklogIsFullUntilTheLimit(t *testing.T) {
	l, _ := newListener(t, 1)
	l.Backlog = 200
	l.setBacklog(l.Backlog)
	if n := maxBacklog(t, l); n != 200 {
		t.Fatalf("with a slot free: backlog %d", n)
	}
	c1, _ := net.Dial("tcp", l.Addr().String())
	defer c1.Close()
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	Started(sc) // it has sent its first request: it does not give way
	got := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			got <- c
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if n := maxBacklog(t, l); n != 200 {
		t.Fatalf("every slot busy, no client waiting: backlog %d", n)
	}
	c2, _ := net.Dial("tcp", l.Addr().String())
	defer c2.Close()
	for deadline := time.Now().Add(5 * time.Second); maxBacklog(t, l) != LimitBacklog; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("at the limit: backlog %d, want %d", maxBacklog(t, l), LimitBacklog)
		}
	}
	sc.Close() // a slot frees
	(<-got).Close()
	for deadline := time.Now().Add(5 * time.Second); maxBacklog(t, l) != 200; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a slot free again: backlog %d", maxBacklog(t, l))
		}
	}
}
