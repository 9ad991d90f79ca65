package fsavd

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatcherSeesFreshclamsChanges: a signature file rewritten, one
// added (freshclam's new container renamed in), one removed: each is a
// change, once; nothing changed is none.
func TestWatcherSeesFreshclamsChanges(t *testing.T) {
	dir := t.TempDir()
	ndb := filepath.Join(dir, "local.ndb")
	os.WriteFile(ndb, []byte("A:0:*:414243\n"), 0o644)
	w := &watcher{path: dir}
	if !w.changed() || w.changed() {
		t.Fatal("the first look, then none")
	}
	os.WriteFile(ndb, []byte("A:0:*:414243\nB:0:*:444546\n"), 0o644)
	if !w.changed() || w.changed() {
		t.Fatal("a file rewritten")
	}
	later := time.Now().Add(time.Minute)
	os.Chtimes(ndb, later, later) // the same size, a new time
	if !w.changed() {
		t.Fatal("a file touched")
	}
	tmp := filepath.Join(dir, ".hdb.tmp")
	os.WriteFile(tmp, []byte("44d88612fea8a8f36de82e1278abb02f:68:X\n"), 0o644)
	if w.changed() {
		t.Fatal("a temporary file is no signature file")
	}
	os.Rename(tmp, filepath.Join(dir, "local.hdb"))
	if !w.changed() {
		t.Fatal("a file renamed in")
	}
	os.Remove(ndb)
	if !w.changed() || w.changed() {
		t.Fatal("a file removed")
	}
}
