package http

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	gohttp "net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/packtest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/scanner"
)

// codedForms are the ways a body can be coded that curl --compressed (and
// browsers) undo: each entry codes b and names the Content-Encoding fields.
var codedForms = []struct {
	name   string
	code   func(b []byte) []byte
	fields []string
	// firstMember: curl stops after the first gzip member (browsers read
	// them all, and the proxy scans them all).
	firstMember bool
}{
	{"deflate-zlib", packtest.Zlib, []string{"deflate"}, false},
	{"deflate-raw", packtest.Deflate, []string{"deflate"}, false},
	{"br", packtest.Brotli, []string{"br"}, false},
	{"zstd", packtest.Zstd, []string{"zstd"}, false},
	{"x-gzip", packtest.Gzip, []string{"x-gzip"}, false},
	{"deflate-then-gzip-one-field", func(b []byte) []byte { return packtest.Gzip(packtest.Zlib(b)) }, []string{"deflate, gzip"}, false},
	{"gzip-then-br-two-fields", func(b []byte) []byte { return packtest.Brotli(packtest.Gzip(b)) }, []string{"gzip", "br"}, false},
	{"gzip-trailing-garbage", func(b []byte) []byte { return append(packtest.Gzip(b), "garbage"...) }, []string{"gzip"}, false},
	{"gzip-bad-crc", func(b []byte) []byte {
		g := packtest.Gzip(b)
		g[len(g)-8] ^= 0xff
		return g
	}, []string{"gzip"}, false},
	{"gzip-two-members-split", func(b []byte) []byte {
		return append(packtest.Gzip(b[:len(b)/2]), packtest.Gzip(b[len(b)/2:])...)
	}, []string{"gzip"}, true},
}

// curlGet fetches url through the proxy with curl; compressed decodes as
// a browser does.
func (e *env) curlGet(url string, compressed bool) (int, []byte) {
	e.t.Helper()
	curl := testenv.Need(e.t, "curl", "curl")
	args := []string{"-s", "--max-time", "30", "-x", "http://" + e.addr, "-o", "-", "-w", "\n%{http_code}", url}
	if compressed {
		args = append([]string{"--compressed"}, args...)
	}
	out, _ := exec.Command(curl, args...).Output()
	i := bytes.LastIndexByte(out, '\n')
	var code int
	fmt.Sscan(string(out[i+1:]), &code)
	return code, out[:i]
}

// TestContentCodingsCurlUndoesAreScanned: EICAR in every coding curl
// undoes is blocked; clean content in the same codings reaches curl
// decoded, and a client that does not decode gets the coded bytes as sent.
func TestContentCodingsCurlUndoesAreScanned(t *testing.T) {
	e := newEnv(t, "")
	clean := []byte(strings.Repeat("clean text, nothing here. ", 400))
	for _, f := range codedForms {
		bad, good := f.code([]byte(eicar.String)), f.code(clean)
		for path, body := range map[string][]byte{"/bad-" + f.name: bad, "/good-" + f.name: good} {
			fields := f.fields
			e.mux.HandleFunc(path, func(w gohttp.ResponseWriter, r *gohttp.Request) {
				for _, v := range fields {
					w.Header().Add("Content-Encoding", v)
				}
				w.Write(body)
			})
		}
		if code, body := e.curlGet(e.url("/bad-"+f.name), true); code != 403 || !strings.Contains(string(body), "Eicar-Test-Signature") {
			t.Errorf("%s: EICAR got %d", f.name, code)
		}
		want := clean
		if f.firstMember {
			want = clean[:len(clean)/2]
		}
		if code, body := e.curlGet(e.url("/good-"+f.name), true); code != 200 || !bytes.Equal(body, want) {
			t.Errorf("%s: clean content got %d, %d bytes", f.name, code, len(body))
		}
		if code, body := e.get("/good-" + f.name); code != 200 || !bytes.Equal(body, good) {
			t.Errorf("%s: coded bytes changed on the way: %d", f.name, code)
		}
	}
}

