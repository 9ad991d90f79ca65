package sigfiles

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/cvdtest"
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

// TestFreshclamDirectoryDescribed: a database directory as freshclam
// keeps it (containers, loose files, its state files) is listed with the
// newer of daily.cud and daily.cld, and counted by kind (a PUA file's
// signatures with its plain kind's), the kinds the engine does not read
// apart, the allow and ignore lists and the file types on their own.
func TestFreshclamDirectoryDescribed(t *testing.T) {
	old := cvdtest.Build(t, "daily", 5, map[string]string{".ndb": "A:0:*:414243\n"})
	newer := cvdtest.Build(t, "daily", 6, map[string]string{".ndb": "A:0:*:414243\nB:0:*:444546\n", ".ldb": "L;Target:0;0;414243\n", ".mdb": "1024:8b4d9e4b6c2b1b6d7e3c1a5f0a9b8c7d:M\n", ".hdu": "44d88612fea8a8f36de82e1278abb02f:68:PUA.Test\n", ".cdb": "Test.Container:CL_TYPE_ZIP:*:.*:*:*:*:*:*:*\n", ".ftm": "0:0:4d5a:PE:CL_TYPE_ANY:CL_TYPE_MSEXE\n", ".wdb": "M:example.com:example.net\n"})
	dir := t.TempDir()
	b, _ := os.ReadFile(old)
	os.WriteFile(filepath.Join(dir, "daily.cud"), b, 0o644)
	b, _ = os.ReadFile(newer)
	os.WriteFile(filepath.Join(dir, "daily.cld"), b, 0o644) // compressed or not, a header's version decides
	os.WriteFile(filepath.Join(dir, "local.ign2"), []byte("A\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "freshclam.dat"), []byte("x"), 0o644)
	files, err := List(dir)
	if err != nil || len(files) != 2 || filepath.Base(files[0]) != "daily.cld" || filepath.Base(files[1]) != "local.ign2" {
		t.Fatalf("%v %v", files, err)
	}
	set, err := Describe(dir)
	if err != nil || set.Kinds["body"] != 2 || set.Kinds["logical"] != 1 || set.Kinds["unsupported"] != 1 || set.Kinds["types"] != 1 || set.Kinds["container"] != 1 || set.Kinds["allow"] != 1 || set.Kinds["hash"] != 2 {
		t.Fatalf("%+v %v", set, err)
	}
	os.Remove(filepath.Join(dir, "daily.cud"))
	os.Remove(filepath.Join(dir, "daily.cld"))
	if _, err := List(dir); err == nil {
		t.Fatal("a directory of kinds the engine does not read was accepted")
	}
}
