package quarantine

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPutListGetDelete(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "q")}
	id, err := s.Put(strings.NewReader("object bytes"), 12, Meta{Service: "http", URL: "http://x/y", Verdict: "Eicar"})
	if err != nil || !ValidID(id) {
		t.Fatalf("%q %v", id, err)
	}
	list, _ := s.List()
	if len(list) != 1 || list[0].ID != id || list[0].Size != 12 || list[0].SHA256 == "" {
		t.Fatalf("%+v", list)
	}
	if st, _ := os.Stat(filepath.Join(s.Dir, id+".data")); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode())
	}
	f, _ := s.Open(id)
	var b bytes.Buffer
	b.ReadFrom(f)
	f.Close()
	if b.String() != "object bytes" {
		t.Fatalf("%q", b.String())
	}
	if err := s.Delete(id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id); err != ErrNoEntry {
		t.Fatalf("after delete: %v", err)
	}
	for _, bad := range []string{"../x", "", "20261128-101500-3FA2C1D0", "20261128-101500-3fa2c1d0/../../x"} {
		if _, err := s.Get(bad); err != ErrNoEntry {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestPruneKeepsTheBounds: past MaxSize the oldest go, at once when
// much came in (a flood of detections does not wait for the minute);
// past MaxAge every old one; what a dead writer left goes an hour on.
func TestPruneKeepsTheBounds(t *testing.T) {
	s := &Store{Dir: t.TempDir(), MaxSize: 250}
	var ids []string
	for i := 0; i < 4; i++ {
		id, err := s.Put(strings.NewReader(strings.Repeat("x", 100)), 100, Meta{Service: "smtp"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		time.Sleep(1100 * time.Millisecond) // ids sort by the second
	}
	// Each put was a tenth of MaxSize or more: each pruned at once.
	list, _ := s.List()
	if len(list) != 2 || list[0].ID != ids[2] || list[1].ID != ids[3] {
		t.Fatalf("kept %+v", list)
	}
	// Age: make the oldest 40 days old.
	m := list[0]
	m.Time = time.Now().Add(-40 * 24 * time.Hour)
	b, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(s.Dir, m.ID+".json"), b, 0o640)
	s.MaxAge = 30 * 24 * time.Hour
	if n := s.Prune(); n != 1 {
		t.Fatalf("pruned by age %d", n)
	}
	orphan := filepath.Join(s.Dir, "20200101-000000-00000000.data")
	os.WriteFile(orphan, []byte("half"), 0o640)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(orphan, old, old)
	s.Prune()
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatal("an object without metadata stayed")
	}
}
