package http

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	gohttp "net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/packtest"
	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/tproxy"
)

// env is a proxy on 127.0.0.1:0 scanning with the bundled fsavd, and an
// origin server with the test's handlers.
type env struct {
	t      *testing.T
	p      *Proxy
	addr   string
	origin *httptest.Server
	mux    *gohttp.ServeMux
	obs    *observer.ObservedLogs
	logDir string
	// quarantine is quarantine_dir.
	quarantine string
	mu         sync.Mutex
	got        map[string][]byte // what the origin received, by path
}

func newEnv(t *testing.T, keys string) *env {
	t.Helper()
	e := &env{t: t, mux: gohttp.NewServeMux(), got: map[string][]byte{}}
	e.origin = httptest.NewServer(e.mux)
	t.Cleanup(e.origin.Close)

	// The origin is on loopback, which the default deny_servers refuses.
	// {origin} in keys is the origin's host:port.
	keys = strings.ReplaceAll(keys, "{origin}", strings.TrimPrefix(e.origin.URL, "http://"))
	c, kit := proxytest.Common(t, "http", "deny_servers =\n"+keys)
	e.obs, e.logDir, e.quarantine = kit.Obs, kit.LogDir, kit.QuarantineDir
	e.p = &Proxy{SessionServer: proxy.NewSessionServer(c)}
	if err := e.p.init(); err != nil {
		t.Fatal(err)
	}
	e.addr = proxytest.Serve(t, e.p)
	return e
}

// serve adds an origin handler returning body with the given headers.
func (e *env) serve(path string, body []byte, hdr ...string) {
	e.mux.HandleFunc(path, func(w gohttp.ResponseWriter, r *gohttp.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.got[path] = b
		e.mu.Unlock()
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Write(body)
	})
}

func (e *env) url(path string) string { return e.origin.URL + path }

// client is a Go client using the proxy.
func (e *env) client() *gohttp.Client {
	pu, _ := url.Parse("http://" + e.addr)
	return &gohttp.Client{Transport: &gohttp.Transport{Proxy: gohttp.ProxyURL(pu), DisableCompression: true}, Timeout: 30 * time.Second}
}

func (e *env) get(path string) (int, []byte) {
	e.t.Helper()
	resp, err := e.client().Get(e.url(path))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("reading %s: %v", path, err)
	}
	return resp.StatusCode, b
}

// accessLog is the access log once it has n lines (a line is written
// after its response).
func (e *env) accessLog(n ...int) string {
	want := 1
	if len(n) > 0 {
		want = n[0]
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(e.logDir, "access.log"))
		if strings.Count(string(b), "\n") >= want || time.Now().After(deadline) {
			return string(b)
		}
	}
}

// raw sends bytes on a new connection and returns all that comes back.
func (e *env) raw(req string) string {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(req))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestCleanDownloadsArriveByteIdentical(t *testing.T) {
	e := newEnv(t, "")
	data := randomBytes(3<<20 + 5)
	e.serve("/big.bin", data)
	gz := packtest.Gzip([]byte(strings.Repeat("clean text ", 1000)))
	e.serve("/page", gz, "Content-Encoding", "gzip")
	code, got := e.get("/big.bin")
	if code != 200 || !bytes.Equal(got, data) {
		t.Fatalf("got %d, %d bytes", code, len(got))
	}
	code, got = e.get("/page")
	if code != 200 || !bytes.Equal(got, gz) {
		t.Fatalf("gzip body changed on the way: %d", code)
	}
	if !strings.Contains(e.accessLog(2), "DETECT-STAT:CLEAN:") {
		t.Errorf("access log: %s", e.accessLog())
	}
}

