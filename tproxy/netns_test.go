package tproxy

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/daemontest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/tlsca"
)

// The test network: a client, a gateway running fsigkd, a server, joined
// by veth pairs; addresses of our own namespaces only.
const (
	clientIP = "10.199.1.2"
	gwIn     = "10.199.1.1"
	gwOut    = "10.199.2.1"
	serverIP = "10.199.2.2"

	clientIP6 = "fd99:1::2"
	gwIn6     = "fd99:1::1"
	gwOut6    = "fd99:2::1"
	serverIP6 = "fd99:2::2"
)

type netnsEnv struct {
	t            *testing.T
	cli, gw, srv string
	dir          string
	fsigkd       string
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (n *netnsEnv) in(ns string, args ...string) string {
	n.t.Helper()
	return run(n.t, append([]string{"ip", "netns", "exec", ns}, args...)...)
}

func needNetns(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "network namespaces")
	testenv.Need(t, "nft", "nftables")
}

func newNetns(t *testing.T) *netnsEnv {
	needNetns(t)
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	n := &netnsEnv{t: t, cli: "fskc" + id, gw: "fskg" + id, srv: "fsks" + id, dir: testenv.ShortDir(t)}
	os.Chmod(n.dir, 0o755)
	for _, ns := range []string{n.cli, n.gw, n.srv} {
		exec.Command("ip", "netns", "del", ns).Run() // left by a run that was killed
		run(t, "ip", "netns", "add", ns)
		ns := ns
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		n.in(ns, "ip", "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", "c"+id, "netns", n.cli, "type", "veth", "peer", "name", "g"+id, "netns", n.gw)
	run(t, "ip", "link", "add", "h"+id, "netns", n.gw, "type", "veth", "peer", "name", "s"+id, "netns", n.srv)
	n.in(n.cli, "ip", "addr", "add", clientIP+"/24", "dev", "c"+id)
	n.in(n.gw, "ip", "addr", "add", gwIn+"/24", "dev", "g"+id)
	n.in(n.gw, "ip", "addr", "add", gwOut+"/24", "dev", "h"+id)
	n.in(n.srv, "ip", "addr", "add", serverIP+"/24", "dev", "s"+id)
	for ns, dev := range map[string]string{n.cli: "c" + id, n.gw: "g" + id, n.srv: "s" + id} {
		n.in(ns, "ip", "link", "set", dev, "up")
	}
	n.in(n.gw, "ip", "link", "set", "h"+id, "up")
	n.in(n.cli, "ip", "route", "add", "default", "via", gwIn)
	n.in(n.srv, "ip", "route", "add", "default", "via", gwOut)
	n.in(n.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	// The same network in IPv6 (nodad: usable at once).
	n.in(n.cli, "ip", "-6", "addr", "add", clientIP6+"/64", "dev", "c"+id, "nodad")
	n.in(n.gw, "ip", "-6", "addr", "add", gwIn6+"/64", "dev", "g"+id, "nodad")
	n.in(n.gw, "ip", "-6", "addr", "add", gwOut6+"/64", "dev", "h"+id, "nodad")
	n.in(n.srv, "ip", "-6", "addr", "add", serverIP6+"/64", "dev", "s"+id, "nodad")
	n.in(n.cli, "ip", "-6", "route", "add", "default", "via", gwIn6)
	n.in(n.srv, "ip", "-6", "route", "add", "default", "via", gwOut6)
	n.in(n.gw, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")

	n.fsigkd = filepath.Join(n.dir, "fsigkd")
	build := exec.Command("go", "build", "-o", n.fsigkd, "./cmd/fsigkd")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return n
}

// firewall installs, in the gateway, the nftables part of what
// `fsigkd rules` prints for cfg.
func (n *netnsEnv) firewall(cfg *conf.Config) {
	n.t.Helper()
	ruleset, err := Rules(cfg, "nft")
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", n.gw, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Fatalf("nft: %v\n%s\n%s", err, out, ruleset)
	}
}

// inNetns runs f on a thread moved into the namespace: sockets made there
// belong to it and keep working from any thread afterwards.
func inNetns(t *testing.T, ns string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // the thread is dropped, not reused, when it exits locked
		target, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			t.Error(err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Error(err)
			return
		}
		f()
	}()
	<-done
}

// origin is an HTTP server in the server's namespace on addr: "/eicar" is
// EICAR, anything else body. peer says who asked last.
func (n *netnsEnv) origin(addr string, body []byte) (peer func() string) {
	n.t.Helper()
	var ln net.Listener
	var err error
	inNetns(n.t, n.srv, func() { ln, err = net.Listen("tcp", addr) })
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var last string
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		last = r.RemoteAddr
		mu.Unlock()
		if r.URL.Path == "/eicar" {
			w.Write([]byte(eicar.String))
			return
		}
		w.Write(body)
	}))
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// settings writes the gateway's fsigk.ini: every service transparent, with
// TPROXY and upstream connections from the client's address.
func (n *netnsEnv) settings(extra string) string {
	ini := fmt.Sprintf(`base_dir = %s/gw
listen_backlog = 64
fsavd_start = yes
[http]
enable = yes
bind_addr = 0.0.0.0
transparent = yes
transparent_tproxy = yes
%s
[smtp]
enable = yes
bind_addr = 0.0.0.0
transparent = yes
transparent_tproxy = yes
[ftp]
enable = yes
bind_addr = 0.0.0.0
transparent = yes
transparent_tproxy = yes
deny_servers =
[pop]
enable = yes
bind_addr = 0.0.0.0
transparent = yes
transparent_tproxy = yes
deny_servers =
`, n.dir, extra)
	p := filepath.Join(n.dir, "fsigk.ini")
	os.WriteFile(p, []byte(ini), 0o644)
	return p
}

