package http

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/packtest"
	"github.com/fsigkd/fsigkd/proxy"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/spool"
)

// TestWithRealClamd: the same proxy with clamd behind it (FILDES).
func TestWithRealClamd(t *testing.T) {
	clamd := enginetest.Clamd(t, "")
	e := newEnv(t, "")
	eps, _ := scanner.ParseEndpoints(clamd.Sock, "")
	e.p.Scanner = scanner.NewClamd(&scanner.Pool{Endpoints: eps}, false)
	e.serve("/e.gz", packtest.Gzip([]byte(eicar.String)), "Content-Encoding", "gzip")
	e.serve("/zip", zipped(t, "a/b.txt", []byte("x "+enginetest.TestString)))
	e.serve("/clean", []byte("clean"))
	if code, body := e.get("/e.gz"); code != 403 || !strings.Contains(string(body), "Eicar-Test-Signature.UNOFFICIAL") {
		t.Fatalf("gzip EICAR: %d %s", code, body)
	}
	if code, _ := e.get("/zip"); code != 403 {
		t.Fatalf("test signature in a zip: %d", code)
	}
	if code, body := e.get("/clean"); code != 200 || string(body) != "clean" {
		t.Fatalf("clean: %d %q", code, body)
	}
}

// stalledReceiver is a client of e, with sendfile_timeout at a second,
// that sends what requests gives (its host and port in origin-form) and
// reads nothing after the first line of an answer; it waits for the M07
// whose text begins and ends as said.
func stalledReceiver(t *testing.T, e *env, requests func(hostport string) string, begins, ends string) {
	t.Helper()
	e.p.Global.SendfileTimeout = time.Second
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	go func() {
		c.Write([]byte(requests(strings.TrimPrefix(e.origin.URL, "http://"))))
		bufio.NewReader(c).ReadString('\n') // the status line, then nothing more is read
	}()
	m07 := "sendfile timeout: No data can be sent for 1 seconds. There may be a temporary network problem between receiver. / URL=["
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, l := range e.obs.All() {
			if strings.HasPrefix(l.Message, m07+begins) && strings.HasSuffix(l.Message, ends) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no M07: %v", e.obs.All())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReceiverThatStopsReadingIsDropped: M07 after sendfile_timeout.
func TestReceiverThatStopsReadingIsDropped(t *testing.T) {
	e := newEnv(t, "")
	e.serve("/big", make([]byte, 32<<20))
	stalledReceiver(t, e, func(u string) string {
		return "GET http://" + u + "/big HTTP/1.1\r\nHost: " + u + "\r\n\r\n"
	}, e.url("/big")+"], n=0, written=", ", filelen=33554432, writesize=1048576")
}

// TestReceiverThatStopsReadingSmallObjects: small bodies go out in the
// write of their head, not by sendfile; a client that pipelines requests
// and reads none of the answers still gets M07 after sendfile_timeout,
// and the session ends.
func TestReceiverThatStopsReadingSmallObjects(t *testing.T) {
	e := newEnv(t, "")
	e.serve("/small", make([]byte, spool.InlineSize))
	stalledReceiver(t, e, func(u string) string {
		return strings.Repeat("GET http://"+u+"/small HTTP/1.1\r\nHost: "+u+"\r\n\r\n", 2000)
	}, e.url("/small")+"], n=", fmt.Sprintf(", filelen=%d, writesize=%d", spool.InlineSize, spool.InlineSize))
}

func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReader(strings.NewReader(string(b)))
		req, err := ReadRequest(br, Limits{})
		if err != nil {
			return
		}
		if req.Chunked && req.ContentLength >= 0 {
			t.Fatal("both chunked and a length")
		}
		n := 0
		for _, fl := range req.Header {
			if strings.EqualFold(fl.Name, "Content-Length") {
				n++
			}
		}
		if n > 1 {
			t.Fatal("two Content-Length fields accepted")
		}
		buf := make([]byte, 4096)
		r := bodyReader(br, req.Chunked, req.ContentLength)
		for i := 0; i < 1000; i++ {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
	})
}

func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.0 204 No Content\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReader(strings.NewReader(string(b)))
		resp, err := ReadResponse(br, 1024, "GET")
		if err == nil && resp.Chunked && resp.ContentLength >= 0 {
			t.Fatal("both chunked and a length")
		}
	})
}

