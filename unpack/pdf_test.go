package unpack

import (
	"bytes"
	"encoding/ascii85"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/forms"
	"github.com/fsigkd/fsigkd/internal/packtest"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// pdfWith lays out a one-page PDF (see forms.PDFWith).
var pdfWith = forms.PDFWith

// qpdfReads has qpdf decode every stream of d, and tells whether what it
// shows holds want: the fixture is a PDF a real reader decodes so.
func qpdfReads(t *testing.T, d, want []byte) bool {
	t.Helper()
	qpdf := testenv.Need(t, "qpdf", "qpdf")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pdf"), filepath.Join(dir, "out.pdf")
	os.WriteFile(in, d, 0o644)
	if o, err := exec.Command(qpdf, "--stream-data=uncompress", "--decode-level=all", in, out).CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 { // 3: warnings
			t.Fatalf("qpdf: %v\n%s", err, o)
		}
	}
	b, _ := os.ReadFile(out)
	return bytes.Contains(b, want)
}

func ascii85Of(b []byte) []byte {
	out := make([]byte, ascii85.MaxEncodedLen(len(b)))
	return append(out[:ascii85.Encode(out, b)], "~>"...)
}

// runLengthOf codes b as literal runs of 16 bytes (a run's length byte
// between every 16: nothing longer stands in the clear).
func runLengthOf(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		n := min(len(b), 16)
		out = append(out, byte(n-1))
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return append(out, 128)
}

// lzwOf codes b as PDF's LZW does (MSB first, early change).
func lzwOf(b []byte) []byte {
	table := map[string]int{}
	for i := 0; i < 256; i++ {
		table[string([]byte{byte(i)})] = i
	}
	next, width := 258, 9
	var out []byte
	var acc uint32
	bits := 0
	emit := func(code int) {
		acc = acc<<width | uint32(code)
		bits += width
		for bits >= 8 {
			out = append(out, byte(acc>>(bits-8)))
			bits -= 8
		}
	}
	emit(256)
	w := ""
	for _, c := range b {
		wc := w + string([]byte{c})
		if _, ok := table[wc]; ok {
			w = wc
			continue
		}
		emit(table[w])
		table[wc] = next
		next++
		if next+1 >= 1<<width && width < 12 {
			width++
		}
		w = string([]byte{c})
	}
	if w != "" {
		emit(table[w])
	}
	emit(257)
	if bits > 0 {
		out = append(out, byte(acc<<(8-bits)))
	}
	return out
}

// TestPDFStreamsDecoded: EICAR in a PDF's content stream, through each
// standard filter, a chain of two and names written with #xx escapes,
// is found (qpdf, decoding the same file, shows it too); never in the
// raw bytes. The clean twins are clean.
func TestPDFStreamsDecoded(t *testing.T) {
	payload := append([]byte("BT /F1 12 Tf (hello) Tj ET\n% "), eicar.String...)
	forms := map[string]func([]byte) []byte{
		"/Filter /FlateDecode":                      packtest.Zlib,
		"/Filter /LZWDecode":                        lzwOf,
		"/Filter /ASCII85Decode":                    ascii85Of,
		"/Filter /ASCIIHexDecode":                   func(b []byte) []byte { return append([]byte(hex.EncodeToString(b)), '>') },
		"/Filter /RunLengthDecode":                  runLengthOf,
		"/Filter [/ASCII85Decode /FlateDecode]":     func(b []byte) []byte { return ascii85Of(packtest.Zlib(b)) },
		"/Filter /Fl#61teDecode":                    packtest.Zlib,
		"/Filter [ /A#53CIIHexDecode /FlateDecode]": func(b []byte) []byte { return append([]byte(hex.EncodeToString(packtest.Zlib(b))), '>') },
	}
	match := func(b []byte, found func(string) bool) {
		if bytes.Contains(b, []byte(eicar.String)) {
			found("Eicar")
		}
	}
	for filter, encode := range forms {
		doc := pdfWith(filter, encode(payload))
		if bytes.Contains(doc, []byte(eicar.String)) {
			t.Fatalf("%s: EICAR in the clear", filter)
		}
		if !qpdfReads(t, doc, []byte(eicar.String)) {
			t.Errorf("%s: qpdf does not decode EICAR out of the fixture", filter)
		}
		if d := Scan(doc, Options{Archives: true}, Limits{}, match); len(d) != 1 || d[0].Name != "Eicar" {
			t.Errorf("%s: %+v", filter, d)
		}
		clean := pdfWith(filter, encode([]byte("BT /F1 12 Tf (hello) Tj ET")))
		if d := Scan(clean, Options{Archives: true}, Limits{}, match); len(d) != 0 {
			t.Errorf("%s, clean: %+v", filter, d)
		}
	}
}

// TestPDFMadeByQPDF: a PDF rewritten by qpdf with its streams compressed
// and its objects in object streams: EICAR inside is found.
func TestPDFMadeByQPDF(t *testing.T) {
	qpdf := testenv.Need(t, "qpdf", "qpdf")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.pdf"), filepath.Join(dir, "out.pdf")
	os.WriteFile(in, pdfWith("", append([]byte("BT (a page) Tj ET % "), eicar.String...)), 0o644)
	if o, err := exec.Command(qpdf, "--compress-streams=y", "--object-streams=generate", in, out).CombinedOutput(); err != nil {
		t.Fatalf("qpdf: %v %s", err, o)
	}
	doc, _ := os.ReadFile(out)
	if bytes.Contains(doc, []byte(eicar.String)) {
		t.Fatal("EICAR in the clear")
	}
	d := Scan(doc, Options{Archives: true}, Limits{}, func(b []byte, found func(string) bool) {
		if bytes.Contains(b, []byte(eicar.String)) {
			found("Eicar")
		}
	})
	if len(d) != 1 || d[0].Name != "Eicar" {
		t.Errorf("%+v", d)
	}
}

// FuzzPDF feeds the stream walk and its filters PDFs as they come.
func FuzzPDF(f *testing.F) {
	f.Add(pdfWith("/Filter [/ASCII85Decode /FlateDecode]", ascii85Of(packtest.Zlib([]byte("BT (x) Tj ET")))))
	f.Add(pdfWith("/Filter /LZWDecode", lzwOf([]byte("ababababababab"))))
	f.Add(pdfWith("/Filter /RunLengthDecode", []byte{2, 'a', 'b', 'c', 254, 'x', 128}))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(append([]byte("%PDF-1.4\n"), d...), Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
	})
}

// TestPDFJavaScriptIsBounded: strings nested in strings after /JS keys,
// and a hundred thousand references to objects not there, cost about
// the time their size asks (four times the text, under eight times the
// time), and the strings found are walked within the files limit.
func TestPDFJavaScriptIsBounded(t *testing.T) {
	for _, unit := range []string{"/JS (", "/JS <41", "/JS 99999 0 R ", "/J#53 (\\101"} {
		took := func(n int) time.Duration {
			doc := []byte("%PDF-1.4\n" + strings.Repeat(unit, n))
			start := time.Now()
			Scan(doc, Options{Archives: true}, Limits{MaxFiles: 100}, nil)
			return time.Since(start)
		}
		if a, b := took(25000), took(100000); b > 8*a+50*time.Millisecond {
			t.Errorf("%q: 4x took %v against %v", unit, b, a)
		}
	}
}