func TestEICARIsBlockedHoweverItComes(t *testing.T) {
	e := newEnv(t, "")
	E := []byte(eicar.String)
	e.serve("/eicar.com", E)
	e.serve("/eicar.gz", packtest.Gzip(E), "Content-Encoding", "gzip")
	e.serve("/eicar.zip", zipped(t, "in/eicar.com", E))
	e.mux.HandleFunc("/chunked", func(w gohttp.ResponseWriter, r *gohttp.Request) {
		f := w.(gohttp.Flusher)
		for i := 0; i < len(E); i += 7 { // odd chunk sizes
			w.Write(E[i:min(i+7, len(E))])
			f.Flush()
		}
	})
	for _, path := range []string{"/eicar.com", "/eicar.gz", "/eicar.zip", "/chunked"} {
		code, body := e.get(path)
		if code != 403 || !strings.Contains(string(body), "Eicar-Test-Signature") || !strings.Contains(string(body), e.url(path)) {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	log := e.accessLog(4)
	if !strings.Contains(log, "DETECT-STAT:INFECTED:Eicar-Test-Signature:") || !strings.Contains(log, "ACTION:DENY:") || !strings.Contains(log, " TCP_DENIED/403 ") {
		t.Errorf("access log:\n%s", log)
	}
}

func zipped(t *testing.T, name string, data []byte) []byte {
	var b bytes.Buffer
	w := zipWriter(&b)
	f, _ := w.Create(name)
	f.Write(data)
	w.Close()
	return b.Bytes()
}

// TestRangeCannotSplitAFile: the Range field is not forwarded, so the
// object is fetched, scanned and judged whole.
func TestRangeCannotSplitAFile(t *testing.T) {
	e := newEnv(t, "")
	e.mux.HandleFunc("/e", func(w gohttp.ResponseWriter, r *gohttp.Request) {
		gohttp.ServeContent(w, r, "e", time.Time{}, strings.NewReader(eicar.String))
	})
	req, _ := gohttp.NewRequest("GET", e.url("/e"), nil)
	req.Header.Set("Range", "bytes=0-9")
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("a range of EICAR got %d", resp.StatusCode)
	}
}

func TestUploadsAreScannedBeforeTheServerSeesThem(t *testing.T) {
	e := newEnv(t, "")
	e.serve("/upload", []byte("stored"))
	resp, err := e.client().Post(e.url("/upload"), "application/octet-stream", strings.NewReader(eicar.String))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("EICAR upload got %d", resp.StatusCode)
	}
	e.mu.Lock()
	_, reached := e.got["/upload"]
	e.mu.Unlock()
	if reached {
		t.Fatal("the infected upload reached the server")
	}
	data := randomBytes(2 << 20)
	resp, err = e.client().Post(e.url("/upload"), "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	e.mu.Lock()
	defer e.mu.Unlock()
	if resp.StatusCode != 200 || !bytes.Equal(e.got["/upload"], data) {
		t.Fatalf("clean upload: %d, server got %d bytes", resp.StatusCode, len(e.got["/upload"]))
	}
}

// TestPipelinedRequests: a second, infected, request behind a clean one in
// the same packet is judged on its own.
func TestPipelinedRequests(t *testing.T) {
	e := newEnv(t, "")
	e.serve("/clean", []byte("hello"))
	e.serve("/eicar", []byte(eicar.String))
	u := strings.TrimPrefix(e.origin.URL, "http://")
	out := e.raw("GET http://" + u + "/clean HTTP/1.1\r\nHost: " + u + "\r\n\r\nGET http://" + u + "/eicar HTTP/1.1\r\nHost: " + u + "\r\nConnection: close\r\n\r\n")
	first := strings.Index(out, "HTTP/1.1 200")
	second := strings.Index(out, "HTTP/1.1 403")
	if first < 0 || second < first || !strings.Contains(out, "\r\n\r\nhello") {
		t.Fatalf("pipelined answers:\n%s", out)
	}
}

// TestSmugglingIsRefused: ambiguous framing gets 400 and a closed connection.
func TestSmugglingIsRefused(t *testing.T) {
	e := newEnv(t, "")
	e.serve("/x", []byte("x"))
	u := strings.TrimPrefix(e.origin.URL, "http://")
	start := "POST http://" + u + "/x HTTP/1.1\r\nHost: " + u + "\r\n"
	for name, req := range map[string]string{
		"both lengths":          start + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"duplicate length":      start + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
		"differing lengths":     start + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"obsolete folding":      start + "X-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"bad chunk size":        start + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
		"signed chunk size":     start + "Transfer-Encoding: chunked\r\n\r\n+3\r\nabc\r\n0\r\n\r\n",
		"gzip, chunked":         start + "Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"space before colon":    start + "Content-Length : 3\r\n\r\nabc",
		"two Host fields":       "GET http://" + u + "/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"chunk without CRLF":    start + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n",
		"bare CR in a field":    start + "X-A: a\rb\r\nContent-Length: 0\r\n\r\n",
		"negative length":       start + "Content-Length: -1\r\n\r\n",
		"huge chunk size":       start + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
		"request line too long": "GET http://" + u + "/" + strings.Repeat("a", 10000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		out := e.raw(req)
		if !strings.HasPrefix(out, "HTTP/1.1 400 ") && !strings.HasPrefix(out, "HTTP/1.1 431 ") {
			t.Errorf("%s: %q", name, out)
		}
		if strings.Count(out, "HTTP/1.1 ") != 1 {
			t.Errorf("%s: more than one answer: %q", name, out)
		}
	}
}

func TestOversizeObjects(t *testing.T) {
	data := randomBytes(2 << 20)
	for _, action := range []string{"pass", "block"} {
		t.Run(action, func(t *testing.T) {
			e := newEnv(t, "max_scan_size = 1M\noversize_action = "+action)
			e.serve("/big", data)
			code, got := e.get("/big")
			if action == "pass" && (code != 200 || !bytes.Equal(got, data)) {
				t.Fatalf("pass: %d, %d bytes", code, len(got))
			}
			if action == "block" && code != 403 {
				t.Fatalf("block: %d", code)
			}
			if !strings.Contains(e.accessLog(), "max_scan_size") {
				t.Errorf("not logged: %s", e.accessLog())
			}
		})
	}
}

func TestTooLargeResponseHeaderIsTrimmed(t *testing.T) {
	e := newEnv(t, "")
	e.mux.HandleFunc("/h", func(w gohttp.ResponseWriter, r *gohttp.Request) {
		for i := 0; i < 40; i++ {
			w.Header().Set(fmt.Sprintf("X-Filler-%d", i), strings.Repeat("v", 1000))
		}
		w.Write([]byte("body"))
	})
	code, body := e.get("/h")
	if code != 200 || string(body) != "body" {
		t.Fatalf("%d %q", code, body)
	}
	want := "Too large header (>17408) ignored. URL=[" + e.url("/h") + "]"
	if len(e.obs.FilterMessage(want).All()) != 1 {
		t.Fatalf("M08 not logged: %v", e.obs.All())
	}
}

func TestServerFailuresGiveClearAnswers(t *testing.T) {
	e := newEnv(t, "")
	dead := enginetestFreeAddr(t)
	resp, err := e.client().Get("http://" + dead + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("refused connection: %d", resp.StatusCode)
	}
	// Names resolve through a DNS server of the test's on loopback.
	d := &net.Dialer{Resolver: servertest.NXDomain(t)}
	e.p.Dial = tproxy.Plain(d.DialContext)
	resp, err = e.client().Get("http://no-such-host.invalid/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("DNS failure: %d", resp.StatusCode)
	}
	e.mux.HandleFunc("/reset", func(w gohttp.ResponseWriter, r *gohttp.Request) {
		w.Header().Set("Content-Length", "100000")
		w.Write(make([]byte, 1000))
		panic(gohttp.ErrAbortHandler)
	})
	resp, err = e.client().Get(e.url("/reset"))
	if err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && rerr == nil && len(b) == 100000 {
			t.Fatal("a body cut by the server arrived as whole")
		}
	}
	// Chunked, cut right after a whole chunk: no terminating chunk came,
	// so the body is not whole, however clean its end looks.
	e.mux.HandleFunc("/cut-chunked", func(w gohttp.ResponseWriter, r *gohttp.Request) {
		w.Write(make([]byte, 1000))
		w.(gohttp.Flusher).Flush()
		panic(gohttp.ErrAbortHandler)
	})
	resp, err = e.client().Get(e.url("/cut-chunked"))
	if err == nil {
		_, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && rerr == nil {
			t.Fatal("a chunked body cut at a chunk's end arrived as whole")
		}
	}
}

func enginetestFreeAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
}

