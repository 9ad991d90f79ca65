package unpack

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// deflate64Zip is a zip of files made by 7-Zip with Deflate64.
func deflate64Zip(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	sz := testenv.Need(t, "7zz", "7zip")
	dir := t.TempDir()
	var names []string
	for n, d := range files {
		os.WriteFile(filepath.Join(dir, n), d, 0o644)
		names = append(names, n)
	}
	c := exec.Command(sz, append([]string{"a", "-bd", "-tzip", "-mm=Deflate64", "a.zip"}, names...)...)
	c.Dir = dir
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("7zz: %v %s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "a.zip"))
	return b
}

// TestDeflate64Entries: entries 7-Zip deflated with Deflate64 (method
// 9: text with long repeats, a program, a file past 64 KiB) come back
// byte for byte; EICAR in one is found; the clean zip is clean (it was
// not opened, and was judged broken).
func TestDeflate64Entries(t *testing.T) {
	self, _ := os.ReadFile(os.Args[0])
	files := map[string][]byte{
		"text.txt":    bytes.Repeat([]byte("a line of text that repeats, and repeats again\n"), 5000),
		"program.bin": self[:min(len(self), 700<<10)],
		"far.bin":     append(append(bytes.Repeat([]byte{1, 2, 3}, 30000), make([]byte, 70000)...), bytes.Repeat([]byte{1, 2, 3}, 30000)...),
	}
	z := deflate64Zip(t, files)
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Method != 9 {
			t.Fatalf("%s: method %d, not Deflate64", f.Name, f.Method)
		}
		raw, _ := f.OpenRaw()
		packed, _ := io.ReadAll(raw)
		out, err := inflate64(packed, 64<<20)
		if err != nil || !bytes.Equal(out, files[f.Name]) {
			t.Errorf("%s: %v, %d bytes of %d, same: %v", f.Name, err, len(out), len(files[f.Name]), bytes.Equal(out, files[f.Name]))
		}
	}
	match := func(b []byte, found func(string) bool) {
		if bytes.Contains(b, []byte(eicar.String)) {
			found("Eicar")
		}
	}
	if d := Scan(z, Options{Archives: true}, Limits{}, match); len(d) != 0 {
		t.Errorf("clean: %+v", d)
	}
	bad := deflate64Zip(t, map[string][]byte{"e.com": append([]byte(eicar.String), bytes.Repeat([]byte(" padding"), 500)...)})
	if bytes.Contains(bad, []byte(eicar.String)) {
		t.Fatal("EICAR in the clear")
	}
	if d := Scan(bad, Options{Archives: true}, Limits{}, match); len(d) != 1 || d[0].Path != "e.com" {
		t.Errorf("EICAR inside: %+v", d)
	}
}

func FuzzInflate64(f *testing.F) {
	f.Add([]byte{0x4b, 0x4c, 0x4a, 0x06, 0x00})
	f.Fuzz(func(t *testing.T, d []byte) { inflate64(d, 1<<20) })
}
