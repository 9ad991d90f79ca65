package smtp

import (
	"crypto/tls"
	"errors"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The next hop's sessions are kept between clients, as Postfix's SMTP
// client keeps its own (smtp_connection_cache_time_limit, 2 s): a client
// that sends one mail a session (most MTAs, and every load test) would
// otherwise cost the next hop a connection, its greeting, EHLO and QUIT
// per mail. A session is kept when its client leaves it between mails
// (greeted, no mail under way, no broken reply or connection), for
// hopKeep at most; it is taken by the next client for the same next hop,
// after a look at its socket that it was not closed meanwhile; one that
// fails before its first reply even so is replaced by a new session for
// that mail. Sessions dialled from the client's own address
// (transparent_tproxy) are never shared.

// hopKeep is how long an unused session to the next hop is kept.
const hopKeep = 2 * time.Second

// hopKeepMax bounds the unused sessions kept for one next hop.
const hopKeepMax = 32

// hopCache holds the unused sessions, by next hop.
type hopCache struct {
	mu     sync.Mutex
	idle   map[string][]*keptHop
	closed bool
}

type keptHop struct {
	up    *upstream
	timer *time.Timer
}

// take gives a kept session to key's next hop that is still open, or nil.
func (h *hopCache) take(key string) *upstream {
	for {
		h.mu.Lock()
		list := h.idle[key]
		if len(list) == 0 {
			h.mu.Unlock()
			return nil
		}
		k := list[len(list)-1] // the last kept: the least likely to have timed out
		h.idle[key] = list[:len(list)-1]
		h.mu.Unlock()
		if !k.timer.Stop() {
			continue // its time ran out as it was taken: closed by the timer
		}
		if open(k.up) {
			return k.up
		}
		k.up.c.Close()
	}
}

// put keeps up for key's next hop, or ends it when no more are kept.
func (h *hopCache) put(key string, up *upstream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || len(h.idle[key]) >= hopKeepMax {
		go quit(up)
		return
	}
	if h.idle == nil {
		h.idle = map[string][]*keptHop{}
	}
	k := &keptHop{up: up}
	k.timer = time.AfterFunc(hopKeep, func() {
		h.mu.Lock()
		list := h.idle[key]
		for i, o := range list {
			if o == k {
				h.idle[key] = append(list[:i], list[i+1:]...)
				break
			}
		}
		h.mu.Unlock()
		quit(up)
	})
	h.idle[key] = append(h.idle[key], k)
}

// close ends every kept session, and keeps none from now on.
func (h *hopCache) close() {
	h.mu.Lock()
	h.closed = true
	var all []*keptHop
	for _, list := range h.idle {
		all = append(all, list...)
	}
	h.idle = nil
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, k := range all {
		if k.timer.Stop() {
			wg.Go(func() { quit(k.up) })
		}
	}
	wg.Wait()
}

// quitWait is how long a next hop has to answer QUIT: the session is
// over either way, and nothing may wait on a next hop that has stopped
// reading (a stop of the gateway waits for these).
const quitWait = 2 * time.Second

// quit ends a session to the next hop politely.
func quit(up *upstream) {
	up.timeout = min(up.timeout, quitWait)
	up.cmd(221, "QUIT")
	up.c.Close()
}

// open tells whether the next hop has left a kept session as it was: no
// reply buffered, the socket neither closed nor holding bytes (a 421 for
// its idle time). One look at the socket, without waiting.
func open(up *upstream) bool {
	if up.br.Buffered() > 0 {
		return false
	}
	c := up.c
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		alive = errors.Is(err, unix.EAGAIN)
		return true // one look: never wait
	})
	return alive
}

// hopKey names a next hop for the cache: its address, and whether it is
// spoken to in TLS from its first byte (a client diverted from port 465).
func hopKey(addr string, implicitTLS bool) string {
	if implicitTLS {
		return "tls " + addr
	}
	return addr
}
