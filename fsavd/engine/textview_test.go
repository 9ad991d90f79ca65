package engine

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
)

// TestNormalisedTextAsClamscanReadsIt: signatures of target 7 (text), and
// of target 0, written in lower case are found in texts as clamscan finds
// them, in the text normalised: letters in any case, words split by runs
// of tabs, line ends and spaces, control characters and bytes from 0x80
// between them; in UTF-8, UTF-16 (with and without a byte-order mark),
// HTML, a mail and a text in a zip; by a logical signature of target 7,
// and one with a caseless part;
// at an offset from the normalised text's start and end. And not in what
// ClamAV types otherwise: bytes with control characters in their first
// 1,024 bytes, a text that a PDF's version in its head makes a PDF, one
// that starts as a picture does; nor, for target 7, in the object as it
// is; nor a signature in upper case (normalised text has none).
func TestNormalisedTextAsClamscanReadsIt(t *testing.T) {
	hx := func(s string) string { return hex.EncodeToString([]byte(s)) }
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.ndb"), []byte(strings.Join([]string{
		"Test.Generic:0:*:" + hx("generic-lower-mark"),
		"Test.Text:7:*:" + hx("seven-lower-mark"),
		"Test.Spaced:7:*:" + hx("spaced words here"),
		"Test.Upper:7:*:" + hx("SEVEN-UPPER"),
		"Test.Start:7:0:" + hx("starts the text"),
		"Test.End:7:EOF-20:" + hx("ends the text"),
	}, "\n")+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "t.ldb"), []byte(
		"Test.LogicalText;Engine:51-255,Target:7;0&1;"+hx("first-part")+";"+hx("second-part")+"\n"+
			"Test.Caseless;Engine:51-255,Target:7;0;"+hx("Caseless-Words")+"::i\n"), 0o644)
	utf16le := func(s string, bom bool) []byte {
		if bom {
			return []byte("\xff\xfe" + utf16(s))
		}
		return []byte(utf16(s))
	}
	objects := map[string][]byte{
		"generic-upper":     []byte("some text GENERIC-LOWER-MARK here\n"),
		"text-mixed":        []byte("some text Seven-Lower-Mark here\n"),
		"text-as-is":        []byte("some text seven-lower-mark here\n"),
		"bytes":             []byte("\x01\x02\x00 seven-lower-mark\x00\x00"),
		"spaced":            []byte("SPACED \t\r\n  WORDS\n\nHERE\n"),
		"control-chars":     []byte("spaced\x01 words\x02 here\n"),
		"high-bytes":        []byte("spaced w\xc3\xa9ords here\n"),
		"upper":             []byte("SEVEN-UPPER\n"),
		"html":              []byte("<html><body>GENERIC-LOWER-MARK</body></html>\n"),
		"mail":              []byte("From: a@b.c\nTo: d@e.f\nSubject: x\n\nGENERIC-LOWER-MARK\n"),
		"utf8":              []byte("caf\u00e9 GENERIC-LOWER-MARK\n"),
		"utf16-bom":         utf16le("GENERIC-LOWER-MARK\n", true),
		"utf16":             utf16le("GENERIC-LOWER-MARK\n", false),
		"zipped":            eicar.Zip(map[string][]byte{"a.txt": []byte("Seven-Lower-Mark\n")}),
		"logical":           []byte("FIRST-PART and then Second-Part\n"),
		"logical-half":      []byte("FIRST-PART alone\n"),
		"caseless":          []byte("some\r\nCASELESS-WORDS\n"),
		"at-start":          []byte("Starts The Text, then more\n"),
		"not-at-start":      []byte("it Starts The Text\n"),
		"at-end":            []byte("some words, ENDS THE TEXT, bye.\n"),
		"pdf-version":       []byte("text %PDF-1.4 GENERIC-LOWER-MARK\n"),
		"picture-start":     []byte("BMP says GENERIC-LOWER-MARK\n"),
		"control-past-head": append(append(bytes.Repeat([]byte("text "), 300), 1, 2, 3), " GENERIC-LOWER-MARK\n"...),
	}
	sameAsClamscan(t, dir, objects, 17)
}

// FuzzNormalise: a text normalised holds no upper-case letter, control
// character, byte from 0x80 or two spaces in a row, and is never longer
// than the text; typing never reads past its head.
func FuzzNormalise(f *testing.F) {
	f.Add([]byte("Some  TEXT\t\r\nhere\x01\xff"))
	f.Add([]byte("\xff\xfeA\x00B\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := normalise(nil, data)
		if len(n) > len(data) || bytes.Contains(n, []byte("  ")) {
			t.Fatalf("%q normalised %q", data, n)
		}
		for _, c := range n {
			if c < 0x20 || c >= 0x80 || c >= 'A' && c <= 'Z' {
				t.Fatalf("%q normalised %q", data, n)
			}
		}
		isText(data, nil)
		typeOf(data)
	})
}
