package icap

import (
	"bufio"
	"bytes"
	"context"
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

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/packtest"
	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
)

type env struct {
	t    *testing.T
	p    *Proxy
	addr string
	kit  proxytest.Kit
}

func newEnv(t *testing.T, keys string) *env {
	t.Helper()
	c, kit := proxytest.Common(t, "icap", keys)
	e := &env{t: t, p: &Proxy{SessionServer: proxy.NewSessionServer(c)}, kit: kit}
	if err := e.p.init(); err != nil {
		t.Fatal(err)
	}
	e.addr = proxytest.Serve(t, e.p)
	return e
}

func (e *env) waitLog(want ...string) { e.t.Helper(); e.kit.WaitLog(e.t, want...) }

// cicap runs c-icap's own client against the server.
func (e *env) cicap(args ...string) string {
	e.t.Helper()
	bin := testenv.Need(e.t, "c-icap-client", "c-icap")
	host, port, _ := net.SplitHostPort(e.addr)
	out, err := exec.Command(bin, append([]string{"-i", host, "-p", port, "-v"}, args...)...).CombinedOutput()
	if err != nil {
		e.t.Logf("c-icap-client %v: %v", args, err)
	}
	return string(out)
}

func write(t *testing.T, data []byte) string {
	p := filepath.Join(t.TempDir(), "body")
	os.WriteFile(p, data, 0o644)
	return p
}

// TestOptions: c-icap-client's OPTIONS shows what clients configure from.
func TestOptions(t *testing.T) {
	e := newEnv(t, "pre_spawn = 7")
	out := e.cicap("-s", "avscan")
	for _, want := range []string{"ICAP/1.0 200 OK", "Methods: RESPMOD, REQMOD", "ISTag: \"FSIGKD-", "Max-Connections: 7", "Options-TTL: 3600", "Allow: 204", "Preview: 1024", "Transfer-Preview: *"} {
		if !strings.Contains(out, want) {
			t.Errorf("OPTIONS lacks %q:\n%s", want, out)
		}
	}
	if out := e.cicap("-s", "respmod"); !strings.Contains(out, "Methods: RESPMOD\n") && !strings.Contains(out, "Methods: RESPMOD\r") {
		t.Errorf("/respmod OPTIONS:\n%s", out)
	}
	if out := e.cicap("-s", "nosuch"); !strings.Contains(out, "404") {
		t.Errorf("an unknown service:\n%s", out)
	}
}

// TestRespmodWithCICAPClient: clean objects get 204 (in and out of the
// preview), or come back whole when 204 is not allowed; EICAR gets the
// block page and the threat's name in the headers clients read.
func TestRespmodWithCICAPClient(t *testing.T) {
	e := newEnv(t, "")
	small := make([]byte, 100)
	rand.Read(small)
	big := make([]byte, 3<<20)
	rand.Read(big)
	for name, body := range map[string][]byte{"small (inside the preview)": small, "3 MiB (past the preview)": big} {
		out := e.cicap("-s", "avscan", "-f", write(t, body), "-resp", "http://origin.test/f")
		if !strings.Contains(out, "204") {
			t.Errorf("%s: clean object not 204:\n%.600s", name, out)
		}
		got := filepath.Join(t.TempDir(), "out")
		e.cicap("-s", "avscan", "-f", write(t, body), "-resp", "http://origin.test/f", "-no204", "-o", got)
		if b, _ := os.ReadFile(got); !bytes.Equal(b, body) {
			t.Errorf("%s without 204: %d bytes back, want %d", name, len(b), len(body))
		}
	}
	out := e.cicap("-s", "avscan", "-f", write(t, []byte(eicar.String)), "-resp", "http://origin.test/eicar.com")
	for _, want := range []string{"X-Infection-Found: Type=0; Resolution=2; Threat=Eicar-Test-Signature;", "X-Virus-ID: Eicar-Test-Signature", "X-FSecure-Infection-Name: \"Eicar-Test-Signature\"", "403 Forbidden"} {
		if !strings.Contains(out, want) {
			t.Errorf("EICAR: the answer lacks %q:\n%s", want, out)
		}
	}
	got := filepath.Join(t.TempDir(), "page")
	e.cicap("-s", "avscan", "-f", write(t, []byte(eicar.String)), "-resp", "http://origin.test/eicar.com", "-o", got)
	if b, _ := os.ReadFile(got); !bytes.Contains(b, []byte("Eicar-Test-Signature")) || bytes.Contains(b, []byte("EICAR-STANDARD")) {
		t.Errorf("the body given back for EICAR:\n%s", b)
	}
	e.waitLog("ICAP", "http://origin.test/eicar.com", "DETECT-STAT:INFECTED:Eicar-Test-Signature", "PROXY-STAT:icap:")
}

