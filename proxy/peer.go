package proxy

import (
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsigkd/fsigkd/slots"
)

// peek looks at whether the other end of c has sent anything (slots.Peek).
func peek(c net.Conn) (int, error) {
	var b [1]byte
	return slots.Peek(c, b[:])
}

// Idle tells whether c is open and silent: a kept connection to a
// server that closed it meanwhile shows as readable (EOF), and one that
// sent something unasked is not to be trusted with the next request.
func Idle(c net.Conn) bool {
	_, err := peek(c)
	return err == unix.EAGAIN
}

// PeerClosed tells whether the other end of c has closed or reset it,
// leaving what it may have sent unread: a client gone while its object
// is fetched, whose fetch is then given up.
func PeerClosed(c net.Conn) bool {
	n, err := peek(c)
	return n == 0 && err == nil || err != nil && err != unix.EAGAIN && err != unix.EINTR && err != unix.ENOTSOCK
}

// GoneCheck is how often a transfer under way (a POP3 fetch, an FTP
// download) looks whether its client is still there (PeerClosed): a
// client gone ends the transfer, its slot and its spool file within
// about this long, not when the server has sent everything.
const GoneCheck = time.Second
