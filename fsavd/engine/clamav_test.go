package engine

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/cvdtest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestClamAVContainerAsClamscanReadsIt: a container built by sigtool
// with hash (MD5, SHA1, SHA-256; a size and any size) and body signatures
// (anywhere, at an offset, from the end, wildcards, alternatives), an
// allow list (.fp: a file known clean though a signature matches it) and
// an ignore list (.ign2: a signature withdrawn) names the same objects
// with the same names in the bundled engine as in clamscan (which adds
// .UNOFFICIAL to an unsigned container's names), and passes the same
// clean ones. A logical signature with a PCRE part that RE2 cannot run
// (a look-ahead), a feature the engine does not have, is the one difference: clamscan finds its object, the
// engine counts the signature as skipped.
func TestClamAVContainerAsClamscanReadsIt(t *testing.T) {
	testenv.Need(t, "clamscan", "clamav")
	objects := map[string][]byte{
		"md5":      []byte("an object found by its MD5"),
		"md5any":   []byte("an object found by its MD5, any size"),
		"sha1":     []byte("an object found by its SHA1"),
		"sha256":   []byte("an object found by its SHA-256"),
		"anywhere": []byte("prefix -- BODY-ANYWHERE-7f3a -- suffix"),
		"offset":   []byte("0123456789AT-TEN-BYTES and more"),
		"eof":      []byte("a lot of text before it ... NEAR-THE-END-42 tail"),
		"wild":     []byte("xx WILD\x01\x02CARD-\x00\x00\x00-DONE yy"),
		"alt":      []byte("-- ALT-B-SIG --"),
		"logical":  []byte("only a logical signature finds LOGICAL-ONLY-99"),
		"pcre":     []byte("found by clamscan alone: PCRE-ANCHOR and pcre-only-55"),
		"clean":    []byte("nothing to find in here, BODY-ANYWHERE-7f3b"),
		// Known clean by its MD5 (.fp), though a body signature matches.
		"allowed": []byte("a known good file that says BODY-ANYWHERE-7f3a"),
	}
	md5hex := func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
	sha1hex := func(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }
	sha256hex := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	hx := func(s string) string { return hex.EncodeToString([]byte(s)) }
	files := map[string]string{
		".hdb": fmt.Sprintf("%s:%d:Test.Hash.MD5\n%s:*:Test.Hash.AnySize:73\n", md5hex(objects["md5"]), len(objects["md5"]), md5hex(objects["md5any"])),
		".hsb": fmt.Sprintf("%s:%d:Test.Hash.SHA1\n%s:%d:Test.Hash.SHA256\n", sha1hex(objects["sha1"]), len(objects["sha1"]), sha256hex(objects["sha256"]), len(objects["sha256"])),
		".ndb": "Test.Body.Anywhere:0:*:" + hx("BODY-ANYWHERE-7f3a") + "\n" +
			"Test.Body.Offset:0:10:" + hx("AT-TEN-BYTES") + "\n" +
			"Test.Body.EOF:0:EOF-20:" + hx("NEAR-THE-END-42") + "\n" +
			"Test.Body.Wild:0:*:" + hx("WILD") + "????" + hx("CARD-") + "{3-5}" + hx("-DONE") + "\n" +
			"Test.Body.Alt:0:*:" + hx("ALT-") + "(41|42)" + hx("-SIG") + "\n",
		".ldb": "Test.Logical;Target:0;0;" + hx("LOGICAL-ONLY-99") + "\n" +
			"Test.Pcre;Engine:81-255,Target:0;0&1;" + hx("PCRE-ANCHOR") + ";0/pcre-only-(?=[0-9])/\n",
		".fp": fmt.Sprintf("%s:%d:Known.Good\n", md5hex(objects["allowed"]), len(objects["allowed"])),
		// The alternatives' signature withdrawn by the ignore list.
		".ign2": "Test.Body.Alt\n",
	}
	cud := cvdtest.Build(t, "daily", 5, files)
	corpus := t.TempDir()
	for name, b := range objects {
		os.WriteFile(filepath.Join(corpus, name), b, 0o644)
	}
	theirs := clamscanFinds(t, cud, corpus)
	if len(theirs) != len(objects)-3 || theirs["allowed"] != "" || theirs["alt"] != "" {
		t.Fatalf("clamscan found %d of %d: %v", len(theirs), len(objects)-3, theirs)
	}

	db, err := Load(filepath.Dir(cud))
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Unsupported) != 0 || db.Skipped != 1 {
		t.Errorf("not read: %v; skipped %d, want 1", db.Unsupported, db.Skipped)
	}
	e := New(db)
	for name, b := range objects {
		ours := named(e, b, Options{})
		want := theirs[name]
		if name == "pcre" {
			want = "" // the one difference: a feature the engine does not have
		}
		if ours != want {
			t.Errorf("%s: the engine says %q, clamscan %q", name, ours, theirs[name])
		}
	}
}

