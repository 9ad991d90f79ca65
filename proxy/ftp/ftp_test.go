package ftp

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jftp "github.com/jlaffaye/ftp"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/proxy"
)

type env struct {
	t    *testing.T
	p    *Proxy
	addr string
	srv  *servertest.FTPServer
	obs  *observer.ObservedLogs
	kit  proxytest.Kit
}

func newEnv(t *testing.T, keys string) *env {
	t.Helper()
	e := &env{t: t}
	c, kit := proxytest.Common(t, "ftp", "deny_servers =\n"+keys)
	e.obs = kit.Obs
	e.kit = kit
	e.p = &Proxy{LineService: proxy.NewLineService(c)}
	return e
}

func (e *env) start() {
	e.t.Helper()
	if err := e.p.init(); err != nil {
		e.t.Fatal(err)
	}
	e.addr = proxytest.Serve(e.t, e.p)
}

func (e *env) withServer() *env {
	e.srv = servertest.VSFTPD(e.t)
	e.start()
	return e
}

// curl runs curl through the proxy, logging in as anonymous@server.
func (e *env) curl(args ...string) ([]byte, error) {
	curl := testenv.Need(e.t, "curl", "curl")
	base := []string{"-s", "-S", "--max-time", "30"}
	return exec.Command(curl, append(base, args...)...).CombinedOutput()
}

// url logs in as anonymous@server through the proxy (curl's -u would split
// the server's port off as the password).
func (e *env) url(path string) string {
	user := strings.NewReplacer("@", "%40", ":", "%3A").Replace("anonymous@" + e.srv.Addr)
	return "ftp://" + user + ":x@" + e.addr + "/" + path
}

