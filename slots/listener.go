package slots

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/internal/backoff"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/metrics"
)

// Listener takes a slot, then accepts. Its connections are *Conn.
type Listener struct {
	net.Listener
	Pool *Pool
	Log  *zap.Logger // named for the service; nil: no logging
	// M02Interval is the least time between two M02 lines (zero: a minute).
	M02Interval time.Duration
	// MaxBackoff caps the wait after EMFILE/ENFILE (zero: one second).
	MaxBackoff time.Duration

	// Backlog is the listen backlog (0: leave the socket's as it is).
	// With every slot busy and a client waiting that no connection can
	// give way to, the backlog is LimitBacklog, the documented state at
	// the limit; a free slot gives the full one back, so that a burst of
	// clients is not made to wait a second for a retransmitted handshake.
	Backlog int

	// Admit, when set, is asked about each accepted client before it
	// takes a slot: a client it refuses is handed to Refuse (in a
	// goroutine of its own, at most MaxRefusing at once, closed past
	// that) and never holds a slot.
	Admit  func(net.Conn) bool
	Refuse func(net.Conn)
	// Evict, when set, is called when every slot is busy and a client
	// waits in the backlog: it closes the service's oldest idle
	// connection (true), whose slot the client then gets.
	Evict func() bool

	// ProxyFrom, when set, tells the balancers' addresses
	// (proxy_protocol_from): a connection from one must begin with a
	// PROXY protocol header within ProxyTimeout (proxyproto.go), whose
	// addresses then stand for the connection's; one without is refused.
	ProxyFrom    func(net.IP) bool
	ProxyTimeout time.Duration
	lastProxy    time.Time

	refusing atomic.Int32
	fresh    freshSet // connections that have not yet sent their first request

	once    sync.Once
	ctx     context.Context
	cancel  context.CancelFunc
	wake    chan struct{} // a session went idle: one may give way (Wake)
	lastM02 time.Time
	lastM13 time.Time
}

func (l *Listener) init() {
	l.once.Do(func() {
		l.ctx, l.cancel = context.WithCancel(context.Background())
		l.wake = make(chan struct{}, 1)
		if l.Log == nil {
			l.Log = zap.NewNop()
		}
	})
}

// Wake says that one of the service's sessions has come to wait between
// requests: a client waiting for a slot has it evicted at once, rather
// than at the next look (see waitSlot), so that a burst of clients is
// admitted as fast as sessions go idle.
func (l *Listener) Wake() {
	l.init()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Close stops accepting; an Accept waiting for a slot returns at once.
func (l *Listener) Close() error {
	l.init()
	l.cancel()
	return l.Listener.Close()
}

// Accept waits for a free slot, then for a client, who gets the lowest
// slot free when it comes.
func (l *Listener) Accept() (net.Conn, error) {
	l.init()
	wait := time.Duration(0)
	for {
		if err := l.waitSlot(); err != nil {
			return nil, err
		}
		c, err := l.Listener.Accept()
		if err == nil && l.ProxyFrom != nil {
			if c, err = l.unwrapProxy(c); err != nil {
				continue // refused: it had no valid header
			}
		}
		if err == nil && l.Admit != nil && !l.Admit(c) {
			l.refuse(c)
			continue
		}
		if err == nil {
			slot, ok, err := l.Pool.TryAcquire()
			for !ok && l.Pool.Wait(l.ctx) == nil {
				// Another listener of the pool (tls_port) took the
				// slot first: this client waits for the next.
				slot, ok, err = l.Pool.TryAcquire()
			}
			if err != nil {
				l.Log.Named("accept").Warn("slot semaphore", zap.Error(err))
			}
			if !ok { // closed while it waited
				c.Close()
				return nil, net.ErrClosed
			}
			sc := &Conn{Conn: c, slot: slot, pool: l.Pool, l: l}
			l.fresh.add(sc)
			metrics.Add("fsigkd_connections_total", 1)
			return sc, nil
		}
		en, _ := catalog.Errno(err)
		switch {
		case catalog.OutOfFiles(err):
			// Once a minute: a shortage that lasts is one fault, not a
			// line per try.
			if now := time.Now(); now.Sub(l.lastM13) >= time.Minute {
				l.lastM13 = now
				logs.Emit(l.Log.Named("accept"), catalog.M13(err, "main/accept_loop/accept", false))
			}
			wait = backoff.Next(wait, l.MaxBackoff)
			if !l.sleep(wait) {
				return nil, net.ErrClosed
			}
		case en == syscall.ECONNRESET || en == syscall.ECONNABORTED:
			logs.Emit(l.Log.Named("accept"), catalog.M20(err, l.fd()))
		default:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, err
			}
			if !errors.Is(err, net.ErrClosed) && l.ctx.Err() == nil {
				// Another passing failure: back off as for EMFILE, never spin.
				l.Log.Named("accept").Warn("accept failed", zap.Error(err))
				wait = backoff.Next(wait, l.MaxBackoff)
				if l.sleep(wait) {
					continue
				}
			}
			return nil, err
		}
	}
}

