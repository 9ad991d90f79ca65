package engine

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/forms"
)

// TestTargetTypesAsClamscanReadsThem: a signature of a target type is
// found in the objects ClamAV types so and in no other, as clamscan
// finds it. Every object carries the marks of every target (so that a
// signature looked for in the wrong objects shows), an .ndb and an .ldb
// signature per target: Windows, ELF and Mach-O programs (the four
// Mach-O magics, a universal binary), PDF at the start, after text or
// bytes in the first 1,024 bytes (and lower case), and past them (not a
// PDF), Flash compressed or not, a Java class, every picture format,
// text and bytes of no format (none found), a program in a zip (found
// in the member), a zip whose first bytes hold a PDF's start (a zip, not
// a PDF).
func TestTargetTypesAsClamscanReadsThem(t *testing.T) {
	targets := []int{1, 5, 6, 9, 10, 11, 12}
	mark := func(tt int) []byte { return fmt.Appendf(nil, "TARGET-%02d-MARK", tt) }
	ldbMark := func(tt int) []byte { return fmt.Appendf(nil, "LOGICAL-%02d-MARK", tt) }
	var ndb, ldb strings.Builder
	var marks []byte
	for _, tt := range targets {
		fmt.Fprintf(&ndb, "Test.Target%d:%d:*:%s\n", tt, tt, hex.EncodeToString(mark(tt)))
		fmt.Fprintf(&ldb, "Test.Logical%d;Engine:51-255,Target:%d;0;%s\n", tt, tt, hex.EncodeToString(ldbMark(tt)))
		marks = append(append(append(marks, ' '), mark(tt)...), ' ')
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.ndb"), []byte(ndb.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "t.ldb"), []byte(ldb.String()), 0o644)
	pad := make([]byte, 64)
	with := func(head string, m []byte) []byte {
		return append(append(append([]byte(head), pad...), m...), pad...)
	}
	objects := map[string][]byte{}
	heads := map[string]string{
		"text":    "plain text ",
		"bytes":   "\x01\x02\x03\x04",
		"mz":      "MZ",
		"elf":     "\x7fELF\x02\x01\x01",
		"macho":   "\xcf\xfa\xed\xfe",
		"macho32": "\xce\xfa\xed\xfe",
		"machobe": "\xfe\xed\xfa\xce",
		"macho64": "\xfe\xed\xfa\xcf",
		"unibin":  "\xca\xfe\xba\xbe\x00\x00\x00\x02",
		"java":    "\xca\xfe\xba\xbe\x00\x00\x00\x34",
		"pdf":     "%PDF-1.4\n",
		"swf":     "FWS\x09",
		"cws":     "CWS\x09",
		"png":     "\x89PNG\r\n\x1a\n",
		"gif":     "GIF89a",
		"jpeg":    "\xff\xd8\xff\xe0",
		"bmp":     "BM",
		"tiff":    "II*\x00",
		"tiffbe":  "MM\x00*",
		"jp2":     "\x00\x00\x00\x0cjP  \r\n\x87\n",
	}
	for name, head := range heads {
		objects[name] = with(head, marks)
	}
	objects["pdf-after-text"] = append(bytes.Repeat([]byte("x"), 100), with("%PDF-1.4\n", marks)...)
	objects["pdf-after-bytes"] = append(bytes.Repeat([]byte{1, 2, 3}, 30), with("%pdf-1.7\n", marks)...)
	objects["pdf-too-far"] = append(bytes.Repeat([]byte("x"), 2000), with("%PDF-1.4\n", marks)...)
	objects["pdf-no-version"] = append([]byte("text then "), with("%PDF-14\n", marks)...)
	objects["zipped-elf"] = eicar.Zip(map[string][]byte{"prog": objects["elf"]})
	// Containers whose first bytes hold a PDF's start, in a member's
	// name: a zip, a gzip and a POSIX tar are not retyped; a bare
	// "MSCF" is no cabinet, and is.
	pdfStart := "%PDF-1.4 " + string(mark(10))
	objects["zip-with-pdf-start"] = zipOne(pdfStart, []byte("nothing"), zip.Store)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Name = pdfStart
	zw.Write([]byte("nothing"))
	zw.Close()
	objects["gzip-with-pdf-start"] = gz.Bytes()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "a " + pdfStart, Mode: 0o644, Size: 7, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR})
	tw.Write([]byte("nothing"))
	tw.Close()
	objects["tar-with-pdf-start"] = tb.Bytes()
	objects["bare-mscf-with-pdf-start"] = append([]byte("MSCF "), pdfStart...)
	for tt, name := range map[int]string{6: "elf-logical", 10: "pdf-logical", 5: "png-logical"} {
		objects[name] = with(heads[map[int]string{6: "elf", 10: "pdf", 5: "png"}[tt]], ldbMark(tt))
		objects["text-"+name] = with("text ", ldbMark(tt))
	}
	sameAsClamscan(t, dir, objects, 25)
}

