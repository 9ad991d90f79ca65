package tproxy

import (
	"net"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/conf"
)

func TestIsLoop(t *testing.T) {
	l := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9080}
	if !IsLoop(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9080}, l) {
		t.Error("the proxy's own address not seen as a loop")
	}
	if IsLoop(&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 80}, l) {
		t.Error("a real destination seen as a loop")
	}
	any := &net.TCPAddr{IP: net.IPv4zero, Port: 9080}
	if !IsLoop(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 9080}, any) {
		t.Error("a local address on a wildcard listener not seen as a loop")
	}
}

// TestOriginalDstOfAPlainConnection: not diverted, the destination is the
// connection's own local address.
func TestOriginalDstOfAPlainConnection(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		c, _ := net.Dial("tcp", ln.Addr().String())
		if c != nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := OriginalDst(c)
	if err != nil || a.String() != ln.Addr().String() {
		t.Fatalf("%v %v", a, err)
	}
	if !IsLoop(a, ln.Addr()) {
		t.Error("a connection straight to the listener not seen as a loop")
	}
}

func TestRules(t *testing.T) {
	cfg, _, err := conf.Parse("x.ini", []byte("[http]\nenable = yes\ntransparent = yes\ntransparent_tproxy = yes\n[ftp]\nenable = yes\ntransparent = yes\nintercept_ports = 21, 2121\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := Rules(cfg)
	for _, want := range []string{
		"tcp dport { 80 } tproxy ip to :9080 meta mark set 0x1 accept",
		"tcp dport { 21, 2121 } redirect to :9021",
		"iptables -t mangle -A PREROUTING -p tcp --dport 80 -j TPROXY --tproxy-mark 0x1/0x1 --on-port 9080",
		"ip route add local 0.0.0.0/0 dev lo table 100",
		"meta mark 0x2 accept",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("no %q in:\n%s", want, r)
		}
	}
}
