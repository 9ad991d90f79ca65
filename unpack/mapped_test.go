package unpack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestMappedFileShortenedWhileRead: a file (past smallFile: mapped, not
// read) emptied by its owner while a
// scan reads its mapping (a spool file reused after its scan was given
// up) fails that scan with ErrShortened; the process goes on.
func TestMappedFileShortenedWhileRead(t *testing.T) {
	f := testenv.OpenFile(t, "spooled", make([]byte, 4<<20))
	touched := false
	_, err := ScanOpen(f, Options{}, Limits{}, func(data []byte, found func(string) bool) {
		if err := os.Truncate(f.Name(), 0); err != nil {
			t.Error(err)
		}
		touched = data[len(data)-1] == 0 // a page past the new end
	}, nil)
	if !errors.Is(err, ErrShortened) || touched {
		t.Fatalf("err %v (touched %v), want ErrShortened", err, touched)
	}
	// A panic that is not a fault is not taken for one.
	defer func() {
		if r := recover(); r != "not a fault" {
			t.Fatalf("recovered %v", r)
		}
	}()
	ScanOpen(testenv.OpenFile(t, "spooled", make([]byte, 1<<20)), Options{}, Limits{}, func([]byte, func(string) bool) { panic("not a fault") }, nil)
}

// FuzzISO feeds the image reader volume descriptors and directories: the
// fuzzed bytes are placed at sector 16, where an image's descriptors
// start, with a small image's own as the seed.
func FuzzISO(f *testing.F) {
	data := isoImage(isoFile{"E.COM;1", 0, []byte(eicar.String)})[16*2048:]
	var walked []string
	Walk(append(make([]byte, 16*2048), data...), Options{Archives: true}, Limits{}, func(b []byte, where string) bool {
		walked = append(walked, where)
		return false
	})
	if len(walked) != 2 || walked[1] != "E.COM" {
		f.Fatalf("the seed image, walked: %q", walked)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, vd []byte) {
		d := append(make([]byte, 16*2048), vd...)
		// Its records described too, as container signatures read them.
		Scan(d, Options{Archives: true, Members: func(m Member, found func(string) bool) {
			if m.Size < 0 || m.Container != TypeISO {
				t.Fatalf("described as %+v", m)
			}
		}}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func(b []byte, found func(string) bool) {})
	})
}

// isoFile is a directory record of isoImage: its name as recorded, its
// flags (0x80: more extents of the file follow), its extent's bytes.
type isoFile struct {
	name  string
	flags byte
	data  []byte
}

// isoImage lays out a plain ISO 9660 image: the primary descriptor in
// sector 16, the terminator in 17, the root directory in 18, each file's
// extent in sectors of its own from 19.
func isoImage(files ...isoFile) []byte {
	sector := func(n int) []byte { return make([]byte, n*2048) }
	img := sector(19)
	pvd := img[16*2048:]
	pvd[0] = 1
	copy(pvd[1:], "CD001")
	pvd[6] = 1
	root := pvd[156 : 156+34]
	root[0] = 34
	binary.LittleEndian.PutUint32(root[2:], 18)
	binary.LittleEndian.PutUint32(root[10:], 2048)
	root[25] = 2
	root[32] = 1
	term := img[17*2048:]
	term[0] = 255
	copy(term[1:], "CD001")
	dir := make([]byte, 2048) // copied in at the end: img grows meanwhile
	at := 0
	for _, f := range files {
		l := 33 + len(f.name)
		l += l % 2
		rec := dir[at : at+l]
		rec[0] = byte(l)
		binary.LittleEndian.PutUint32(rec[2:], uint32(len(img)/2048))
		binary.LittleEndian.PutUint32(rec[10:], uint32(len(f.data)))
		rec[25] = f.flags
		rec[32] = byte(len(f.name))
		copy(rec[33:], f.name)
		at += l
		ext := sector((len(f.data) + 2047) / 2048)
		copy(ext, f.data)
		img = append(img, ext...)
	}
	copy(img[18*2048:], dir)
	return img
}

// TestISOFileInSeveralExtents: a file recorded in several extents is
// scanned joined (EICAR split across two is found), and a chain another
// record breaks is scanned as far as it goes and reported damaged.
func TestISOFileInSeveralExtents(t *testing.T) {
	E := []byte(eicar.String)
	match := func(data []byte, found func(string) bool) {
		if bytes.Contains(data, E) {
			found("EICAR")
		}
	}
	got := Scan(isoImage(isoFile{"E.COM;1", 0x80, E[:30]}, isoFile{"E.COM;1", 0, E[30:]}), Options{Archives: true}, Limits{}, match)
	if len(got) != 1 || got[0].Name != "EICAR" || got[0].Path != "E.COM" {
		t.Fatalf("a file in two extents: %+v", got)
	}
	got = Scan(isoImage(isoFile{"E.COM;1", 0x80, E}, isoFile{"OTHER.TXT;1", 0, []byte("x")}), Options{Archives: true}, Limits{}, match)
	if len(got) != 2 || got[0].Name != "EICAR" || got[1].Name != "Heuristics.Broken.Archive" {
		t.Fatalf("a chain left unfinished: %+v", got)
	}
}

// TestImageRecordsOnOneExtentBounded: an image whose records all name
// the same extent (each a file to scan in place: from a download of a
// few KiB gzipped, ten thousand files of 64 MiB) is scanned no further
// than its own size and what a scan may unpack: the scan stops at its
// limit.
func TestImageRecordsOnOneExtentBounded(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 4<<20)
	files := []isoFile{{"A.BIN;1", 0, big}}
	for i := range 40 {
		files = append(files, isoFile{fmt.Sprintf("B%02d.BIN;1", i), 0, []byte("y")})
	}
	img := isoImage(files...)
	dir := img[18*2048 : 19*2048]
	first := dir[:dir[0]]
	for at := int(dir[0]); dir[at] != 0; at += int(dir[at]) {
		copy(dir[at+2:at+18], first[2:18]) // the extent and its size
	}
	scans := 0
	got := Scan(img, Options{Archives: true}, Limits{MaxTotal: 16 << 20}, func(b []byte, found func(string) bool) {
		if len(b) == len(big) {
			scans++
		}
	})
	if scans > 5 || len(got) != 1 || got[0].Name != "Heuristics.Limits.Exceeded.Total" {
		t.Fatalf("the extent scanned %d times: %+v", scans, got)
	}
}
