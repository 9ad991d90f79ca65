package slots

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// FirstLine wraps c so that its first line must have come by the time
// by: until a line end has been read, no read deadline set on it reaches
// past by. A client that connects and says nothing (or trickles its first
// command) loses its slot at by, whatever read timeout the protocol's own
// loop sets. The wrapper keeps c's slot and its NetConn for socket
// options and the original destination.
func FirstLine(c net.Conn, by time.Time) net.Conn { return first(c, by, false) }

// FirstRead is FirstLine for a binary protocol (the milter's): any byte
// read is its first command begun.
func FirstRead(c net.Conn, by time.Time) net.Conn { return first(c, by, true) }

func first(c net.Conn, by time.Time, anyByte bool) net.Conn {
	f := &firstLine{Conn: c, by: by, anyByte: anyByte}
	f.last.Store(time.Now().UnixNano())
	f.Conn.SetReadDeadline(by)
	return f
}

type firstLine struct {
	net.Conn
	mu   sync.Mutex
	by   time.Time
	done bool
	// anyByte: the first byte ends the wait, not the first line end.
	anyByte bool
	last    atomic.Int64 // unix nanos of the last read that returned
}

func (f *firstLine) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	f.last.Store(time.Now().UnixNano())
	if n > 0 && (f.anyByte || bytes.IndexByte(p[:n], '\n') >= 0) {
		f.mu.Lock()
		first := !f.done
		f.done = true
		f.mu.Unlock()
		if first {
			Started(f.Conn)
		}
	}
	return n, err
}

func (f *firstLine) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	if !f.done && (t.IsZero() || t.After(f.by)) {
		t = f.by
	}
	f.mu.Unlock()
	return f.Conn.SetReadDeadline(t)
}

func (f *firstLine) SetDeadline(t time.Time) error {
	if err := f.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return f.SetReadDeadline(t)
}

// NetConn is the wrapped connection.
func (f *firstLine) NetConn() net.Conn { return f.Conn }

// LastRead is when a read on c (a FirstLine connection, or one wrapping
// it) last returned, the accept before any: for a session waiting for a
// command, since when it has been idle. Zero when c is no FirstLine.
func LastRead(c net.Conn) time.Time {
	for i := 0; i < 8 && c != nil; i++ {
		if f, ok := c.(*firstLine); ok {
			return time.Unix(0, f.last.Load())
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = nc.NetConn()
	}
	return time.Time{}
}
