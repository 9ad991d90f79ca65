package engine

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// padded is s as its section holds it.
func padded(s []byte) []byte {
	return append(bytes.Clone(s), make([]byte, (len(s)+0x1ff)&^0x1ff-len(s))...)
}

// named is what the engine finds in b: its detections' names, joined by
// commas (clamscan's one line names one).
func named(e *Engine, b []byte, opt Options) string {
	var names []string
	for _, d := range e.ScanBytes(b, opt) {
		names = append(names, d.Name)
	}
	return strings.Join(names, ",")
}

// eicarSigDir is a signature directory holding EICAR's body signature
// alone, under the engine's name for it: what clamscan is given to
// compare a walk's reach with the engine's.
func eicarSigDir(t *testing.T) string {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "e.ndb"), []byte("Eicar-Test-Signature:0:*:"+hex.EncodeToString([]byte(eicar.String))+"\n"), 0o644)
	return dir
}

// clamscanFinds runs clamscan with the signatures in dir over the files
// of corpus (with its options flags): each file's detection, without the
// .UNOFFICIAL an unsigned database's names get.
func clamscanFinds(t *testing.T, dir, corpus string, flags ...string) map[string]string {
	t.Helper()
	clamscan := testenv.Need(t, "clamscan", "clamav")
	out, _ := exec.Command(clamscan, append(flags, "--no-summary", "-d", dir, corpus)...).CombinedOutput()
	found := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if p, name, ok := strings.Cut(line, ": "); ok && strings.HasSuffix(name, " FOUND") {
			found[filepath.Base(p)] = strings.TrimSuffix(strings.TrimSuffix(name, " FOUND"), ".UNOFFICIAL")
		}
	}
	return found
}

// TestPESectionHashesAsClamscanReadsThem: section hash signatures (.mdb
// with MD5, .msb with SHA-256 and with SHA1 for any size) find the
// same programs under the same names in the bundled engine as in
// clamscan: a program whose section matches, bare, inside a zip, and
// cut short after that section; and not the section's bytes outside a
// program, a program whose section differs by a byte, or one whose
// matching bytes sit in a section of another size.
func TestPESectionHashesAsClamscanReadsThem(t *testing.T) {
	code := bytes.Repeat([]byte{0xc3, 0x90, 0xcc}, 200)
	data := []byte("the data section of a program the signatures know")
	other := []byte("a section found by its SHA1 whatever its size")
	pe := eicar.WindowsProgramWith(code, data)
	changed := bytes.Clone(data)
	changed[3] ^= 1
	md5hex := func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
	sha1hex := func(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }
	sha256hex := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "sections.mdb"), fmt.Appendf(nil, "%d:%s:Test.Section.MD5\n", len(padded(code)), md5hex(padded(code))), 0o644)
	os.WriteFile(filepath.Join(dir, "sections.msb"), fmt.Appendf(nil, "%d:%s:Test.Section.SHA256\n*:%s:Test.Section.SHA1Any:73\n",
		len(padded(data)), sha256hex(padded(data)), sha1hex(padded(other))), 0o644)
	objects := map[string][]byte{
		"code":        eicar.WindowsProgramWith(code),
		"data":        eicar.WindowsProgramWith([]byte("another code section"), data),
		"any":         eicar.WindowsProgramWith(other),
		"zipped":      eicar.Zip(map[string][]byte{"setup.exe": eicar.WindowsProgramWith(code)}),
		"cut-short":   pe[:512+len(padded(code))+100],
		"bytes-alone": padded(code),
		"changed":     eicar.WindowsProgramWith([]byte("another code section"), changed),
		"other-size":  eicar.WindowsProgramWith(append(bytes.Clone(data), make([]byte, 600)...)),
	}
	if db := sameAsClamscan(t, dir, objects, 5); db.Kinds()["hash"] != 3 {
		t.Errorf("kinds %v", db.Kinds())
	}
}

// FuzzPESections: no input makes the section reader panic or give a
// section that lies outside the input.
func FuzzPESections(f *testing.F) {
	f.Add(eicar.WindowsProgramWith([]byte("code"), []byte("data")))
	f.Add(eicar.WindowsProgramWith())
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range peSections(data) {
			if len(s) == 0 || len(s) > len(data) {
				t.Fatalf("a section of %d bytes out of %d", len(s), len(data))
			}
		}
	})
}

