// Package forms is, for tests, the ways a file reaches a reader that the
// scanner must see through: each form by name, once with EICAR inside and
// once with a clean file, made by the real tools where Debian has them.
// Every service that carries files runs them all (HTTP, FTP both ways,
// SMTP, POP3, ICAP), so that a class closed in the shared walk is seen
// closed through each.
package forms

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/packtest"
	"github.com/fsigkd/fsigkd/internal/screnc"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// A Form is one way of carrying a file: with EICAR inside, and its clean
// twin.
type Form struct {
	Name            string
	Infected, Clean []byte
}

// program is what the forms carry: text around the payload, so that
// every packer compresses it and only opening the form finds EICAR.
func program(payload string) []byte {
	return []byte("MZ a program's bytes " + payload + strings.Repeat(" and its data", 300))
}

// All makes every form (skipping, or failing under CI, when a tool is
// missing).
func All(t testing.TB) []Form {
	t.Helper()
	tool := func(name, pkg string) string { return testenv.Need(t, name, pkg) }
	sz, xz, cpio, jlha, arj, chmcmd, qpdf, dpkgDeb, makensis, compress, genisoimage :=
		tool("7zz", "7zip"), tool("xz", "xz-utils"), tool("cpio", "cpio"), tool("jlha", "jlha-utils"),
		tool("arj", "arj"), tool("chmcmd", "fp-utils"), tool("qpdf", "qpdf"), tool("dpkg-deb", "dpkg"), tool("makensis", "nsis"),
		tool("compress", "ncompress"), tool("genisoimage", "genisoimage")
	bsdtar := tool("bsdtar", "libarchive-tools")
	mkfsVfat, mcopy, qemuImg := tool("mkfs.vfat", "dosfstools"), tool("mcopy", "mtools"), tool("qemu-img", "qemu-utils")
	builders := []struct {
		name  string
		build func(content []byte) []byte
	}{
		{"zip, Deflate64", func(c []byte) []byte {
			return made(t, c, "a.zip", sz, "a", "-bd", "-tzip", "-mm=Deflate64", "a.zip", "a.exe")
		}},
		{"7z", func(c []byte) []byte { return made(t, c, "a.7z", sz, "a", "-bd", "a.7z", "a.exe") }},
		{"tar.xz with the x86 filter", func(c []byte) []byte {
			return made(t, c, "a.tar.xz", "sh", "-c", "tar cf - a.exe | "+xz+" -c --x86 --lzma2 > a.tar.xz")
		}},
		{"tar.Z (Unix compress)", func(c []byte) []byte {
			return made(t, c, "a.tar.Z", "sh", "-c", "tar cf - a.exe | "+compress+" -c > a.tar.Z")
		}},
		{"cpio, odc", func(c []byte) []byte {
			return made(t, c, "a.cpio", "sh", "-c", xz+" -c a.exe > a.exe.xz && echo a.exe.xz | "+cpio+" -o --quiet -H odc > a.cpio")
		}},
		{".deb", func(c []byte) []byte {
			return made(t, c, "x.deb", "sh", "-c", "mkdir -p pkg/DEBIAN pkg/usr && mv a.exe pkg/usr/ && "+
				"printf 'Package: x\\nVersion: 1\\nArchitecture: all\\nMaintainer: a <a@example.com>\\nDescription: x\\n' > pkg/DEBIAN/control && "+
				dpkgDeb+" --root-owner-group -Zxz --build pkg x.deb >/dev/null")
		}},
		{"LHA", func(c []byte) []byte { return made(t, c, "a.lzh", jlha, "a", "a.lzh", "a.exe") }},
		{"ARJ, method 4", func(c []byte) []byte { return made(t, c, "a.arj", arj, "a", "-m4", "-y", "a.arj", "a.exe") }},
		{"CHM", func(c []byte) []byte {
			return made(t, c, "a.chm", "sh", "-c", "printf '[OPTIONS]\\nCompiled file=a.chm\\n\\n[FILES]\\na.exe\\n' > a.hhp && "+chmcmd+" a.hhp >/dev/null")
		}},
		{"PDF, Flate in an object stream", func(c []byte) []byte {
			z := packtest.Zlib(c)
			pdf := fmt.Sprintf("%%PDF-1.5\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [4 0 R] /Count 1 >>\nendobj\n"+
				"3 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream\nendobj\n"+
				"4 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R /Size 5 >>\n%%%%EOF\n", len(z), z)
			// qpdf rebuilds it (the missing cross-reference table too),
			// the page's stream compressed again, its objects in an
			// object stream.
			return made(t, []byte(pdf), "out.pdf", qpdf, "--warning-exit-0", "--object-streams=generate", "--compress-streams=y", "a.exe", "out.pdf")
		}},
		{"BinHex", func(c []byte) []byte { return []byte(eicar.BinHex("a.exe", c)) }},
		{"yEnc", func(c []byte) []byte { return []byte(eicar.YEnc("a.exe", c)) }},
		{"TNEF, compressed RTF body", func(c []byte) []byte { return TNEFWithBody(LZFuLiterals(c)) }},
		{"NSIS installer, LZMA", func(c []byte) []byte {
			return made(t, c, "setup.exe", "sh", "-c", "printf 'OutFile setup.exe\\nSetCompressor lzma\\nSection\\nSetOutPath $TEMP\\nFile a.exe\\nSectionEnd\\n' > s.nsi && "+makensis+" -V1 s.nsi")
		}},
		{"RTF, a program packaged in an object", func(c []byte) []byte {
			return RTFWith(OLE1("Package", Packaged("a.exe", c)), "line break after objdata")
		}},
		{"OneNote section, a zip among its files", func(c []byte) []byte {
			return OneNote([]byte("a picture's bytes"), made(t, c, "a.zip", sz, "a", "-bd", "-tzip", "a.zip", "a.exe"))
		}},
		{"UDF image without ISO 9660, a zip among its files", func(c []byte) []byte {
			z := made(t, c, "a.zip", sz, "a", "-bd", "-tzip", "a.zip", "a.exe")
			return UDFOnly(t, Made(t, map[string][]byte{"in/readme.txt": []byte("read me"), "in/a.zip": z}, "a.iso",
				genisoimage, "-quiet", "-udf", "-o", "a.iso", "in"))
		}},
		{"a zip inside other data (neither at its start nor at its end)", func(c []byte) []byte {
			z := made(t, c, "a.zip", sz, "a", "-bd", "-tzip", "a.zip", "a.exe")
			return append(append(bytes.Repeat([]byte("data of no format "), 6000), z...), bytes.Repeat([]byte(" and more after it"), 6000)...)
		}},
		{"VHD disk image (dynamic), a zip on its FAT volume", func(c []byte) []byte {
			z := made(t, c, "a.zip", sz, "a", "-bd", "-tzip", "a.zip", "a.exe")
			return Made(t, map[string][]byte{"a.zip": z}, "a.vhd", "sh", "-c",
				"truncate -s 2M a.img && "+mkfsVfat+" a.img >/dev/null && "+mcopy+" -i a.img a.zip ::/invoice.zip && "+
					qemuImg+" convert -f raw -O vpc a.img a.vhd")
		}},
		{"XAR (a macOS installer package's format), zlib", func(c []byte) []byte {
			return made(t, c, "a.pkg", bsdtar, "--format", "xar", "-cf", "a.pkg", "a.exe")
		}},
		{"a script encoded by Microsoft's Script Encoder (.vbe)", func(c []byte) []byte { return screnc.Encode(c) }},
		{"mbox: the second message of a mailbox, its body the file in base64", func(c []byte) []byte {
			return []byte("From a@example.com Mon Dec  7 10:00:00 2026\nFrom: a@example.com\nSubject: first\n\nnothing here\n\n" +
				"From b@example.com Mon Dec  7 10:01:00 2026\nFrom: b@example.com\nSubject: second\nMIME-Version: 1.0\n" +
				"Content-Type: application/octet-stream; name=a.exe\nContent-Transfer-Encoding: base64\n\n" + base64Lines(c, "\n"))
		}},
		{"HTML smuggling: a data: address, base64, its scheme written as references", func(c []byte) []byte {
			return []byte(`<!DOCTYPE html><html><body><a download="a.exe" href="&#100;ata&colon;application/octet-stream;base64,` +
				base64.StdEncoding.EncodeToString(c) + `">get it</a></body></html>`)
		}},
		{"HTML smuggling: a script's base64 string, in lines joined by +", func(c []byte) []byte {
			b := base64.StdEncoding.EncodeToString(c)
			var lines []string
			for i := 0; i < len(b); i += 76 {
				lines = append(lines, b[i:min(i+76, len(b))])
			}
			return []byte("<html><body><script>\nvar s = '" + strings.Join(lines, "' +\n  '") + "';\n" +
				"var a = document.createElement('a'); a.download = 'a.exe';\n" +
				"a.href = URL.createObjectURL(new Blob([Uint8Array.from(atob(s), c => c.charCodeAt(0))])); a.click();\n</script></body></html>")
		}},
		{"HTML smuggling: the file as a script's list of numbers", func(c []byte) []byte {
			n := make([]string, len(c))
			for i, b := range c {
				n[i] = strconv.Itoa(int(b))
			}
			return []byte("<html><body><script>\nconst b = new Uint8Array([" + strings.Join(n, ",") + "]);\n" +
				"const a = document.createElement('a'); a.href = URL.createObjectURL(new Blob([b])); a.download = 'a.exe'; a.click();\n</script></body></html>")
		}},
		{"HTML smuggling: a zip in a style sheet's data: address", func(c []byte) []byte {
			zip := made(t, c, "a.zip", sz, "a", "-bd", "-tzip", "a.zip", "a.exe")
			return []byte("<svg xmlns=\"http://www.w3.org/2000/svg\"><style>rect { fill: url('DATA:application/zip;BASE64," +
				base64.StdEncoding.EncodeToString(zip) + "') }</style><rect width=\"9\" height=\"9\"/></svg>")
		}},
	}
	var out []Form
	for _, b := range builders {
		f := Form{Name: b.name, Infected: b.build(program(eicar.String)), Clean: b.build(program("and nothing else"))}
		if bytes.Contains(f.Infected, []byte(eicar.String)) {
			t.Fatalf("%s: EICAR stands whole in the form", b.name)
		}
		out = append(out, f)
	}
	return out
}

