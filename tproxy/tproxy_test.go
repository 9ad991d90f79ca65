package tproxy

import (
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
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
	for format, wants := range map[string][]string{
		"nft":      {"tcp dport { 80 } tproxy ip to :9080 meta mark set 0x1 accept", "tcp dport { 21, 2121 } redirect to :9021", "meta mark 0x2 accept", "# ip route add local 0.0.0.0/0 dev lo table 100"},
		"iptables": {"*mangle\n", "-A PREROUTING -p tcp --dport 80 -j TPROXY --tproxy-mark 0x1/0x1 --on-port 9080", "*nat\n", "-A PREROUTING -p tcp --dport 2121 -m mark ! --mark 0x2 -j REDIRECT --to-ports 9021", "COMMIT\n"},
		"shell":    {"#!/bin/sh\n", "nft -f - <<'EOF'\n", "\nip route add local 0.0.0.0/0 dev lo table 100\n"},
	} {
		r, err := Rules(cfg, format)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range wants {
			if !strings.Contains(r, want) {
				t.Errorf("%s: no %q in:\n%s", format, want, r)
			}
		}
	}
	if _, err := Rules(cfg, "pf"); err == nil {
		t.Error("an unknown format was taken")
	}
}

// TestRulesFeedTheirTools: each format is taken whole by its tool: nft -c
// checks the ruleset (root: it needs netlink), sh -n the script.
func TestRulesFeedTheirTools(t *testing.T) {
	cfg, _, _ := conf.Parse("x.ini", []byte("[http]\nenable = yes\ntransparent = yes\ntransparent_tproxy = yes\n[ftp]\nenable = yes\ntransparent = yes\n"), nil)
	nft := testenv.Need(t, "nft", "nftables")
	testenv.NeedRoot(t, "nft -c talks to the kernel")
	r, _ := Rules(cfg, "nft")
	cmd := exec.Command(nft, "-c", "-f", "-")
	cmd.Stdin = strings.NewReader(r)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("nft -c: %v\n%s\n%s", err, out, r)
	}
	sh, _ := Rules(cfg, "shell")
	cmd = exec.Command("sh", "-n")
	cmd.Stdin = strings.NewReader(sh)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
}

// TestRulesDivertImplicitTLS: a transparent service with tls_port has its
// protocol's implicit-TLS port (465, 995, 990) diverted there, beside
// its plain ports; one without tls_port has none.
func TestRulesDivertImplicitTLS(t *testing.T) {
	cert, key := servertest.WriteKeyPair(t, servertest.SelfSigned(t), t.TempDir())
	keys := "tls_cert = " + cert + "\ntls_key = " + key + "\n"
	cfg, _, err := conf.Parse("x.ini", []byte("[smtp]\nenable = yes\ntransparent = yes\ntls_port = 9465\n"+keys+
		"[pop]\nenable = yes\ntransparent = yes\ntls_port = 9995\n"+keys+"[ftp]\nenable = yes\ntransparent = yes\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Rules(cfg, "nft")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tcp dport { 465 } redirect to :9465", "tcp dport { 995 } redirect to :9995", "tcp dport { 25 } redirect to :9025", "tcp dport { 21 } redirect to :9021"} {
		if !strings.Contains(r, want) {
			t.Errorf("no %q in:\n%s", want, r)
		}
	}
	if strings.Contains(r, "990") {
		t.Errorf("990 diverted without [ftp] tls_port:\n%s", r)
	}
}
