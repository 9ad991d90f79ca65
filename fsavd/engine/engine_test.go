package engine

import (
	"archive/tar"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/packtest"
)

var all = Options{Archives: true, MIME: true}

func names(ds []Detection) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name+"@"+d.Path)
	}
	return strings.Join(out, ",")
}

func tarOf(files map[string][]byte) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for n, d := range files {
		w.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(d)), Typeflag: tar.TypeReg})
		w.Write(d)
	}
	w.Close()
	return b.Bytes()
}

func builtin(t testing.TB) *Engine {
	db, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	return New(db)
}

func TestEICARWhereverItHides(t *testing.T) {
	e := builtin(t)
	E := []byte(eicar.String)
	mailB64 := "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: application/octet-stream; name=\"e.com\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		wrap(base64.StdEncoding.EncodeToString(E), 20) + "\r\n--XX--\r\n"
	mailQP := "From: a@example.com\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n" + strings.ReplaceAll(eicar.String[:40], "=", "=3D") + "=\n" + eicar.String[40:] + "\n"
	cases := map[string]struct {
		data []byte
		want string
	}{
		"plain":            {E, "Eicar-Test-Signature@"},
		"after junk":       {append([]byte("junk before "), E...), "Eicar-Test-Signature@"},
		"zip":              {eicar.Zip(map[string][]byte{"dir/e.com": E}), "Eicar-Test-Signature@dir/e.com"},
		"gzip":             {packtest.Gzip(E), "Eicar-Test-Signature@gunzipped"},
		"tar.gz in zip":    {eicar.Zip(map[string][]byte{"x.tgz": packtest.Gzip(tarOf(map[string][]byte{"in/e.com": E}))}), "Eicar-Test-Signature@x.tgz/x.tar/in/e.com"},
		"mail base64":      {[]byte(mailB64), "Eicar-Test-Signature@e.com"},
		"mail qp softwrap": {[]byte(mailQP), "Eicar-Test-Signature@text-plain"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := names(e.ScanBytes(c.data, all)); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	if got := e.ScanBytes([]byte("clean text, nothing to see"), all); len(got) != 0 {
		t.Fatalf("clean text: %v", got)
	}
	if got := e.ScanBytes(eicar.Zip(map[string][]byte{"e.com": E}), Options{}); len(got) != 0 {
		t.Fatalf("looked inside a zip without ARCHIVE: %v", got)
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\r\n")
		s = s[n:]
	}
	return b.String() + s
}

// loadSigs loads the signature files of files (see writeSigs).
func loadSigs(t testing.TB, files map[string]string) *DB {
	t.Helper()
	db, err := Load(writeSigs(t, files))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func writeSigs(t testing.TB, files map[string]string) string {
	dir := t.TempDir()
	for n, body := range files {
		os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644)
	}
	return dir
}

func TestSignatureFormats(t *testing.T) {
	data := []byte("header \x01\x02MAGIC-PAYLOAD-42\x7f trailer")
	md := md5.Sum(data)
	sh := sha256.Sum256(data)
	dir := writeSigs(t, map[string]string{
		"a.hdb": hex.EncodeToString(md[:]) + fmt.Sprintf(":%d:Test.MD5\n", len(data)),
		"b.hsb": hex.EncodeToString(sh[:]) + ":*:Test.SHA256\n",
		"c.ndb": "# comment\n" +
			"Test.Wild:0:*:4d41474943??5041594c4f4144{1-3}3432\n" +
			"Test.Star:0:*:0102*7f20747261696c6572\n" +
			"Test.Alt:0:*:4d414749(43|44)2d50\n" +
			"Test.Nibble:0:*:4?4147494?2d\n" +
			"Test.Offset:0:0:686561646572\n" +
			"Test.WrongOffset:0:3:686561646572\n" +
			"Test.EOF:0:EOF-7:747261696c6572\n" +
			"Test.Skipped:6:EP+0:7f454c46\n" + // an ELF entry point: not read
			"Test.NoMatch:0:*:4d41474943{5}3432\n",
	})
	db, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if db.Skipped != 1 {
		t.Errorf("skipped %d", db.Skipped)
	}
	got := map[string]bool{}
	for _, d := range New(db).ScanBytes(data, Options{}) {
		got[d.Name] = true
	}
	for _, want := range []string{"Test.MD5", "Test.SHA256", "Test.Wild", "Test.Star", "Test.Alt", "Test.Nibble", "Test.Offset", "Test.EOF"} {
		if !got[want] {
			t.Errorf("%s not found (got %v)", want, got)
		}
	}
	for _, not := range []string{"Test.WrongOffset", "Test.NoMatch", "Test.Skipped"} {
		if got[not] {
			t.Errorf("%s matched", not)
		}
	}
}

func TestBadSignatureFileNamesItsLine(t *testing.T) {
	dir := writeSigs(t, map[string]string{"bad.ndb": "Good:0:*:41424344\nBad:0:*:4142zz\n"})
	_, err := Load(dir)
	var le *LoadError
	if !errors.As(err, &le) || le.Line != 2 || !strings.HasSuffix(le.File, "bad.ndb") {
		t.Fatalf("error %v", err)
	}
}

// TestArchiveBombsAreReportedNotPassed: limits give a verdict, not clean.
func TestArchiveBombsAreReportedNotPassed(t *testing.T) {
	e := builtin(t)
	zeros := make([]byte, 50<<20)
	bomb := eicar.Zip(map[string][]byte{"zeros.bin": zeros})
	if got := names(e.ScanBytes(bomb, all)); got != "Heuristics.Limits.Exceeded.Ratio@zeros.bin" {
		t.Fatalf("ratio bomb: %q", got)
	}
	deep := []byte(eicar.String)
	for i := 0; i < 12; i++ {
		deep = eicar.Zip(map[string][]byte{fmt.Sprintf("l%d.zip", i): deep})
	}
	if got := names(e.ScanBytes(deep, all)); !strings.HasPrefix(got, "Heuristics.Limits.Exceeded.Depth@") {
		t.Fatalf("deep nesting: %q", got)
	}
	e.Limits.MaxFileSize = 1000
	big := eicar.Zip(map[string][]byte{"big.bin": bytes.Repeat([]byte("x"), 5000)})
	if got := names(e.ScanBytes(big, all)); got != "Heuristics.Limits.Exceeded.FileSize@big.bin" {
		t.Fatalf("file size: %q", got)
	}
}

func TestScanFileMapsTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, append(make([]byte, 1<<20), eicar.String...), 0o600)
	got, err := builtin(t).ScanFile(p, all, nil)
	if err != nil || names(got) != "Eicar-Test-Signature@" {
		t.Fatalf("%v %v", got, err)
	}
}

