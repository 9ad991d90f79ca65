package unpack

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
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
	f.Add(tnefWithBody(lzfuLiterals([]byte("{\\rtf1 hello}"))))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(append(append([]byte{}, tnefMagic...), d...), Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
		mapiBinaries(d)
		rtfDecompress(d, 1<<16)
	})
}

// lzfuLiterals compresses text as compressed RTF of literals only (a
// writer may; the references are tested on the specification's example),
// its CRC as readers check it.
func lzfuLiterals(text []byte) []byte {
	var data []byte
	w := len(rtfPrebuf)
	for i := 0; ; {
		at := len(data)
		data = append(data, 0)
		for bit := 0; bit < 8; bit++ {
			if i < len(text) {
				data = append(data, text[i])
				i++
				w = (w + 1) % 4096
				continue
			}
			data[at] |= 1 << bit
			data = append(data, byte(w>>4), byte(w<<4))
			h := binary.LittleEndian.AppendUint32(nil, uint32(len(data)+12))
			h = binary.LittleEndian.AppendUint32(h, uint32(len(text)))
			h = append(h, "LZFu"...)
			h = binary.LittleEndian.AppendUint32(h, ^crc32.Update(^uint32(0), crc32.IEEETable, data))
			return append(h, data...)
		}
	}
}

// tnefWithBody lays out a winmail.dat whose message properties hold a
// compressed RTF body.
func tnefWithBody(rtf []byte) []byte {
	props := binary.LittleEndian.AppendUint32(nil, 1)
	props = binary.LittleEndian.AppendUint32(props, 0x10090102) // PR_RTF_COMPRESSED, binary
	props = binary.LittleEndian.AppendUint32(props, 1)
	props = binary.LittleEndian.AppendUint32(props, uint32(len(rtf)))
	props = append(props, rtf...)
	for len(props)%4 != 0 {
		props = append(props, 0)
	}
	b := tnefOf()
	b = append(b, 1)
	b = binary.LittleEndian.AppendUint32(b, 0x00069003) // attMAPIProps
	b = binary.LittleEndian.AppendUint32(b, uint32(len(props)))
	b = append(b, props...)
	var sum uint16
	for _, c := range props {
		sum += uint16(c)
	}
	return binary.LittleEndian.AppendUint16(b, sum)
}

// TestTNEFCompressedRTFBody: the RTF body Outlook keeps compressed in a
// winmail.dat's message properties is decompressed as the tnef tool
// decompresses it (--save-body), and EICAR in it found; the same body
// without it is clean; one cut short is damaged, never clean.
func TestTNEFCompressedRTFBody(t *testing.T) {
	tnef := testenv.Need(t, "tnef", "tnef")
	rtf := []byte("{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Times;}}\\f0\\fs20 " + eicar.String + "\\par }")
	bad := tnefWithBody(lzfuLiterals(rtf))
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
	clean := tnefWithBody(lzfuLiterals([]byte("{\\rtf1 nothing to see\\par }")))
	if d := Scan(clean, Options{Archives: true}, Limits{}, match); len(d) != 0 {
		t.Errorf("a clean body: %+v", d)
	}
	cut := lzfuLiterals(rtf)
	cut = cut[:len(cut)-10]
	if d := Scan(tnefWithBody(cut), Options{Archives: true}, Limits{}, match); len(d) == 0 || d[len(d)-1].Name != "Heuristics.Broken.Archive" {
		t.Errorf("a body cut short: %+v", d)
	}
}
