package engine

import (
	"archive/zip"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/internal/screnc"
)

// TestEncodedScriptsAsClamscanReadsThem: a script encoded by Microsoft's
// Script Encoder is decoded and its signature found as clamscan finds
// it: a .vbe (a file that starts with a block), a page's script block
// (VBScript.Encode, JScript.Encode), a .vbe in a zip, a script's words
// in upper case (found in the decoded text normalised), escapes of line
// breaks and '<', '>', '@' among them, a .wsf's script block; not a
// script that holds no mark.
func TestEncodedScriptsAsClamscanReadsThem(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "s.ndb"), []byte("Test.Screnc:0:*:"+hex.EncodeToString([]byte("payload-screnc-mark"))+"\n"), 0o644)
	script := []byte("Set s = CreateObject(\"WScript.Shell\")\r\nIf 1 < 2 And 3 > 2 Then s.Run \"cmd /c payload-screnc-mark @ home\"\r\n")
	upper := []byte("Set s = CreateObject(\"WScript.Shell\")\r\ns.Run \"PAYLOAD-SCRENC-MARK\"\r\n")
	clean := []byte("Set s = CreateObject(\"WScript.Shell\")\r\ns.Run \"notepad\"\r\n")
	page := func(lang string, s []byte) []byte {
		return append(append([]byte("<html><body><script language=\""+lang+"\">"), screnc.Encode(s)...), "</script></body></html>\n"...)
	}
	objects := map[string][]byte{
		"vbe":          screnc.Encode(script),
		"vbe-upper":    screnc.Encode(upper),
		"vbe-clean":    screnc.Encode(clean),
		"page-vbs":     page("VBScript.Encode", script),
		"page-js":      page("JScript.Encode", []byte("var s = new ActiveXObject('WScript.Shell');\r\ns.Run('payload-screnc-mark');\r\n")),
		"page-clean":   page("VBScript.Encode", clean),
		"vbe-in-zip":   ordered{{"a.vbe", string(screnc.Encode(script))}}.zip(t, zip.Deflate),
		"not-encoded":  script,
		"encoded-only": screnc.Encode([]byte("nothing to see\r\n")),
		"wsf":          append(append([]byte("<job id=\"a\"><script language=\"VBScript.Encode\">"), screnc.Encode(script)...), "</script></job>\n"...),
	}
	sameAsClamscan(t, dir, objects, 7)

	// A listed difference: a block in a text that is no page and does
	// not start with it (a script pasted into a mail's text, a .txt):
	// clamscan decodes a block only at a file's start or in a page; the
	// engine in any text.
	corpus := t.TempDir()
	late := append([]byte("Some notes first.\r\n"), screnc.Encode(script)...)
	os.WriteFile(filepath.Join(corpus, "late"), late, 0o644)
	if theirs := clamscanFinds(t, dir, corpus); len(theirs) != 0 {
		t.Fatalf("clamscan found %v", theirs)
	}
	db, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := named(New(db), late, all); got != "Test.Screnc" {
		t.Fatalf("a block after a line of text: the engine says %q", got)
	}
	// A .vbe saved as Unicode (UTF-16 with its byte order mark, little-
	// and big-endian), read as the characters it holds.
	for _, order := range []binary.AppendByteOrder{binary.LittleEndian, binary.BigEndian} {
		u := order.AppendUint16(nil, 0xfeff)
		for _, c := range string(screnc.Encode(script)) {
			u = order.AppendUint16(u, uint16(c))
		}
		if got := named(New(db), u, all); got != "Test.Screnc" {
			t.Fatalf("a .vbe in UTF-16 (%v): the engine says %q", order, got)
		}
	}
}