// unwrapProxy reads the PROXY header of a connection from a balancer; a
// connection from one without a valid header is closed, counted refused
// and logged (once a minute).
func (l *Listener) unwrapProxy(c net.Conn) (net.Conn, error) {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok || !l.ProxyFrom(a.IP) {
		return c, nil
	}
	timeout := l.ProxyTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	pc, err := readProxyHeader(c, timeout)
	if err != nil {
		c.Close()
		metrics.Add("fsigkd_connections_refused_total", 1)
		if now := time.Now(); now.Sub(l.lastProxy) >= time.Minute {
			l.lastProxy = now
			l.Log.Named("accept").Warn("a connection from a balancer (proxy_protocol_from) sent no valid PROXY header: refused", zap.String("from", a.String()), zap.Error(err))
		}
		return nil, err
	}
	return pc, nil
}

// MaxRefusing bounds the refused clients being answered at once.
const MaxRefusing = 256

func (l *Listener) refuse(c net.Conn) {
	metrics.Add("fsigkd_connections_refused_total", 1)
	if l.Refuse == nil || l.refusing.Add(1) > MaxRefusing {
		l.refusing.Add(-1)
		c.Close()
		return
	}
	go func() {
		defer l.refusing.Add(-1)
		l.Refuse(c)
	}()
}

// waitSlot returns once a slot is free, logging M02 when it had to wait.
// While it waits, a client coming into the backlog makes it evict a
// connection: the oldest idle one (Evict), or else the oldest that has not
// yet sent its first request (a client that connects and says nothing
// holds no slot another wants). Only when none can give way is the
// backlog cut to LimitBacklog.
func (l *Listener) waitSlot() error {
	if l.Pool.InUse() < l.Pool.Size() {
		return nil
	}
	l.warnFull()
	metrics.Add("fsigkd_slots_full_total", 1)
	cut, woken := false, false
	defer func() {
		if cut {
			l.setBacklog(l.Backlog)
		}
	}()
	for {
		// A client waiting in the backlog is given a slot at once, and
		// the backlog stays whole while slots can be had this way: cut
		// to 5 (or taken at a pause's pace, five a second), it kept
		// 10,000 connections that say nothing ahead of a client for up
		// to 20 s, its handshake dropped and retransmitted (1, 3, 7,
		// 15 s); whole, such a flood is accepted and dropped in well
		// under a second.
		// Woken because a session went idle, only an idle one gives way:
		// that session may have begun its next request meanwhile, and a
		// client just accepted must not pay for the race.
		look := 200 * time.Millisecond
		if l.pending() {
			evicted := l.Evict != nil && l.Evict()
			var young time.Duration
			if !evicted && !woken {
				evicted, young = l.fresh.evictOldest()
			}
			if evicted {
				metrics.Add("fsigkd_evictions_total", 1)
				if err := l.Pool.Wait(l.ctx); err != nil {
					return net.ErrClosed
				}
				return nil
			}
			switch {
			case young > 0:
				look = young // it may say something yet: looked at again then
			case !cut && !woken:
				l.setBacklog(LimitBacklog)
				cut = true
			}
		}
		woken = false
		// Until a slot is free, a session goes idle (Wake) or, at the
		// latest, the next look.
		ctx, cancel := context.WithTimeout(l.ctx, look)
		var err error
		woken, err = l.Pool.WaitOr(ctx, l.wake)
		cancel()
		if err == nil && !woken {
			return nil
		}
		if l.ctx.Err() != nil {
			return net.ErrClosed
		}
	}
}

// LimitBacklog is the listen backlog while every slot is busy and no
// connection can give way to a waiting client: 5, as the documentation of
// the original describes the state at the limit (five in the queue, one
// more established, the rest in SYN_RECV).
const LimitBacklog = 5

// Somaxconn is the kernel's cap on a listen backlog
// (net.core.somaxconn), the default backlog of a service.
func Somaxconn() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if n, err2 := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && err2 == nil && n > 0 {
		return n
	}
	return 4096
}

// setBacklog calls listen(2) again on the socket: Linux changes the
// backlog of a listening socket in place.
func (l *Listener) setBacklog(n int) {
	if l.Backlog <= 0 || n <= 0 {
		return
	}
	sc, ok := l.Listener.(syscall.Conn)
	if !ok {
		return
	}
	if rc, err := sc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.Listen(int(fd), n) })
	}
}

// pending tells whether a client waits in the listen backlog.
func (l *Listener) pending() bool {
	sc, ok := l.Listener.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ready := false
	rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		ready = err == nil && n > 0 && fds[0].Revents&unix.POLLIN != 0
	})
	return ready
}

func (l *Listener) warnFull() {
	every := l.M02Interval
	if every <= 0 {
		every = time.Minute
	}
	if now := time.Now(); now.Sub(l.lastM02) >= every {
		l.lastM02 = now
		n := l.Pool.Size()
		logs.Emit(l.Log.Named("accept"), catalog.M02(n, Suggest(n)))
	}
}

