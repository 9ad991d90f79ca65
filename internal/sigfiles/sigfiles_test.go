package sigfiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDescribeCountsSignatureLines(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("a", 200<<10) // longer than the read buffer
	hdb := "# comment\n\n44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test\n  \n" + long + ":1:Long\nlast:2:NoNewline"
	if err := os.WriteFile(filepath.Join(dir, "a.hdb"), []byte(hdb), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.ndb"), []byte("X:0:*:4142\nY:0:*:4344\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := Describe(dir)
	if err != nil {
		t.Fatal(err)
	}
	if set.Files != 2 || set.Kinds["hash"] != 3 || set.Kinds["body"] != 2 {
		t.Fatalf("got %d files, kinds %v; want 2 files, 3 hash, 2 body", set.Files, set.Kinds)
	}

	// A file rewritten is counted again, even within the same second.
	ndb := filepath.Join(dir, "b.ndb")
	if err := os.WriteFile(ndb, []byte("X:0:*:4142\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(ndb, later, later); err != nil {
		t.Fatal(err)
	}
	if set, err = Describe(dir); err != nil || set.Kinds["body"] != 1 {
		t.Fatalf("after a rewrite: kinds %v, %v; want 1 body", set.Kinds, err)
	}
}
