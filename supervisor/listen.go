package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/fsigkd/fsigkd/tproxy"
)

// errTransparent is a listener that could not be made transparent.
var errTransparent = errors.New("IP_TRANSPARENT refused")

// listenTCP binds addr:port with the given backlog (listen_backlog: 5 by
// default, as documented: when all slots are busy about this many more
// clients complete the handshake and wait; the rest wait in SYN_RECV).
// Errors keep their errno (for M01 and M13).
// With transparent, the socket is made transparent (IP_TRANSPARENT) so that
// TPROXY can hand it connections for other hosts' addresses; a kernel that
// refuses is an error only when required.
func listenTCP(addr string, port, backlog int, transparent, required bool) (*os.File, error) {
	ip := net.ParseIP(addr)
	family := unix.AF_INET6
	var sa unix.Sockaddr
	if ip4 := ip.To4(); ip4 != nil {
		family = unix.AF_INET
		s := &unix.SockaddrInet4{Port: port}
		copy(s.Addr[:], ip4)
		sa = s
	} else {
		s := &unix.SockaddrInet6{Port: port}
		copy(s.Addr[:], ip.To16())
		sa = s
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	if transparent {
		if err := tproxy.SetTransparent(fd, family == unix.AF_INET6); err != nil && required {
			unix.Close(fd)
			return nil, fmt.Errorf("%w: %w", errTransparent, err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("listen", err)
	}
	return os.NewFile(uintptr(fd), "listen "+net.JoinHostPort(addr, strconv.Itoa(port))), nil
}