func put(t *testing.T, e *env, name string, data []byte) {
	if err := os.WriteFile(filepath.Join(e.srv.Root, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDownloadsScannedPassiveAndActive(t *testing.T) {
	e := newEnv(t, "").withServer()
	big := make([]byte, 20<<20+3)
	rand.Read(big)
	put(t, e, "big.bin", big)
	put(t, e, "eicar.com", []byte(eicar.String))
	for _, mode := range [][]string{{}, {"-P", "-"}, {"--disable-epsv"}} {
		out, err := e.curl(append(mode, e.url("big.bin"))...)
		if err != nil || !bytes.Equal(out, big) {
			t.Fatalf("%v: clean download: %v, %d bytes", mode, err, len(out))
		}
		out, err = e.curl(append(mode, e.url("eicar.com"))...)
		if err == nil || bytes.Contains(out, []byte("EICAR")) {
			t.Fatalf("%v: EICAR came through: %q", mode, out)
		}
	}
}

func TestUploadsScannedBeforeTheServerSeesThem(t *testing.T) {
	e := newEnv(t, "").withServer()
	dir := t.TempDir()
	bad := filepath.Join(dir, "e.com")
	os.WriteFile(bad, []byte(eicar.String), 0o644)
	out, err := e.curl("-T", bad, e.url("pub/e.com"))
	if err == nil {
		t.Fatalf("EICAR upload accepted: %s", out)
	}
	if _, err := os.Stat(filepath.Join(e.srv.Root, "pub", "e.com")); err == nil {
		t.Fatal("the infected upload reached the server")
	}
	good := filepath.Join(dir, "g.bin")
	data := make([]byte, 5<<20)
	rand.Read(data)
	os.WriteFile(good, data, 0o644)
	for _, mode := range [][]string{{}, {"-P", "-"}} {
		if out, err := e.curl(append(mode, "-T", good, e.url("pub/g.bin"))...); err != nil {
			t.Fatalf("%v: clean upload: %v %s", mode, err, out)
		}
		got, _ := os.ReadFile(filepath.Join(e.srv.Root, "pub", "g.bin"))
		if !bytes.Equal(got, data) {
			t.Fatalf("%v: server has %d bytes", mode, len(got))
		}
	}
}

// control is a raw control connection to the proxy.
type control struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialControl(t *testing.T, addr string) *control {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	ct := &control{t: t, c: c, br: bufio.NewReader(c)}
	ct.read()
	return ct
}

func (c *control) read() Reply {
	c.t.Helper()
	r, err := ReadReply(c.br, 4096)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

func (c *control) cmd(line string) Reply {
	fmt.Fprintf(c.c, "%s\r\n", line)
	return c.read()
}

// loggedIn is a control connection logged in to the test's server.
func (e *env) loggedIn() *control {
	c := dialControl(e.t, e.addr)
	c.cmd("USER anonymous@" + e.srv.Addr)
	c.cmd("PASS x")
	return c
}

func TestDocumentedReplies(t *testing.T) {
	e := newEnv(t, "").withServer()
	dead := testenv.FreePort(t)
	c := dialControl(t, e.addr)
	if r := c.cmd(fmt.Sprintf("USER anonymous@127.0.0.1:%d", dead)); r.Raw() != fmt.Sprintf("500 Can't Connect to (127.0.0.1: %d) errmsg=Connection refused", dead) {
		t.Errorf("dead server: %q", r.Raw())
	}
	if r := c.cmd("QUIT"); r.Code != 221 {
		t.Errorf("QUIT before a server: %q", r.Raw())
	}
	c = dialControl(t, e.addr)
	c.cmd("USER anonymous@" + e.srv.Addr)
	c.cmd("PASS x")
	if r := c.cmd("RETR x"); r.Raw() != "530 please use PORT/PASV command at first." {
		t.Errorf("RETR before PASV: %q", r.Raw())
	}
	// A data connection to our passive port from another address.
	r := c.cmd("PASV")
	a, err := ParseHostPort(r.Text())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c.c, "LIST\r\n")
	c.read() // the server's 150
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	if dc, err := d.Dial("tcp", a.String()); err == nil {
		defer dc.Close()
	}
	if r := c.read(); r.Raw() != "530 Invalid Connection Source." {
		t.Errorf("data from another address: %q", r.Raw())
	}
}

func TestListingsAndGoClient(t *testing.T) {
	e := newEnv(t, "").withServer()
	put(t, e, "a.txt", []byte("aaa"))
	c, err := jftp.Dial(e.addr, jftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	if err := c.Login("anonymous@"+e.srv.Addr, "x"); err != nil {
		t.Fatal(err)
	}
	entries, err := c.List("/")
	if err != nil {
		t.Fatal(err)
	}
	names := ""
	for _, en := range entries {
		names += en.Name + " "
	}
	if !strings.Contains(names, "a.txt") {
		t.Fatalf("listing: %q", names)
	}
	r, err := c.Retr("a.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "aaa" {
		t.Fatalf("RETR: %q", b)
	}
	// REST: the rest of the file, from the whole one fetched and scanned.
	r, err = c.RetrFrom("a.txt", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(r)
	r.Close()
	if string(b) != "aa" {
		t.Fatalf("RETR from 1: %q", b)
	}
	if err := c.Stor("pub/x.txt", strings.NewReader("uploaded")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(e.srv.Root, "pub", "x.txt")); string(got) != "uploaded" {
		t.Fatalf("STOR: %q", got)
	}
}

func TestLftp(t *testing.T) {
	lftp := testenv.Need(t, "lftp", "lftp")
	e := newEnv(t, "").withServer()
	put(t, e, "eicar.com", []byte(eicar.String))
	put(t, e, "ok.txt", []byte("fine"))
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(e.addr)
	script := fmt.Sprintf("set net:max-retries 1; set net:timeout 10; open -u anonymous@%s,x -p %s %s; lcd %s; get ok.txt; get eicar.com; bye", e.srv.Addr, port, host, dir)
	out, _ := exec.Command(lftp, "-c", script).CombinedOutput()
	if got, _ := os.ReadFile(filepath.Join(dir, "ok.txt")); string(got) != "fine" {
		t.Fatalf("lftp clean: %s", out)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "eicar.com")); err == nil && len(got) > 0 {
		t.Fatalf("lftp got EICAR: %q (%s)", got, out)
	}
	if !strings.Contains(string(out), "virus found (Eicar-Test-Signature)") {
		t.Errorf("lftp output: %s", out)
	}
}

func TestOversizeFiles(t *testing.T) {
	for _, action := range []string{"pass", "block"} {
		t.Run(action, func(t *testing.T) {
			e := newEnv(t, "max_scan_size = 1M\noversize_action = "+action).withServer()
			big := make([]byte, 3<<20)
			rand.Read(big)
			put(t, e, "big.bin", big)
			out, err := e.curl(e.url("big.bin"))
			if action == "pass" && (err != nil || !bytes.Equal(out, big)) {
				t.Fatalf("pass: %v, %d bytes", err, len(out))
			}
			if action == "block" && err == nil {
				t.Fatalf("block: got %d bytes", len(out))
			}
		})
	}
}

// TestSilentDataConnection: a client that opens the data connection for an
// upload and sends nothing is dropped after data_timeout; nothing stored.
func TestSilentDataConnection(t *testing.T) {
	e := newEnv(t, "data_timeout = 500ms").withServer()
	c := e.loggedIn()
	a, err := ParseHostPort(c.cmd("PASV").Text())
	if err != nil {
		t.Fatal(err)
	}
	if r := c.cmd("STOR pub/silent.txt"); r.Code != 150 {
		t.Fatalf("STOR: %q", r.Raw())
	}
	d, err := net.Dial("tcp", a.String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if r := c.read(); r.Code != 426 {
		t.Fatalf("after a silent data connection: %q", r.Raw())
	}
	if _, err := os.Stat(filepath.Join(e.srv.Root, "pub", "silent.txt")); err == nil {
		t.Fatal("something was stored")
	}
}

// TestTypeAIsRelayed: TYPE A goes to the server, and a text file comes as
// the server sends it in ASCII mode.
func TestTypeAIsRelayed(t *testing.T) {
	e := newEnv(t, "").withServer()
	put(t, e, "t.txt", []byte("line one\nline two\n"))
	c := e.loggedIn()
	if r := c.cmd("TYPE A"); r.Code != 200 {
		t.Fatalf("TYPE A: %q", r.Raw())
	}
	a, _ := ParseHostPort(c.cmd("PASV").Text())
	fmt.Fprintf(c.c, "RETR t.txt\r\n")
	d, err := net.Dial("tcp", a.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(d)
	d.Close()
	for r := c.read(); r.Code/100 == 1; r = c.read() {
	}
	if string(b) != "line one\r\nline two\r\n" {
		t.Fatalf("ASCII transfer: %q", b)
	}
}

// TestBounceIsRefused: PORT and EPRT may name only the client's own
// address, and no privileged port (the FTP bounce attack).
func TestBounceIsRefused(t *testing.T) {
	e := newEnv(t, "").withServer()
	c := e.loggedIn()
	for _, cmd := range []string{"PORT 10,0,0,1,200,10", "EPRT |1|192.0.2.7|2000|", "PORT 127,0,0,1,0,25", "EPRT |1|127.0.0.1|25|"} {
		if r := c.cmd(cmd); r.Code != 500 {
			t.Errorf("%s: %q", cmd, r.Raw())
		}
	}
	if r := c.cmd("PORT 127,0,0,1,200,10"); r.Code != 200 {
		t.Errorf("the client's own address refused: %q", r.Raw())
	}
}

// TestActiveModeTowardsTheServer: server_active = yes makes the data
// connections to the server with PORT; both directions still scanned.
func TestActiveModeTowardsTheServer(t *testing.T) {
	e := newEnv(t, "server_active = yes").withServer()
	data := make([]byte, 1<<20)
	rand.Read(data)
	put(t, e, "a.bin", data)
	put(t, e, "eicar.com", []byte(eicar.String))
	out, err := e.curl(e.url("a.bin"))
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("download: %v, %d bytes", err, len(out))
	}
	if out, err := e.curl(e.url("eicar.com")); err == nil || bytes.Contains(out, []byte("EICAR")) {
		t.Fatalf("EICAR came through: %q", out)
	}
	up := filepath.Join(t.TempDir(), "u.bin")
	os.WriteFile(up, data, 0o644)
	if out, err := e.curl("-T", up, e.url("pub/u.bin")); err != nil {
		t.Fatalf("upload: %v %s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(e.srv.Root, "pub", "u.bin")); !bytes.Equal(got, data) {
		t.Fatalf("server has %d bytes", len(got))
	}
}

// TestTransparentClientThatNamesTheProxy: in transparent mode, a client
// that comes straight to the proxy's port (not diverted) and logs in
// without @host is refused; the proxy does not log in to itself.
func TestTransparentClientThatNamesTheProxy(t *testing.T) {
	e := newEnv(t, "transparent = yes")
	e.start()
	c := dialControl(t, e.addr)
	if r := c.cmd("USER anonymous"); r.Raw() != "530 This connection was not diverted to the gateway: log in as user@host." {
		t.Errorf("USER on a connection to the proxy itself: %q", r.Raw())
	}
}

// TestAppendInPiecesIsRefused: two APPE uploads of 34 bytes, each clean,
// would leave EICAR on the server; so would STOR then APPE. APPE and COMB
// are refused unless allow_append says otherwise.
func TestAppendInPiecesIsRefused(t *testing.T) {
	e := newEnv(t, "").withServer()
	dir := t.TempDir()
	half1, half2 := filepath.Join(dir, "1"), filepath.Join(dir, "2")
	os.WriteFile(half1, []byte(eicar.String[:34]), 0o644)
	os.WriteFile(half2, []byte(eicar.String[34:]), 0o644)
	target := filepath.Join(e.srv.Root, "pub", "pieces.com")
	for _, first := range [][]string{{"-a"}, {}} { // APPE+APPE, STOR+APPE
		os.Remove(target)
		out, err := e.curl(append(first, "-T", half1, e.url("pub/pieces.com"))...)
		if len(first) > 0 && err == nil {
			t.Fatalf("the first APPE was accepted: %s", out)
		}
		out, err = e.curl("-a", "-T", half2, e.url("pub/pieces.com"))
		if err == nil {
			t.Fatalf("APPE after %v was accepted: %s", first, out)
		}
		if !strings.Contains(string(out), "550") {
			t.Errorf("APPE refused without its 550: %s", out)
		}
		if got, _ := os.ReadFile(target); bytes.Contains(got, []byte(eicar.String)) {
			t.Fatal("EICAR was put together on the server")
		}
	}
	c := e.loggedIn()
	if r := c.cmd("COMB pieces.com 1 2"); r.Code != 550 {
		t.Errorf("COMB: %q", r.Raw())
	}
}

func TestAppendAllowedWhenSet(t *testing.T) {
	e := newEnv(t, "allow_append = yes\n").withServer()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("first piece\n"), 0o644)
	os.WriteFile(b, []byte("second piece\n"), 0o644)
	for _, f := range []string{a, b} {
		if out, err := e.curl("-a", "-T", f, e.url("pub/log.txt")); err != nil {
			t.Fatalf("APPE with allow_append: %v %s", err, out)
		}
	}
	got, _ := os.ReadFile(filepath.Join(e.srv.Root, "pub", "log.txt"))
	if string(got) != "first piece\nsecond piece\n" {
		t.Fatalf("server has %q", got)
	}
	// Each piece is still scanned.
	bad := filepath.Join(dir, "e")
	os.WriteFile(bad, []byte(eicar.String), 0o644)
	if out, err := e.curl("-a", "-T", bad, e.url("pub/log.txt")); err == nil {
		t.Fatalf("an infected APPE was accepted: %s", out)
	}
}

// TestModeOtherThanStreamIsRefused: a MODE Z (deflate) or MODE B transfer
// would reach the scanner in its coding, not as the file.
func TestModeOtherThanStreamIsRefused(t *testing.T) {
	e := newEnv(t, "").withServer()
	c := e.loggedIn()
	for _, m := range []string{"Z", "B", "C", "z"} {
		if r := c.cmd("MODE " + m); r.Code != 504 {
			t.Errorf("MODE %s: %q", m, r.Raw())
		}
	}
	if r := c.cmd("MODE s"); r.Code != 200 {
		t.Errorf("MODE S: %q", r.Raw())
	}
}

// TestProxyCannotBeChainedIntoItself: USER a@0.0.0.0:PORT (and [::], a
// mapped loopback address, the gateway's own interface address) reached
// loopback servers past deny_servers, and a USER of many @hops looped the
// proxy through itself. The address connected to is checked, 0.0.0.0 and
// :: always refused, and a USER names one server.
func TestProxyCannotBeChainedIntoItself(t *testing.T) {
	e := newEnv(t, "deny_servers = self, 127.0.0.0/8, ::1/128, 169.254.0.0/16, fe80::/10").withServer()
	_, port, _ := net.SplitHostPort(e.srv.Addr)
	_, own, _ := net.SplitHostPort(e.addr)
	targets := []string{"0.0.0.0", "[::]", "127.0.0.1", "[::ffff:127.0.0.1]", "localhost"}
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				targets = append(targets, n.IP.String())
				break
			}
		}
	}
	for _, h := range targets {
		for _, p := range []string{port, own} {
			c := dialControl(t, e.addr)
			if r := c.cmd("USER anonymous@" + h + ":" + p); !strings.Contains(r.Raw(), "server not allowed") {
				t.Errorf("USER anonymous@%s:%s: %q", h, p, r.Raw())
			}
		}
	}
	if len(e.obs.FilterMessageSnippet("may not reach").All()) == 0 {
		t.Error("refusals not logged")
	}
	// Even with nothing denied, 0.0.0.0 and :: are not servers, and one
	// USER names one hop.
	open := newEnv(t, "").withServer()
	for _, user := range []string{"a@0.0.0.0:" + own, "a@[::]:" + own, "a@127.0.0.1:" + own + "@127.0.0.1:" + own,
		"a" + strings.Repeat("@0.0.0.0:"+own, 80)} {
		c := dialControl(t, open.addr)
		if r := c.cmd("USER " + user); r.Code/100 == 3 || r.Code/100 == 2 {
			t.Errorf("USER %.60s: %q", user, r.Raw())
		}
	}
	// A name with an @ that names no server still goes to the server
	// (vsftpd, anonymous only, answers it itself).
	c := dialControl(t, open.addr)
	if r := c.cmd("USER me@example.com@" + open.srv.Addr); r.Raw() != "530 This FTP server is anonymous only." {
		t.Errorf("an e-mail address as the name: %q", r.Raw())
	}
}

// TestDetectionReachesCurlAs550: curl fetching EICAR through the proxy
// reports the 550 and its text, not a reset of its data connection.
func TestDetectionReachesCurlAs550(t *testing.T) {
	e := newEnv(t, "").withServer()
	put(t, e, "eicar.com", []byte(eicar.String))
	out, err := e.curl(e.url("eicar.com"))
	if err == nil || !strings.Contains(string(out), "550") || strings.Contains(string(out), "reset") {
		t.Fatalf("curl: %v %s", err, out)
	}
}

// TestActionPassDelivers: with action = pass an infected download is
// delivered and logged ACTION:PASS.
func TestActionPassDelivers(t *testing.T) {
	e := newEnv(t, "action = pass").withServer()
	put(t, e, "eicar.com", []byte(eicar.String))
	out, err := e.curl(e.url("eicar.com"))
	if err != nil || string(out) != eicar.String {
		t.Fatalf("action = pass: %v %q", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(e.kit.LogDir, "access.log"))
	if !strings.Contains(string(b), "ACTION:PASS:") {
		t.Errorf("access log: %s", b)
	}
}

// TestAccessLogURLKeepsPortAndDirectory: the URL of a transfer names the
// server's port and the directory the client was in.
func TestAccessLogURLKeepsPortAndDirectory(t *testing.T) {
	e := newEnv(t, "").withServer()
	os.MkdirAll(filepath.Join(e.srv.Root, "pub", "sub"), 0o755)
	os.WriteFile(filepath.Join(e.srv.Root, "pub", "sub", "f.txt"), []byte("hello"), 0o644)
	if out, err := e.curl(e.url("pub/sub/f.txt")); err != nil || string(out) != "hello" {
		t.Fatalf("curl: %v %q", err, out)
	}
	want := "ftp://" + e.srv.Addr + "/pub/sub/f.txt"
	b, _ := os.ReadFile(filepath.Join(e.kit.LogDir, "access.log"))
	if !strings.Contains(string(b), want) {
		t.Fatalf("access log lacks %s:\n%s", want, b)
	}
}

func TestPwdDir(t *testing.T) {
	for in, want := range map[string]string{`257 "/pub" is the current directory`: "/pub", `257 "/a ""b""" ok`: `/a "b"`, "257 no quotes": ""} {
		if got := pwdDir(in); got != want {
			t.Errorf("%q: %q", in, got)
		}
	}
}

// TestSkipListedServerPassesUnscanned: a file from a skip-listed server
// arrives unscanned, logged SKIPPED, never CLEAN.
func TestSkipListedServerPassesUnscanned(t *testing.T) {
	e := newEnv(t, "skip_hosts = 127.0.0.1").withServer()
	put(t, e, "eicar.com", []byte(eicar.String))
	out, err := e.curl(e.url("eicar.com"))
	if err != nil || string(out) != eicar.String {
		t.Fatalf("%v %q", err, out)
	}
	e.kit.WaitLog(t, "DETECT-STAT:SKIPPED:skip_hosts:")
	if strings.Contains(e.kit.AccessLog(), "CLEAN") {
		t.Fatalf("access log:\n%s", e.kit.AccessLog())
	}
}

// TestTypeRulesOverFTP: a Windows program named .txt is refused by type
// (550 naming the rule); a text file is not.
func TestTypeRulesOverFTP(t *testing.T) {
	e := newEnv(t, "block_types = exe").withServer()
	put(t, e, "notes.txt", eicar.WindowsProgram(false))
	put(t, e, "real.txt", []byte("text"))
	if out, err := e.curl(e.url("notes.txt")); err == nil || bytes.Contains(out, []byte("MZ")) {
		t.Fatalf("the program came through: %v", err)
	}
	if out, err := e.curl(e.url("real.txt")); err != nil || string(out) != "text" {
		t.Fatalf("text: %v %q", err, out)
	}
	e.kit.WaitLog(t, "DETECT-STAT:BLOCKED:block_types=exe:")
}

// TestLargeTransfersFollowed: files past proxy.FollowFrom, which the
// engine follows as they are spooled, are judged whole: the test file at
// 12 MiB of a download and at 15 MiB of an upload is found, and the
// upload never reaches the server; a clean one goes through whole.
func TestLargeTransfersFollowed(t *testing.T) {
	e := newEnv(t, "").withServer()
	marked := make([]byte, 20<<20)
	rand.Read(marked)
	copy(marked[12<<20:], eicar.String)
	put(t, e, "marked.bin", marked)
	if out, err := e.curl(e.url("marked.bin")); err == nil || len(out) == len(marked) {
		t.Fatalf("a download with the test file at 12 MiB came through: %v, %d bytes", err, len(out))
	}
	up := filepath.Join(t.TempDir(), "up.bin")
	copy(marked[15<<20:], eicar.String)
	os.WriteFile(up, marked, 0o644)
	if out, err := e.curl("-T", up, e.url("pub/up.bin")); err == nil {
		t.Fatalf("an upload with the test file at 15 MiB was accepted: %s", out)
	}
	if _, err := os.Stat(filepath.Join(e.srv.Root, "pub", "up.bin")); err == nil {
		t.Fatal("the infected upload reached the server")
	}
	clean := make([]byte, 20<<20)
	rand.Read(clean)
	put(t, e, "clean.bin", clean)
	if out, err := e.curl(e.url("clean.bin")); err != nil || !bytes.Equal(out, clean) {
		t.Fatalf("a clean large download: %v, %d bytes", err, len(out))
	}
}