// TestAdminNoticeOnDetection: a blocked download sends the admin notice.
func TestAdminNoticeOnDetection(t *testing.T) {
	admin := servertest.NewMailSink(t, nil, nil)
	host, port, _ := net.SplitHostPort(admin.Addr)
	e := newEnv(t, "notify_admin = yes\nadmin_mx_host = "+host+"\nadmin_mx_port = "+port+"\nadmin_notification_id = gw-1")
	e.serve("/e", []byte(eicar.String))
	if code, _ := e.get("/e"); code != 403 {
		t.Fatalf("EICAR: %d", code)
	}
	for deadline := time.Now().Add(10 * time.Second); len(admin.Mails()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no admin notice")
		}
	}
	msg := string(admin.Mails()[0].Data)
	if !strings.Contains(msg, "X-Admin-Notification-Id: gw-1") || !strings.Contains(msg, "Eicar-Test-Signature") || !strings.Contains(msg, e.url("/e")) {
		t.Fatalf("notice:\n%s", msg)
	}
}

// TestParentProxy: a proxy chained behind another (parent_server_host)
// still blocks and passes.
func TestParentProxy(t *testing.T) {
	parent := newEnv(t, "")
	parent.serve("/ok", []byte("fine"))
	parent.serve("/e", []byte(eicar.String))
	host, port, _ := net.SplitHostPort(parent.addr)
	child := newEnv(t, "parent_server_host = "+host+"\nparent_server_port = "+port)
	child.origin = parent.origin
	if code, body := child.get("/ok"); code != 200 || string(body) != "fine" {
		t.Fatalf("through two proxies: %d %q", code, body)
	}
	if code, _ := child.get("/e"); code != 403 {
		t.Fatalf("EICAR through two proxies: %d", code)
	}
	if !strings.Contains(parent.accessLog(2), " GET "+parent.url("/ok")) {
		t.Errorf("the parent did not serve the request:\n%s", parent.accessLog())
	}
}

// TestHeadAndNoContent: responses without a body keep their own head.
func TestHeadAndNoContent(t *testing.T) {
	e := newEnv(t, "")
	e.serve("/f", []byte("0123456789"))
	e.mux.HandleFunc("/none", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	resp, err := e.client().Head(e.url("/f"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != 10 {
		t.Fatalf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	if code, body := e.get("/none"); code != 204 || len(body) != 0 {
		t.Fatalf("204: %d %q", code, body)
	}
}

// TestCustomBlockPage: block_page replaces the built-in page.
func TestCustomBlockPage(t *testing.T) {
	page := filepath.Join(t.TempDir(), "block.html")
	os.WriteFile(page, []byte("<p>STOP {{.Name}} at {{.URL}}</p>"), 0o644)
	e := newEnv(t, "block_page = "+page)
	e.serve("/e", []byte(eicar.String))
	code, body := e.get("/e")
	if code != 403 || string(body) != "<p>STOP Eicar-Test-Signature at "+e.url("/e")+"</p>" {
		t.Fatalf("%d %q", code, body)
	}
}

// TestRangeServedFromTheScannedObject: the part asked for, cut from the
// whole object fetched and scanned.
func TestRangeServedFromTheScannedObject(t *testing.T) {
	e := newEnv(t, "")
	data := []byte("0123456789abcdefghij")
	e.mux.HandleFunc("/f", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			t.Errorf("the origin was asked for a range: %q", r.Header.Get("Range"))
		}
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(data))
	})
	for spec, want := range map[string]string{"bytes=2-5": "2345", "bytes=15-": "fghij", "bytes=-3": "hij", "bytes=0-1,4-5": string(data), "bytes=40-50": string(data)} {
		req, _ := http.NewRequest("GET", e.url("/f"), nil)
		req.Header.Set("Range", spec)
		resp, err := e.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("%s: %d %q, want %q", spec, resp.StatusCode, b, want)
		}
		if len(want) < len(data) && (resp.StatusCode != 206 || !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes ")) {
			t.Errorf("%s: %d %q", spec, resp.StatusCode, resp.Header.Get("Content-Range"))
		}
	}
}