// TestFreshclamDirectory: of daily.cud and daily.cld, the one of the
// higher version is read (freshclam leaves both after an update); loose
// files beside them are read too.
func TestFreshclamDirectory(t *testing.T) {
	old := cvdtest.Build(t, "daily", 5, map[string]string{".ndb": "Test.Old:0:*:" + hex.EncodeToString([]byte("OLD-SIGNATURE")) + "\n"})
	newer := cvdtest.Build(t, "daily", 6, map[string]string{".ndb": "Test.New:0:*:" + hex.EncodeToString([]byte("NEW-SIGNATURE")) + "\n"})
	dir := t.TempDir()
	b, _ := os.ReadFile(old)
	os.WriteFile(filepath.Join(dir, "daily.cud"), b, 0o644)
	cvdtest.CLD(t, newer, filepath.Join(dir, "daily.cld"))
	os.WriteFile(filepath.Join(dir, "local.hdb"), []byte(md5Line("LOCAL", "Test.Local")), 0o644)
	os.WriteFile(filepath.Join(dir, "freshclam.dat"), []byte("state"), 0o644)
	db, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := New(db)
	for obj, want := range map[string]string{"x NEW-SIGNATURE x": "Test.New", "x OLD-SIGNATURE x": "", "LOCAL": "Test.Local"} {
		var got []string
		for _, d := range e.ScanBytes([]byte(obj), Options{}) {
			got = append(got, d.Name)
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%q: %v, want %q", obj, got, want)
		}
	}
}

func md5Line(obj, name string) string {
	s := md5.Sum([]byte(obj))
	return fmt.Sprintf("%s:%d:%s\n", hex.EncodeToString(s[:]), len(obj), name)
}

// TestReloadKeepsUnchangedHashFiles: a reload keeps the hash signatures
// of a file unchanged since (the same sets, not read again: freshclam's
// main.cvd while daily.cld changes) and reads a changed one afresh; what
// either holds is found after it.
func TestReloadKeepsUnchangedHashFiles(t *testing.T) {
	dir := t.TempDir()
	main := cvdtest.Build(t, "main", 1, map[string]string{".hdb": md5Line("MAIN-OBJECT", "Test.Main")})
	b, _ := os.ReadFile(main)
	os.WriteFile(filepath.Join(dir, "main.cvd"), b, 0o644)
	os.WriteFile(filepath.Join(dir, "daily.hdb"), []byte(md5Line("DAILY-ONE", "Test.Daily.One")), 0o644)
	db, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "daily.hdb"), []byte(md5Line("DAILY-ONE", "Test.Daily.One")+md5Line("DAILY-TWO", "Test.Daily.Two")), 0o644)
	db2, err := Reload(dir, db)
	if err != nil {
		t.Fatal(err)
	}
	byID := func(d *DB, name string) *hashFile {
		for _, hf := range d.hashFiles {
			if strings.Contains(hf.id, name) {
				return hf
			}
		}
		return nil
	}
	if byID(db2, "main.cvd") == nil || byID(db2, "main.cvd") != byID(db, "main.cvd") {
		t.Error("the unchanged container's hash signatures were read again")
	}
	if byID(db2, "daily.hdb") == byID(db, "daily.hdb") {
		t.Error("the changed file's hash signatures were kept")
	}
	e := New(db2)
	for obj, want := range map[string]string{"MAIN-OBJECT": "Test.Main", "DAILY-ONE": "Test.Daily.One", "DAILY-TWO": "Test.Daily.Two", "OTHER": ""} {
		var got []string
		for _, d := range e.ScanBytes([]byte(obj), Options{}) {
			got = append(got, d.Name)
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%s: %v, want %q", obj, got, want)
		}
	}
	if db2.Kinds()["hash"] != 3 {
		t.Errorf("kinds %v", db2.Kinds())
	}
}
