package unpack

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// tnefOf lays out a winmail.dat holding files (name and data), each as
// Outlook writes an attachment: its rendering, its title, its data.
func tnefOf(files ...[2]string) []byte {
	b := append([]byte{}, tnefMagic...)
	b = append(b, 0x01, 0x00) // the key
	attr := func(level byte, id uint32, v []byte) {
		b = append(b, level)
		b = binary.LittleEndian.AppendUint32(b, id)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
		var sum uint16
		for _, c := range v {
			sum += uint16(c)
		}
		b = binary.LittleEndian.AppendUint16(b, sum)
	}
	attr(1, 0x00089006, []byte{0, 0, 1, 0})                   // attTnefVersion
	attr(1, 0x00069007, []byte{0xe4, 0x04, 0, 0, 0, 0, 0, 0}) // attOemCodepage
	for _, f := range files {
		attr(2, 0x00069002, make([]byte, 14)) // attAttachRendData
		attr(2, 0x00018010, append([]byte(f[0]), 0))
		attr(2, 0x0006800f, []byte(f[1]))
	}
	return b
}

// TestTNEFAttachmentsScanned: a winmail.dat (its attachments checked out
// by the tnef tool, as a reader unwraps them) hid EICAR from a walk that
// did not open it; each attachment is scanned at its title now, a cut one
// damaged; the clean twin is clean.
func TestTNEFAttachmentsScanned(t *testing.T) {
	bad := tnefOf([2]string{"readme.txt", "hello"}, [2]string{"e.com", eicar.String})
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
	if d := Scan(tnefOf([2]string{"r.txt", "a harmless file"}), Options{Archives: true}, Limits{}, match); len(d) != 0 {
		t.Errorf("clean: %+v", d)
	}
}

func FuzzTNEF(f *testing.F) {
	f.Add(tnefOf([2]string{"a.txt", "hello"}))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(append(append([]byte{}, tnefMagic...), d...), Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
		mapiBinaries(d)
	})
}
