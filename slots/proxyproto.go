package slots

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The PROXY protocol (HAProxy's, versions 1 and 2): a balancer in front of
// the gateway sends, before anything else on a connection, where the
// client came from and where it was going. A connection from a balancer
// (proxy_protocol_from) must begin with such a header; its addresses then
// stand for the connection's everywhere (allow_clients, the skip lists,
// the logs, the original destination in transparent mode). A connection
// from anyone else is taken as it is: a header there is no command any
// service knows, and is refused as one.

// errProxyHeader is a connection from a balancer without a valid header.
var errProxyHeader = errors.New("no valid PROXY protocol header")

var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// maxProxyHeader is the longest header read: v1's 107 bytes, or v2's 16
// and its addresses (TLVs past them are read and passed over, up to this).
const maxProxyHeader = 16 + 4096

// proxied is a connection whose addresses a PROXY header gave.
type proxied struct {
	net.Conn
	remote, local net.Addr
}

func (p *proxied) RemoteAddr() net.Addr { return p.remote }
func (p *proxied) LocalAddr() net.Addr  { return p.local }

// NetConn is the socket under it (peeks, transparent sockets).
func (p *proxied) NetConn() net.Conn { return p.Conn }

// ReadFrom and WriteTo keep the socket's sendfile and splice.
func (p *proxied) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := p.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{p.Conn}, r)
}

func (p *proxied) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := p.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{p.Conn})
}

// SyscallConn is the socket's, so that a peek at what the client sent
// sees past the header, which is read.
func (p *proxied) SyscallConn() (syscall.RawConn, error) {
	sc, ok := p.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a socket")
	}
	return sc.SyscallConn()
}

// ProxiedDestination is where a client that came through a balancer was
// going, as the PROXY header said (ok false: c came straight).
func ProxiedDestination(c net.Conn) (*net.TCPAddr, bool) {
	for i := 0; i < 8 && c != nil; i++ {
		if p, ok := c.(*proxied); ok {
			a, ok := p.local.(*net.TCPAddr)
			return a, ok
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil, false
		}
		c = nc.NetConn()
	}
	return nil, false
}

// readProxyHeader reads the PROXY header c must begin with, within
// timeout: exactly the header's bytes (peeked first, then read), so that
// what follows is the client's. A v1 "UNKNOWN" or a v2 LOCAL command (a
// balancer's own health check) keeps the connection's own addresses.
func readProxyHeader(c net.Conn, timeout time.Duration) (net.Conn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, errProxyHeader
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	c.SetReadDeadline(deadline)
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, maxProxyHeader)
	for {
		var n int
		var perr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, perr = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK)
			return perr != unix.EAGAIN
		})
		if err == nil {
			err = perr
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, errProxyHeader // closed before a header
		}
		h, size, complete, err := parseProxyHeader(buf[:n])
		if err != nil {
			return nil, err
		}
		if complete {
			if _, err := readFull(c, size); err != nil {
				return nil, err
			}
			if h.remote == nil {
				return c, nil
			}
			return &proxied{Conn: c, remote: h.remote, local: h.local}, nil
		}
		if time.Now().After(deadline) {
			return nil, errProxyHeader
		}
		time.Sleep(5 * time.Millisecond) // the rest of the header is on its way
	}
}

func readFull(c net.Conn, n int) ([]byte, error) {
	b := make([]byte, n)
	for got := 0; got < n; {
		m, err := c.Read(b[got:])
		if err != nil {
			return nil, err
		}
		got += m
	}
	return b, nil
}

type proxyHeader struct{ remote, local net.Addr }

