package slots

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Peek copies into b what the other end of c has sent, without reading
// it and without waiting: n > 0, data waits; n == 0 with no error, the
// other end closed; unix.EAGAIN, it is open and silent; unix.ENOTSOCK,
// c is no socket. A *Conn is looked through to its socket.
//
// Control, not Read: the connection's own goroutine may be in a Read of
// it, holding its read lock until its timeout, and a peek must not wait
// for that.
func Peek(c net.Conn, b []byte) (n int, err error) {
	if sc, ok := c.(*Conn); ok {
		c = sc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, unix.ENOTSOCK
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	if cerr := rc.Control(func(fd uintptr) {
		n, _, err = unix.Recvfrom(int(fd), b, unix.MSG_PEEK|unix.MSG_DONTWAIT)
	}); cerr != nil {
		return 0, cerr
	}
	if err != nil {
		n = 0
	}
	return n, err
}
