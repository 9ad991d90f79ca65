package quarantine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// TestOneQuarantineForAFleet: two gateways keep entries in one directory
// at once, each entry whole and naming its gateway; two that draw the
// same id do not overwrite each other; either lists, reads and deletes
// the other's, each deletion recorded in the deleting gateway's log;
// both pruning at once remove each entry once and keep the bound.
func TestOneQuarantineForAFleet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "q")
	a, b := &Store{Dir: dir, Gateway: "gw-a"}, &Store{Dir: dir, Gateway: "gw-b"}

	// The same id drawn by both: the second draws again.
	fixed := newID(time.Now())
	calls := 0
	defer func(f func(time.Time) string) { newID = f }(newID)
	random := newID
	newID = func(t time.Time) string {
		if calls++; calls <= 2 {
			return fixed
		}
		return random(t)
	}
	ida, err := a.Put(strings.NewReader("gw-a first"), 10, Meta{Service: "smtp"})
	idb, err2 := b.Put(strings.NewReader("gw-b first"), 10, Meta{Service: "smtp"})
	if err != nil || err2 != nil || ida != fixed || idb == fixed {
		t.Fatalf("%s %v, %s %v", ida, err, idb, err2)
	}
	newID = random

	var wg sync.WaitGroup
	for i := range 40 {
		for _, s := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := fmt.Sprintf("%s %d", s.Gateway, i)
				if _, err := s.Put(strings.NewReader(body), int64(len(body)), Meta{Service: "http"}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	list, _ := b.List()
	if len(list) != 82 {
		t.Fatalf("%d entries", len(list))
	}
	for _, m := range list {
		f, err := a.Open(m.ID)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(f)
		f.Close()
		sum := sha256.Sum256(body)
		if hex.EncodeToString(sum[:]) != m.SHA256 || !strings.HasPrefix(string(body), m.Gateway+" ") {
			t.Fatalf("%s (kept by %s): %q", m.ID, m.Gateway, body)
		}
	}
	if err := b.Delete(ida); err != nil {
		t.Fatal(err)
	}
	b.Record("delete", ida, "alice", "kept-by=gw-a")
	if l, _ := os.ReadFile(filepath.Join(dir, "log", "gw-b.log")); !strings.Contains(string(l), "gateway=gw-b user=alice delete "+ida+" kept-by=gw-a") {
		t.Fatalf("log: %q", l)
	}

	a.MaxSize, b.MaxSize = 200, 200
	wg.Add(2)
	var pruned [2]int
	go func() { defer wg.Done(); pruned[0] = a.Prune() }()
	go func() { defer wg.Done(); pruned[1] = b.Prune() }()
	wg.Wait()
	list, _ = a.List()
	var total int64
	for _, m := range list {
		total += m.Size
	}
	if total > 200 || pruned[0]+pruned[1] != 81-len(list) {
		t.Fatalf("after both pruned: %d entries, %d bytes, pruned %v", len(list), total, pruned)
	}
}

// TestUsageCountsEntriesWithMetadata: Usage counts the entries and their
// objects' bytes, not an object whose metadata is not written (being
// written, or left by a dead writer), nor another file.
func TestUsageCountsEntriesWithMetadata(t *testing.T) {
	st := &Store{Dir: t.TempDir()}
	for _, body := range []string{"one", "second"} {
		if _, err := st.Put(strings.NewReader(body), int64(len(body)), Meta{Service: "http"}); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(st.Dir, "20261207-120000-0123abcd.data"), []byte("orphan"), 0o600)
	os.WriteFile(filepath.Join(st.Dir, "notes.txt"), []byte("not an entry"), 0o600)
	if n, b := st.Usage(); n != 2 || b != 9 {
		t.Fatalf("%d entries, %d bytes; want 2, 9", n, b)
	}
}