// TestSlowDownloadTrickles: a download that takes longer than
// trickle_after reaches the client in part while it arrives; clean, it
// completes; infected, the connection is cut and the file stays short.
func TestSlowDownloadTrickles(t *testing.T) {
	e := newEnv(t, "trickle_after = 200ms\ntrickle_interval = 100ms\ntrickle_bytes = 1K\nhold_back = 64K")
	slow := func(tail []byte) gohttp.HandlerFunc {
		return func(w gohttp.ResponseWriter, r *gohttp.Request) {
			body := append(make([]byte, 256<<10), tail...)
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			for i := 0; i < len(body); i += 32 << 10 {
				w.Write(body[i:min(i+32<<10, len(body))])
				w.(gohttp.Flusher).Flush()
				time.Sleep(60 * time.Millisecond)
			}
		}
	}
	e.mux.HandleFunc("/slow-clean", slow([]byte("the end")))
	e.mux.HandleFunc("/slow-eicar", slow([]byte(eicar.String)))
	code, got := e.get("/slow-clean")
	if code != 200 || len(got) != 256<<10+7 {
		t.Fatalf("clean slow download: %d, %d bytes", code, len(got))
	}
	resp, err := e.client().Get(e.url("/slow-eicar"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("the head should have gone before the verdict: %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(b) >= 256<<10 || bytes.Contains(b, []byte("EICAR")) {
		t.Fatalf("infected slow download: %d bytes, %v", len(b), err)
	}
	if len(b) == 0 {
		t.Error("nothing trickled")
	}
	if !strings.Contains(e.accessLog(2), "connection%20cut%20after") {
		t.Errorf("access log: %s", e.accessLog())
	}
}

func TestOnlyAllowedClients(t *testing.T) {
	e := newEnv(t, "allow_clients = 10.0.0.0/8")
	e.serve("/x", []byte("x"))
	code, _ := e.get("/x")
	if code != 403 {
		t.Fatalf("a client outside allow_clients got %d", code)
	}
}

// echoServer sends back what it gets, on a port of 127.0.0.1, until the
// test ends.
func echoServer(t *testing.T) net.Listener {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return echo
}

func TestConnectTunnel(t *testing.T) {
	echo := echoServer(t)
	_, port, _ := net.SplitHostPort(echo.Addr().String())
	e := newEnv(t, "connect_ports = 443, "+port)
	c, _ := net.Dial("tcp", e.addr)
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nearly bytes|", echo.Addr(), echo.Addr())
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("CONNECT: %q", line)
	}
	br.ReadString('\n')
	c.Write([]byte("later"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 17)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "early bytes|later" {
		t.Fatalf("relayed %q %v", buf, err)
	}
	out := e.raw("CONNECT 127.0.0.1:25 HTTP/1.1\r\nHost: x\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 403") {
		t.Fatalf("CONNECT to port 25: %q", out)
	}
}

// TestSlowlorisGetsNowhere: a head that never completes is dropped after
// header_timeout.
func TestSlowlorisGetsNowhere(t *testing.T) {
	e := newEnv(t, "header_timeout = 500ms")
	c, _ := net.Dial("tcp", e.addr)
	defer c.Close()
	c.Write([]byte("GET http://x/ HTTP/1.1\r\nHost: x\r\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 10))
	if err != io.EOF {
		t.Fatalf("the half-sent head was not dropped: %v", err)
	}
}

func TestEngineDownFollowsScanFailure(t *testing.T) {
	for _, policy := range []string{"block", "pass"} {
		t.Run(policy, func(t *testing.T) {
			e := newEnv(t, "scan_failure = "+policy)
			eps, _ := scanner.ParseEndpoints(filepath.Join(t.TempDir(), "nothing"), "")
			e.p.Scanner = scanner.NewFsavd(&scanner.Pool{Endpoints: eps}, false)
			e.serve("/x", []byte("data"))
			code, _ := e.get("/x")
			if (policy == "block") != (code == 403) {
				t.Fatalf("engine down, scan_failure=%s: %d", policy, code)
			}
		})
	}
}

// TestCurlThroughTheProxy: the real curl, EICAR and a clean file, and an
// upload large enough for curl to use Expect: 100-continue.
func TestCurlThroughTheProxy(t *testing.T) {
	curl := testenv.Need(t, "curl", "curl")
	e := newEnv(t, "")
	data := randomBytes(1 << 20)
	e.serve("/file", data)
	e.serve("/eicar", []byte(eicar.String))
	e.serve("/up", []byte("ok"))
	out, err := exec.Command(curl, "-s", "-x", "http://"+e.addr, e.url("/file")).Output()
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("curl clean: %v, %d bytes", err, len(out))
	}
	code, _ := exec.Command(curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", "http://"+e.addr, e.url("/eicar")).Output()
	if string(code) != "403" {
		t.Fatalf("curl EICAR: %s", code)
	}
	up := filepath.Join(t.TempDir(), "up")
	os.WriteFile(up, randomBytes(2<<20), 0o644)
	code, err = exec.Command(curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", "http://"+e.addr, "--data-binary", "@"+up, e.url("/up")).Output()
	if err != nil || string(code) != "200" {
		t.Fatalf("curl upload: %s %v", code, err)
	}
}

// TestSilentTunnelIsClosed: a CONNECT tunnel where neither way moves a
// byte for idle_timeout is closed (it held its slot for ever); one that
// moves bytes one way only stays.
func TestSilentTunnelIsClosed(t *testing.T) {
	echo := echoServer(t)
	_, port, _ := net.SplitHostPort(echo.Addr().String())
	e := newEnv(t, "connect_ports = "+port+"\nidle_timeout = 1")
	c, _ := net.Dial("tcp", e.addr)
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: x\r\n\r\n", echo.Addr())
	br := bufio.NewReader(c)
	br.ReadString('\n')
	br.ReadString('\n')
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err == nil || time.Since(start) < 900*time.Millisecond || time.Since(start) > 5*time.Second {
		t.Fatalf("a silent tunnel: %v after %v", err, time.Since(start))
	}
}

// TestTricklingUploadIsDropped: an upload slower than proxy.MinRate once
// proxy.PaceGrace has passed is dropped; it held its slot for as long as
// the client liked.
func TestTricklingUploadIsDropped(t *testing.T) {
	defer proxy.SetPaceGrace(proxy.SetPaceGrace(time.Second))
	e := newEnv(t, "")
	e.serve("/up", nil)
	c, _ := net.Dial("tcp", e.addr)
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", e.url("/up"))
	start := time.Now()
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		_, err = c.Write([]byte("x"))
		time.Sleep(300 * time.Millisecond)
	}
	if err == nil {
		// The proxy may have closed without our write failing yet.
		c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("a trickling upload was still taken after %v (%v)", time.Since(start), err)
	}
}

// TestDebianPackageIsOpened: a .deb (an ar archive whose data.tar.xz
// holds the files) with EICAR inside was delivered: the ar members were
// not opened. It is refused now, and its clean twin arrives byte for
// byte.
func TestDebianPackageIsOpened(t *testing.T) {
	deb := testenv.Need(t, "dpkg-deb", "dpkg")
	build := func(content []byte) []byte {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "pkg", "DEBIAN"), 0o755)
		os.MkdirAll(filepath.Join(dir, "pkg", "usr", "bin"), 0o755)
		os.WriteFile(filepath.Join(dir, "pkg", "DEBIAN", "control"), []byte("Package: x\nVersion: 1\nArchitecture: all\nMaintainer: a <a@example.com>\nDescription: x\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "pkg", "usr", "bin", "tool"), content, 0o755)
		if out, err := exec.Command(deb, "--root-owner-group", "-Zxz", "--build", filepath.Join(dir, "pkg"), filepath.Join(dir, "x.deb")).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb: %v %s", err, out)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "x.deb"))
		return b
	}
	e := newEnv(t, "")
	bad, good := build([]byte(eicar.String)), build([]byte("#!/bin/sh\necho a harmless tool\n"))
	e.serve("/bad.deb", bad)
	e.serve("/good.deb", good)
	if code, body := e.get("/bad.deb"); code != 403 || !strings.Contains(string(body), "Eicar-Test-Signature") {
		t.Errorf("the infected package: %d %.200q", code, body)
	}
	if code, body := e.get("/good.deb"); code != 200 || !bytes.Equal(body, good) {
		t.Errorf("the clean package: %d, %d bytes of %d", code, len(body), len(good))
	}
}

// TestBase64PartInAFormUpload: a multipart/form-data upload whose part is
// base64-encoded (Content-Transfer-Encoding) was scanned as it came, the
// part never decoded; a server that honours the coding stored EICAR. The
// parts are walked as a mail's now, in several forms (behind a preamble
// or a decoy delimiter too, which the server's reader skips); the clean
// twin reaches the server byte for byte.
func TestBase64PartInAFormUpload(t *testing.T) {
	e := newEnv(t, "")
	e.serve("/upload", []byte("stored"))
	form := func(pre, boundary, partHead string, content []byte) []byte {
		return []byte(pre + "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n" + partHead +
			"\r\n" + base64.StdEncoding.EncodeToString(content) + "\r\n--" + boundary + "--\r\n")
	}
	for name, c := range map[string]struct{ pre, boundary, head string }{
		"base64":                 {"", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"},
		"base64, no type":        {"", "xYzZY", "Content-Transfer-Encoding: base64\r\n"},
		"x-base64, odd boundary": {"", "a'(b)+_,-./:=?c", "Content-Transfer-Encoding: x-base64\r\n"},
		"after a preamble":       {"a preamble the server skips\r\n", "b1", "Content-Transfer-Encoding: base64\r\n"},
		"after a decoy":          {"--decoy\r\nContent-Type: text/plain\r\n\r\n", "b2", "Content-Transfer-Encoding: base64\r\n"},
	} {
		bad := form(c.pre, c.boundary, c.head, []byte(eicar.String))
		resp, err := e.client().Post(e.url("/upload"), "multipart/form-data; boundary="+c.boundary, bytes.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("%s: EICAR in a base64 part got %d", name, resp.StatusCode)
		}
		good := form(c.pre, c.boundary, c.head, []byte("a harmless file"))
		resp, err = e.client().Post(e.url("/upload"), "multipart/form-data; boundary="+c.boundary, bytes.NewReader(good))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		e.mu.Lock()
		got := e.got["/upload"]
		e.mu.Unlock()
		if resp.StatusCode != 200 || !bytes.Equal(got, good) {
			t.Errorf("%s: the clean upload: %d, the server got %d bytes of %d", name, resp.StatusCode, len(got), len(good))
		}
	}
}

// TestKeptAliveClientSpeaksAgain: a client kept alive waits without a
// read buffer; what it sends next (a head far over the 512 bytes it is
// awaited on, sent in pieces; a body behind it; an infected object after
// a pause) reads as it would have on the first request.
func TestKeptAliveClientSpeaksAgain(t *testing.T) {
	e := newEnv(t, "")
	e.serve("/clean", []byte("hello"))
	e.serve("/eicar", []byte(eicar.String))
	e.serve("/upload", []byte("stored"))
	u := strings.TrimPrefix(e.origin.URL, "http://")
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	answer := func(name string, want int, body string) {
		t.Helper()
		resp, err := gohttp.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (body != "" && string(b) != body) {
			t.Fatalf("%s: %d %q", name, resp.StatusCode, b)
		}
	}
	fmt.Fprintf(c, "GET http://%s/clean HTTP/1.1\r\nHost: %s\r\n\r\n", u, u)
	answer("first", 200, "hello")

	time.Sleep(200 * time.Millisecond)
	head := fmt.Sprintf("GET http://%s/clean HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n\r\n", u, u, strings.Repeat("c", 6000))
	for len(head) > 0 {
		n := min(300, len(head))
		c.Write([]byte(head[:n]))
		head = head[n:]
		time.Sleep(5 * time.Millisecond)
	}
	answer("a long head in pieces", 200, "hello")

	time.Sleep(200 * time.Millisecond)
	body := randomBytes(3000)
	fmt.Fprintf(c, "POST http://%s/upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s", u, u, len(body), body)
	answer("a body behind the head", 200, "")
	e.mu.Lock()
	got := e.got["/upload"]
	e.mu.Unlock()
	if !bytes.Equal(got, body) {
		t.Fatalf("the server got %d bytes of %d", len(got), len(body))
	}

	time.Sleep(200 * time.Millisecond)
	fmt.Fprintf(c, "GET http://%s/eicar HTTP/1.1\r\nHost: %s\r\n\r\n", u, u)
	answer("infected after a pause", 403, "")
}

// TestSilentServerTimesOutOnce: a server that takes the request and never
// answers gets idle_timeout to begin its answer, once: the request is
// sent with the answer's wait armed (package sendwait), and the read of
// the answer after it keeps that deadline rather than starting another.
func TestSilentServerTimesOutOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				bufio.NewReader(c).ReadString('\n')
				time.Sleep(10 * time.Second)
			}()
		}
	}()
	e := newEnv(t, "idle_timeout = 1")
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "GET http://%s/x HTTP/1.1\r\nHost: %s\r\n\r\n", ln.Addr(), ln.Addr())
	c.SetReadDeadline(time.Now().Add(8 * time.Second))
	status, err := bufio.NewReader(c).ReadString('\n')
	took := time.Since(start)
	if err != nil || !strings.Contains(status, " 502 ") {
		t.Fatalf("a silent server: %q, %v after %v", status, err, took)
	}
	if took < 900*time.Millisecond || took > 1900*time.Millisecond {
		t.Fatalf("a silent server was given %v, idle_timeout being 1 s", took)
	}
}