// TestTransparentRequestThatNamesTheProxy: in transparent mode, a request
// sent straight to the proxy's port (not diverted) gets a 400; the proxy
// does not forward it to itself.
func TestTransparentRequestThatNamesTheProxy(t *testing.T) {
	e := newEnv(t, "transparent = yes")
	got := e.raw("GET /x HTTP/1.1\r\nHost: " + e.addr + "\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 400 ") || !strings.Contains(got, "not diverted") {
		t.Errorf("a request naming the proxy itself:\n%s", got)
	}
	if n := strings.Count(e.accessLog(1), "\n"); n != 1 {
		t.Errorf("%d access-log lines, want 1 (no request came back through the proxy)", n)
	}
}

// TestStopDoesNotDropANewClient: a client that connected just before a
// stop (or a reload) and has not yet sent its request is served, not
// closed as an idle connection.
func TestStopDoesNotDropANewClient(t *testing.T) {
	e := newEnv(t, "")
	e.serve("/x", []byte("hello"))
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); e.p.Sessions.Len() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the connection was not taken")
		}
	}
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopped <- e.p.Shutdown(ctx)
	}()
	// Once the stop is under way, a client that comes now is turned away.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		late, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		// A client taken just before the stop waits out the fresh
		// grace: the look is short, so that the loop does not spend the
		// grace of c, the client under test.
		late.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err = late.Read(make([]byte, 1))
		late.Close()
		if err == io.EOF {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stop did not begin")
		}
	}
	u := strings.TrimPrefix(e.origin.URL, "http://")
	c.Write([]byte("GET http://" + u + "/x HTTP/1.1\r\nHost: " + u + "\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	raw, _ := io.ReadAll(c)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("the new client got no answer: %v %q", err, raw)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Errorf("%d %q", resp.StatusCode, body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestProxyDoesNotReachTheGatewaysOwnServices: a POST through the proxy to
// the gateway's SMTP port delivered a mail, and CONNECT reached loopback.
// With the default deny_servers, plain requests and CONNECT to loopback
// (by name, mapped, 0.0.0.0) and to the gateway's own addresses get 403,
// and nothing reaches the service.
func TestProxyDoesNotReachTheGatewaysOwnServices(t *testing.T) {
	sink := servertest.NewMailSink(t, nil, nil)
	_, port, _ := net.SplitHostPort(sink.Addr)
	c, _ := proxytest.Common(t, "http", "connect_ports = 443, "+port)
	p := &Proxy{SessionServer: proxy.NewSessionServer(c)}
	if err := p.init(); err != nil {
		t.Fatal(err)
	}
	addr := proxytest.Serve(t, p)
	hosts := []string{"127.0.0.1", "localhost", "0.0.0.0", "[::ffff:127.0.0.1]", "127.1.2.3"}
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
				hosts = append(hosts, n.IP.String())
				break
			}
		}
	}
	mail := "HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: ssrf\r\n\r\nhi\r\n.\r\nQUIT\r\n"
	for _, h := range hosts {
		for _, req := range []string{
			fmt.Sprintf("POST http://%s:%s/ HTTP/1.1\r\nHost: %s:%s\r\nContent-Length: %d\r\n\r\n%s", h, port, h, port, len(mail), mail),
			fmt.Sprintf("CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n%s", h, port, h, port, mail),
		} {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.Write([]byte(req))
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if !strings.HasPrefix(line, "HTTP/1.1 403 ") {
				t.Errorf("%s: %q", strings.SplitN(req, "\r\n", 2)[0], line)
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(sink.Mails()); n != 0 {
		t.Fatalf("%d mails reached the gateway's own SMTP service", n)
	}
}

// TestHostIsTheTargetsAuthority: with an absolute URI the proxy sends the
// URI's authority as Host, whatever Host the client sent (RFC 9112 3.2.2):
// a server behind name-based virtual hosts cannot be steered elsewhere.
func TestHostIsTheTargetsAuthority(t *testing.T) {
	e := newEnv(t, "")
	hosts := make(chan string, 1)
	e.mux.HandleFunc("/h", func(w http.ResponseWriter, r *http.Request) { hosts <- r.Host })
	u := strings.TrimPrefix(e.origin.URL, "http://")
	e.raw("GET " + e.url("/h") + " HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
	if got := <-hosts; got != u {
		t.Fatalf("the server saw Host %q, want %q", got, u)
	}
}

// TestMaxForwardsZeroIsAnsweredByTheProxy: TRACE and OPTIONS with
// Max-Forwards: 0 are answered by the proxy, never forwarded; with more,
// they go on with one less.
func TestMaxForwardsZeroIsAnsweredByTheProxy(t *testing.T) {
	e := newEnv(t, "")
	seen := make(chan string, 4)
	e.mux.HandleFunc("/t", func(w http.ResponseWriter, r *http.Request) { seen <- r.Method + " " + r.Header.Get("Max-Forwards") })
	got := e.raw("TRACE " + e.url("/t") + " HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nX-Probe: 1\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.Contains(got, "Content-Type: message/http") || !strings.Contains(got, "X-Probe: 1") {
		t.Fatalf("TRACE: %q", got)
	}
	got = e.raw("OPTIONS " + e.url("/t") + " HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.Contains(got, "Allow: ") {
		t.Fatalf("OPTIONS: %q", got)
	}
	select {
	case m := <-seen:
		t.Fatalf("the server got %s", m)
	default:
	}
	e.raw("TRACE " + e.url("/t") + " HTTP/1.1\r\nHost: x\r\nMax-Forwards: 3\r\nConnection: close\r\n\r\n")
	if m := <-seen; m != "TRACE 2" {
		t.Fatalf("forwarded as %q", m)
	}
}

// TestStoppedEngineIsSaidWhileClientsWait: clamd stopped (SIGSTOP): the
// scans wait, and a line says so at a quarter of av_timeout (once a
// minute, not once a request), before av_timeout ends them per
// scan_failure.
func TestStoppedEngineIsSaidWhileClientsWait(t *testing.T) {
	clamd := enginetest.Clamd(t, "")
	e := newEnv(t, "")
	e.p.Global.AVTimeout = 4 * time.Second
	eps, _ := scanner.ParseEndpoints(clamd.Sock, "")
	e.p.Scanner = scanner.NewClamd(&scanner.Pool{Endpoints: eps}, false)
	e.serve("/clean", []byte("clean"))
	if code, _ := e.get("/clean"); code != 200 {
		t.Fatalf("before: %d", code)
	}
	clamd.Freeze()
	defer clamd.Thaw()
	done := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() { code, _ := e.get("/clean"); done <- code }()
	}
	time.Sleep(2 * time.Second)
	if n := len(e.obs.FilterMessageSnippet("a scan is taking long").All()); n != 1 {
		t.Fatalf("%d lines about the slow engine while two scans wait", n)
	}
	for i := 0; i < 2; i++ {
		if code := <-done; code != 403 {
			t.Errorf("a scan that timed out: %d", code)
		}
	}
}

// TestActionPassDelivers: with action = pass a detection is delivered,
// logged ACTION:PASS, and the admin told (it was blocked all the same).
func TestActionPassDelivers(t *testing.T) {
	admin := servertest.NewMailSink(t, nil, nil)
	host, port, _ := net.SplitHostPort(admin.Addr)
	e := newEnv(t, "action = pass\nnotify_admin = yes\nadmin_mx_host = "+host+"\nadmin_mx_port = "+port)
	e.serve("/e", []byte(eicar.String))
	if code, body := e.get("/e"); code != 200 || string(body) != eicar.String {
		t.Fatalf("action = pass: %d", code)
	}
	if log := e.accessLog(); !strings.Contains(log, "DETECT-STAT:INFECTED:Eicar-Test-Signature:") || !strings.Contains(log, "ACTION:PASS:") {
		t.Errorf("access log: %s", log)
	}
	for deadline := time.Now().Add(10 * time.Second); len(admin.Mails()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no admin notice")
		}
	}
}

// TestPageBytesAreLogged: a 502 page of ours is logged with its size.
func TestPageBytesAreLogged(t *testing.T) {
	e := newEnv(t, "")
	dead := testenv.FreePort(t)
	e.raw(fmt.Sprintf("GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", dead))
	log := e.accessLog()
	if !strings.Contains(log, "TCP_MISS/502 ") || strings.Contains(log, "TCP_MISS/502 0 ") {
		t.Fatalf("access log: %s", log)
	}
}

// TestErrorPagesShowNoInternals: a server that cannot be reached gets the
// client a reason in words, not the gateway's error text (addresses, "dial
// tcp").
func TestErrorPagesShowNoInternals(t *testing.T) {
	e := newEnv(t, "")
	dead := testenv.FreePort(t)
	out := e.raw(fmt.Sprintf("GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", dead))
	if !strings.Contains(out, "could not be reached (connection refused)") || strings.Contains(out, "dial tcp") {
		t.Fatalf("%q", out)
	}
}

// TestAllowClientsAsCheckReadsIt: allow_clients takes what fsigkd check
// accepts (bare addresses, self); a bare address passed check and then
// stopped the worker, which read networks only.
func TestAllowClientsAsCheckReadsIt(t *testing.T) {
	for _, list := range []string{"127.0.0.1", "self", "10.0.0.0/8, 127.0.0.1"} {
		e := newEnv(t, "allow_clients = "+list)
		e.serve("/x", []byte("ok"))
		if code, body := e.get("/x"); code != 200 || string(body) != "ok" {
			t.Errorf("allow_clients = %s: %d", list, code)
		}
	}
	e := newEnv(t, "allow_clients = 192.0.2.1")
	e.serve("/x", []byte("ok"))
	if code, _ := e.get("/x"); code != 403 {
		t.Errorf("a client outside allow_clients: %d", code)
	}
}

// TestVerdictCacheSparesASecondScan: the same bytes fetched again (under
// another URL, or gzipped: the decoded body is what is kept) are judged by
// the kept verdict, with no engine call; EICAR stays blocked. An object
// past 64 KiB is summed only from its second time (its head met before),
// and judged by the cache from its third.
func TestVerdictCacheSparesASecondScan(t *testing.T) {
	e := newEnv(t, "")
	body := randomBytes(60 << 10)
	e.serve("/a", body)
	e.serve("/b", body)
	e.serve("/c.gz", packtest.Gzip(body), "Content-Encoding", "gzip")
	e.serve("/v1", []byte(eicar.String))
	e.serve("/v2", []byte(eicar.String))
	for i, path := range []string{"/a", "/b", "/c.gz"} {
		resp, err := e.client().Get(e.url(path))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || (path != "/c.gz" && !bytes.Equal(b, body)) {
			t.Fatalf("%s: %d, %d bytes", path, resp.StatusCode, len(b))
		}
		line := lastLine(e.accessLog(i + 1))
		if cached := strings.Contains(line, "verdict%20cached"); cached != (i > 0) || !strings.Contains(line, "DETECT-STAT:CLEAN:") {
			t.Fatalf("%s: %s", path, line)
		}
		if i > 0 && !regexp.MustCompile(`:1:0:\d+:verdict%20cached:$`).MatchString(strings.TrimSpace(line)) {
			t.Fatalf("%s: an engine call was counted: %s", path, line)
		}
	}
	for i, path := range []string{"/v1", "/v2"} {
		if code, _ := e.get(path); code != 403 {
			t.Fatalf("%s: %d", path, code)
		}
		line := lastLine(e.accessLog(4 + i))
		if !strings.Contains(line, "DETECT-STAT:INFECTED:Eicar-Test-Signature:") || strings.Contains(line, "verdict%20cached") != (i > 0) {
			t.Fatalf("%s: %s", path, line)
		}
	}
	large := randomBytes(300 << 10)
	for i, path := range []string{"/l1", "/l2", "/l3"} {
		e.serve(path, large)
		if code, b := e.get(path); code != 200 || !bytes.Equal(b, large) {
			t.Fatalf("%s: %d, %d bytes", path, code, len(b))
		}
		line := lastLine(e.accessLog(6 + i))
		if strings.Contains(line, "verdict%20cached") != (i == 2) || !strings.Contains(line, "DETECT-STAT:CLEAN:") {
			t.Fatalf("%s, time %d: %s", path, i+1, line)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestSkipListsPassUnscannedAndSaySo: a skip-listed host, URL prefix,
// client or content type gets even EICAR through, logged SKIPPED (never
// CLEAN); what no list names is still scanned.
func TestSkipListsPassUnscannedAndSaySo(t *testing.T) {
	for _, tc := range []struct {
		name, keys, path, key, ctype string
	}{
		{"host", "skip_hosts = 127.0.0.1", "/any/eicar", "skip_hosts", ""},
		{"url prefix", "skip_urls = {origin}/trusted/", "/trusted/eicar", "skip_urls", ""},
		{"client", "skip_clients = 10.0.0.0/8, 127.0.0.0/8", "/x", "skip_clients", ""},
		{"content type", "skip_types = video/*", "/movie", "skip_types", "video/mp4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.keys)
			e.serve(tc.path, []byte(eicar.String), "Content-Type", tc.ctype)
			if code, b := e.get(tc.path); code != 200 || string(b) != eicar.String {
				t.Fatalf("%d %q", code, b)
			}
			line := lastLine(e.accessLog(1))
			if !strings.Contains(line, "DETECT-STAT:SKIPPED:"+tc.key+":") || !strings.Contains(line, "ACTION:PASS:") || strings.Contains(line, "CLEAN") {
				t.Fatalf("access log: %s", line)
			}
		})
	}
	t.Run("not listed", func(t *testing.T) {
		e := newEnv(t, "skip_hosts = example.com\nskip_urls = {origin}/trusted/\nskip_types = video/*")
		e.serve("/untrusted/eicar", []byte(eicar.String), "Content-Type", "videos/mp4")
		e.serve("/trusted", []byte(eicar.String))
		for _, path := range []string{"/untrusted/eicar", "/trusted"} {
			if code, _ := e.get(path); code != 403 {
				t.Fatalf("%s: %d", path, code)
			}
		}
	})
}

// TestTypeAndNameRules: a Windows program renamed .txt inside a zip is
// refused by block_types, whatever its name and Content-Type, with the
// rule on the block page and in the access log; a name rule matches the
// URL's last part and Content-Disposition's file name, read leniently.
func TestTypeAndNameRules(t *testing.T) {
	e := newEnv(t, "block_types = exe, lnk\nblock_names = *.scr, *.hta")
	e.serve("/bundle.zip", zipped(t, "readme.txt", eicar.WindowsProgram(false)), "Content-Type", "text/plain")
	e.serve("/photo.scr", []byte("just text"))
	e.serve("/download", []byte("just text"), "Content-Disposition", `attachment; filename="game.SCR"`)
	e.serve("/broken-cd", []byte("just text"), "Content-Disposition", `attachment; filename=app.hta; x="`)
	e.serve("/ok.zip", zipped(t, "readme.txt", []byte("plain text")))
	for _, c := range []struct{ path, rule string }{
		{"/bundle.zip", "block_types=exe"}, {"/photo.scr", "block_names=*.scr"},
		{"/download", "block_names=*.scr"}, {"/broken-cd", "block_names=*.hta"},
	} {
		code, body := e.get(c.path)
		if code != 403 || !strings.Contains(string(body), c.rule) {
			t.Errorf("%s: %d %.300s", c.path, code, body)
		}
		e.waitLogHas(t, c.path, "DETECT-STAT:BLOCKED:"+c.rule+":")
	}
	if code, _ := e.get("/ok.zip"); code != 200 {
		t.Fatalf("a clean zip: %d", code)
	}
	if !strings.Contains(e.accessLog(5), "DETECT-STAT:BLOCKED:block_types=exe:readme.txt:") {
		t.Fatalf("the member is not named:\n%s", e.accessLog(5))
	}
}

// waitLogHas waits for the access-log line of path to hold want.
func (e *env) waitLogHas(t *testing.T, path, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, l := range strings.Split(e.accessLog(), "\n") {
			if strings.Contains(l, path+" ") && strings.Contains(l, want) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no access-log line with %q:\n%s", path, want, e.accessLog())
		}
	}
}

// TestQuarantineKeepsTheBodyAsSent: with quarantine = yes a blocked
// download is kept as the server sent it (gzipped here), its id in the
// access log; a clean one is not kept.
func TestQuarantineKeepsTheBodyAsSent(t *testing.T) {
	e := newEnv(t, "quarantine = yes")
	body := packtest.Gzip([]byte(eicar.String))
	e.serve("/e.gz", body, "Content-Encoding", "gzip")
	e.serve("/clean", []byte("clean"))
	if code, _ := e.get("/e.gz"); code != 403 {
		t.Fatalf("%d", code)
	}
	e.get("/clean")
	m := regexp.MustCompile(`DETECT-STAT:INFECTED:Eicar-Test-Signature::([0-9a-f-]+)::`).FindStringSubmatch(e.accessLog(2))
	if m == nil {
		t.Fatalf("no quarantine id:\n%s", e.accessLog(2))
	}
	kept, err := os.ReadFile(filepath.Join(e.quarantine, m[1]+".data"))
	if err != nil || !bytes.Equal(kept, body) {
		t.Fatalf("kept %d bytes, %v", len(kept), err)
	}
	if all, _ := filepath.Glob(filepath.Join(e.quarantine, "*.data")); len(all) != 1 {
		t.Fatalf("kept %v", all)
	}
}

// TestTypeRulesWithAnEngineThatDoesNotApplyThem: behind clamd (which
// knows nothing of the rules) the gateway walks the object itself; behind
// the bundled fsavd the engine's pass applies them and says so.
func TestTypeRulesWithAnEngineThatDoesNotApplyThem(t *testing.T) {
	clamd := enginetest.Clamd(t, "")
	e := newEnv(t, "block_types = exe")
	eps, _ := scanner.ParseEndpoints(clamd.Sock, "")
	e.p.Scanner = scanner.NewClamd(&scanner.Pool{Endpoints: eps}, false)
	e.serve("/bundle.zip", zipped(t, "readme.txt", eicar.WindowsProgram(false)))
	if code, body := e.get("/bundle.zip"); code != 403 || !strings.Contains(string(body), "block_types=exe") {
		t.Fatalf("behind clamd: %d %.200s", code, body)
	}
	e.waitLogHas(t, "/bundle.zip", "DETECT-STAT:BLOCKED:block_types=exe:readme.txt:")

	f := newEnv(t, "block_types = exe")
	f.serve("/bundle.zip", zipped(t, "readme.txt", eicar.WindowsProgram(false)))
	if code, _ := f.get("/bundle.zip"); code != 403 {
		t.Fatalf("behind fsavd: %d", code)
	}
	f.waitLogHas(t, "/bundle.zip", "DETECT-STAT:BLOCKED:block_types=exe:readme.txt:")
}

// TestQuietKeptAliveClientWaitsOnANewGoroutine: a kept-alive client
// silent longer than parkAfter has its session go on in a new goroutine
// (resume), which waits on a small stack; its next requests are served
// there, EICAR among them blocked, and a stop closes it at once as idle.
func TestQuietKeptAliveClientWaitsOnANewGoroutine(t *testing.T) {
	e := newEnv(t, "")
	e.serve("/a", []byte("first"))
	e.serve("/eicar", []byte(eicar.String))
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	get := func(path string) (int, string) {
		t.Helper()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: origin\r\n\r\n", e.url(path))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	resumed := func() int {
		var b bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&b, 2)
		n := 0
		for _, g := range strings.Split(b.String(), "\n\n") {
			// Waiting for the client in resume itself (not answering a
			// request it took, nor in the keepAlive it goes on to: a
			// client may have its answer before the session is done
			// with it).
			if strings.Contains(g, "(*session).resume(") && strings.Contains(g, "(*session).awaitRequest(") && !strings.Contains(g, "(*session).keepAlive(") {
				n++
			}
		}
		return n
	}
	for round := 1; round <= 2; round++ {
		if code, body := get("/a"); code != 200 || body != "first" {
			t.Fatalf("round %d: %d %q", round, code, body)
		}
		if n := resumed(); n != 0 {
			t.Fatalf("round %d: a session moved while its client was not yet quiet (%d)", round, n)
		}
		time.Sleep(parkAfter + 300*time.Millisecond)
		if n := resumed(); n != 1 {
			t.Fatalf("round %d: %d sessions waiting in resume after the client was quiet, want 1", round, n)
		}
	}
	if code, _ := get("/eicar"); code != 403 {
		t.Fatalf("EICAR after the move: %d", code)
	}
	time.Sleep(parkAfter + 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the stop waited %v for a moved idle session", d)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the idle client was not closed by the stop")
	}
	if n := resumed(); n != 0 {
		t.Fatalf("%d sessions still in resume after the stop", n)
	}
}