// made writes content as a.exe in a directory, runs cmd there and gives
// the file it wrote.
func made(t testing.TB, content []byte, out string, cmd ...string) []byte {
	t.Helper()
	return Made(t, map[string][]byte{"a.exe": content}, out, cmd...)
}

// Made runs a command in a directory holding files and gives the file
// out it wrote: an archive made by its own tool.
func Made(t testing.TB, files map[string][]byte, out string, cmd ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	for n, d := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, n)), 0o755)
		os.WriteFile(filepath.Join(dir, n), d, 0o644)
	}
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Dir = dir
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v %s", cmd, err, b)
	}
	b, err := os.ReadFile(filepath.Join(dir, out))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TNEFOf lays out a winmail.dat holding files (name and data), each as
// Outlook writes an attachment: its rendering, its title, its data.
func TNEFOf(files ...[2]string) []byte {
	b := []byte{0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00}                      // the signature, the key
	b = tnefAttr(b, 1, 0x00089006, []byte{0, 0, 1, 0})                   // attTnefVersion
	b = tnefAttr(b, 1, 0x00069007, []byte{0xe4, 0x04, 0, 0, 0, 0, 0, 0}) // attOemCodepage
	for _, f := range files {
		b = tnefAttr(b, 2, 0x00069002, make([]byte, 14)) // attAttachRendData
		b = tnefAttr(b, 2, 0x00018010, append([]byte(f[0]), 0))
		b = tnefAttr(b, 2, 0x0006800f, []byte(f[1]))
	}
	return b
}

