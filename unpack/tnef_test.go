package unpack

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/forms"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestTNEFAttachmentsScanned: a winmail.dat (its attachments checked out
// by the tnef tool, as a reader unwraps them) hid EICAR from a walk that
// did not open it; each attachment is scanned at its title now, a cut one
// damaged; the clean twin is clean.
func TestTNEFAttachmentsScanned(t *testing.T) {
	bad := forms.TNEFOf([2]string{"readme.txt", "hello"}, [2]string{"e.com", eicar.String})
	tnef := testenv.Need(t, "tnef", "tnef")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "winmail.dat"), bad, 0o644)
	c := exec.Command(tnef, "-f", "winmail.dat", "--overwrite")
	c.Dir = dir
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("tnef: %v %s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "e.com")); err != nil || string(got) != eicar.String {
		t.Fatalf("tnef does not unwrap the fixture: %q %v", got, err)
	}
	var walked []string
	Walk(bad, Options{Archives: true}, Limits{}, func(b []byte, where string) bool {
		walked = append(walked, where)
		return false
	})
	if len(walked) != 3 || walked[1] != "readme.txt" || walked[2] != "e.com" {
		t.Errorf("walked %q", walked)
	}
	match := func(b []byte, found func(string) bool) {
		if bytes.Contains(b, []byte(eicar.String)) {
			found("Eicar")
		}
	}
	if d := Scan(bad, Options{Archives: true}, Limits{}, match); len(d) != 1 || d[0].Path != "e.com" {
		t.Errorf("%+v", d)
	}
	cut := bad[:len(bad)-40]
	if d := Scan(cut, Options{Archives: true}, Limits{}, func([]byte, func(string) bool) {}); len(d) != 1 || d[0].Name != "Heuristics.Broken.Archive" {
		t.Errorf("cut: %+v", d)
	}
	if d := Scan(forms.TNEFOf([2]string{"r.txt", "a harmless file"}), Options{Archives: true}, Limits{}, match); len(d) != 0 {
		t.Errorf("clean: %+v", d)
	}
}

func FuzzTNEF(f *testing.F) {
	f.Add(forms.TNEFOf([2]string{"a.txt", "hello"}))
	f.Add(forms.TNEFWithBody(forms.LZFuLiterals([]byte("{\\rtf1 hello}"))))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(append(append([]byte{}, tnefMagic...), d...), Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
		mapiBinaries(d)
		rtfDecompress(d, 1<<16)
	})
}

// TestTNEFCompressedRTFBody: the RTF body Outlook keeps compressed in a
// winmail.dat's message properties is decompressed as the tnef tool
// decompresses it (--save-body), and EICAR in it found; the same body
// without it is clean; one cut short is damaged, never clean.
func TestTNEFCompressedRTFBody(t *testing.T) {
	tnef := testenv.Need(t, "tnef", "tnef")
	rtf := []byte("{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Times;}}\\f0\\fs20 " + eicar.String + "\\par }")
	bad := forms.TNEFWithBody(forms.LZFuLiterals(rtf))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "winmail.dat"), bad, 0o644)
	c := exec.Command(tnef, "-f", "winmail.dat", "--save-body=body", "--body-pref=r", "--overwrite")
	c.Dir = dir
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("tnef: %v %s", err, out)
	}
	saved, _ := filepath.Glob(filepath.Join(dir, "body*"))
	if len(saved) != 1 {
		t.Fatalf("tnef saved %q", saved)
	}
	want, _ := os.ReadFile(saved[0])
	var got []byte
	Walk(bad, Options{Archives: true}, Limits{}, func(b []byte, where string) bool {
		if where == "body.rtf" {
			got = bytes.Clone(b)
		}
		return false
	})
	if !bytes.Equal(bytes.TrimRight(want, "\x00"), got) {
		t.Errorf("walked %q, tnef saved %q", got, want)
	}
	match := func(b []byte, found func(string) bool) {
		if bytes.Contains(b, []byte(eicar.String)) {
			found("Eicar")
		}
	}
	if bytes.Contains(bad, []byte(eicar.String)) {
		t.Fatal("EICAR stands whole in the compressed body")
	}
	if d := Scan(bad, Options{Archives: true}, Limits{}, match); len(d) != 1 || d[0].Path != "body.rtf" {
		t.Errorf("EICAR in the body: %+v", d)
	}
	clean := forms.TNEFWithBody(forms.LZFuLiterals([]byte("{\\rtf1 nothing to see\\par }")))
	if d := Scan(clean, Options{Archives: true}, Limits{}, match); len(d) != 0 {
		t.Errorf("a clean body: %+v", d)
	}
	cut := forms.LZFuLiterals(rtf)
	cut = cut[:len(cut)-10]
	if d := Scan(forms.TNEFWithBody(cut), Options{Archives: true}, Limits{}, match); len(d) == 0 || d[len(d)-1].Name != "Heuristics.Broken.Archive" {
		t.Errorf("a body cut short: %+v", d)
	}
}