// TestUnknownCodingFollowsScanFailure: a coding the proxy cannot undo is
// not scanned as opaque bytes and passed.
func TestUnknownCodingFollowsScanFailure(t *testing.T) {
	for _, policy := range []string{"block", "pass"} {
		e := newEnv(t, "scan_failure = "+policy)
		for _, c := range []string{"compress", "x-custom", "gzip, gzip, gzip, gzip, gzip"} {
			e.serve("/"+strings.ReplaceAll(c, ", ", ""), []byte("opaque"), "Content-Encoding", c)
		}
		for _, path := range []string{"/compress", "/x-custom", "/gzipgzipgzipgzipgzip"} {
			code, _ := e.get(path)
			if want := map[string]int{"block": 403, "pass": 200}[policy]; code != want {
				t.Errorf("%s, scan_failure = %s: %d", path, policy, code)
			}
		}
		if len(e.obs.FilterMessageSnippet("content coding cannot be undone").All()) != 3 {
			t.Errorf("not logged: %v", e.obs.All())
		}
		if !strings.Contains(e.accessLog(3), "not%20scanned") {
			t.Errorf("access log: %s", e.accessLog())
		}
	}
}

// TestDecodedBodyOverMaxScanSize: a small gzip that inflates past
// max_scan_size, EICAR after the cut, is a bomb whatever oversize_action
// says (it followed oversize_action, and pass delivered it).
func TestDecodedBodyOverMaxScanSize(t *testing.T) {
	bomb := packtest.Gzip(append(make([]byte, 2<<20), eicar.String...))
	for _, action := range []string{"block", "pass"} {
		e := newEnv(t, "max_scan_size = 1M\noversize_action = "+action)
		e.serve("/bomb", bomb, "Content-Encoding", "gzip")
		code, _ := e.curlGet(e.url("/bomb"), true)
		if code != 403 {
			t.Errorf("oversize_action = %s: %d", action, code)
		}
		if !strings.Contains(e.accessLog(), "DETECT-STAT:INFECTED:Heuristics.Limits.Exceeded.Ratio:") {
			t.Errorf("access log: %s", e.accessLog())
		}
	}
}

// TestDamagedCodingFollowsScanFailure: a coding that breaks off is scanned
// as far as it decodes (what a client shows); the rest follows scan_failure.
func TestDamagedCodingFollowsScanFailure(t *testing.T) {
	e := newEnv(t, "")
	cut := func(b []byte) []byte { g := packtest.Gzip(b); return g[:len(g)-12] }
	e.serve("/bad", cut([]byte(eicar.String+strings.Repeat("x", 5000))), "Content-Encoding", "gzip")
	e.serve("/good", cut([]byte(strings.Repeat("clean ", 5000))), "Content-Encoding", "gzip")
	if code, body := e.get("/bad"); code != 403 || !strings.Contains(string(body), "Eicar-Test-Signature") {
		t.Errorf("EICAR in a damaged gzip: %d", code)
	}
	if code, _ := e.get("/good"); code != 403 {
		t.Errorf("a damaged gzip passed: %d", code)
	}
}

// TestUnaskedPartialContentIsRefused: the proxy never forwards Range, so a
// 206 (whose parts could join into a virus) is refused, never relayed; so
// is a 200 whose Content-Range says it is a part.
func TestUnaskedPartialContentIsRefused(t *testing.T) {
	e := newEnv(t, "")
	E := eicar.String
	e.mux.HandleFunc("/parts", func(w gohttp.ResponseWriter, r *gohttp.Request) {
		w.Header().Set("Content-Type", "multipart/byteranges; boundary=B")
		w.WriteHeader(206)
		fmt.Fprintf(w, "--B\r\nContent-Range: bytes 0-29/68\r\n\r\n%s\r\n--B\r\nContent-Range: bytes 30-67/68\r\n\r\n%s\r\n--B--\r\n", E[:30], E[30:])
	})
	e.mux.HandleFunc("/part", func(w gohttp.ResponseWriter, r *gohttp.Request) {
		w.Header().Set("Content-Range", "bytes 0-29/68")
		w.WriteHeader(206)
		w.Write([]byte(E[:30]))
	})
	// A 200 that says it is a part (Content-Range) is no whole object
	// either: it was delivered as one.
	e.mux.HandleFunc("/part-as-200", func(w gohttp.ResponseWriter, r *gohttp.Request) {
		w.Header().Set("Content-Range", "bytes 30-67/68")
		w.WriteHeader(200)
		w.Write([]byte(E[30:]))
	})
	for _, p := range []string{"/parts", "/part", "/part-as-200"} {
		req, _ := gohttp.NewRequest("GET", e.url(p), nil)
		req.Header.Set("Range", "bytes=0-29,30-67")
		resp, err := e.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 502 {
			t.Errorf("%s: an unasked part got %d", p, resp.StatusCode)
		}
	}
}