// zipOne is a zip of one file, packed by method (zip.Store: the zip's
// own bytes hold the file's).
func zipOne(name string, data []byte, method uint16) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.CreateHeader(&zip.FileHeader{Name: name, Method: method})
	f.Write(data)
	w.Close()
	return b.Bytes()
}

// TestTargetOfIsBounded: typing reads at most the first 1,024 bytes,
// however many PDF starts without a version they hold.
func TestTargetOfIsBounded(t *testing.T) {
	data := append([]byte("x"), bytes.Repeat([]byte("%PDF-"), 1<<20)...)
	if got := targetOf(data); got != 0 {
		t.Fatalf("typed %d", got)
	}
	if got := targetOf(append(data[:501], "%PDF-1.4"...)); got != 10 {
		t.Fatalf("typed %d", got)
	}
}

// TestOLE2AndMailTargetsAsClamscanReadsThem: a signature of target 2
// (OLE2) is found in compound files, and one of target 4 (mail) in what
// ClamAV types as mail: a text beginning with one of its mail fields,
// an ASCII text with two fields of a header in its first KiB, and a text
// part of a mail; in no other object, as clamscan finds them. Each
// object carries one mark; a signature of target 7 (text) and one of
// target 0 are planted in the same carriers, to show the views each is
// given.
func TestOLE2AndMailTargetsAsClamscanReadsThem(t *testing.T) {
	marks := map[string]string{
		"T2": "TARGET-02-MARK", "T4": "TARGET-04-MARK", "L2": "LOGICAL-02-MARK", "L4": "LOGICAL-04-MARK",
		"T7": "target-07-mark", "T0": "target-00-mark",
	}
	dir := t.TempDir()
	var ndb, ldb strings.Builder
	for k, m := range marks {
		h := hex.EncodeToString([]byte(m))
		if k[0] == 'L' {
			fmt.Fprintf(&ldb, "Test.%s;Engine:51-255,Target:%c;0;%s\n", k, k[1], h)
		} else {
			fmt.Fprintf(&ndb, "Test.%s:%c:*:%s\n", k, k[1], h)
		}
	}
	os.WriteFile(filepath.Join(dir, "t.ndb"), []byte(ndb.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "t.ldb"), []byte(ldb.String()), 0o644)
	header := "From: a@example.com\nTo: b@example.com\nSubject: s\n\n"
	multipart := func(typ string, body []byte) []byte {
		return fmt.Appendf(nil, "From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"+
			"Content-Type: %s\nContent-Transfer-Encoding: base64\n\n%s\n--b--\n", typ, base64.StdEncoding.EncodeToString(body))
	}
	carriers := map[string]func(m []byte) []byte{
		"ole": func(m []byte) []byte {
			return forms.OLE(false, forms.OLEStream{Name: "WordDocument", Data: append(append(make([]byte, 100), m...), make([]byte, 5000)...)})
		},
		"ole-small": func(m []byte) []byte {
			return forms.OLE(false, forms.OLEStream{Name: "Data", Data: append(append(make([]byte, 4), m...), make([]byte, 8)...)})
		},
		"zip-ole": func(m []byte) []byte {
			return zipOne("a.doc", forms.OLE(false, forms.OLEStream{Name: "WordDocument", Data: append(append(make([]byte, 100), m...), make([]byte, 5000)...)}), zip.Store)
		},
		"text":      func(m []byte) []byte { return append([]byte("plain text here\n"), append(m, '\n')...) },
		"bytes":     func(m []byte) []byte { return append([]byte{1, 2, 3, 0}, m...) },
		"mail-from": func(m []byte) []byte { return append([]byte(header), append(m, '\n')...) },
		"mail-received": func(m []byte) []byte {
			return append([]byte("Received: from x by y\nFrom: a@example.com\n\n"), append(m, '\n')...)
		},
		"mail-sieve": func(m []byte) []byte { return append([]byte("X-Sieve: cmu\n\n"), append(m, '\n')...) },
		"mail-mbox": func(m []byte) []byte {
			return append([]byte("From a@example.com Mon Dec  7 10:00:00 2026\n"+header), append(m, '\n')...)
		},
		"mail-lower": func(m []byte) []byte {
			return append([]byte("from: a@example.com\nsubject: s\n\n"), append(m, '\n')...)
		},
		"mail-late": func(m []byte) []byte {
			return append([]byte("X-Custom: 1\nfrom: a@example.com\nMIME-Version: 1.0\n\n"), append(m, '\n')...)
		},
		"mail-late-far": func(m []byte) []byte {
			return append([]byte("X-Custom: "+strings.Repeat("x", 1100)+"\nFrom: a@example.com\nMIME-Version: 1.0\n\n"), append(m, '\n')...)
		},
		"mail-part-text": func(m []byte) []byte { return multipart("text/plain", append([]byte("hello\n"), m...)) },
		"mail-part-bin":  func(m []byte) []byte { return multipart("application/octet-stream", append([]byte{0, 1, 2, 3}, m...)) },
		"mail-part-zip": func(m []byte) []byte {
			return multipart("application/zip", zipOne("a.txt", append([]byte("hello\n"), m...), zip.Store))
		},
		"zip-mail": func(m []byte) []byte { return zipOne("a.eml", append([]byte(header), append(m, '\n')...), zip.Store) },
	}
	objects := map[string][]byte{}
	for c, carry := range carriers {
		for k, m := range marks {
			objects[c+"."+k] = carry([]byte(m))
		}
	}
	sameAsClamscan(t, dir, objects, 46)
}

