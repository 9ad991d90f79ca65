// Package tproxy is what transparent interception needs from the kernel,
// behind one small API, so that the proxies never touch socket options:
//
//   - the original destination of an intercepted connection: with REDIRECT
//     (or DNAT) from conntrack through SO_ORIGINAL_DST (IP6T_SO_ORIGINAL_DST
//     for IPv6); with TPROXY it is the accepted socket's own local address;
//   - transparent sockets (IP_TRANSPARENT, IPV6_TRANSPARENT): a listener
//     that TPROXY can hand connections for other hosts' addresses to, and
//     upstream connections that leave from the client's own address
//     (transparent_tproxy = yes), so that servers and their logs see the
//     real client;
//   - SetTransparent, which fails when the running kernel does not let this
//     process do that (CAP_NET_ADMIN or CAP_NET_RAW, and TPROXY support):
//     the master then logs M15 and the service does not start.
//
// The gateway's own upstream connections carry the mark OwnMark, which the
// rules `fsigkd rules` prints leave alone, so that they are never diverted
// back to the gateway (a loop); IsLoop catches one that gets through.
//
// transparent_tproxy_version: the old out-of-tree "tproxy version 2"
// patch (its own iptables table, IP_TPROXY, /proc/net/tproxy) was replaced
// in mainline Linux 2.6.28 by IP_TRANSPARENT and the TPROXY target; on a
// current kernel versions 1 and 2 both mean that mainline interface.
package tproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OwnMark is the firewall mark on the gateway's own upstream connections.
const OwnMark = 0x2

// soOriginalDst is SO_ORIGINAL_DST and IP6T_SO_ORIGINAL_DST.
const soOriginalDst = 80

// netConner is a connection wrapped around another (slots.Conn).
type netConner interface{ NetConn() net.Conn }

func rawTCP(c net.Conn) (*net.TCPConn, bool) {
	for {
		if tc, ok := c.(*net.TCPConn); ok {
			return tc, true
		}
		nc, ok := c.(netConner)
		if !ok {
			return nil, false
		}
		c = nc.NetConn()
	}
}

// OriginalDst is where an intercepted client was going.
func OriginalDst(c net.Conn) (net.Addr, error) {
	tc, ok := rawTCP(c)
	if !ok {
		return nil, errors.New("tproxy: not a TCP connection")
	}
	local := tc.LocalAddr().(*net.TCPAddr)
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var dst *net.TCPAddr
	var serr error
	rc.Control(func(fd uintptr) {
		if local.IP.To4() != nil {
			var sa [16]byte
			l := uint32(len(sa))
			_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_IP, soOriginalDst, uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&l)), 0)
			if e != 0 {
				serr = e
				return
			}
			dst = &net.TCPAddr{IP: net.IPv4(sa[4], sa[5], sa[6], sa[7]), Port: int(binary.BigEndian.Uint16(sa[2:4]))}
			return
		}
		var sa [28]byte
		l := uint32(len(sa))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_IPV6, soOriginalDst, uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&l)), 0)
		if e != 0 {
			serr = e
			return
		}
		ip := make(net.IP, 16)
		copy(ip, sa[8:24])
		dst = &net.TCPAddr{IP: ip, Port: int(binary.BigEndian.Uint16(sa[2:4]))}
	})
	if serr != nil {
		// No conntrack entry for a NAT: a TPROXY connection (or none
		// diverted at all), whose local address is the destination.
		return local, nil
	}
	return dst, nil
}

// IsLoop tells an "original destination" that is the proxy's own listener:
// the connection was not diverted, or the gateway's own traffic came back.
func IsLoop(orig net.Addr, listener net.Addr) bool {
	o, ok1 := orig.(*net.TCPAddr)
	l, ok2 := listener.(*net.TCPAddr)
	if !ok1 || !ok2 || o.Port != l.Port {
		return false
	}
	return o.IP.Equal(l.IP) || l.IP.IsUnspecified() && isLocal(o.IP)
}

func isLocal(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return ip.IsLoopback()
}

// SetTransparent sets IP_TRANSPARENT (or IPV6_TRANSPARENT) on fd.
func SetTransparent(fd int, ipv6 bool) error {
	if ipv6 {
		return unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_TRANSPARENT, 1)
	}
	return unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_TRANSPARENT, 1)
}

func control(transparent bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) {
			ipv6 := network == "tcp6"
			if transparent {
				if err = SetTransparent(int(fd), ipv6); err != nil {
					return
				}
			}
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, OwnMark)
		})
		return err
	}
}

// DialFrom connects to addr from the client's own address (port chosen by
// the kernel), as transparent_tproxy = yes wants.
func DialFrom(ctx context.Context, client net.IP, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 30 * time.Second, LocalAddr: &net.TCPAddr{IP: client}, Control: control(true)}
	return d.DialContext(ctx, network, addr)
}

// Dial connects to addr marked as the gateway's own traffic (OwnMark),
// which the rules never divert. Setting the mark needs CAP_NET_ADMIN:
// without it, found out once, connections go unmarked.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	if canMark() {
		d.Control = control(false)
	}
	return d.DialContext(ctx, network, addr)
}

var canMark = sync.OnceValue(func() bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, OwnMark) == nil
})

// Listen listens on addr with a transparent socket, so that TPROXY can hand
// it connections for other hosts' addresses (an FTP passive port on the
// server's address, for one).
func Listen(network, addr string) (*net.TCPListener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = SetTransparent(int(fd), network == "tcp6") })
		return err
	}}
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// DialFunc connects to a server on behalf of a client.
type DialFunc func(ctx context.Context, client net.IP, network, addr string) (net.Conn, error)

// Dialer is how a service connects upstream: plainly; marked as the
// gateway's own traffic when it intercepts (transparent); from the
// client's own address with fromClient (transparent_tproxy).
func Dialer(transparent, fromClient bool) DialFunc {
	switch {
	case fromClient:
		return DialFrom
	case transparent:
		return func(ctx context.Context, _ net.IP, network, addr string) (net.Conn, error) {
			return Dial(ctx, network, addr)
		}
	}
	d := &net.Dialer{Timeout: 30 * time.Second}
	return func(ctx context.Context, _ net.IP, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
}

// Plain adapts an ordinary dial function (tests' resolvers, say).
func Plain(dial func(ctx context.Context, network, addr string) (net.Conn, error)) DialFunc {
	return func(ctx context.Context, _ net.IP, network, addr string) (net.Conn, error) {
		return dial(ctx, network, addr)
	}
}