// TestTransparentGateway: HTTP, SMTP, FTP and POP3 from the client to the
// server's own address, through fsigkd on the gateway by TPROXY rules:
// EICAR blocked, clean files byte-identical, and the server sees the
// client's own address.
func TestTransparentGateway(t *testing.T) {
	n := newNetns(t)
	confPath := n.settings("")
	cfg, _, err := conf.Load(confPath)
	if err != nil {
		t.Fatal(err)
	}
	n.firewall(cfg)
	n.in(n.gw, "ip", "rule", "add", "fwmark", "0x1", "lookup", "100")
	n.in(n.gw, "ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")

	// The server: HTTP and SMTP in this process, FTP by vsftpd.
	clean := make([]byte, 1<<20+7)
	rand.Read(clean)
	peer := n.origin(serverIP+":80", clean)
	var smtpLn net.Listener
	inNetns(t, n.srv, func() { smtpLn, err = net.Listen("tcp", serverIP+":25") })
	if err != nil {
		t.Fatal(err)
	}
	sink := servertest.NewMailSink(t, smtpLn, nil)

	ftpRoot := filepath.Join(n.dir, "ftproot")
	os.MkdirAll(filepath.Join(n.dir, "empty"), 0o755)
	os.MkdirAll(ftpRoot, 0o755)
	os.WriteFile(filepath.Join(ftpRoot, "clean.bin"), clean, 0o644)
	os.WriteFile(filepath.Join(ftpRoot, "eicar.com"), []byte(eicar.String), 0o644)
	os.WriteFile(filepath.Join(n.dir, "vsftpd.conf"), []byte(servertest.VSFTPDConfig(n.dir, ftpRoot, serverIP, "21")), 0o644)
	vs := exec.Command("ip", "netns", "exec", n.srv, testenv.Need(t, "vsftpd", "vsftpd"), filepath.Join(n.dir, "vsftpd.conf"))
	if err := vs.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { vs.Process.Kill(); vs.Wait() }()
	popAddr := serverIP + ":110"
	pop := servertest.DovecotWith(t, servertest.DovecotOptions{Addr: popAddr, Wrap: []string{"ip", "netns", "exec", n.srv},
		// Asked from a process of its own: a thread moved into the
		// namespace (inNetns) ends, and would take Dovecot with it
		// (its parent-death signal) if it were the one that forked it.
		Ready: func() bool {
			return exec.Command("ip", "netns", "exec", n.srv, "bash", "-c", "echo > /dev/tcp/"+serverIP+"/110").Run() == nil
		}})
	popClean := "From: a@server.test\r\nSubject: hi\r\n\r\nclean mail\r\n"
	pop.Put(t, []byte(popClean))
	pop.Put(t, []byte("From: a@server.test\r\nSubject: hi\r\n\r\n"+eicar.String+"\r\n"))

	// The gateway.
	daemontest.Daemon(t, "ip", "netns", "exec", n.gw, n.fsigkd, "-f", "-c", confPath)

	curl := testenv.Need(t, "curl", "curl")
	// HTTP
	out, err := exec.Command("ip", "netns", "exec", n.cli, curl, "-s", "--max-time", "20", "http://"+serverIP+"/clean").Output()
	httpPeer := peer()
	if err != nil || !bytes.Equal(out, clean) {
		t.Fatalf("HTTP clean: %v, %d bytes", err, len(out))
	}
	code, _ := exec.Command("ip", "netns", "exec", n.cli, curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", "http://"+serverIP+"/eicar").Output()
	if string(code) != "403" {
		t.Fatalf("HTTP EICAR: %s", code)
	}
	// SMTP
	swaks := testenv.Need(t, "swaks", "swaks")
	att := filepath.Join(n.dir, "eicar.com")
	os.WriteFile(att, []byte(eicar.String), 0o644)
	sw, _ := exec.Command("ip", "netns", "exec", n.cli, swaks, "--server", serverIP+":25", "--from", "a@client.test", "--to", "b@server.test", "--attach", "@"+att).CombinedOutput()
	if !strings.Contains(string(sw), "554 5.7.1 Infected by Eicar-Test-Signature") {
		t.Fatalf("SMTP EICAR:\n%s", sw)
	}
	if sw, err := exec.Command("ip", "netns", "exec", n.cli, swaks, "--server", serverIP+":25", "--from", "a@client.test", "--to", "b@server.test", "--body", "clean mail").CombinedOutput(); err != nil {
		t.Fatalf("SMTP clean: %v\n%s", err, sw)
	}
	// FTP
	out, err = exec.Command("ip", "netns", "exec", n.cli, curl, "-s", "--max-time", "20", "ftp://"+serverIP+"/clean.bin").Output()
	if err != nil || !bytes.Equal(out, clean) {
		t.Fatalf("FTP clean: %v, %d bytes", err, len(out))
	}
	if out, err := exec.Command("ip", "netns", "exec", n.cli, curl, "-s", "--max-time", "20", "ftp://"+serverIP+"/eicar.com").Output(); err == nil || bytes.Contains(out, []byte("EICAR")) {
		t.Fatalf("FTP EICAR came through: %q", out)
	}

	// POP3: plain USER, the server's greeting relayed.
	popURL := "pop3://alice:secret@" + serverIP + "/"
	if out, err := exec.Command("ip", "netns", "exec", n.cli, curl, "-s", "--max-time", "20", popURL+"1").Output(); err != nil || string(out) != popClean {
		t.Fatalf("POP3 clean: %v, %q", err, out)
	}
	if out, _ := exec.Command("ip", "netns", "exec", n.cli, curl, "-s", "--max-time", "20", popURL+"2").Output(); !bytes.Contains(out, []byte("[VIRUS REMOVED]")) || bytes.Contains(out, []byte("EICAR-STANDARD")) {
		t.Fatalf("POP3 EICAR: %q", out)
	}
	if log := pop.DovecotLog(); !strings.Contains(log, "rip="+clientIP) {
		t.Errorf("pop: the server did not see the client's %s:\n%s", clientIP, log)
	}

	if host, _, _ := net.SplitHostPort(httpPeer); host != clientIP {
		t.Errorf("http: the server saw %q, not the client's %s", httpPeer, clientIP)
	}
	mails := sink.Mails()
	if len(mails) != 1 || !bytes.Contains(mails[0].Data, []byte("clean mail")) {
		t.Fatalf("the server got %d mails", len(mails))
	}
	if host, _, _ := net.SplitHostPort(mails[0].Peer); host != clientIP {
		t.Errorf("smtp: the server saw %q, not the client's %s", mails[0].Peer, clientIP)
	}
	vlog, _ := os.ReadFile(filepath.Join(n.dir, "vsftpd.log"))
	if !strings.Contains(string(vlog), `CONNECT: Client "`+clientIP+`"`) {
		t.Errorf("ftp: the server did not see the client's %s:\n%s", clientIP, vlog)
	}
}

// TestM15WithoutCapability: with CAP_NET_ADMIN and CAP_NET_RAW dropped,
// transparent_tproxy = yes cannot be had: M15, and those services do not
// start.
func TestM15WithoutCapability(t *testing.T) {
	n := newNetns(t)
	confPath := n.settings("")
	setpriv := testenv.Need(t, "setpriv", "util-linux")
	out, _ := exec.Command("ip", "netns", "exec", n.gw, setpriv, "--bounding-set", "-net_admin,-net_raw", "--inh-caps", "-net_admin,-net_raw",
		n.fsigkd, "-f", "-c", confPath).CombinedOutput()
	m15 := `CRITICAL [http:start] Cannot find tproxy(version2) interface. Tproxy kernel patch is required. Please apply the tproxy patch and check that "/proc/net/tproxy" exists. Please see document for "transparent_tproxy" settings for details.`
	if !strings.Contains(string(out), m15) {
		t.Fatalf("no M15 in:\n%s", out)
	}
	// M15 stays byte for byte; a second line says the real cause.
	if !strings.Contains(string(out), "the real cause: IP_TRANSPARENT needs the CAP_NET_ADMIN capability") {
		t.Errorf("no real cause after M15:\n%s", out)
	}
	if !strings.Contains(string(out), "no service could start") {
		t.Fatalf("a service started without its transparency:\n%s", out)
	}
}

// TestRedirectMode: transparent = yes without transparent_tproxy uses NAT
// REDIRECT; the original destination comes from conntrack
// (SO_ORIGINAL_DST), and the server sees the gateway.
func TestRedirectMode(t *testing.T) {
	n := newNetns(t)
	ini := fmt.Sprintf("base_dir = %s/gw\nfsavd_start = yes\n[http]\nenable = yes\nbind_addr = 0.0.0.0\ntransparent = yes\n", n.dir)
	confPath := filepath.Join(n.dir, "redirect.ini")
	os.WriteFile(confPath, []byte(ini), 0o644)
	cfg, _, err := conf.Load(confPath)
	if err != nil {
		t.Fatal(err)
	}
	n.firewall(cfg)
	peer := n.origin(serverIP+":80", []byte("hello"))
	buf := daemontest.Daemon(t, "ip", "netns", "exec", n.gw, n.fsigkd, "-f", "-c", confPath)
	curl := testenv.Need(t, "curl", "curl")
	out, err := exec.Command("ip", "netns", "exec", n.cli, curl, "-s", "--max-time", "20", "http://"+serverIP+"/").Output()
	if err != nil || string(out) != "hello" {
		t.Fatalf("clean: %v %q\n%s", err, out, buf.String())
	}
	code, _ := exec.Command("ip", "netns", "exec", n.cli, curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", "http://"+serverIP+"/eicar").Output()
	if string(code) != "403" {
		t.Fatalf("EICAR: %s", code)
	}
	if host, _, _ := net.SplitHostPort(peer()); host != gwOut {
		t.Errorf("the server saw %q; with REDIRECT it should see the gateway %s", peer(), gwOut)
	}
}

// TestIPv6 runs HTTP over IPv6 through the gateway, with TPROXY and with
// REDIRECT: the original destination is an IPv6 address either way.
func TestIPv6(t *testing.T) {
	for _, tproxyMode := range []bool{true, false} {
		name := map[bool]string{true: "tproxy", false: "redirect"}[tproxyMode]
		t.Run(name, func(t *testing.T) {
			n := newNetns(t)
			ini := fmt.Sprintf("base_dir = %s/gw\nfsavd_start = yes\n[http]\nenable = yes\nbind_addr = ::\ntransparent = yes\ntransparent_tproxy = %v\n", n.dir, map[bool]string{true: "yes", false: "no"}[tproxyMode])
			confPath := filepath.Join(n.dir, "v6.ini")
			os.WriteFile(confPath, []byte(ini), 0o644)
			cfg, _, err := conf.Load(confPath)
			if err != nil {
				t.Fatal(err)
			}
			n.firewall(cfg)
			if tproxyMode {
				n.in(n.gw, "ip", "-6", "rule", "add", "fwmark", "0x1", "lookup", "100")
				n.in(n.gw, "ip", "-6", "route", "add", "local", "::/0", "dev", "lo", "table", "100")
			}
			peer := n.origin("["+serverIP6+"]:80", []byte("hello6"))
			buf := daemontest.Daemon(t, "ip", "netns", "exec", n.gw, n.fsigkd, "-f", "-c", confPath)
			curl := testenv.Need(t, "curl", "curl")
			out, err := exec.Command("ip", "netns", "exec", n.cli, curl, "-g", "-s", "--max-time", "20", "http://["+serverIP6+"]/").Output()
			if err != nil || string(out) != "hello6" {
				t.Fatalf("clean: %v %q\n%s", err, out, buf.String())
			}
			code, _ := exec.Command("ip", "netns", "exec", n.cli, curl, "-g", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", "http://["+serverIP6+"]/eicar").Output()
			if string(code) != "403" {
				t.Fatalf("EICAR: %s", code)
			}
			host, _, _ := net.SplitHostPort(peer())
			want := gwOut6
			if tproxyMode {
				want = clientIP6
			}
			if host != want {
				t.Errorf("the server saw %q, want %s", peer(), want)
			}
		})
	}
}

// TestTransparentHTTPS: with tls_intercept = yes, fsigkd rules diverts
// port 443 too, and a client going straight to an HTTPS server (no
// proxy set) is intercepted: EICAR gets the block page, a clean page
// arrives; the client trusts the gateway's CA, made at start.
func TestTransparentHTTPS(t *testing.T) {
	n := newNetns(t)
	// The origin's certificate, from a CA of the test's own (its file
	// trusted by the gateway through tls_ca_file).
	rootCert, rootKey := filepath.Join(n.dir, "root.pem"), filepath.Join(n.dir, "root.key")
	if _, err := tlsca.Ensure(rootCert, rootKey, "test root"); err != nil {
		t.Fatal(err)
	}
	root, err := tlsca.Load(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := root.Leaf("origin.test")
	if err != nil {
		t.Fatal(err)
	}
	ini := fmt.Sprintf("base_dir = %s/gw\nfsavd_start = yes\n[http]\nenable = yes\nbind_addr = 0.0.0.0\ntransparent = yes\ntls_intercept = yes\ntls_ca_file = %s\n", n.dir, rootCert)
	confPath := filepath.Join(n.dir, "https.ini")
	os.WriteFile(confPath, []byte(ini), 0o644)
	cfg, _, err := conf.Load(confPath)
	if err != nil {
		t.Fatal(err)
	}
	if rules, _ := Rules(cfg, "nft"); !strings.Contains(rules, "443") {
		t.Fatalf("the rules do not divert 443:\n%s", rules)
	}
	n.firewall(cfg)
	var ln net.Listener
	inNetns(t, n.srv, func() { ln, err = net.Listen("tcp", serverIP+":443") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go http.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*leaf}}), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/eicar" {
			w.Write([]byte(eicar.String))
			return
		}
		w.Write([]byte("a page over HTTPS"))
	}))
	buf := daemontest.Daemon(t, "ip", "netns", "exec", n.gw, n.fsigkd, "-f", "-c", confPath)
	caFile := filepath.Join(n.dir, "gw", tlsca.CertFile)
	curl := testenv.Need(t, "curl", "curl")
	get := func(path string) (string, error) {
		out, err := exec.Command("ip", "netns", "exec", n.cli, curl, "-s", "--max-time", "20", "--cacert", caFile,
			"--resolve", "origin.test:443:"+serverIP, "https://origin.test"+path).Output()
		return string(out), err
	}
	if out, err := get("/page"); err != nil || out != "a page over HTTPS" {
		t.Fatalf("clean: %v %q\n%s", err, out, buf.String())
	}
	if out, _ := get("/eicar"); !strings.Contains(out, "Eicar-Test-Signature") {
		t.Fatalf("EICAR over diverted HTTPS: %.300q", out)
	}
}