// sigSet writes n random .ndb signatures (with a wildcard each) and one
// that matches a known marker.
func sigSet(t testing.TB, n int) string {
	r := rand.New(rand.NewSource(1))
	var b strings.Builder
	for i := 0; i < n; i++ {
		lit := make([]byte, 12)
		r.Read(lit)
		fmt.Fprintf(&b, "Bench.Sig%d:0:*:%s??%s\n", i, hex.EncodeToString(lit[:8]), hex.EncodeToString(lit[8:]))
	}
	b.WriteString("Bench.Marker:0:*:" + hex.EncodeToString([]byte("fsigkd-bench-marker")) + "\n")
	return writeSigs(t, map[string]string{"bench.ndb": b.String()})
}

func TestTenThousandSignatures(t *testing.T) {
	db, err := Load(sigSet(t, 10000))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 4<<20)
	rand.New(rand.NewSource(2)).Read(data)
	copy(data[3<<20:], "fsigkd-bench-marker")
	if got := names(New(db).ScanBytes(data, all)); got != "Bench.Marker@" {
		t.Fatalf("got %q", got)
	}
}

// BenchmarkScan10kNdb is the engine's throughput with 10,000 body
// signatures over random data (no archive to open).
func BenchmarkScan10kNdb(b *testing.B) {
	db, err := Load(sigSet(b, 10000))
	if err != nil {
		b.Fatal(err)
	}
	e := New(db)
	data := make([]byte, 16<<20)
	rand.New(rand.NewSource(3)).Read(data)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.ScanBytes(data, all)
	}
}

