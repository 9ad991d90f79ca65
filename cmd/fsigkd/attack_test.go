package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/daemontest"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// binary builds fsigkd once for the tests of this package.
func binary(t *testing.T) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fsigkd-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "fsigkd")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// gateway runs the real daemon with the three proxies on free loopback
// ports, pre_spawn slots each, and extra keys in every section; it
// returns the ports, and an origin server and a mail sink behind it.
type gw struct {
	out    *daemontest.Output
	dir    string
	conf   string
	ports  map[string]int
	origin string
	hop    *servertest.MailSink
	ftp    *servertest.FTPServer
}

func gateway(t *testing.T, preSpawn int, keys map[string]string, wrap ...string) *gw {
	bin := binary(t)
	dir := testenv.ShortDir(t)
	g := &gw{ports: map[string]int{"http": testenv.FreePort(t), "smtp": testenv.FreePort(t), "ftp": testenv.FreePort(t)}}
	origin, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { origin.Close() })
	go http.Serve(origin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(make([]byte, 2<<20))
			return
		}
		if r.URL.Path == "/followed-broken" { // 12 MiB of 20, then the server goes
			w.Header().Set("Content-Length", strconv.Itoa(20<<20))
			w.Write(bytes.Repeat([]byte("broken off "), 12<<20/11))
			w.(http.Flusher).Flush()
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		if strings.HasPrefix(r.URL.Path, "/followed/") {
			body, coding := followedObject(strings.TrimPrefix(r.URL.Path, "/followed/"))
			if coding != "" {
				w.Header().Set("Content-Encoding", coding)
			}
			w.Write(body)
			return
		}
		if r.URL.Path == "/large" || r.URL.Path == "/large-marked" {
			w.Write(largeObject(r.URL.Path == "/large-marked"))
			return
		}
		if r.URL.Path == "/marked" { // the test signature enginetest.NDB names
			io.WriteString(w, "text "+enginetest.TestString+" text")
			return
		}
		if r.URL.Path == "/marked-spooled" { // the same, too large to be held in memory (spool.InlineSize)
			io.WriteString(w, "text "+enginetest.TestString+" text"+strings.Repeat(" padding", 8<<10))
			return
		}
		if r.URL.Path == "/stall" {
			w.Header().Set("Content-Length", "4194304")
			w.Write(make([]byte, 1<<20))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
			return
		}
		io.WriteString(w, "hello")
	}))
	g.origin = origin.Addr().String()
	g.hop = servertest.NewMailSink(t, nil, nil)
	g.ftp = servertest.VSFTPD(t)
	os.WriteFile(filepath.Join(g.ftp.Root, "f.txt"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(g.ftp.Root, "big.bin"), make([]byte, 2<<20), 0o644)
	_, hopPort, _ := net.SplitHostPort(g.hop.Addr)
	g.dir = dir
	for k, v := range keys { // {smtp_port} names the gateway's own SMTP port
		keys[k] = strings.ReplaceAll(v, "{smtp_port}", fmt.Sprint(g.ports["smtp"]))
	}
	if keys == nil {
		keys = map[string]string{}
	}
	if !strings.Contains(keys["global"], "console_port") {
		// Tests run side by side: the console (one fixed port) only
		// where a test asks for it, on a port of its own.
		keys["global"] += "\nconsole = no"
	}
	ini := fmt.Sprintf("base_dir = %s/state\n"+keys["global"]+"\n[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\npre_spawn = %d\ndeny_servers =\n%s\n"+
		"[smtp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\npre_spawn = %d\nparent_server_host = 127.0.0.1\nparent_server_port = %s\n%s\n"+
		"[ftp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\npre_spawn = %d\ndeny_servers =\n%s\n",
		dir, g.ports["http"], preSpawn, keys["http"], g.ports["smtp"], preSpawn, hopPort, keys["smtp"], g.ports["ftp"], preSpawn, keys["ftp"])
	g.conf = filepath.Join(dir, "fsigk.ini")
	os.WriteFile(g.conf, []byte(ini), 0o644)
	g.out = daemontest.Daemon(t, append(wrap, bin, "-f", "-c", g.conf)...)
	return g
}

func (g *gw) addr(service string) string { return fmt.Sprintf("127.0.0.1:%d", g.ports[service]) }

