package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/internal/dbgen"
)

// TestGeneratedDatabaseAsClamscanReadsIt: a database generated in
// ClamAV's formats (tens of thousands of hashes, thousands of body and
// logical signatures of every documented shape, and signatures of pages'
// scripts as ClamAV normalises them) and a corpus planted with some of
// them, bare and inside zip, gzip, tar and mail, beside clean objects
// and near misses: the bundled engine names every object
// as clamscan does, and passes the same ones. (bench's -only sigdb runs
// it at full scale beside clamd.)
func TestGeneratedDatabaseAsClamscanReadsIt(t *testing.T) {
	dir, corpus := t.TempDir(), t.TempDir()
	objs, err := dbgen.Write(dir, dbgen.Scale{MD5: 20000, SHA256: 2000, Body: 2100, Logical: 600, Script: 400, Planted: 42}, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, o := range objs {
		os.WriteFile(filepath.Join(corpus, o.Name), o.Data, 0o644)
		want[o.Name] = o.Want
	}
	theirs := clamscanFinds(t, dir, corpus)
	db, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if db.Skipped != 0 || len(db.Unsupported) != 0 {
		t.Fatalf("skipped %d, not read %v", db.Skipped, db.Unsupported)
	}
	e := New(db)
	found := 0
	for _, o := range objs {
		ours := named(e, o.Data, Options{Archives: true, MIME: true, StopOnFirst: true})
		if theirs[o.Name] != o.Want {
			t.Errorf("%s: clamscan says %q, the generator planted %q", o.Name, theirs[o.Name], o.Want)
		}
		if ours != theirs[o.Name] {
			t.Errorf("%s: the engine says %q, clamscan %q", o.Name, ours, theirs[o.Name])
		}
		if o.Want != "" {
			found++
		}
	}
	t.Logf("%d objects, %d with a signature; %d signatures loaded", len(objs), found, db.Signatures())
}
