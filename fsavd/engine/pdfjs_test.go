package engine

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// pdfWithAction is a one-page PDF whose open action is the object
// action (a dictionary's text), with more objects after it.
func pdfWithAction(action string, more ...string) []byte {
	objs := append([]string{"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>", action}, more...)
	var b strings.Builder
	b.WriteString("%PDF-1.4\n")
	var offs []int
	for i, o := range objs {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	x := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, x)
	return []byte(b.String())
}

// TestPDFJavaScriptStringsAsReadersReadThem: a PDF's JavaScript written
// as a string (not a stream) was found only as written plainly; in hex
// or with its characters escaped no signature saw it. In each form a
// reader decodes (qpdf, whose JSON gives each string decoded, reads the
// JavaScript back from every one) the engine finds it, as pdf-js-N;
// clamscan in the plain and hex forms. The clean twins are clean.
func TestPDFJavaScriptStringsAsReadersReadThem(t *testing.T) {
	qpdf := testenv.Need(t, "qpdf", "qpdf")
	js := func(mark string) string {
		return "app.alert('" + mark + "'); this.exportDataObject({cName: 'a.exe', nLaunch: 2});"
	}
	octal := func(s string) string {
		var b strings.Builder
		for _, c := range []byte(s) {
			fmt.Fprintf(&b, "\\%03o", c)
		}
		return b.String()
	}
	utf16be := func(s string) string {
		b := []byte{0xfe, 0xff}
		for _, c := range []byte(s) { // ASCII
			b = append(b, 0, c)
		}
		return hex.EncodeToString(b)
	}
	spaced := func(h string) string { // white space between the digits, an odd count in each piece
		var b strings.Builder
		for i := 0; i < len(h); i += 7 {
			b.WriteString(h[i:min(i+7, len(h))] + " \n\t")
		}
		return b.String()
	}
	forms := func(mark string) map[string][]byte {
		j := js(mark)
		half := len(j) / 2
		return map[string][]byte{
			"plain":                      pdfWithAction("<< /S /JavaScript /JS (" + strings.ReplaceAll(j, "'", "\\'") + ") >>"),
			"hex":                        pdfWithAction("<< /S /JavaScript /JS <" + hex.EncodeToString([]byte(j)) + "> >>"),
			"hex, upper case and spaced": pdfWithAction("<< /S /JavaScript /JS <" + spaced(strings.ToUpper(hex.EncodeToString([]byte(j)))) + "> >>"),
			"octal escapes":              pdfWithAction("<< /S /JavaScript /JS (" + octal(j) + ") >>"),
			"a line continued":           pdfWithAction("<< /S /JavaScript /JS (" + j[:half] + "\\\n" + j[half:] + ") >>"),
			"name escaped":               pdfWithAction("<< /S /JavaScript /J#53 <" + hex.EncodeToString([]byte(j)) + "> >>"),
			"UTF-16 text":                pdfWithAction("<< /S /JavaScript /JS <" + utf16be(j) + "> >>"),
			"indirect object":            pdfWithAction("<< /S /JavaScript /JS 5 0 R >>", "<"+hex.EncodeToString([]byte(j))+">"),
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "js.ndb"), []byte("Test.PDF.JS:0:*:"+hex.EncodeToString([]byte("JSMARK-EVIL-PAYLOAD"))+"\n"), 0o644)
	db, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	withSig := New(db)
	corpus := t.TempDir()
	infected := forms("JSMARK-EVIL-PAYLOAD")
	for name, p := range infected {
		f := filepath.Join(corpus, name)
		os.WriteFile(f, p, 0o644)
		out, err := exec.Command(qpdf, "--json=2", "--json-key=qpdf", f).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "u:"+js("JSMARK-EVIL-PAYLOAD")) {
			t.Errorf("%s: qpdf reads: %v %s", name, err, out)
		}
		if d := withSig.ScanBytes(p, all); len(d) != 1 || d[0].Name != "Test.PDF.JS" || !strings.HasPrefix(d[0].Path, "pdf-js-") {
			t.Errorf("%s: %+v", name, d)
		}
	}
	theirs := clamscanFinds(t, dir, corpus)
	for _, name := range []string{"plain", "hex"} {
		if theirs[name] != "Test.PDF.JS" {
			t.Errorf("%s: clamscan finds %q", name, theirs[name])
		}
	}
	for name, p := range forms("an ordinary message") {
		if d := withSig.ScanBytes(p, all); len(d) != 0 {
			t.Errorf("%s, clean: %+v", name, d)
		}
	}
}