// TestReqmodBlocksUploads: an upload carrying EICAR gets a 403 response
// instead of going on; a clean one 204.
func TestReqmodBlocksUploads(t *testing.T) {
	e := newEnv(t, "")
	out := e.cicap("-s", "reqmod", "-f", write(t, []byte(eicar.String)), "-req", "http://origin.test/upload", "-method", "POST")
	if !strings.Contains(out, "Threat=Eicar-Test-Signature") || !strings.Contains(out, "403 Forbidden") {
		t.Errorf("EICAR upload:\n%s", out)
	}
	if out := e.cicap("-s", "reqmod", "-f", write(t, []byte("name=value")), "-req", "http://origin.test/upload", "-method", "POST"); !strings.Contains(out, "204") {
		t.Errorf("clean upload:\n%s", out)
	}
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "REQMOD icap://%s/respmod ICAP/1.0\r\nHost: x\r\nEncapsulated: req-hdr=0, null-body=22\r\n\r\nGET / HTTP/1.1\r\nA: b\r\n\r\n", e.addr)
	if l, _ := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(l, "ICAP/1.0 405 ") {
		t.Errorf("REQMOD on a RESPMOD-only service: %q", l)
	}
}

// TestOwnClientAgainstOwnServer: fsigkd's ICAP client (av_engine = icap)
// pointed at fsigkd's ICAP server finds what the bundled engine finds,
// gzip-coded too, and passes clean objects.
func TestOwnClientAgainstOwnServer(t *testing.T) {
	e := newEnv(t, "")
	eps, err := scanner.ParseEndpoints(e.addr, "")
	if err != nil {
		t.Fatal(err)
	}
	client := scanner.NewICAP(&scanner.Pool{Endpoints: eps}, "/avscan")
	scan := func(data []byte) scanner.Verdict {
		f, _ := os.CreateTemp(t.TempDir(), "obj")
		f.Write(data)
		defer f.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		v, err := client.Scan(ctx, &scanner.Object{File: f, Path: f.Name(), Size: int64(len(data)), Meta: scanner.Meta{URL: "http://x/y"}})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := scan([]byte(eicar.String)); v.Status == scanner.Clean || v.Name() != "Eicar-Test-Signature" {
		t.Errorf("EICAR: %+v", v)
	}
	clean := make([]byte, 200<<10)
	rand.Read(clean)
	if v := scan(clean); v.Status != scanner.Clean {
		t.Errorf("clean: %+v", v)
	}
}

// TestContentCodingsDecoded: a gzip-coded response carrying EICAR is
// blocked (the pipeline of the HTTP proxy: decoded for the scan).
func TestContentCodingsDecoded(t *testing.T) {
	e := newEnv(t, "")
	gz := packtest.Gzip([]byte(eicar.String))
	resp := respmod(t, e.addr, "/avscan", "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "+fmt.Sprint(len(gz))+"\r\n\r\n", gz, -1)
	if !strings.Contains(resp, "Threat=Eicar-Test-Signature") {
		t.Fatalf("gzip-coded EICAR:\n%s", resp)
	}
}

// respmod sends one RESPMOD by hand (preview -1: none) and returns the
// answer's head.
func respmod(t *testing.T, addr, path, resHdr string, body []byte, preview int) string {
	t.Helper()
	reqHdr := "GET http://origin.test/x HTTP/1.1\r\nHost: origin.test\r\n\r\n"
	head := fmt.Sprintf("RESPMOD icap://%s%s ICAP/1.0\r\nHost: %s\r\nAllow: 204\r\n", addr, path, addr)
	if preview >= 0 {
		head += fmt.Sprintf("Preview: %d\r\n", preview)
	}
	head += fmt.Sprintf("Encapsulated: req-hdr=0, res-hdr=%d, res-body=%d\r\n\r\n", len(reqHdr), len(reqHdr)+len(resHdr))
	return exchange(t, addr, head+reqHdr+resHdr, body)
}

// reqmod sends an upload (its request head, its body) for REQMOD.
func reqmod(t *testing.T, addr, reqHdr string, body []byte) string {
	t.Helper()
	head := fmt.Sprintf("REQMOD icap://%s/reqmod ICAP/1.0\r\nHost: %s\r\nAllow: 204\r\nEncapsulated: req-hdr=0, req-body=%d\r\n\r\n", addr, addr, len(reqHdr))
	return exchange(t, addr, head+reqHdr, body)
}

// exchange sends an ICAP request (its heads, then body chunked) and
// gives the answer's head.
func exchange(t *testing.T, addr, heads string, body []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s%x\r\n%s\r\n0\r\n\r\n", heads, len(body), body)
	br := bufio.NewReader(c)
	var out strings.Builder
	for {
		l, err := br.ReadString('\n')
		out.WriteString(l)
		if err != nil || l == "\r\n" {
			break
		}
	}
	return out.String()
}

// TestISTagFollowsTheSignatures: the ISTag is the engine's signature
// version's from the first OPTIONS on, not a placeholder that changes at
// the first scan.
func TestISTagFollowsTheSignatures(t *testing.T) {
	e := newEnv(t, "")
	tag := func() string {
		for _, l := range strings.Split(e.cicap("-s", "avscan"), "\n") {
			if strings.Contains(l, "ISTag:") {
				return strings.TrimSpace(l)
			}
		}
		return ""
	}
	first := tag()
	e.cicap("-s", "avscan", "-f", write(t, []byte("clean")), "-resp", "http://origin.test/x")
	if again := tag(); first == "" || again != first {
		t.Errorf("ISTag %q, then %q after a scan", first, again)
	}
	if first == `ISTag: "FSIGKD-`+istagOf("")+`"` {
		t.Errorf("the ISTag does not name the signature version: %s", first)
	}
}

// TestSkipListedAnsweredOnThePreview: a skip-listed URL's object gets 204
// on its preview (the rest is never asked for), logged SKIPPED; another
// URL's EICAR is still blocked.
func TestSkipListedAnsweredOnThePreview(t *testing.T) {
	e := newEnv(t, "skip_urls = origin.test/x")
	resHdr := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"
	if out := respmod(t, e.addr, "/respmod", resHdr, []byte(eicar.String[:20]), 20); !strings.HasPrefix(out, "ICAP/1.0 204") {
		t.Fatalf("answer:\n%s", out)
	}
	e.waitLog("DETECT-STAT:SKIPPED:skip_urls:")
	out := e.cicap("-s", "avscan", "-f", write(t, []byte(eicar.String)), "-resp", "http://origin.test/eicar.com")
	if !strings.Contains(out, "403 Forbidden") {
		t.Fatalf("not listed:\n%s", out)
	}
}

// TestTypeRulesOverICAP: a Windows program named .txt, sent by
// c-icap-client, gets the block page naming the rule, logged BLOCKED.
func TestTypeRulesOverICAP(t *testing.T) {
	e := newEnv(t, "block_types = exe")
	out := e.cicap("-s", "avscan", "-f", write(t, eicar.WindowsProgram(false)), "-resp", "http://origin.test/readme.txt")
	if !strings.Contains(out, "403 Forbidden") || !strings.Contains(out, "block_types=exe") {
		t.Fatalf("answer:\n%s", out)
	}
	e.waitLog("DETECT-STAT:BLOCKED:block_types=exe:")
}

// TestLargeBodiesFollowed: a body past proxy.FollowFrom, which the engine
// follows as it comes, is judged whole: the test file at 12 MiB of 20 is
// found; a clean one is passed (204).
func TestLargeBodiesFollowed(t *testing.T) {
	e := newEnv(t, "")
	body := make([]byte, 20<<20)
	rand.Read(body)
	hdr := "HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n"
	if resp := respmod(t, e.addr, "/avscan", hdr, body, -1); !strings.HasPrefix(resp, "ICAP/1.0 204") {
		t.Fatalf("a clean 20 MiB body:\n%s", resp)
	}
	copy(body[12<<20:], eicar.String)
	if resp := respmod(t, e.addr, "/avscan", hdr, body, -1); !strings.Contains(resp, "Threat=Eicar-Test-Signature") {
		t.Fatalf("the test file at 12 MiB:\n%s", resp)
	}
}

// TestICAPOverTLS: on tls_port, c-icap's own client with -tls gets the
// OPTIONS answer and a RESPMOD with EICAR refused, as on the plain port;
// a client that speaks ICAP in the clear there is answered nothing.
func TestICAPOverTLS(t *testing.T) {
	certFile, keyFile := servertest.WriteKeyPair(t, servertest.SelfSigned(t), t.TempDir())
	e := newEnv(t, "tls_cert = "+certFile+"\ntls_key = "+keyFile+"\nheader_timeout = 1")
	tlsAddr := proxytest.ServeTLS(t, e.p)
	bin := testenv.Need(t, "c-icap-client", "c-icap")
	host, port, _ := net.SplitHostPort(tlsAddr)
	cicap := func(args ...string) string {
		out, _ := exec.Command(bin, append([]string{"-i", host, "-p", port, "-tls", "-tls-no-verify", "-v"}, args...)...).CombinedOutput()
		return string(out)
	}
	if out := cicap("-s", "avscan"); !strings.Contains(out, "ICAP/1.0 200 OK") || !strings.Contains(out, "Methods: RESPMOD, REQMOD") {
		t.Errorf("OPTIONS over TLS:\n%s", out)
	}
	out := cicap("-s", "avscan", "-f", write(t, []byte(eicar.String)), "-resp", "http://origin.test/eicar.com")
	if !strings.Contains(out, "X-Infection-Found: Type=0; Resolution=2; Threat=Eicar-Test-Signature;") {
		t.Errorf("EICAR over TLS:\n%s", out)
	}
	e.waitLog("ICAP", "http://origin.test/eicar.com", "DETECT-STAT:INFECTED:Eicar-Test-Signature")

	c, err := net.Dial("tcp", tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "OPTIONS icap://%s/avscan ICAP/1.0\r\nHost: %s\r\n\r\n", tlsAddr, tlsAddr)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, _ := io.ReadAll(c); strings.Contains(string(b), "ICAP/1.0") {
		t.Errorf("ICAP in the clear on the TLS port was answered: %q", b)
	}
}
