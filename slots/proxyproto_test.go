package slots

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

func v2(fam byte, addrs []byte) []byte {
	b := append([]byte{}, proxyV2Sig...)
	b = append(b, 0x21, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)))
	return append(b, addrs...)
}

// TestProxyHeaders: v1 TCP4, TCP6 and UNKNOWN, v2 over IPv4 and IPv6,
// with a TLV after the addresses, and LOCAL; headers cut short wait for
// the rest; what is no header is refused.
func TestProxyHeaders(t *testing.T) {
	ip4 := []byte{192, 0, 2, 7, 198, 51, 100, 1, 0x30, 0x39, 0x01, 0xbb}
	ip6 := append(append(net.ParseIP("2001:db8::7").To16(), net.ParseIP("2001:db8::1").To16()...), 0x30, 0x39, 0x01, 0xbb)
	local := append(append([]byte{}, proxyV2Sig...), 0x20, 0x00, 0, 0)
	for name, c := range map[string]struct {
		in     string
		remote string
		size   int
	}{
		"v1 TCP4":      {"PROXY TCP4 192.0.2.7 198.51.100.1 12345 443\r\nGET / HTTP/1.1\r\n", "192.0.2.7:12345", 45},
		"v1 TCP6":      {"PROXY TCP6 2001:db8::7 2001:db8::1 12345 443\r\n", "[2001:db8::7]:12345", 46},
		"v1 UNKNOWN":   {"PROXY UNKNOWN\r\n", "", 15},
		"v2 IPv4":      {string(v2(0x11, ip4)), "192.0.2.7:12345", 28},
		"v2 IPv6":      {string(v2(0x21, ip6)), "[2001:db8::7]:12345", 52},
		"v2 IPv4, TLV": {string(v2(0x11, append(bytes.Clone(ip4), 0x04, 0x00, 0x01, 0x55))), "192.0.2.7:12345", 32},
		"v2 LOCAL":     {string(local), "", 16},
	} {
		h, size, complete, err := parseProxyHeader([]byte(c.in))
		got := ""
		if h.remote != nil {
			got = h.remote.String()
		}
		if err != nil || !complete || size != c.size || got != c.remote {
			t.Errorf("%s: %v %v %d %q", name, err, complete, size, got)
		}
		// Cut short: not an error, not complete.
		if _, _, complete, err := parseProxyHeader([]byte(c.in[:c.size-1])); err != nil || complete {
			t.Errorf("%s cut short: %v %v", name, err, complete)
		}
	}
	for name, in := range map[string]string{
		"no header":         "GET / HTTP/1.1\r\n",
		"v1 bad family":     "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"v1 family mixed":   "PROXY TCP4 2001:db8::7 1.2.3.4 1 2\r\n",
		"v1 bad port":       "PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
		"v1 too long":       "PROXY TCP4 " + string(bytes.Repeat([]byte("1"), 120)),
		"v2 bad version":    string(append(append([]byte{}, proxyV2Sig...), 0x31, 0x11, 0, 12)),
		"v2 short address":  string(v2(0x11, []byte{1, 2, 3})),
		"v2 unknown family": string(v2(0x31, make([]byte, 12))),
	} {
		if _, _, _, err := parseProxyHeader([]byte(in)); err == nil {
			t.Errorf("%s: taken", name)
		}
	}
}

// TestProxyHeaderOnASocket: read from a real connection, exactly the
// header is consumed (what follows is the client's), a header sent in
// two pieces is waited for, and a silent balancer is given up.
func TestProxyHeaderOnASocket(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		c, _ := net.Dial("tcp", ln.Addr().String())
		c.Write([]byte("PROXY TCP4 192.0.2.7 198.51.100.1 12345 443\r"))
		time.Sleep(50 * time.Millisecond)
		c.Write([]byte("\nHELLO"))
		time.Sleep(time.Second)
		c.Close()
	}()
	c, _ := ln.Accept()
	pc, err := readProxyHeader(c, 2*time.Second)
	if err != nil || pc.RemoteAddr().String() != "192.0.2.7:12345" {
		t.Fatalf("%v %v", err, pc)
	}
	if a, ok := ProxiedDestination(&Conn{Conn: pc}); !ok || a.String() != "198.51.100.1:443" {
		t.Errorf("destination %v %v", a, ok)
	}
	b := make([]byte, 5)
	if n, _ := pc.Read(b); string(b[:n]) != "HELLO" {
		t.Errorf("after the header: %q", b[:n])
	}
	go func() {
		c, _ := net.Dial("tcp", ln.Addr().String())
		time.Sleep(2 * time.Second)
		c.Close()
	}()
	c2, _ := ln.Accept()
	start := time.Now()
	if _, err := readProxyHeader(c2, 300*time.Millisecond); err == nil || time.Since(start) > time.Second {
		t.Errorf("a silent balancer: %v after %v", err, time.Since(start))
	}
}

func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 198.51.100.1 12345 443\r\n"))
	f.Add(v2(0x11, []byte{192, 0, 2, 7, 198, 51, 100, 1, 0x30, 0x39, 0x01, 0xbb}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, size, complete, err := parseProxyHeader(b); err == nil && complete && (size > len(b) || size <= 0) {
			t.Fatalf("size %d of %d", size, len(b))
		}
	})
}
