package engine

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/forms"
)

// rtfForms are the ways an RTF document carries a program, each by name.
func rtfForms(program []byte) map[string][]byte {
	pkg := forms.OLE1("Package", forms.Packaged("run.exe", program))
	out := map[string][]byte{}
	for _, form := range []string{"objdata then a space", "line break after objdata", "upper case, tabs and spaces",
		"ignorable groups among the digits", "control words among the digits", "a plain group among the digits", `"{\rt" alone`, "binary, \\bin"} {
		out["package, "+form] = forms.RTFWith(pkg, form)
	}
	// An equation's object: a compound file, whose stream holds it.
	out["compound file, objdata then a space"] = forms.RTFWith(forms.OLE1("Equation.3", forms.OLE(false, forms.OLEStream{Name: "Equation Native", Data: program})), "objdata then a space")
	return out
}

// TestRTFObjectsAsReadersReadThem: a program packaged in an RTF
// document's object (or in a compound file there, as an equation's) is
// found, the packaged file under its name, in each way of writing the
// object's hex Word reads, and in a .doc's \x01Ole10Native stream;
// clamscan finds it in all but two, which the engine reads as the RTF
// specification does: \objdata ended by a line break (ClamAV looks for
// it followed by a space), and a plain group among the digits (read
// both with its digits and without). The program's bytes stand in none of the RTF forms; the clean
// twins are clean.
func TestRTFObjectsAsReadersReadThem(t *testing.T) {
	e := builtin(t)
	program := append([]byte("MZ a program "+eicar.String), bytes.Repeat([]byte(" and its data"), 40)...)
	clean := append([]byte("MZ a program, nothing else"), bytes.Repeat([]byte(" and its data"), 40)...)
	infected := rtfForms(program)
	ole10 := func(file []byte) []byte {
		p := forms.Packaged("run.exe", file)
		return forms.OLE(false, forms.OLEStream{Name: "WordDocument", Data: make([]byte, 600)},
			forms.OLEStream{Name: "\x01Ole10Native", Data: append(binary.LittleEndian.AppendUint32(nil, uint32(len(p))), p...)})
	}
	infected[".doc, its Ole10Native stream"] = ole10(program)
	// Past 4 KiB, a stream lies in the file's own sectors, read in place.
	infected[".doc, a large Ole10Native stream"] = ole10(append(program, make([]byte, 8000)...))
	db := eicarSigDir(t)
	corpus := t.TempDir()
	for name, b := range infected {
		os.WriteFile(filepath.Join(corpus, name), b, 0o644)
	}
	theirs := clamscanFinds(t, db, corpus)
	t.Logf("clamscan: %v", theirs)
	for name := range infected {
		reads := name != "package, line break after objdata" && name != "package, a plain group among the digits"
		if reads != (theirs[name] == "Eicar-Test-Signature") {
			t.Errorf("%s: clamscan finds %q", name, theirs[name])
		}
	}
	for name, b := range infected {
		if strings.HasPrefix(name, "package") && !strings.HasSuffix(name, `\bin`) && bytes.Contains(b, []byte(eicar.String)) {
			t.Errorf("%s: the program stands in the document", name)
		}
		// Found in the object, the packaged file by its name.
		if d := e.ScanBytes(b, all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" ||
			!strings.HasSuffix(d[0].Path, "/run.exe") && !strings.HasPrefix(d[0].Path, "rtf-object-") {
			t.Errorf("%s: %+v", name, d)
		}
	}
	for name, b := range rtfForms(clean) {
		if d := e.ScanBytes(b, all); len(d) != 0 {
			t.Errorf("%s, clean: %s", name, names(d))
		}
	}
}
