package proxy

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/policy"
	"github.com/fsigkd/fsigkd/scanner"
)

// TestRulesLookInsideArchives: an exe renamed .txt, in a zip in a gzip,
// is found by type; a name rule matches a member's name and an encrypted
// member's (its bytes cannot be read, its name can).
func TestRulesLookInsideArchives(t *testing.T) {
	dir := t.TempDir()
	inner := eicar.Zip(map[string][]byte{"docs/readme.txt": eicar.WindowsProgram(false), "ok.txt": []byte("fine")})
	file := filepath.Join(dir, "obj")
	os.WriteFile(file, inner, 0o644)
	r, err := policy.ParseRules("exe, dll", "*.scr")
	if err != nil {
		t.Fatal(err)
	}
	if rule, where := checkFile(r, file, "bundle.zip", false); rule != "block_types=exe" || where != "docs/readme.txt" {
		t.Fatalf("%q at %q", rule, where)
	}
	os.WriteFile(file, eicar.Zip(map[string][]byte{"a/screen.SCR": []byte("text")}), 0o644)
	if rule, where := checkFile(r, file, "", false); rule != "block_names=*.scr" || where != "a/screen.SCR" {
		t.Fatalf("%q at %q", rule, where)
	}
	if rule, _ := checkFile(r, file, "x.SCR", false); rule != "block_names=*.scr" {
		t.Fatalf("the object's own name: %q", rule)
	}
	var enc bytes.Buffer
	zw := zip.NewWriter(&enc)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "locked/screen.scr", Flags: 1, Method: zip.Store})
	w.Write([]byte("ciphertext, as far as anyone can tell"))
	zw.Close()
	os.WriteFile(file, enc.Bytes(), 0o644)
	if rule, where := checkFile(r, file, "", false); rule != "block_names=*.scr" || where != "locked/screen.scr" {
		t.Fatalf("encrypted member: %q at %q", rule, where)
	}
	os.WriteFile(file, eicar.Zip(map[string][]byte{"a.txt": []byte("text")}), 0o644)
	if rule, _ := checkFile(r, file, "a.zip", false); rule != "" {
		t.Fatalf("clean zip: %q", rule)
	}
	mail := "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream; name=\"photo.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(eicar.WindowsProgram(true)) + "\r\n--b--\r\n"
	os.WriteFile(file, []byte(mail), 0o644)
	if rule, where := checkFile(r, file, "", true); rule != "block_types=dll" || filepath.Base(where) != "photo.jpg" {
		t.Fatalf("mail: %q at %q", rule, where)
	}
	if _, err := policy.ParseRules("exe, nonsense", ""); err == nil {
		t.Fatal("an unknown type was taken")
	}
	if _, err := policy.ParseRules("", "a/b*"); err == nil {
		t.Fatal("a pattern with a slash was taken")
	}
	if r, err := policy.ParseRules("application/x-ms-shortcut", ""); err != nil || r.Check(nil, "") != "" {
		t.Fatal(err)
	}
}

// TestRulesLookInsideDataURIs: a program carried in a page's data:
// address or a script's base64 string (HTML smuggling) is found by type,
// and by the name its link's download attribute gives it, in a page
// fetched over HTTP and in a mail's HTML part; a page with a picture so
// carried passes.
func TestRulesLookInsideDataURIs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "obj")
	r, err := policy.ParseRules("exe", "*.js")
	if err != nil {
		t.Fatal(err)
	}
	prog := base64.StdEncoding.EncodeToString(eicar.WindowsProgram(false))
	os.WriteFile(file, []byte(`<html><body><a href="data:application/octet-stream;base64,`+prog+`">get</a></body></html>`), 0o644)
	if rule, where := checkFile(r, file, "page.html", false); rule != "block_types=exe" || where != "data-uri-1" {
		t.Fatalf("%q at %q", rule, where)
	}
	os.WriteFile(file, []byte(`<html><body><a download='run.js' href='data:text/plain,WScript.Echo(1)'>get</a></body></html>`), 0o644)
	if rule, where := checkFile(r, file, "page.html", false); rule != "block_names=*.js" || where != "run.js" {
		t.Fatalf("%q at %q", rule, where)
	}
	mail := "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(`<a href="DATA:;BASE64,`+prog+`">x</a>`)) + "\r\n"
	os.WriteFile(file, []byte(mail), 0o644)
	if rule, where := checkFile(r, file, "", true); rule != "block_types=exe" || filepath.Base(where) != "data-uri-1" {
		t.Fatalf("mail: %q at %q", rule, where)
	}
	os.WriteFile(file, []byte(`<script>var f = "`+base64.StdEncoding.EncodeToString(append(eicar.WindowsProgram(false), []byte(strings.Repeat("its code and data ", 20))...))+`";</script>`), 0o644)
	if rule, where := checkFile(r, file, "page.html", false); rule != "block_types=exe" || where != "base64-string-1" {
		t.Fatalf("a script's string: %q at %q", rule, where)
	}
	os.WriteFile(file, []byte(`<html><body><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="></body></html>`), 0o644)
	if rule, where := checkFile(r, file, "page.html", false); rule != "" {
		t.Fatalf("a picture: %q at %q", rule, where)
	}
}

// checkFile is rulesIn on the file at name, and on its bytes held in
// memory as the spool holds a small object: the two must agree (a rule
// that differs is given as "memory and file differ").
func checkFile(r *policy.Rules, name, objName string, mail bool) (string, string) {
	f, err := os.Open(name)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	rule, where := rulesIn(r, &scanner.Object{File: f, Size: st.Size()}, objName, mail)
	data, _ := os.ReadFile(name)
	if r2, w2 := rulesIn(r, &scanner.Object{Data: data, Size: int64(len(data))}, objName, mail); r2 != rule || w2 != where {
		return "memory and file differ", ""
	}
	return rule, where
}

// TestZipNamedTwoWays: a zip whose central directory names an entry
// "notes.txt" while its local header says "notes.scr" (what a streaming
// unzip, Java's reader or an unzip of a damaged archive writes to disk):
// the name rules see the local name too. Made by zip, the central name
// patched; the same archive unpatched is clean, and named .scr in both
// places, blocked.
func TestZipNamedTwoWays(t *testing.T) {
	zipTool := testenv.Need(t, "zip", "zip")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.scr"), []byte("plain words"), 0o644)
	c := exec.Command(zipTool, "-q", "a.zip", "notes.scr")
	c.Dir = dir
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("zip: %v %s", err, out)
	}
	both, _ := os.ReadFile(filepath.Join(dir, "a.zip"))
	central := bytes.LastIndex(both, []byte("notes.scr"))
	local := bytes.Index(both, []byte("notes.scr"))
	if central == local {
		t.Fatal("the name is once in the archive")
	}
	twoWays := bytes.Clone(both)
	copy(twoWays[central:], "notes.txt")
	neither := bytes.Clone(twoWays)
	copy(neither[local:], "notes.txt")
	r, err := policy.ParseRules("", "*.scr")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "obj")
	for name, c := range map[string]struct {
		data  []byte
		block bool
	}{"both .scr": {both, true}, "central .txt, local .scr": {twoWays, true}, "both .txt": {neither, false}} {
		os.WriteFile(file, c.data, 0o644)
		if rule, where := checkFile(r, file, "a.zip", false); (rule == "block_names=*.scr") != c.block {
			t.Errorf("%s: %q at %q", name, rule, where)
		}
	}
}