func FuzzPattern(f *testing.F) {
	for _, s := range []string{"41424344", "41??42*43{1-2}44", "(41|42)4?", "{-3}", "4"} {
		f.Add(s, []byte("ABCD AXBYYCZD"))
	}
	f.Add("41*4243", []byte("AxxBCABC"))
	f.Add("4142{2-}4344", []byte("ABxxCD ABCD"))
	// A literal after (or before) a gap whose first place found fails and
	// an overlapping one holds.
	f.Add("4444444444*41424142??43", []byte("DDDDDABABABxC"))
	f.Add("43??41424142*4444444444", []byte("CxABABABDDDDD"))
	f.Fuzz(func(t *testing.T, sig string, data []byte) {
		db := newDB()
		if db.addBody("F", sig, "*", 0) != nil {
			return
		}
		db.build()
		var got []string
		db.matchBody(data, func(name string) bool { got = append(got, name); return false })
		if slices.Contains(got, Exhausted) {
			return // the steps ran out: reported, not read
		}
		found := len(got) > 0
		// Against the plainest reading of the pattern (every start,
		// every gap width), on data small enough for its budget.
		if len(data) <= 256 && found != refMatch(db.body[0].parts, data) {
			t.Fatalf("pattern %q on %q: matchBody %v, the reference %v", sig, data, found, !found)
		}
	})
}

// refMatch tells whether parts match data anywhere, trying every start
// and every width of every gap.
func refMatch(parts []part, data []byte) bool {
	var from func(ps []part, i int) bool
	from = func(ps []part, i int) bool {
		if len(ps) == 0 {
			return true
		}
		p := &ps[0]
		if p.kind != kGap {
			return p.matchAt(data, i) && from(ps[1:], i+p.width())
		}
		for g := p.gapMin; i+g <= len(data) && (p.gapMax < 0 || g <= p.gapMax); g++ {
			if from(ps[1:], i+g) {
				return true
			}
		}
		return false
	}
	for i := 0; i <= len(data); i++ {
		if from(parts, i) {
			return true
		}
	}
	return false
}

func FuzzScanBytes(f *testing.F) {
	f.Add([]byte(eicar.String))
	f.Add(eicar.Zip(map[string][]byte{"a": []byte("x")}))
	f.Add(packtest.Gzip([]byte("hello")))
	f.Add(eicar.StoredRAR5("a", []byte("x")))
	f.Add(oneNoteWith([]byte("a file"), []byte("another")))
	for _, m := range [][]byte{{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c}, []byte("MSCF\x00\x00\x00\x00"), {0xfd, '7', 'z', 'X', 'Z', 0}, {0x28, 0xb5, 0x2f, 0xfd}, []byte("BZh91AY&SY")} {
		f.Add(append(append([]byte(nil), m...), "0123456789abcdef0123456789abcdef0123456789"...))
	}
	f.Add([]byte("From: a\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: base64\n\nQUJD\n--b--\n"))
	db, _ := Load("")
	e := New(db)
	e.Limits = Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		e.ScanBytes(data, all)
	})
}

// TestSignaturesFromAFileOrADirectory: fsavd_signatures may name one
// signature file (it loaded nothing and said "signatures: 1"); a path
// that holds no signature file is an error.
func TestSignaturesFromAFileOrADirectory(t *testing.T) {
	dir := t.TempDir()
	ndb := filepath.Join(dir, "one.ndb")
	os.WriteFile(ndb, []byte("Test.Sig:0:*:"+hex.EncodeToString([]byte("a test pattern here"))+"\n"), 0o644)
	db, err := Load(ndb)
	if err != nil {
		t.Fatal(err)
	}
	if d := New(db).ScanBytes([]byte("xx a test pattern here xx"), all); len(d) != 1 || d[0].Name != "Test.Sig" {
		t.Fatalf("a signature file named on its own: %s", names(d))
	}
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "readme.txt"), []byte("x"), 0o644)
	for _, p := range []string{empty, filepath.Join(empty, "readme.txt"), filepath.Join(empty, "missing")} {
		if _, err := Load(p); err == nil {
			t.Errorf("%s: loaded", p)
		}
	}
}