// slowBody serves body in 32 KiB pieces 60 ms apart, with its length.
func slowBody(body []byte, hdr ...string) gohttp.HandlerFunc {
	return func(w gohttp.ResponseWriter, r *gohttp.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		for i := 0; i < len(body); i += 32 << 10 {
			w.Write(body[i:min(i+32<<10, len(body))])
			w.(gohttp.Flusher).Flush()
			time.Sleep(60 * time.Millisecond)
		}
	}
}

// TestTrickleSendsOnlyScannedBytes: with a slow server, EICAR at the head
// of a file (plain, or gzip-coded so that a decoding client would get it)
// or anywhere in the first trickles never reaches the client before the
// verdict; a clean slow file, plain or coded, still trickles.
func TestTrickleSendsOnlyScannedBytes(t *testing.T) {
	e := newEnv(t, "trickle_after = 200ms\ntrickle_interval = 100ms\ntrickle_bytes = 4K\nhold_back = 64K")
	E := []byte(eicar.String)
	noise := randomBytes(512 << 10)
	atHead := append(append([]byte(nil), E...), noise...)
	at20K := append(append(append([]byte(nil), noise[:20<<10]...), E...), noise...)
	atTail := append(append([]byte(nil), noise...), E...)
	e.mux.HandleFunc("/head", slowBody(atHead))
	e.mux.HandleFunc("/at20k", slowBody(at20K))
	e.mux.HandleFunc("/gz-head", slowBody(packtest.Gzip(atHead), "Content-Encoding", "gzip"))
	e.mux.HandleFunc("/gz-tail", slowBody(packtest.Gzip(atTail), "Content-Encoding", "gzip"))
	e.mux.HandleFunc("/tail", slowBody(atTail))
	fetch := func(path string) ([]byte, error) {
		resp, err := e.client().Get(e.url(path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	for _, path := range []string{"/head", "/at20k", "/gz-head"} {
		b, err := fetch(path)
		if err == nil {
			t.Fatalf("%s: delivered whole", path)
		}
		if len(b) > 20<<10 || bytes.Contains(b, E[:8]) {
			t.Errorf("%s: %d bytes reached the client before the verdict", path, len(b))
		}
	}
	for _, path := range []string{"/tail", "/gz-tail"} {
		b, err := fetch(path)
		if err == nil || len(b) == 0 {
			t.Errorf("%s: %d bytes trickled, %v: a clean head should trickle", path, len(b), err)
		}
	}
}

// TestContainersADesktopOpensAreBlocked: EICAR inside the containers a
// desktop opens (a zip behind a self-extractor's stub, .tar.xz, .tar.bz2,
// RAR, a gzip inside a tar inside a zip) is blocked through the proxy by
// the bundled engine, as curl fetches it; an archive the engine cannot
// open is never passed as clean.
func TestContainersADesktopOpensAreBlocked(t *testing.T) {
	e := newEnv(t, "")
	E := []byte(eicar.String)
	pipe := func(data []byte, cmd ...string) []byte {
		bin := testenv.Need(t, cmd[0], cmd[0])
		c := exec.Command(bin, cmd[1:]...)
		c.Stdin = bytes.NewReader(data)
		out, err := c.Output()
		if err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
		return out
	}
	tarE := tarOf("dir/e.com", E)
	stub := append(bytes.Repeat([]byte("MZ self-extractor stub "), 300), zipped(t, "e.com", E)...)
	rar := eicar.StoredRAR5("e.com", E)
	broken := eicar.StoredRAR5("e.com", []byte("some text here"))
	broken[len(broken)-20] ^= 0xff
	forms := map[string][]byte{
		"/sfx.exe":     stub,
		"/e.tar.xz":    pipe(tarE, "xz", "-c"),
		"/e.tar.bz2":   pipe(tarE, "bzip2", "-c"),
		"/e.rar":       rar,
		"/nested.zip":  zipped(t, "a.tar", tarOf("b.gz", packtest.Gzip(E))),
		"/broken.rar":  broken,
		"/renamed.txt": pipe(tarE, "xz", "-c"),
	}
	for path, body := range forms {
		e.serve(path, body, "Content-Type", "text/plain")
		if code, _ := e.curlGet(e.url(path), false); code != 403 {
			t.Errorf("%s: %d", path, code)
		}
	}
}

func tarOf(name string, data []byte) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	w.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// TestTrickleStopsForARefusedType: a slow download of a Windows program,
// with block_types = exe, trickles nothing of it (the prefix checks see
// the type as the engine's pass does): the client gets the block page, or,
// when the trickle had begun, a cut connection, as for EICAR at the head.
func TestTrickleStopsForARefusedType(t *testing.T) {
	e := newEnv(t, "block_types = exe\ntrickle_after = 200ms\ntrickle_interval = 100ms\ntrickle_bytes = 4K\nhold_back = 64K")
	prog := append(eicar.WindowsProgram(false), randomBytes(512<<10)...)
	e.mux.HandleFunc("/setup.txt", slowBody(prog))
	resp, err := e.client().Get(e.url("/setup.txt"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode == 403 && bytes.Contains(b, []byte("block_types=exe")):
	case resp.StatusCode == 200 && err != nil && !bytes.Contains(b, []byte("MZ")):
	default:
		t.Fatalf("%d, %d bytes, %v: %.200q", resp.StatusCode, len(b), err, b)
	}
	e.waitLogHas(t, "/setup.txt", "DETECT-STAT:BLOCKED:block_types=exe:")
}

// TestTrickleStopsForARefusedTypeBehindClamd: the same behind an engine
// that does not apply the rules (clamd): the gateway's own walk of each
// prefix stops the trickle.
func TestTrickleStopsForARefusedTypeBehindClamd(t *testing.T) {
	clamd := enginetest.Clamd(t, "")
	e := newEnv(t, "block_types = exe\ntrickle_after = 200ms\ntrickle_interval = 100ms\ntrickle_bytes = 4K\nhold_back = 64K")
	eps, _ := scanner.ParseEndpoints(clamd.Sock, "")
	e.p.Scanner = scanner.NewClamd(&scanner.Pool{Endpoints: eps}, false)
	e.mux.HandleFunc("/setup.txt", slowBody(append(eicar.WindowsProgram(false), randomBytes(512<<10)...)))
	resp, err := e.client().Get(e.url("/setup.txt"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != 403 || bytes.Contains(b, []byte("MZ")) {
		t.Fatalf("%d, %d bytes, %v", resp.StatusCode, len(b), err)
	}
}

// TestDecodingBombIsNotOversize: a body that passes max_scan_size only
// once decoded (a few kilobytes of gzip on the wire) was an oversize
// object, and oversize_action = pass (as shipped) let it through
// unscanned, a payload padded at its end with it. It is a bomb now
// (Heuristics.Limits.Exceeded.Ratio), refused; a body that decodes past
// the limit at an ordinary ratio is still oversize, passed as the setting
// says.
func TestDecodingBombIsNotOversize(t *testing.T) {
	e := newEnv(t, "max_scan_size = 1M\noversize_action = pass")
	padded := append([]byte(eicar.String), make([]byte, 3<<20)...)
	e.serve("/bomb", packtest.Gzip(padded), "Content-Encoding", "gzip")
	// 600 KiB on the wire, 1.2 MiB decoded: past the limit only decoded,
	// but no bomb.
	large := append(randomBytes(600<<10), make([]byte, 600<<10)...)
	e.serve("/large", packtest.Gzip(large), "Content-Encoding", "gzip")
	if code, body := e.get("/bomb"); code != 403 || !strings.Contains(string(body), "Heuristics.Limits.Exceeded.Ratio") {
		t.Errorf("the bomb: %d %.300q", code, body)
	}
	if code, body := e.get("/large"); code != 200 || !bytes.Equal(body, packtest.Gzip(large)) {
		t.Errorf("a large download: %d, %d bytes", code, len(body))
	}
	log := e.accessLog(2)
	if !strings.Contains(log, "decoded%20body%20over%20max_scan_size%20passed%20unscanned") {
		t.Errorf("access log:\n%s", log)
	}
}

// TestBytesAfterTheCodedBody: behind Content-Encoding, what follows the
// coded body's end (after a gzip's last member, a zlib or raw deflate
// stream's end) was never scanned, and a client that keeps the raw body
// (wget, a download manager) got it whole. It is scanned now; a clean
// twin arrives byte for byte. Brotli and zstd readers refuse bytes after
// the stream (a browser shows a decoding error): such a body is damaged,
// refused with or without EICAR, never delivered unscanned.
func TestBytesAfterTheCodedBody(t *testing.T) {
	e := newEnv(t, "")
	page := []byte(strings.Repeat("a page of text ", 500))
	for name, body := range map[string]struct {
		coded   []byte
		coding  string
		damaged bool
	}{
		"gzip":        {packtest.Gzip(page), "gzip", false},
		"zlib":        {packtest.Zlib(page), "deflate", false},
		"raw-deflate": {packtest.Deflate(page), "deflate", false},
		"brotli":      {packtest.Brotli(page), "br", true},
		"zstd":        {packtest.Zstd(page), "zstd", true},
	} {
		bad := append(bytes.Clone(body.coded), eicar.String...)
		good := append(bytes.Clone(body.coded), "some trailing bytes"...)
		e.serve("/bad-"+name, bad, "Content-Encoding", body.coding)
		e.serve("/good-"+name, good, "Content-Encoding", body.coding)
		if code, got := e.get("/bad-" + name); code != 403 || !body.damaged && !strings.Contains(string(got), "Eicar-Test-Signature") {
			t.Errorf("%s with EICAR after it: %d %.200q", name, code, got)
		}
		code, got := e.get("/good-" + name)
		switch {
		case body.damaged && code != 403:
			t.Errorf("%s with bytes after it: %d, want it refused as damaged", name, code)
		case !body.damaged && (code != 200 || !bytes.Equal(got, good)):
			t.Errorf("%s with harmless bytes after it: %d, %d bytes of %d", name, code, len(got), len(good))
		}
	}
	if !strings.Contains(e.accessLog(), "Eicar-Test-Signature:bytes%20after%20the%20coded%20body:") {
		t.Errorf("access log:\n%s", e.accessLog())
	}
}

// slowScanner takes a while over each scan.
type slowScanner struct {
	scanner.Scanner
	d time.Duration
}

func (s slowScanner) Scan(ctx context.Context, obj *scanner.Object) (scanner.Verdict, error) {
	time.Sleep(s.d)
	return s.Scanner.Scan(ctx, obj)
}

// TestLongScanTrickles: a download arrived whole but whose scan takes
// long is trickled while it is scanned (its head goes out once
// trickle_after has passed, not at the verdict), then delivered whole.
func TestLongScanTrickles(t *testing.T) {
	e := newEnv(t, "trickle_after = 100ms\ntrickle_interval = 100ms\ntrickle_bytes = 4K\nhold_back = 64K")
	body := randomBytes(256 << 10)
	e.serve("/file", body)
	const scan = 1500 * time.Millisecond
	e.p.Scanner = slowScanner{e.p.Scanner, scan}
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", e.url("/file"))
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := br.ReadString('\n')
	headAt := time.Since(start)
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("%q %v", line, err)
	}
	if headAt >= scan {
		t.Errorf("the head came after %v, with the verdict: no trickle during the scan", headAt)
	}
	resp, err := gohttp.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), br)), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("%d of %d bytes, %v", len(got), len(body), err)
	}
}
