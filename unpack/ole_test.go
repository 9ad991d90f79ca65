package unpack

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/forms"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// oleStream is one stream of oleOf: its name and its bytes.
type oleStream = forms.OLEStream

// oleOf lays out a compound file (see forms.OLE).
var oleOf = forms.OLE

// oleStreams reads a compound file with python3-olefile: each stream's
// path and the SHA-256 of its bytes.
func oleStreams(t *testing.T, d []byte) []string {
	t.Helper()
	py := "/usr/bin/python3" // the system's, where python3-olefile installs
	if exec.Command(py, "-c", "import olefile").Run() != nil {
		testenv.Need(t, "python3-olefile module (python3 -c 'import olefile')", "python3-olefile")
	}
	f := filepath.Join(t.TempDir(), "a.doc")
	os.WriteFile(f, d, 0o644)
	out, err := exec.Command(py, "-c", `import sys, olefile, hashlib
o = olefile.OleFileIO(sys.argv[1])
for s in o.listdir():
    print("/".join(s), hashlib.sha256(o.openstream(s).read()).hexdigest())`, f).CombinedOutput()
	if err != nil {
		t.Fatalf("olefile: %v\n%s", err, out)
	}
	lines := strings.Fields(strings.ReplaceAll(string(out), "\n", " "))
	var got []string
	for i := 0; i+1 < len(lines); i += 2 {
		got = append(got, lines[i]+" "+lines[i+1])
	}
	sort.Strings(got)
	return got
}

// TestOLEStreamsReassembled: a compound file whose streams lie backwards
// in their sectors and mini sectors (EICAR across a sector's end in a
// large stream, across a mini sector's end in a small one): python3-olefile
// reads each stream whole, and so does the walk, which finds EICAR in
// each at its path; the raw bytes hold it nowhere. The clean twin is
// clean.
func TestOLEStreamsReassembled(t *testing.T) {
	big := append(append(bytes.Repeat([]byte("w"), 490), eicar.String...), bytes.Repeat([]byte("x"), 5000)...)
	small := append(bytes.Repeat([]byte("s"), 30), eicar.String...)
	doc := oleOf(true, oleStream{Name: "WordDocument", Data: big}, oleStream{Name: "\x05Macros", Data: small})
	if bytes.Contains(doc, []byte(eicar.String)) {
		t.Fatal("EICAR stands in the clear: the test proves nothing")
	}
	want := []string{fmt.Sprintf("WordDocument %x", sha256.Sum256(big)), fmt.Sprintf("\x05Macros %x", sha256.Sum256(small))}
	sort.Strings(want)
	if got := oleStreams(t, doc); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("olefile reads %q, want %q", got, want)
	}
	var walked []string
	Walk(doc, Options{Archives: true}, Limits{}, func(b []byte, where string) bool {
		if where != "" {
			walked = append(walked, fmt.Sprintf("%s %x", where, sha256.Sum256(b)))
		}
		return false
	})
	sort.Strings(walked)
	wantWalk := []string{fmt.Sprintf("Macros %x", sha256.Sum256(small)), fmt.Sprintf("WordDocument %x", sha256.Sum256(big))}
	sort.Strings(wantWalk)
	if strings.Join(walked, ",") != strings.Join(wantWalk, ",") {
		t.Errorf("walked %q, want %q", walked, wantWalk)
	}
	match := func(b []byte, found func(string) bool) {
		if bytes.Contains(b, []byte(eicar.String)) {
			found("Eicar")
		}
	}
	d := Scan(doc, Options{Archives: true}, Limits{}, match)
	if len(d) != 2 {
		t.Errorf("found %+v", d)
	}
	// In one run (most writers' large streams): read in place, found.
	inOrder := oleOf(false, oleStream{Name: "WordDocument", Data: big})
	if d := Scan(inOrder, Options{Archives: true}, Limits{}, match); len(d) != 1 || d[0].Path != "WordDocument" {
		t.Errorf("in order: %+v", d)
	}
	clean := oleOf(true, oleStream{Name: "WordDocument", Data: bytes.Repeat([]byte("text "), 2000)}, oleStream{Name: "Small", Data: []byte("a little")})
	if d := Scan(clean, Options{Archives: true}, Limits{}, match); len(d) != 0 {
		t.Errorf("clean: %+v", d)
	}
}

// FuzzOLE feeds the reader compound files as they come.
func FuzzOLE(f *testing.F) {
	f.Add(oleOf(true, oleStream{Name: "WordDocument", Data: bytes.Repeat([]byte("w"), 5000)}, oleStream{Name: "s", Data: []byte("small")}))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(append(append([]byte{}, oleMagic...), d...), Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
	})
}

// TestOLEStreamsOnOneRunBounded: a compound file whose directory entries
// all name the same run of sectors (each a stream scanned in place) is
// scanned no further than its own size and what a scan may unpack.
func TestOLEStreamsOnOneRunBounded(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2<<20)
	streams := []forms.OLEStream{{Name: "S00", Data: big}}
	for i := 1; i < 20; i++ {
		streams = append(streams, forms.OLEStream{Name: fmt.Sprintf("S%02d", i), Data: bytes.Repeat([]byte("y"), 8192)})
	}
	doc := forms.OLE(false, streams...)
	entry := func(name string) []byte {
		var u []byte
		for _, c := range name {
			u = append(u, byte(c), 0)
		}
		i := bytes.Index(doc, u)
		if i < 0 || i%128 != 0 {
			t.Fatalf("no entry %s", name)
		}
		return doc[i : i+128]
	}
	first := entry("S00")
	for i := 1; i < 20; i++ {
		copy(entry(fmt.Sprintf("S%02d", i))[116:124], first[116:124]) // its first sector and size
	}
	scans := 0
	got := Scan(doc, Options{Archives: true}, Limits{MaxTotal: 4 << 20}, func(b []byte, found func(string) bool) {
		if len(b) == len(big) {
			scans++
		}
	})
	if scans > 4 || len(got) == 0 || got[len(got)-1].Name != "Heuristics.Limits.Exceeded.Total" {
		t.Fatalf("the run scanned %d times: %+v", scans, got)
	}
}
