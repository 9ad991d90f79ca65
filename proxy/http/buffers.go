package http

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// A client kept alive between requests, and the server connection it
// keeps, hold no read buffer while they wait: 16 KiB each, touched by the
// request before, were most of what an idle kept-alive client cost (32.8
// KiB measured, docs/benchmarks.md). The buffers go back to a pool when a
// wait begins with nothing buffered, and a waiting client is read into
// the session's 512 bytes until it speaks.

// readerSize is the read buffer of a client or a server connection.
const readerSize = 16 << 10

// readers are the buffers given back, kept for the next to need one. A
// list of its own, not a sync.Pool: a pool empties at each collection,
// and a 16 KiB buffer made again at each request cost a tenth of the
// kept-alive throughput.
var readers struct {
	sync.Mutex
	free []*bufio.Reader
}

// maxFree is the most buffers kept given back (4 MiB).
const maxFree = 256

// newReader is a reader of r, its buffer reused when one was given back.
func newReader(r io.Reader) *bufio.Reader {
	readers.Lock()
	if n := len(readers.free); n > 0 {
		br := readers.free[n-1]
		readers.free = readers.free[:n-1]
		readers.Unlock()
		br.Reset(r)
		return br
	}
	readers.Unlock()
	return bufio.NewReaderSize(r, readerSize)
}

// freeReader gives br back (nil: nothing to give).
func freeReader(br *bufio.Reader) {
	if br == nil {
		return
	}
	br.Reset(nil)
	readers.Lock()
	if len(readers.free) < maxFree {
		readers.free = append(readers.free, br)
	}
	readers.Unlock()
}

// prefixed is a connection whose first bytes were already read, into a
// buffer of 512 bytes: a short request head whole (a longer one, a
// browser's with its cookies, costs one read more).
type prefixed struct {
	b      [512]byte
	off, n int
	conn   net.Conn
}

// lineIn tells whether the bytes awaited hold a whole line.
func (p *prefixed) lineIn() bool { return bytes.IndexByte(p.b[p.off:p.n], '\n') >= 0 }

func (p *prefixed) Read(b []byte) (int, error) {
	if p.off < p.n {
		k := copy(b, p.b[p.off:p.n])
		p.off += k
		return k, nil
	}
	return p.conn.Read(b)
}

// awaitRequest waits, until by, for the client's next request; with
// nothing buffered, it waits holding no buffer, its own or the server
// connection's.
func (s *session) awaitRequest(by time.Time) error {
	if s.br.Buffered() > 0 {
		return nil
	}
	s.c.SetReadDeadline(by)
	freeReader(s.br)
	s.br = nil
	if s.up != nil && s.up.br != nil && s.up.br.Buffered() == 0 {
		freeReader(s.up.br)
		s.up.br = nil
	}
	s.pre.conn = s.c
	n, err := s.c.Read(s.pre.b[:])
	s.pre.off, s.pre.n = 0, n
	s.br = newReader(&s.pre)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// reader is the server connection's read buffer, taken again from the
// pool when it was given back while the connection waited.
func (u *upstream) reader() *bufio.Reader {
	if u.br == nil {
		u.br = newReader(u.c)
	}
	return u.br
}

// idle tells whether the server connection has nothing buffered.
func (u *upstream) idle() bool { return u.br == nil || u.br.Buffered() == 0 }
