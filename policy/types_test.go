package policy

import (
	"archive/zip"
	"bytes"
	"debug/pe"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// PE is eicar's harmless Windows program.
var PE = eicar.WindowsProgram

func TestTypesByTheirBytes(t *testing.T) {
	if _, err := pe.NewFile(bytes.NewReader(PE(false))); err != nil {
		t.Fatalf("the test PE does not parse: %v", err)
	}
	self, _ := os.ReadFile("/proc/self/exe")
	ole := append(append([]byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}, make([]byte, 500)...), utf16("_VBA_PROJECT")...)
	iso := make([]byte, 0x9000)
	copy(iso[0x8001:], "CD001")
	lnk := append([]byte{0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46}, make([]byte, 60)...)
	for name, c := range map[string]struct {
		data []byte
		file string
		want string
	}{
		"exe named .txt":      {PE(false), "readme.txt", "exe"},
		"dll":                 {PE(true), "x.bin", "dll"},
		"elf":                 {self, "", "elf"},
		"lnk named .pdf":      {lnk, "invoice.pdf", "lnk"},
		"iso":                 {iso, "disk.img", "iso"},
		"ole with macros":     {ole, "report.doc", "office-macro"},
		"zip":                 {eicar.Zip(map[string][]byte{"a.txt": []byte("x")}), "a.dat", "zip"},
		"hta by content":      {[]byte("<html><HTA:APPLICATION ID=x></html>"), "page.txt", "hta"},
		"js by name":          {[]byte("var x = 1;"), "invoice.js", "js"},
		"encoded vbs":         {[]byte("#@~^XgAAAA==abc"), "x.txt", "vbs"},
		"plain text":          {[]byte("hello"), "hello.txt", ""},
		"exe-like name, text": {[]byte("hello"), "setup.exe", ""},
	} {
		got := TypesOf(c.data, c.file)
		if c.want == "" && len(got) > 0 || c.want != "" && !slices.Contains(got, c.want) {
			t.Errorf("%s: %v, want %q", name, got, c.want)
		}
	}
}

// TestRulesLookInsideArchives: an exe renamed .txt, in a zip in a gzip,
// is found by type; a name rule matches a member's name and an encrypted
// member's (its bytes cannot be read, its name can).
func TestRulesLookInsideArchives(t *testing.T) {
	dir := t.TempDir()
	inner := eicar.Zip(map[string][]byte{"docs/readme.txt": PE(false), "ok.txt": []byte("fine")})
	file := filepath.Join(dir, "obj")
	os.WriteFile(file, inner, 0o644)
	r, err := ParseRules("exe, dll", "*.scr")
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
		b64(PE(true)) + "\r\n--b--\r\n"
	os.WriteFile(file, []byte(mail), 0o644)
	if rule, where := checkFile(r, file, "", true); rule != "block_types=dll" || filepath.Base(where) != "photo.jpg" {
		t.Fatalf("mail: %q at %q", rule, where)
	}
	if _, err := ParseRules("exe, nonsense", ""); err == nil {
		t.Fatal("an unknown type was taken")
	}
	if _, err := ParseRules("", "a/b*"); err == nil {
		t.Fatal("a pattern with a slash was taken")
	}
	if r, err := ParseRules("application/x-ms-shortcut", ""); err != nil || r.Check(nil, "") != "" {
		t.Fatal(err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// checkFile is CheckFile on the file at name.
func checkFile(r *Rules, name, objName string, mail bool) (string, string) {
	f, err := os.Open(name)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	return r.CheckFile(f, st.Size(), objName, mail)
}

// TestNamesAsWindowsOpensThem: a name rule (and a script type told by the
// name) holds whatever Windows ignores when it opens a file: case,
// trailing dots and spaces, a stream suffix, a backslash path.
func TestNamesAsWindowsOpensThem(t *testing.T) {
	r, err := ParseRules("js", "*.scr")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"setup.scr": "block_names=*.scr", "SETUP.SCR": "block_names=*.scr", "setup.scr.": "block_names=*.scr",
		"setup.scr . .": "block_names=*.scr", "setup.scr::$DATA": "block_names=*.scr", `dir\setup.scr`: "block_names=*.scr",
		"a/b/setup.scr": "block_names=*.scr", "invoice.js...": "block_types=js", "setup.scr.txt": "", "readme.txt": "",
	} {
		if got := r.Check(nil, name); got != want {
			t.Errorf("%q: %q, want %q", name, got, want)
		}
	}
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
	r, err := ParseRules("", "*.scr")
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
