// Package sendwait sends a request on a connection and waits for the
// answer's first bytes without first reading for them.
//
// Go's network poller reads before it waits: a Read just after a Write
// finds nothing (the peer has not answered yet), fails with EAGAIN, and
// only then waits for the socket to be readable. On a request and answer
// protocol that read is a wasted system call each exchange (on a 1 KiB
// object through the HTTP proxy, two of the worker's eleven, and one of
// the engine's). Waiting without it is only safe if the wait began
// before the request left: the poller is edge-triggered and forgets a
// readiness it was told of before the wait, so an answer that came
// between the write and the wait would be waited for until the deadline.
// Send therefore writes from inside the read side's raw callback, after
// the poller was armed, and returns once the answer has begun to arrive.
//
// A server's side is the same exchange turned round: its reply is
// followed by a read of the client's next command. Conn (Hold) holds
// what the server writes until that read, and sends it with Send.
package sendwait

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Send writes b to c and returns once c has something to read (an
// answer, its end, an error), or when c's read deadline passes. The
// caller then reads the answer as usual: its first read finds it.
//
// A connection that is not a socket of this process (TLS, a wrapper)
// and a write the socket does not take whole at once are written the
// usual way, without the wait.
func Send(c net.Conn, b []byte) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return write(c, b)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return write(c, b)
	}
	return send(c, rc, b)
}

// Ask is Send for a connection whose answers are read through br: when
// bytes of an earlier answer still wait in br, the new answer may be
// there too, and b is written the usual way (a wait on the socket would
// wait for what is already read). br may be nil.
func Ask(c net.Conn, br *bufio.Reader, b []byte) error {
	if br != nil && br.Buffered() > 0 {
		return write(c, b)
	}
	return Send(c, b)
}

// send is Send on c's socket rc.
func send(c net.Conn, rc syscall.RawConn, b []byte) error {
	var (
		sent bool
		rest = b
		werr error
	)
	err := rc.Read(func(fd uintptr) bool {
		if sent {
			return true // readable: the answer has begun
		}
		sent = true
		n, err := unix.Write(int(fd), b)
		switch {
		case err == nil:
			rest = b[n:]
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			// Nothing taken: written the usual way below.
		default:
			werr = err
			return true
		}
		return len(rest) > 0 // a short write is finished below, unwaited
	})
	if werr != nil {
		return &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: werr}
	}
	if err != nil && !sent {
		return err
	}
	if len(rest) > 0 {
		return write(c, rest)
	}
	// A failed wait (the read deadline, a close) is the answer's read's
	// to report: it fails the same way.
	return nil
}

func write(c net.Conn, b []byte) error {
	n, err := c.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}