// TestExecutableOffsetsAsClamscanReadsThem: body and logical signatures
// placed by a Windows program's structure (EP+n, EP+n,m, Sx+n, SL+n,
// SEx, with target type 1) find the same programs under the same names
// in the bundled engine as in clamscan, and not the same bytes elsewhere
// in a program, nor in a file that is no program.
func TestExecutableOffsetsAsClamscanReadsThem(t *testing.T) {
	hx := func(s string) string { return hex.EncodeToString([]byte(s)) }
	sec := func(parts ...string) []byte { return []byte(strings.Join(parts, "")) }
	ndb := "Test.Exe.EP:1:EP+0:" + hx("ENTRY-CODE-1") + "\n" +
		"Test.Exe.EPRange:1:EP+4,8:" + hx("NEAR-ENTRY-2") + "\n" +
		"Test.Exe.Section:1:S1+8:" + hx("IN-SECTION-ONE-3") + "\n" +
		"Test.Exe.Last:1:SL+0:" + hx("LAST-SECTION-4") + "\n" +
		"Test.Exe.Whole:1:SE1:" + hx("ANYWHERE-IN-ONE-5") + "\n"
	ldb := "Test.Exe.Logical;Engine:51-255,Target:1;(0&1);EP+0:" + hx("LOGICAL-ENTRY-6") + ";" + hx("AND-ALSO-7") + "\n"
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "exe.ndb"), []byte(ndb), 0o644)
	os.WriteFile(filepath.Join(dir, "exe.ldb"), []byte(ldb), 0o644)
	filler := strings.Repeat("f", 40)
	objects := map[string][]byte{
		"ep":              eicar.WindowsProgramWith(sec("ENTRY-CODE-1", filler), sec("data")),
		"ep-range":        eicar.WindowsProgramWith(sec("xxxx", "yyyy", "NEAR-ENTRY-2"), sec("data")),
		"ep-range-beyond": eicar.WindowsProgramWith(sec("xxxx", strings.Repeat("y", 12), "NEAR-ENTRY-2"), sec("data")),
		"section":         eicar.WindowsProgramWith(sec("code"), sec("8 bytes:", "IN-SECTION-ONE-3")),
		"section-moved":   eicar.WindowsProgramWith(sec("code"), sec("9 bytes:-", "IN-SECTION-ONE-3")),
		"last":            eicar.WindowsProgramWith(sec("code"), sec("data"), sec("LAST-SECTION-4")),
		"last-not":        eicar.WindowsProgramWith(sec("code"), sec("LAST-SECTION-4"), sec("tail")),
		"whole":           eicar.WindowsProgramWith(sec("code"), sec(filler, "ANYWHERE-IN-ONE-5", filler)),
		"whole-elsewhere": eicar.WindowsProgramWith(sec("ANYWHERE-IN-ONE-5"), sec("data")),
		"logical":         eicar.WindowsProgramWith(sec("LOGICAL-ENTRY-6", filler), sec("AND-ALSO-7")),
		"not-a-program":   sec("ENTRY-CODE-1 IN-SECTION-ONE-3 LAST-SECTION-4 ANYWHERE-IN-ONE-5"),
		"zipped":          eicar.Zip(map[string][]byte{"a.exe": eicar.WindowsProgramWith(sec("ENTRY-CODE-1"))}),
	}
	sameAsClamscan(t, dir, objects, 7)
}

// TestExecutableOffsetForms: the offsets read, and those refused or
// skipped.
func TestExecutableOffsetForms(t *testing.T) {
	for offset, want := range map[string]string{
		"EP+0": "E 0 0 0", "EP-16": "E 0 -16 0", "EP+4,8": "E 0 4 8", "S2+10": "S 2 10 0", "S0+0,5": "S 0 0 5",
		"SL+3": "L 0 3 0", "SE4": "X 4 0 0",
	} {
		kind, sec, off, span, err := execOffset(offset)
		if got := fmt.Sprintf("%c %d %d %d", kind, sec, off, span); err != nil || got != want {
			t.Errorf("%s: %s %v, want %s", offset, got, err, want)
		}
	}
	for _, bad := range []string{"EP", "EP+", "EP+x", "S+1", "Sx+1", "S1-4", "SL-1", "SE", "SE1+2", "EP+1,-2"} {
		if _, _, _, _, err := execOffset(bad); err == nil || errors.Is(err, errUnsupported) {
			t.Errorf("%s: %v, want refused", bad, err)
		}
	}
	if _, _, _, _, err := execOffset("VI"); !errors.Is(err, errUnsupported) {
		t.Errorf("VI: %v, want skipped", err)
	}
}

// TestProgramConditionsAsClamscanReadsThem: a logical signature's
// EntryPoint and NumberOfSections (each a range) judge a Windows
// program by its entry point's file offset and the sections its header
// counts, as clamscan judges them; a Target:1 signature looks at Windows
// programs alone; one of those conditions outside Target 1, 6 or 9
// fails the load, as in clamscan.
func TestProgramConditionsAsClamscanReadsThem(t *testing.T) {
	code := []byte("ENTRY-CODE-OF-THE-TEST-PROGRAM")
	hx := hex.EncodeToString(code)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x.ldb"), []byte(strings.Join([]string{
		// The test programs' entry point is the first section's first
		// byte, at 512 in the file.
		"Test.EP;Engine:51-255,Target:1,EntryPoint:500-520,NumberOfSections:1-1;0;" + hx,
		"Test.Sections;Engine:51-255,Target:1,NumberOfSections:3-4;0;" + hx,
		"Test.EPElsewhere;Engine:51-255,Target:1,EntryPoint:600-700,NumberOfSections:2-2;0;" + hx,
		"Test.AnyProgram;Target:1;0;" + hex.EncodeToString([]byte("ONLY-IN-PROGRAMS")),
	}, "\n")+"\n"), 0o644)
	objects := map[string][]byte{
		"one-section":    eicar.WindowsProgramWith(code),
		"three-sections": eicar.WindowsProgramWith(code, []byte("b"), []byte("c")),
		"two-sections":   eicar.WindowsProgramWith(code, []byte("b")),
		"not-a-program":  append([]byte("plain text "), code...),
		"program-text":   eicar.WindowsProgramWith([]byte("ONLY-IN-PROGRAMS")),
		"text-text":      []byte("text ONLY-IN-PROGRAMS"),
	}
	sameAsClamscan(t, dir, objects, 3)
	os.WriteFile(filepath.Join(dir, "y.ldb"), []byte("Test.NotTarget1;Engine:51-255,Target:0,NumberOfSections:2-2;0;"+hx+"\n"), 0o644)
	if _, err := Load(dir); err == nil {
		t.Fatal("NumberOfSections outside a program's signature was loaded")
	}
}
