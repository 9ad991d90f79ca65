package unpack

import (
	"encoding/binary"
	"errors"
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
	pvd := make([]byte, 2048)
	pvd[0] = 1
	copy(pvd[1:], "CD001")
	pvd[6] = 1
	root := pvd[156 : 156+34]
	root[0] = 34
	binary.LittleEndian.PutUint32(root[2:], 18) // the root directory in sector 18
	binary.LittleEndian.PutUint32(root[10:], 2048)
	root[25] = 2
	root[32] = 1
	term := make([]byte, 2048)
	term[0] = 255
	copy(term[1:], "CD001")
	dir := make([]byte, 2048)
	file := dir[0:40]
	file[0] = 40
	binary.LittleEndian.PutUint32(file[2:], 19)
	binary.LittleEndian.PutUint32(file[10:], 68)
	file[32] = 6
	copy(file[33:], "E.COM;1")
	data := append(append(append(pvd, term...), dir...), eicar.String...)
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
		Scan(d, Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func(b []byte, found func(string) bool) {})
	})
}