// Suggest is M02's advice for pre_spawn: twice the current value, but not
// past the documented recommended maximum (2000) by more than half again.
func Suggest(n int) int {
	s := 2 * n
	if s > 2000 {
		s = max(2000, n+n/2)
	}
	return s
}

func (l *Listener) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.ctx.Done():
		return false
	}
}

// fd is the listening socket's descriptor number, for M20.
func (l *Listener) fd() int {
	sc, ok := l.Listener.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	rc.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// Conn is an accepted connection holding a slot until it is closed.
type Conn struct {
	net.Conn
	slot int
	pool *Pool
	l    *Listener
	once sync.Once
}

// Started marks c (or the slots.Conn it wraps) as having sent its first
// request: from then on it is no longer evicted for a waiting client as a
// fresh connection (only as an idle one, by the service's Evict).
func Started(c net.Conn) {
	if sc := slotConn(c); sc != nil && sc.l != nil {
		sc.l.fresh.remove(sc)
	}
}

// slotConn is the *Conn under c, looking through wrappers that give their
// NetConn (TLS, FirstLine); nil when c did not come from a Listener.
func slotConn(c net.Conn) *Conn {
	for i := 0; i < 8 && c != nil; i++ {
		if sc, ok := c.(*Conn); ok {
			return sc
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = nc.NetConn()
	}
	return nil
}

// freshSet is the connections that have not sent their first request,
// with the time of their accept.
type freshSet struct {
	mu sync.Mutex
	m  map[*Conn]time.Time
}

func (f *freshSet) add(c *Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[*Conn]time.Time{}
	}
	f.m[c] = time.Now()
}

func (f *freshSet) remove(c *Conn) {
	f.mu.Lock()
	delete(f.m, c)
	f.mu.Unlock()
}

// evictOldest closes the connection accepted longest ago that has not
// sent its first request. One whose first line waits whole and unread
// (its session has not read it yet: a busy worker, a flood's churn) has
// spoken and is passed over: it is no silent client, nor a slow one. One
// accepted less than freshMinAge ago has had no time to speak (a client
// writes its request the moment it is connected, a little after the
// accept): none is evicted then, and young says when the oldest will be
// old enough.
func (f *freshSet) evictOldest() (evicted bool, young time.Duration) {
	for {
		f.mu.Lock()
		var oldest *Conn
		var at time.Time
		for c, t := range f.m {
			if oldest == nil || t.Before(at) {
				oldest, at = c, t
			}
		}
		if oldest == nil {
			f.mu.Unlock()
			return false, 0
		}
		if age := time.Since(at); age < freshMinAge {
			f.mu.Unlock()
			return false, freshMinAge - age
		}
		delete(f.m, oldest)
		f.mu.Unlock()
		if !hasSpoken(oldest.Conn) {
			oldest.Conn.Close() // the session sees its read fail, and frees the slot
			return true, 0
		}
	}
}

// freshMinAge is how long a connection has to send its first line before
// it may be evicted as silent.
const freshMinAge = 20 * time.Millisecond

// Spoke tells whether a whole line from the client waits unread on c (a
// connection from a Listener, or one wrapping it): an idle session whose
// client has just sent its next request is not idle, whatever its
// session has yet to notice (see sessions.Set's Spoke).
func Spoke(c any) bool {
	nc, ok := c.(net.Conn)
	if !ok {
		return false
	}
	sc := slotConn(nc)
	return sc != nil && hasSpoken(sc.Conn)
}

// hasSpoken tells whether a whole line from the client waits unread on c.
func hasSpoken(c net.Conn) bool {
	var b [2048]byte
	n, err := Peek(c, b[:])
	return err == nil && bytes.IndexByte(b[:n], '\n') >= 0
}

// Slot is the connection's slot number.
func (c *Conn) Slot() int { return c.slot }

// NetConn is the accepted connection itself (a *net.TCPConn for TCP), for
// socket options and the original destination.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// SyscallConn is the socket's: the connection adds nothing between its
// reads and writes and the socket's (a server's replies are held and sent
// with the wait for the next command on it: sendwait.Hold).
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// Close closes the connection and frees its slot; safe to call twice.
func (c *Conn) Close() error {
	if c.l != nil {
		c.l.fresh.remove(c)
	}
	err := c.Conn.Close()
	c.once.Do(func() { c.pool.Release(c.slot) })
	return err
}

// ReadFrom lets io.Copy into the connection use sendfile/splice.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// WriteTo lets io.Copy out of the connection use splice.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c.Conn})
}

// SlotOf is c's slot, or -1 when c did not come from a Listener. Wrappers
// that give their NetConn (TLS, FirstLine) are looked through.
func SlotOf(c net.Conn) int {
	if sc := slotConn(c); sc != nil {
		return sc.slot
	}
	return -1
}