// tnefAttr appends one attribute: its level, id, length, value and
// checksum.
func tnefAttr(b []byte, level byte, id uint32, v []byte) []byte {
	b = append(b, level)
	b = binary.LittleEndian.AppendUint32(b, id)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	b = append(b, v...)
	var sum uint16
	for _, c := range v {
		sum += uint16(c)
	}
	return binary.LittleEndian.AppendUint16(b, sum)
}

// TNEFWithBody lays out a winmail.dat whose message properties hold a
// compressed RTF body.
func TNEFWithBody(rtf []byte) []byte {
	props := binary.LittleEndian.AppendUint32(nil, 1)
	props = binary.LittleEndian.AppendUint32(props, 0x10090102) // PR_RTF_COMPRESSED, binary
	props = binary.LittleEndian.AppendUint32(props, 1)
	props = binary.LittleEndian.AppendUint32(props, uint32(len(rtf)))
	props = append(props, rtf...)
	for len(props)%4 != 0 {
		props = append(props, 0)
	}
	return tnefAttr(TNEFOf(), 1, 0x00069003, props) // attMAPIProps
}

// LZFuLiterals compresses text as compressed RTF (MS-OXRTFCP) of
// literals only, as a writer may, its CRC as readers check it.
func LZFuLiterals(text []byte) []byte {
	const prebuf = 207 // the length of the dictionary's initial RTF
	var data []byte
	w := prebuf
	for i := 0; ; {
		at := len(data)
		data = append(data, 0)
		for bit := 0; bit < 8; bit++ {
			if i < len(text) {
				data = append(data, text[i])
				i++
				w = (w + 1) % 4096
				continue
			}
			data[at] |= 1 << bit
			data = append(data, byte(w>>4), byte(w<<4)) // a reference to the write position: the end
			h := binary.LittleEndian.AppendUint32(nil, uint32(len(data)+12))
			h = binary.LittleEndian.AppendUint32(h, uint32(len(text)))
			h = append(h, "LZFu"...)
			h = binary.LittleEndian.AppendUint32(h, ^crc32.Update(^uint32(0), crc32.IEEETable, data))
			return append(h, data...)
		}
	}
}

