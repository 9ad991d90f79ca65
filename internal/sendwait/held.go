package sendwait

import (
	"net"
	"sync"
	"syscall"
)

// maxHeld bounds what a Conn holds: a longer reply is not one a server
// answers a command with, and goes out at once.
const maxHeld = 16 << 10

// Conn is the server's side of a command and reply protocol (SMTP, the
// engine's): what it writes is held until it next reads, and then sent by
// Send, so that the wait for the client's next command is armed before the
// reply leaves and the read that follows finds the command (the read
// that would otherwise find nothing is saved, each reply).
//
// What is held is never lost: a Close sends it first, a write from
// another goroutine while the server waits for the client (a 421 from
// the session's set) goes out at once with what was held before it, and
// a reply longer than 16 KiB is not held. A server that must be heard
// before it next reads does not use a Conn.
type Conn struct {
	net.Conn
	rc syscall.RawConn

	mu      sync.Mutex
	held    []byte
	spare   []byte
	waiting bool  // in Await: a write now goes out at once
	err     error // a held write's failure, for the next read
}

// Hold is c with its replies held until its next read; c unchanged when
// it is not a socket of this process (TLS, a wrapper without one).
func Hold(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &Conn{Conn: c, rc: rc}
}

// Write holds b for the next read, or sends it at once (with what was
// held) while a read waits or when it is long.
func (c *Conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	if !c.waiting && len(c.held)+len(b) <= maxHeld {
		c.held = append(c.held, b...)
		c.mu.Unlock()
		return len(b), nil
	}
	c.mu.Unlock()
	if err := c.Flush(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// take is what is held, now the caller's to send; c.mu held.
func (c *Conn) take() []byte {
	h := c.held
	c.held, c.spare = c.spare[:0], nil
	return h
}

// give takes back a buffer take gave, once sent.
func (c *Conn) give(b []byte) {
	c.mu.Lock()
	if c.spare == nil {
		c.spare = b[:0]
	}
	c.mu.Unlock()
}

// Await sends what is held and returns once c has something to read (or
// its read deadline passes): the next read of c's socket finds it. A
// reader of the socket itself (recvmsg, for descriptors) calls it first.
func (c *Conn) Await() error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	held := c.take()
	c.waiting = true
	c.mu.Unlock()
	var err error
	if len(held) > 0 {
		err = send(c.Conn, c.rc, held)
		c.give(held)
	}
	c.mu.Lock()
	c.waiting = false
	if err != nil {
		c.err = err
	}
	c.mu.Unlock()
	return err
}

// Read sends what is held, then reads.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.Await(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Flush sends what is held, now.
func (c *Conn) Flush() error {
	c.mu.Lock()
	held := c.take()
	c.mu.Unlock()
	if len(held) == 0 {
		return nil
	}
	err := write(c.Conn, held)
	c.give(held)
	return err
}

// Close sends what is held (a last reply: QUIT's, a 421), then closes.
func (c *Conn) Close() error {
	c.Flush()
	return c.Conn.Close()
}

// NetConn is the connection under c.
func (c *Conn) NetConn() net.Conn { return c.Conn }