// TestMacroSourceTypedAsItsDocument: a VBA macro's source, decompressed,
// is matched as ClamAV matches it (vba_scandata in its scanners.c): as
// it is, typed as the compound file it came from, so that a signature of
// target 2 finds it (in a document, in an Office 2007 document's
// vbaProject.bin, in a mail's attachment), and not as a text (no
// normalised view: a signature of target 7 does not find it there). The
// same source as a text file is no macro: target 2 does not find it,
// target 7 does. (clamscan reads a macro so only through a legacy
// _VBA_PROJECT stream no tool here writes; its reading of a document's
// bytes as target 2 is TestOLE2AndMailTargetsAsClamscanReadsThem's.)
func TestMacroSourceTypedAsItsDocument(t *testing.T) {
	source := "Attribute VB_Name = \"Module1\"\r\nSub AutoOpen()\r\n  Set s = CreateObject(\"WScript.Shell\")\r\n  s.Run \"calc\"\r\nEnd Sub\r\n"
	dir := t.TempDir()
	hexOf := func(s string) string { return hex.EncodeToString([]byte(s)) }
	os.WriteFile(filepath.Join(dir, "m.ndb"), []byte("Test.Macro.Target2:2:*:"+hexOf(`CreateObject("WScript.Shell")`)+"\n"+
		"Test.Macro.Target7:7:*:"+hexOf(`createobject("wscript.shell")`)+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.ldb"), []byte("Test.Macro.Logical2;Engine:51-255,Target:2;0&1;"+hexOf("Sub AutoOpen()")+";"+hexOf(`.Run "`)+"\n"), 0o644)
	db, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := New(db)
	doc := forms.VBADocument(source)
	if bytes.Contains(doc, []byte("CreateObject")) {
		t.Fatal("the source stands in the clear")
	}
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"document":       {doc, "Test.Macro.Target2,Test.Macro.Logical2"},
		"vbaProject.bin": {zipOne("word/vbaProject.bin", doc, zip.Deflate), "Test.Macro.Target2,Test.Macro.Logical2"},
		"attached":       {[]byte(forms.Mail("a.doc", doc)), "Test.Macro.Target2,Test.Macro.Logical2"},
		"as a text":      {[]byte(source), "Test.Macro.Target7"},
	} {
		opt := all
		opt.StopOnFirst = false
		if got := named(e, c.data, opt); got != c.want {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}

// TestFileTypesAsClamscanReadsThem: a database's own file types (.ftm)
// type objects as clamscan types them: a picture format ClamAV's list
// lacks (WebP, "WEBP" at 8, as CL_TYPE_GRAPHICS) is looked at by target
// 5, a made-up magic typed as a Windows program by target 1 and then no
// text (target 7 does not find its words); a RIFF file of another kind
// stays no picture. A pattern's type (magic type 1) is counted, not
// read.
func TestFileTypesAsClamscanReadsThem(t *testing.T) {
	dir := t.TempDir()
	hexOf := func(s string) string { return hex.EncodeToString([]byte(s)) }
	os.WriteFile(filepath.Join(dir, "t.ftm"), []byte("0:0:4d5a:PE:CL_TYPE_ANY:CL_TYPE_MSEXE\n"+
		"0:8:"+hexOf("WEBP")+":WebP:CL_TYPE_ANY:CL_TYPE_GRAPHICS\n"+
		"0:0:"+hexOf("XYZ!")+":Made up:CL_TYPE_ANY:CL_TYPE_MSEXE:90\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "t.ndb"), []byte("Test.Picture:5:*:"+hexOf("PICTURE-MARK")+"\n"+
		"Test.Program:1:*:"+hexOf("PROGRAM-MARK")+"\nTest.Text:7:*:"+hexOf("text-mark")+"\n"), 0o644)
	objects := map[string][]byte{
		"webp":         []byte("RIFF\x40\x00\x00\x00WEBPVP8 \x30\x00\x00\x00 PICTURE-MARK"),
		"riff-avi":     []byte("RIFF\x40\x00\x00\x00AVI LIST\x30\x00\x00\x00 PICTURE-MARK"),
		"text-picture": []byte("plain text PICTURE-MARK\n"),
		"xyz-program":  []byte("XYZ! PROGRAM-MARK and more"),
		"xyz-text":     []byte("XYZ! plain text with a text-mark in it\n"),
		"text":         []byte("plain text with a text-mark in it\n"),
		"text-program": []byte("plain text PROGRAM-MARK\n"),
		"mz":           append([]byte("MZ"), " PROGRAM-MARK"...),
	}
	if db := sameAsClamscan(t, dir, objects, 4); db.FileTypes != 3 {
		t.Errorf("file types read: %d", db.FileTypes)
	}
	os.WriteFile(filepath.Join(dir, "u.ftm"), []byte("1:0,1024:"+hexOf("<made-up-tag")+":Made-up HTML:CL_TYPE_ANY:CL_TYPE_HTML\n"+
		"4:0:"+hexOf("EFI PART")+":Partition:CL_TYPE_ANY:CL_TYPE_GPT\n"), 0o644)
	if db, err := Load(dir); err != nil || db.FileTypes != 3 || db.FileTypesNotRead != 2 || len(db.Unsupported) != 0 {
		t.Errorf("read %d, not read %d %v: %v", db.FileTypes, db.FileTypesNotRead, db.Unsupported, err)
	}
	for _, bad := range []string{"0:0:4d5a:PE:CL_TYPE_ANY", "0:x:4d5a:PE:CL_TYPE_ANY:CL_TYPE_MSEXE", "0:0:4d5:PE:CL_TYPE_ANY:CL_TYPE_MSEXE",
		"0:0:4d5a:PE:CL_TYPE_ANY:CL_TYPE_NOSUCH", "0:0:4d5a:PE:CL_TYPE_ANY:CL_TYPE_MSEXE:x", "z:0:4d5a:PE:CL_TYPE_ANY:CL_TYPE_MSEXE"} {
		os.WriteFile(filepath.Join(dir, "u.ftm"), []byte("# a comment\n"+bad+"\n"), 0o644)
		var le *LoadError
		if _, err := Load(dir); !errors.As(err, &le) || le.Line != 2 || !strings.HasSuffix(le.File, "u.ftm") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