// Mail is a mail carrying data as a base64 attachment named name, its
// lines wrapped at 76 as mailers write them.
func Mail(name string, data []byte) string {
	return "From: a@example.com\r\nTo: b@example.com\r\nSubject: a file\r\nMessage-ID: <form@example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--B\r\n" +
		"Content-Type: application/octet-stream; name=" + name + "\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64Lines(data, "\r\n") + "--B--\r\n"
}

// base64Lines is data in base64, in lines of 76 characters as mailers
// write them, each ended by eol.
func base64Lines(data []byte, eol string) string {
	b64 := base64.StdEncoding.EncodeToString(data)
	var body strings.Builder
	for len(b64) > 76 {
		body.WriteString(b64[:76] + eol)
		b64 = b64[76:]
	}
	body.WriteString(b64 + eol)
	return body.String()
}

// PDFWith lays out a one-page PDF whose content stream has the filter
// entry given (the dictionary's text) and the data given, with an xref
// table that holds.
func PDFWith(filter string, data []byte) []byte {
	var b bytes.Buffer
	var offs []int
	obj := func(body string) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offs), body)
	}
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
	obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>")
	offs = append(offs, b.Len())
	fmt.Fprintf(&b, "4 0 obj\n<< /Length %d %s >>\nstream\n", len(data), filter)
	b.Write(data)
	b.WriteString("\nendstream\nendobj\n")
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
	return b.Bytes()
}

// OLE1 is an OLE1 object (MS-OLEDS 2.2.4) of class with native data.
func OLE1(class string, native []byte) []byte {
	lp := func(s string) []byte {
		if s == "" {
			return make([]byte, 4)
		}
		return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s)+1)), s+"\x00"...)
	}
	b := binary.LittleEndian.AppendUint32(nil, 0x0501)
	b = binary.LittleEndian.AppendUint32(b, 2) // embedded
	b = append(append(append(b, lp(class)...), lp("")...), lp("")...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(native)))
	return append(b, native...)
}