// parseProxyHeader reads a header at the start of b: its addresses (nil
// when it keeps the connection's), its length, whether b holds it whole;
// an error when b cannot begin one.
func parseProxyHeader(b []byte) (proxyHeader, int, bool, error) {
	switch {
	case len(b) >= len(proxyV2Sig) && bytes.HasPrefix(b, proxyV2Sig):
		return parseProxyV2(b)
	case bytes.HasPrefix(proxyV2Sig, b) && len(b) < len(proxyV2Sig):
		return proxyHeader{}, 0, false, nil
	case bytes.HasPrefix(b, []byte("PROXY ")) || bytes.HasPrefix([]byte("PROXY "), b):
		return parseProxyV1(b)
	}
	return proxyHeader{}, 0, false, errProxyHeader
}

// parseProxyV1: "PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n", 107
// bytes at most.
func parseProxyV1(b []byte) (proxyHeader, int, bool, error) {
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 {
		if len(b) >= 107 {
			return proxyHeader{}, 0, false, errProxyHeader
		}
		return proxyHeader{}, 0, false, nil
	}
	if end+2 > 107 {
		return proxyHeader{}, 0, false, errProxyHeader
	}
	f := strings.Split(string(b[:end]), " ")
	if len(f) >= 2 && f[1] == "UNKNOWN" {
		return proxyHeader{}, end + 2, true, nil
	}
	if len(f) != 6 || f[1] != "TCP4" && f[1] != "TCP6" {
		return proxyHeader{}, 0, false, errProxyHeader
	}
	src, dst := net.ParseIP(f[2]), net.ParseIP(f[3])
	sp, err1 := strconv.ParseUint(f[4], 10, 16)
	dp, err2 := strconv.ParseUint(f[5], 10, 16)
	if src == nil || dst == nil || err1 != nil || err2 != nil || (src.To4() != nil) != (f[1] == "TCP4") {
		return proxyHeader{}, 0, false, errProxyHeader
	}
	return proxyHeader{remote: &net.TCPAddr{IP: src, Port: int(sp)}, local: &net.TCPAddr{IP: dst, Port: int(dp)}}, end + 2, true, nil
}

// parseProxyV2: the signature, version and command, family, the length
// of what follows, the addresses (and TLVs, passed over).
func parseProxyV2(b []byte) (proxyHeader, int, bool, error) {
	if len(b) < 16 {
		return proxyHeader{}, 0, false, nil
	}
	ver, cmd, fam := b[12]>>4, b[12]&0xf, b[13]
	n := int(binary.BigEndian.Uint16(b[14:16]))
	if ver != 2 || cmd > 1 || 16+n > maxProxyHeader {
		return proxyHeader{}, 0, false, errProxyHeader
	}
	if len(b) < 16+n {
		return proxyHeader{}, 0, false, nil
	}
	if cmd == 0 { // LOCAL: the balancer's own connection
		return proxyHeader{}, 16 + n, true, nil
	}
	a := b[16 : 16+n]
	switch fam {
	case 0x11: // TCP over IPv4
		if n < 12 {
			return proxyHeader{}, 0, false, errProxyHeader
		}
		return proxyHeader{
			remote: &net.TCPAddr{IP: net.IP(bytes.Clone(a[0:4])), Port: int(binary.BigEndian.Uint16(a[8:]))},
			local:  &net.TCPAddr{IP: net.IP(bytes.Clone(a[4:8])), Port: int(binary.BigEndian.Uint16(a[10:]))},
		}, 16 + n, true, nil
	case 0x21: // TCP over IPv6
		if n < 36 {
			return proxyHeader{}, 0, false, errProxyHeader
		}
		return proxyHeader{
			remote: &net.TCPAddr{IP: net.IP(bytes.Clone(a[0:16])), Port: int(binary.BigEndian.Uint16(a[32:]))},
			local:  &net.TCPAddr{IP: net.IP(bytes.Clone(a[16:32])), Port: int(binary.BigEndian.Uint16(a[34:]))},
		}, 16 + n, true, nil
	case 0x00: // UNSPEC: the connection's own addresses
		return proxyHeader{}, 16 + n, true, nil
	}
	return proxyHeader{}, 0, false, errProxyHeader
}
