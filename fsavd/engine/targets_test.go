package engine

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
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
