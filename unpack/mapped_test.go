package unpack

import (
	"errors"
	"os"
	"testing"

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