// BenchmarkScanFileSmall is the engine's cost for a 1 KiB file scanned by
// its path, as the bundled fsavd scans every spooled object.
func BenchmarkScanFileSmall(b *testing.B) {
	e := builtin(b)
	p := filepath.Join(b.TempDir(), "small")
	os.WriteFile(p, bytes.Repeat([]byte("clean text "), 94), 0o644)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.ScanFile(p, all, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSmallFilesReadNotMapped: a file small enough to be read into a
// pooled buffer is scanned whole, and a buffer used by a larger file
// before carries nothing of it into a smaller one.
func TestSmallFilesReadNotMapped(t *testing.T) {
	e := builtin(t)
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	os.WriteFile(big, append(bytes.Repeat([]byte("x"), 100<<10), eicar.String...), 0o600)
	small := filepath.Join(dir, "small")
	os.WriteFile(small, bytes.Repeat([]byte("x"), 100<<10), 0o600)
	if got, _ := e.ScanFile(big, all, nil); len(got) != 1 {
		t.Fatalf("EICAR at the end of a small file: %s", names(got))
	}
	for i := 0; i < 20; i++ {
		if got, _ := e.ScanFile(small, all, nil); len(got) != 0 {
			t.Fatalf("a clean file scanned with another's bytes: %s", names(got))
		}
	}
}

// TestHashSignaturesBySize: a hash signature names its object's size, and
// matches only an object of that size; "*" matches any.
func TestHashSignaturesBySize(t *testing.T) {
	data := []byte("an object of a known size")
	md := md5.Sum(data)
	sh := sha256.Sum256(data)
	for _, c := range []struct {
		sig  string
		want bool
	}{
		{hex.EncodeToString(md[:]) + fmt.Sprintf(":%d:Test.Hash", len(data)), true},
		{hex.EncodeToString(md[:]) + fmt.Sprintf(":%d:Test.Hash", len(data)+1), false},
		{hex.EncodeToString(sh[:]) + ":*:Test.Hash", true},
		{hex.EncodeToString(sh[:]) + ":7:Test.Hash", false},
	} {
		db, err := Load(writeSigs(t, map[string]string{"a.hsb": c.sig + "\n"}))
		if err != nil {
			t.Fatal(err)
		}
		got := len(New(db).ScanBytes(data, Options{})) > 0
		if got != c.want {
			t.Errorf("%s: matched %v", c.sig, got)
		}
	}
}

// BenchmarkScanLargeWithHashes is BenchmarkScanLarge with 10,000 MD5
// signatures loaded, of small objects: a large object is not hashed.
func BenchmarkScanLargeWithHashes(b *testing.B) {
	var sigs strings.Builder
	r := rand.New(rand.NewSource(3))
	for i := range 10000 {
		var h [16]byte
		r.Read(h[:])
		fmt.Fprintf(&sigs, "%x:%d:Bench.Hash.%d\n", h, 1000+i, i)
	}
	db, err := Load(writeSigs(b, map[string]string{"bench.hdb": sigs.String()}))
	if err != nil {
		b.Fatal(err)
	}
	e := New(db)
	data := make([]byte, 64<<20)
	r.Read(data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		e.ScanBytes(data, all)
	}
}

// BenchmarkScanMail is the engine's cost for a mail as Postfix's
// smtp-source writes it (a few header fields, then lines of one letter),
// scanned by its path with mail and archives opened: the SMTP figures of
// docs/benchmarks.md.
func BenchmarkScanMail(b *testing.B) {
	for _, size := range []int{10 << 10, 1 << 20} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			e := builtin(b)
			m := []byte("From: <a@example.com>\r\nTo: <b@example.com>\r\nDate: Mon,  7 Dec 2026 17:11:49 +0000 (UTC)\r\nMessage-Id: <0e34.0003.0000@vm>\r\n\r\n")
			for i := 1; len(m) < size; i++ {
				m = append(m, byte('0'+i%10))
				m = append(m, bytes.Repeat([]byte("X"), 78)...)
				m = append(m, "\r\n"...)
			}
			p := filepath.Join(b.TempDir(), "mail")
			os.WriteFile(p, m, 0o644)
			b.SetBytes(int64(len(m)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.ScanFile(p, all, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