// Packaged is a package's native data: a file, its label and its path,
// as Windows' Packager writes them.
func Packaged(name string, file []byte) []byte {
	tmp := `C:\Users\a\AppData\Local\Temp\` + name + "\x00"
	b := append([]byte{2, 0}, name+"\x00"+`C:\Users\a\Desktop\`+name+"\x00"...)
	b = append(b, 0, 0, 3, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(tmp)))
	b = append(b, tmp...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(file)))
	return append(b, file...)
}

// RTFWith is an RTF document holding obj in an \objdata destination,
// written as form says: "objdata then a space" (as most documents),
// "line break after objdata", "upper case, tabs and spaces", "ignorable
// groups among the digits", "control words among the digits", "a plain
// group among the digits", "binary, \bin", `"{\rt" alone`.
func RTFWith(obj []byte, form string) []byte {
	hx := hex.EncodeToString(obj)
	var lines []string
	for i := 0; i < len(hx); i += 64 {
		lines = append(lines, hx[i:min(i+64, len(hx))])
	}
	data := "\\*\\objdata " + strings.Join(lines, "\r\n")
	switch form {
	case "line break after objdata":
		data = "\\*\\objdata\r\n" + strings.Join(lines, "\r\n")
	case "upper case, tabs and spaces":
		data = "\\*\\objdata " + strings.ToUpper(strings.Join(lines, "\t \r\n"))
	case "ignorable groups among the digits":
		data = "\\*\\objdata " + strings.Join(lines, "{\\*\\junk 4142434445}\r\n")
	case "control words among the digits":
		data = "\\*\\objdata " + strings.Join(lines, "\\par\\pard ")
	case "a plain group among the digits":
		data = "\\*\\objdata " + lines[0] + "{" + strings.Join(lines[1:3], "") + "}" + strings.Join(lines[3:], "\r\n")
	case "binary, \\bin":
		data = "\\*\\objdata \\bin" + strconv.Itoa(len(obj)) + " " + string(obj)
	}
	head := `{\rtf1\ansi\deff0{\fonttbl{\f0 Arial;}}`
	if form == `"{\rt" alone` {
		head = `{\rtx\ansi\deff0{\fonttbl{\f0 Arial;}}`
	}
	return []byte(head + "\\pard Hello\\par\r\n{\\object\\objemb{\\*\\objclass Package}\\objw1\\objh1{" + data + "\r\n}}}\r\n")
}

// OneNote is a OneNote section (its file type's GUID first) holding
// files, each in a FileDataStoreObject (MS-ONESTORE 2.6.13) between other
// bytes, as a section keeps the files of its pages.
func OneNote(files ...[]byte) []byte {
	b := []byte{0xe4, 0x52, 0x5c, 0x7b, 0x8c, 0xd8, 0xa7, 0x4d, 0xae, 0xb1, 0x53, 0x78, 0xd0, 0x29, 0x96, 0xd3}
	b = append(b, make([]byte, 80)...) // the rest of a header, as far as these go
	for _, f := range files {
		b = append(b, bytes.Repeat([]byte{0x11}, 40)...) // other objects
		b = append(b, 0xe7, 0x16, 0xe3, 0xbd, 0x65, 0x26, 0x11, 0x45, 0xa4, 0xc4, 0x8d, 0x4d, 0x0b, 0x7a, 0x9e, 0xac)
		b = binary.LittleEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, make([]byte, 12)...) // unused, reserved
		b = append(b, f...)
		b = append(b, make([]byte, (8-len(f)%8)%8)...)                                                                // padding
		b = append(b, 0x22, 0x80, 0x1d, 0x71, 0x23, 0xc6, 0xd1, 0x48, 0x93, 0xd6, 0x57, 0x7e, 0x42, 0x06, 0x93, 0x52) // guidFooter
	}
	return b
}

// OVBALiterals is data (under 3,600 bytes) compressed as MS-OVBA
// compresses a VBA project's streams, in one chunk of literal tokens
// only: a flag byte before every eight bytes, so that no longer run of
// data stands in the clear.
func OVBALiterals(data []byte) []byte {
	var chunk []byte
	for i := 0; i < len(data); i += 8 {
		chunk = append(chunk, 0)
		chunk = append(chunk, data[i:min(i+8, len(data))]...)
	}
	h := uint16(len(chunk)+2-3) | 3<<12 | 0x8000
	return append([]byte{1, byte(h), byte(h >> 8)}, chunk...)
}

// vbaDirRecord is one record of a VBA project's dir stream.
func vbaDirRecord(id uint16, v []byte) []byte {
	r := []byte{byte(id), byte(id >> 8), byte(len(v)), byte(len(v) >> 8), byte(len(v) >> 16), byte(len(v) >> 24)}
	return append(r, v...)
}

// VBADocument is a compound file holding a VBA project of one module,
// Module1, whose source (compressed, after 100 bytes of performance
// cache, at the offset its project's dir gives) is source. (The cache's
// bytes keep the stream from being typed as a UTF-16 text, whose
// normalised view, dropping the flag bytes, would show the source.)
func VBADocument(source string) []byte {
	dir := append(vbaDirRecord(0x0009, make([]byte, 4)), 0, 0) // PROJECTVERSION: 4 said, 6 held
	dir = append(dir, vbaDirRecord(0x0019, []byte("Module1"))...)
	dir = append(dir, vbaDirRecord(0x001a, []byte("Module1"))...)
	dir = append(dir, vbaDirRecord(0x0031, []byte{100, 0, 0, 0})...)
	module := append(bytes.Repeat([]byte{0, 1}, 50), OVBALiterals([]byte(source))...)
	return OLE(true, OLEStream{Name: "dir", Data: OVBALiterals(dir)}, OLEStream{Name: "Module1", Data: module})
}

// OLEStream is one stream of OLE: its name and its bytes.
type OLEStream struct {
	Name string
	Data []byte
}

// OLE lays out a version 3 compound file (512-byte sectors) holding
// streams in the root storage, every chain backwards (its last sector
// first in the file), as a document saved many times ends up: a stream's
// bytes never lie in one run, in the FAT's sectors as in the mini
// stream's. (No tool in Debian writes a compound file so; python3-olefile
// reads what this writes, which the test checks.)
func OLE(backwards bool, streams ...OLEStream) []byte {
	const sec, mini, cutoff = 512, 64, 4096
	var fat []uint32
	var sectors [][]byte
	// alloc places data in new sectors, chained backwards; its first.
	alloc := func(data []byte, size int) uint32 {
		n := (len(data) + size - 1) / size
		if n == 0 {
			return oleEnd
		}
		base := len(sectors)
		for i := 0; i < n; i++ {
			sectors = append(sectors, nil)
			fat = append(fat, 0)
		}
		// Piece i goes to sector base+n-1-i (backwards), or base+i.
		at := func(i int) int {
			if backwards {
				return base + n - 1 - i
			}
			return base + i
		}
		for i := 0; i < n; i++ {
			piece := make([]byte, size)
			copy(piece, data[i*size:min((i+1)*size, len(data))])
			sectors[at(i)] = piece
			if i+1 < n {
				fat[at(i)] = uint32(at(i + 1))
			} else {
				fat[at(i)] = oleEnd
			}
		}
		return uint32(at(0))
	}
	// The mini stream first, as its own list of mini sectors.
	var miniSectors [][]byte
	var miniFAT []uint32
	starts := make([]uint32, len(streams))
	for k, st := range streams {
		if len(st.Data) >= cutoff {
			continue
		}
		n := (len(st.Data) + mini - 1) / mini
		base := len(miniSectors)
		for i := 0; i < n; i++ {
			miniSectors = append(miniSectors, nil)
			miniFAT = append(miniFAT, 0)
		}
		for i := 0; i < n; i++ {
			piece := make([]byte, mini)
			copy(piece, st.Data[i*mini:min((i+1)*mini, len(st.Data))])
			miniSectors[base+n-1-i] = piece
			if i+1 < n {
				miniFAT[base+n-1-i] = uint32(base + n - 2 - i)
			} else {
				miniFAT[base+n-1-i] = oleEnd
			}
		}
		starts[k] = uint32(base + n - 1)
	}
	ministream := bytes.Join(miniSectors, nil)
	for k, st := range streams {
		if len(st.Data) >= cutoff {
			starts[k] = alloc(st.Data, sec)
		}
	}
	miniStart := alloc(ministream, sec)
	miniFATStart := alloc(u32s(miniFAT), sec)
	// The directory: the root, then each stream, a chain of right
	// siblings.
	entry := func(name string, typ byte, right, child, start uint32, size int) []byte {
		e := make([]byte, 128)
		u := utf16.Encode([]rune(name))
		for i, c := range u {
			binary.LittleEndian.PutUint16(e[2*i:], c)
		}
		binary.LittleEndian.PutUint16(e[64:], uint16(2*len(u)+2))
		e[66], e[67] = typ, 1 // black
		binary.LittleEndian.PutUint32(e[68:], oleFree)
		binary.LittleEndian.PutUint32(e[72:], right)
		binary.LittleEndian.PutUint32(e[76:], child)
		binary.LittleEndian.PutUint32(e[116:], start)
		binary.LittleEndian.PutUint32(e[120:], uint32(size))
		return e
	}
	var dir []byte
	child := uint32(oleFree)
	if len(streams) > 0 {
		child = 1
	}
	dir = append(dir, entry("Root Entry", 5, oleFree, child, miniStart, len(ministream))...)
	for k, st := range streams {
		right := uint32(oleFree)
		if k+1 < len(streams) {
			right = uint32(k + 2)
		}
		dir = append(dir, entry(st.Name, 2, right, oleFree, starts[k], len(st.Data))...)
	}
	dirStart := alloc(dir, sec)
	// The FAT itself, in sectors it marks as FAT's.
	nFAT := 0 // the FAT's own sectors are entries of it too
	for nFAT*128 < len(fat)+nFAT {
		nFAT++
	}
	fatStart := len(sectors)
	for i := 0; i < nFAT; i++ {
		sectors = append(sectors, nil)
		fat = append(fat, 0xfffffffd)
	}
	table := make([]byte, nFAT*sec)
	for i := 0; i < nFAT*128; i++ {
		v := uint32(oleFree)
		if i < len(fat) {
			v = fat[i]
		}
		binary.LittleEndian.PutUint32(table[4*i:], v)
	}
	for i := 0; i < nFAT; i++ {
		sectors[fatStart+i] = table[i*sec : (i+1)*sec]
	}
	h := make([]byte, 512)
	copy(h, []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1})
	binary.LittleEndian.PutUint16(h[24:], 0x3e)
	binary.LittleEndian.PutUint16(h[26:], 3)
	binary.LittleEndian.PutUint16(h[28:], 0xfffe)
	binary.LittleEndian.PutUint16(h[30:], 9)
	binary.LittleEndian.PutUint16(h[32:], 6)
	binary.LittleEndian.PutUint32(h[44:], uint32(nFAT))
	binary.LittleEndian.PutUint32(h[48:], dirStart)
	binary.LittleEndian.PutUint32(h[56:], cutoff)
	binary.LittleEndian.PutUint32(h[60:], miniFATStart)
	binary.LittleEndian.PutUint32(h[64:], uint32((len(miniFAT)*4+sec-1)/sec))
	binary.LittleEndian.PutUint32(h[68:], oleEnd)
	for i := 0; i < 109; i++ {
		v := uint32(oleFree)
		if i < nFAT {
			v = uint32(fatStart + i)
		}
		binary.LittleEndian.PutUint32(h[76+4*i:], v)
	}
	return append(h, bytes.Join(sectors, nil)...)
}

// u32s is v little-endian.
func u32s(v []uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// The compound file's sector marks.
const (
	oleFree = 0xffffffff
	oleEnd  = 0xfffffffe
)

// UDFOnly makes a bridge image as genisoimage writes it (ISO 9660 and
// UDF) an image with UDF alone: its UDF volume recognition sequence
// moved to the first descriptor's place, the ISO 9660 descriptors gone,
// so that a reader of ISO 9660 alone finds no file in it.
func UDFOnly(t testing.TB, img []byte) []byte {
	t.Helper()
	const s = 2048
	k := 16 // the first sector after ISO 9660's descriptors
	for len(img) >= (k+4)*s && string(img[k*s+1:k*s+6]) == "CD001" {
		k++
	}
	if k == 16 || len(img) < (k+3)*s || string(img[k*s+1:k*s+6]) != "BEA01" {
		t.Fatalf("descriptors not as genisoimage writes them")
	}
	img = bytes.Clone(img)
	copy(img[16*s:19*s], img[k*s:(k+3)*s])
	clear(img[19*s : (k+3)*s])
	return img
}