// served tells whether a legitimate client of service is served within
// d: an HTTP GET answered, a mail accepted, an FTP login and download.
func (g *gw) served(t *testing.T, service string, d time.Duration) error {
	deadline := time.Now().Add(d)
	c, err := net.DialTimeout("tcp", g.addr(service), d)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	br := bufio.NewReader(c)
	expect := func(prefix string) error {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return fmt.Errorf("%s: waiting for %q: %v", service, prefix, err)
			}
			if len(l) >= 4 && l[3] == '-' {
				continue
			}
			if !strings.HasPrefix(l, prefix) {
				return fmt.Errorf("%s: %q, want %q", service, l, prefix)
			}
			return nil
		}
	}
	switch service {
	case "http":
		fmt.Fprintf(c, "GET http://%s/ HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", g.origin, g.origin)
		return expect("HTTP/1.1 200")
	case "smtp":
		for _, step := range [][2]string{{"", "220"}, {"EHLO c", "250"}, {"MAIL FROM:<a@example.com>", "250"}, {"RCPT TO:<b@example.com>", "250"}, {"DATA", "354"}, {"Subject: x\r\n\r\nhi\r\n.", "250"}} {
			if step[0] != "" {
				fmt.Fprintf(c, "%s\r\n", step[0])
			}
			if err := expect(step[1]); err != nil {
				return err
			}
		}
	case "ftp":
		// vsftpd lets anonymous in at USER (230).
		for _, step := range [][2]string{{"", "220"}, {"USER anonymous@" + g.ftp.Addr, "230"}, {"NOOP", "200"}} {
			if step[0] != "" {
				fmt.Fprintf(c, "%s\r\n", step[0])
			}
			if err := expect(step[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// hold opens n connections to addr at once (from the address from, ""
// for any), each in a goroutine of its own (a full backlog makes a
// connect wait), that do what act does with them; all are closed when the
// test ends.
func hold(t *testing.T, addr, from string, n int, act func(c net.Conn)) {
	var d net.Dialer
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := false
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		done = true
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < n; i++ {
		go func() {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return
			}
			mu.Lock()
			if done {
				mu.Unlock()
				c.Close()
				return
			}
			conns = append(conns, c)
			mu.Unlock()
			if act != nil {
				act(c)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // the first ones are in
}

// TestSilentClientsDoNotHoldSlots: twice as many silent connections as
// slots, on every service, with the shipped header_timeout (30 s): a
// legitimate client is served at once, the oldest silent connection giving
// its slot.
func TestSilentClientsDoNotHoldSlots(t *testing.T) {
	g := gateway(t, 4, nil)
	for _, s := range []string{"http", "smtp", "ftp"} {
		hold(t, g.addr(s), "", 8, nil)
	}
	time.Sleep(300 * time.Millisecond)
	for _, s := range []string{"http", "smtp", "ftp"} {
		start := time.Now()
		err := g.served(t, s, 5*time.Second)
		t.Logf("%s served after %v", s, time.Since(start))
		if err != nil {
			t.Errorf("%s: a client behind 8 silent ones: %v", s, err)
		}
	}
}

// TestFloodOfSilentConnectionsGivesWay: 10,000 connections that say
// nothing, against the shipped 64 slots. The backlog was cut to 5 at the
// limit and one connection given way every 200 ms, so a new client's
// handshake was dropped again and again: it waited 4 to 20 s. Now the
// backlog stays whole while slots can be had, and a waiting client is
// given one at once: every client is served within a few handshake
// retransmissions at most (measured: 200 ms at worst).
func TestFloodOfSilentConnectionsGivesWay(t *testing.T) {
	n := 10000
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < uint64(n)+1000 {
		n = int(lim.Cur) - 1000
		t.Logf("descriptors limited to %d: %d connections", lim.Cur, n)
	}
	g := gateway(t, 64, nil)
	hold(t, g.addr("http"), "", n, nil)
	// The flood's first burst of handshakes in (it goes on retrying
	// those the kernel dropped for a minute and more).
	time.Sleep(time.Second)
	var waits []time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		if err := g.served(t, "http", 30*time.Second); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		waits = append(waits, time.Since(start).Round(time.Millisecond))
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("waits: %v", waits)
	for _, w := range waits {
		if w > 3500*time.Millisecond {
			t.Fatalf("a client waited %v behind %d silent connections: %v", w, n, waits)
		}
	}
}

// TestSilentClientIsDroppedAtHeaderTimeout: a client that has not sent its
// first request or command header_timeout after its accept is dropped,
// whatever idle_timeout says (it was idle_timeout, 300 s).
func TestSilentClientIsDroppedAtHeaderTimeout(t *testing.T) {
	g := gateway(t, 4, map[string]string{"http": "header_timeout = 1", "smtp": "header_timeout = 1", "ftp": "header_timeout = 1"})
	for _, s := range []string{"http", "smtp", "ftp"} {
		c, err := net.Dial("tcp", g.addr(s))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadAll(c) // a greeting, maybe a 421, then the close
		if el := time.Since(start); err != nil || el < 900*time.Millisecond || el > 5*time.Second {
			t.Errorf("%s: closed after %v (%v)", s, el, err)
		}
	}
}

// TestSlowlorisDoesNotStarveClients: 20 connections sending a request
// head a byte a second (and SMTP commands likewise) cannot keep
// legitimate clients out: a client waiting for a slot takes that of the
// oldest connection still sending its first request.
func TestSlowlorisDoesNotStarveClients(t *testing.T) {
	g := gateway(t, 4, nil) // the shipped header_timeout, 30 s
	trickle := func(c net.Conn) {
		for _, b := range []byte("GET http://example.com/ HTTP/1.1\r\nX-a: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb") {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}
	for _, s := range []string{"http", "smtp", "ftp"} {
		hold(t, g.addr(s), "", 20, trickle)
	}
	time.Sleep(500 * time.Millisecond)
	for _, s := range []string{"http", "smtp", "ftp"} {
		start := time.Now()
		err := g.served(t, s, 15*time.Second)
		t.Logf("%s served after %v", s, time.Since(start))
		if err != nil {
			t.Errorf("%s: a client behind 20 slowloris ones: %v", s, err)
		}
	}
}

// TestRefusedClientsHoldNoSlot: clients outside allow_clients, silent,
// many more than the slots: an allowed client is served at once, long
// before header_timeout would free anything.
func TestRefusedClientsHoldNoSlot(t *testing.T) {
	g := gateway(t, 4, map[string]string{"http": "allow_clients = 127.0.0.1/32\nheader_timeout = 30"})
	hold(t, g.addr("http"), "127.0.0.2", 40, nil)
	time.Sleep(300 * time.Millisecond)
	if err := g.served(t, "http", 3*time.Second); err != nil {
		t.Fatalf("an allowed client behind 40 refused ones: %v", err)
	}
	// A refused client that asks is told so.
	c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", g.addr("http"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET http://%s/ HTTP/1.1\r\nHost: x\r\n\r\n", g.origin)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, _ := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(l, "HTTP/1.1 403") {
		t.Errorf("a refused client got %q", l)
	}
}

// TestIdleKeepAliveGivesWay: every slot held by an idle keep-alive
// connection; a new client is served at once, the oldest idle one giving
// its slot.
func TestIdleKeepAliveGivesWay(t *testing.T) {
	g := gateway(t, 4, map[string]string{"http": "header_timeout = 30"})
	var idle []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", g.addr("http"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\n", g.origin, g.origin)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		idle = append(idle, c)
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	if err := g.served(t, "http", 3*time.Second); err != nil {
		t.Fatalf("a client behind 4 idle keep-alive ones: %v", err)
	}
	t.Logf("served after %v", time.Since(start))
	// The oldest idle connection is the one closed.
	idle[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("the oldest idle connection is still open: %v", err)
	}
}

// TestGatewayDoesNotReachItself: through the real daemon with the shipped
// deny_servers, the HTTP proxy will not carry a POST or a CONNECT to the
// gateway's own SMTP port, and the FTP proxy will not log in to 0.0.0.0,
// its own address or a chain of hops.
func TestGatewayDoesNotReachItself(t *testing.T) {
	shipped := "deny_servers = self, 127.0.0.0/8, ::1/128, 169.254.0.0/16, fe80::/10"
	g := gateway(t, 8, map[string]string{"http": shipped + "\nconnect_ports = 443, {smtp_port}", "ftp": shipped})
	own := g.addr("smtp")
	for _, req := range []string{
		fmt.Sprintf("POST http://%s/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nHELO x\r\n\r\n", own),
		fmt.Sprintf("POST http://0.0.0.0:%d/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nHELO x\r\n\r\n", g.ports["smtp"]),
		fmt.Sprintf("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n", g.ports["smtp"]),
	} {
		c, err := net.Dial("tcp", g.addr("http"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, req)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(l, "HTTP/1.1 403 ") {
			t.Errorf("%s: %q", strings.SplitN(req, "\r\n", 2)[0], l)
		}
	}
	for _, user := range []string{"a@0.0.0.0:" + fmt.Sprint(g.ports["ftp"]), "a@127.0.0.1:" + fmt.Sprint(g.ports["smtp"]),
		"a@0.0.0.0:" + fmt.Sprint(g.ports["ftp"]) + "@0.0.0.0:" + fmt.Sprint(g.ports["ftp"])} {
		c, err := net.Dial("tcp", g.addr("ftp"))
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		br.ReadString('\n')
		fmt.Fprintf(c, "USER %s\r\n", user)
		l, _ := br.ReadString('\n')
		c.Close()
		if !strings.HasPrefix(l, "500 ") && !strings.HasPrefix(l, "530 ") {
			t.Errorf("USER %s: %q", user, l)
		}
	}
}

// TestRelayIsNoOpenRelay: through the real daemon with local_domains set,
// a client outside relay_clients is refused any other domain at RCPT, and
// the next hop never sees the mail; a local recipient is taken.
func TestRelayIsNoOpenRelay(t *testing.T) {
	g := gateway(t, 4, map[string]string{"smtp": "local_domains = example.com\nrelay_clients = 127.0.0.1/32"})
	send := func(to string) string {
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).Dial("tcp", g.addr("smtp"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		lastLine(br)
		for _, cmd := range []string{"EHLO outsider.test", "MAIL FROM:<a@outsider.test>", "RCPT TO:<" + to + ">", "DATA"} {
			fmt.Fprintf(c, "%s\r\n", cmd)
			if r := lastLine(br); r[0] != '2' && r[0] != '3' {
				return r
			}
		}
		fmt.Fprintf(c, "Subject: x\r\n\r\nhi\r\n.\r\n")
		return lastLine(br)
	}
	if r := send("victim@elsewhere.test"); !strings.HasPrefix(r, "554 5.7.1") {
		t.Errorf("an outsider to another domain: %q", r)
	}
	if r := send("user@example.com"); !strings.HasPrefix(r, "250") {
		t.Errorf("an outsider to a local user: %q", r)
	}
	if n := len(g.hop.Mails()); n != 1 {
		t.Errorf("the next hop got %d mails, want 1", n)
	}
}

// TestIdleSessionsGiveWay: every slot held by an SMTP or FTP session that
// has sent its first command and then waits: a new client is served at
// once, the session idle longest told 421 and closed (they held their
// slots for idle_timeout, 300 s).
func TestIdleSessionsGiveWay(t *testing.T) {
	g := gateway(t, 4, nil)
	for _, s := range []string{"smtp", "ftp"} {
		var first *bufio.Reader
		for i := 0; i < 4; i++ {
			c, br := dialText(t, g.addr(s))
			defer c.Close()
			lastLine(br)
			if s == "smtp" {
				fmt.Fprintf(c, "EHLO idle.test\r\n")
			} else {
				fmt.Fprintf(c, "USER anonymous@%s\r\n", g.ftp.Addr)
			}
			lastLine(br)
			if i == 0 {
				first = br
			}
			time.Sleep(50 * time.Millisecond)
		}
		start := time.Now()
		if err := g.served(t, s, 3*time.Second); err != nil {
			t.Fatalf("%s: a client behind 4 idle sessions: %v", s, err)
		}
		t.Logf("%s served after %v", s, time.Since(start))
		if l := lastLine(first); !strings.HasPrefix(l, "421") {
			t.Errorf("%s: the idlest session was told %q", s, l)
		}
	}
}

// TestBurstAdmittedAsSessionsGoIdle: every slot held by kept-alive
// clients that ask again the moment they have their answer (idle only
// between two requests): new clients are admitted as those sessions go
// idle, each taking the slot of one that just did, not at a look every
// 200 ms (five a second).
func TestBurstAdmittedAsSessionsGoIdle(t *testing.T) {
	g := gateway(t, 2, map[string]string{"http": "header_timeout = 30"})
	pu, _ := url.Parse("http://" + g.addr("http"))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu), MaxIdleConnsPerHost: 1}}
			for ctx.Err() == nil {
				if resp, err := cl.Get("http://" + g.origin + "/"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	defer wg.Wait()
	defer stop()
	time.Sleep(300 * time.Millisecond) // both slots taken, busy almost always
	start := time.Now()
	const burst = 20
	for i := 0; i < burst; i++ {
		if err := g.served(t, "http", 5*time.Second); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	took := time.Since(start)
	t.Logf("%d clients admitted in %v", burst, took)
	if took > time.Second {
		t.Errorf("%d clients took %v to be admitted: not as the sessions go idle", burst, took)
	}
}
