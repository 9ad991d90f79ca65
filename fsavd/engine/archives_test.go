package engine

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/forms"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/unpack"
)

// tool finds a command that makes a test archive (.ci/run installs them).
func tool(t *testing.T, name, pkg string) string { return testenv.Need(t, name, pkg) }

// made runs a command in a directory holding files and returns the
// archive it wrote.
var made = forms.Made

// TestContainersADesktopOpens: EICAR inside each format a desktop opens is
// found, however the archive is placed; the same archive of a clean file
// is clean.
func TestContainersADesktopOpens(t *testing.T) {
	e := builtin(t)
	E := []byte(eicar.String)
	files := map[string][]byte{"dir/eicar.com": E}
	clean := map[string][]byte{"dir/readme.txt": []byte("nothing to see")}
	var prepended bytes.Buffer
	prepended.Write(bytes.Repeat([]byte("MZ stub of a self-extractor "), 500))
	zw := zip.NewWriter(&prepended)
	zw.SetOffset(int64(prepended.Len()))
	w, _ := zw.Create("eicar.com")
	w.Write(E)
	zw.Close()
	tarE, tarClean := tarOf(files), tarOf(clean)
	bz := tool(t, "bzip2", "bzip2")
	xzc := tool(t, "xz", "xz-utils")
	zst := tool(t, "zstd", "zstd")
	sz := tool(t, "7zz", "7zip")
	gc := tool(t, "gcab", "gcab")
	compress := func(data []byte, cmd ...string) []byte { return piped(t, data, cmd...) }
	cases := map[string]func(map[string][]byte, []byte) []byte{
		"zip behind a stub": func(f map[string][]byte, tr []byte) []byte {
			if f["dir/eicar.com"] != nil {
				return prepended.Bytes()
			}
			return append(bytes.Repeat([]byte("stub"), 100), eicar.Zip(f)...)
		},
		"tar.bz2": func(f map[string][]byte, tr []byte) []byte { return compress(tr, bz, "-c") },
		"tar.xz":  func(f map[string][]byte, tr []byte) []byte { return compress(tr, xzc, "-c") },
		"tar.zst": func(f map[string][]byte, tr []byte) []byte { return compress(tr, zst, "-c", "-q") },
		"7z":      func(f map[string][]byte, tr []byte) []byte { return made(t, f, "a.7z", sz, "a", "-bd", "a.7z", "dir") },
		"7z sfx-like": func(f map[string][]byte, tr []byte) []byte {
			return append(bytes.Repeat([]byte{0x90}, 70000), made(t, f, "a.7z", sz, "a", "-bd", "a.7z", "dir")...)
		},
		"cab mszip": func(f map[string][]byte, tr []byte) []byte {
			return made(t, f, "a.cab", gc, "-c", "-z", "a.cab", firstName(f))
		},
		"cab stored": func(f map[string][]byte, tr []byte) []byte {
			return made(t, f, "a.cab", gc, "-c", "a.cab", firstName(f))
		},
		"rar5 stored": func(f map[string][]byte, tr []byte) []byte { n := firstName(f); return eicar.StoredRAR5(n, f[n]) },
		"rar5 in a stub": func(f map[string][]byte, tr []byte) []byte {
			n := firstName(f)
			return append([]byte("MZ...stub..."), eicar.StoredRAR5(n, f[n])...)
		},
	}
	for name, build := range cases {
		bad := build(files, tarE)
		if d := e.ScanBytes(bad, all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" || d[0].Kind != Infected {
			t.Errorf("%s: EICAR inside: %s", name, names(d))
		}
		good := build(clean, tarClean)
		if d := e.ScanBytes(good, all); len(d) != 0 {
			t.Errorf("%s: clean archive: %s", name, names(d))
		}
	}
}

// piped runs cmd with data on its standard input and gives its output.
func piped(t *testing.T, data []byte, cmd ...string) []byte {
	t.Helper()
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stdin = bytes.NewReader(data)
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%v: %v", cmd, err)
	}
	return out
}

func firstName(f map[string][]byte) string {
	for n := range f {
		return n
	}
	return ""
}

// TestArchivesThatCannotBeOpenedAreSuspected: encrypted, damaged, or a
// method not implemented: never clean.
func TestArchivesThatCannotBeOpenedAreSuspected(t *testing.T) {
	e := builtin(t)
	sz := tool(t, "7zz", "7zip")
	files := map[string][]byte{"a.txt": []byte("secret text")}
	enc := made(t, files, "a.7z", sz, "a", "-bd", "-psecret", "a.7z", "a.txt")
	encHeaders := made(t, files, "b.7z", sz, "a", "-bd", "-psecret", "-mhe=on", "b.7z", "a.txt")
	// Stored (-mx=0), an encrypted member read without its password is
	// garbage of the right length and no error: it was judged clean.
	encStored := made(t, map[string][]byte{"e.com": []byte(eicar.String)}, "s.7z", sz, "a", "-bd", "-mx=0", "-psecret", "s.7z", "e.com")
	plain := made(t, files, "p.7z", sz, "a", "-bd", "-m0=Copy", "-mhc=off", "p.7z", "a.txt")
	if d := e.ScanBytes(plain, all); len(d) != 0 {
		t.Fatalf("a whole stored 7z: %s", names(d))
	}
	damaged := bytes.Clone(plain)
	damaged[bytes.Index(damaged, []byte("secret text"))] ^= 0x20 // its CRC no longer matches
	broken := made(t, map[string][]byte{"a.txt": bytes.Repeat([]byte("text "), 2000)}, "c.7z", sz, "a", "-bd", "c.7z", "a.txt")
	broken = broken[:len(broken)/2]
	rar := eicar.StoredRAR5("a.txt", []byte("secret text"))
	rarBroken := append([]byte(nil), rar...)
	rarBroken[len(rarBroken)-20] ^= 0xff // the data's CRC no longer matches
	cab := made(t, files, "a.cab", tool(t, "gcab", "gcab"), "-c", "-z", "a.cab", "a.txt")
	// typeCompress of the first CFFOLDER (after the 36-byte header):
	// Quantum, which is not read, and LZX over MSZIP's data.
	quantum, lzx := bytes.Clone(cab), bytes.Clone(cab)
	binary.LittleEndian.PutUint16(quantum[36+6:], 2|4<<4|15<<8)
	binary.LittleEndian.PutUint16(lzx[36+6:], 3|15<<8)
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"encrypted 7z":          {enc, "Heuristics.Encrypted.7Zip"},
		"encrypted stored 7z":   {encStored, "Heuristics.Encrypted.7Zip"},
		"damaged stored 7z":     {damaged, "Heuristics.Broken.Archive"},
		"7z, headers encrypted": {encHeaders, "Heuristics.Encrypted.7Zip"},
		"truncated 7z":          {broken, "Heuristics.Broken.Archive"},
		"rar with a bad CRC":    {rarBroken, "Heuristics.Broken.Archive"},
		"truncated rar":         {rar[:30], "Heuristics.Broken.Archive"},
		"cab with Quantum":      {quantum, "Heuristics.Unsupported.CAB"},
		"cab, LZX not decoding": {lzx, "Heuristics.Broken.Archive"},
		"truncated cab":         {cab[:40], "Heuristics.Broken.Archive"},
	} {
		d := e.ScanBytes(c.data, all)
		if len(d) == 0 || d[0].Name != c.want || d[0].Kind != Suspected {
			t.Errorf("%s: %s, want %s", name, names(d), c.want)
		}
	}
}

// TestStreamCutShortIsNotClean: a compressed stream or a member that
// ends before its end was judged clean for what came out. A bzip2 block
// cut anywhere gives nothing to this reader (it was judged clean while
// its header said more followed); gzip, xz and zstd cut short, and a tar
// member shorter than its header, the same. Each is now scanned as far
// as it goes and said damaged; the whole stream stays clean.
func TestStreamCutShortIsNotClean(t *testing.T) {
	e := builtin(t)
	compress := func(data []byte, cmd ...string) []byte { return piped(t, data, cmd...) }
	text := []byte(strings.Repeat("a plain text, line after line\n", 20000))
	random := make([]byte, 200000)
	mrand.New(mrand.NewSource(1)).Read(random)
	withEICAR := append([]byte(eicar.String), random...)
	bz := tool(t, "bzip2", "bzip2")
	tarred := tarOf(map[string][]byte{"a.txt": text})
	for name, c := range map[string]struct {
		whole []byte
		cut   int // bytes kept
		want  string
	}{
		"bzip2 cut in its block":       {compress(text, bz, "-c"), 40, "Heuristics.Broken.Archive"},
		"bzip2 cut in its footer":      {compress(withEICAR, bz, "-c"), -6, "Eicar-Test-Signature"},
		"gzip cut in half":             {compress(text, "gzip", "-c"), -1 << 30, "Heuristics.Broken.Archive"},
		"xz cut in half":               {compress(text, tool(t, "xz", "xz-utils"), "-c"), -1 << 30, "Heuristics.Broken.Archive"},
		"zstd cut in half":             {compress(text, tool(t, "zstd", "zstd"), "-c", "-q"), -1 << 30, "Heuristics.Broken.Archive"},
		"tar member shorter than said": {tarred, 512 + 1000, "Heuristics.Broken.Archive"},
	} {
		if d := e.ScanBytes(c.whole, all); len(d) != 0 && c.want != "Eicar-Test-Signature" {
			t.Errorf("%s: the whole stream: %s", name, names(d))
		}
		keep := c.cut
		switch {
		case keep == -1<<30:
			keep = len(c.whole) / 2
		case keep < 0:
			keep = len(c.whole) + keep
		}
		d := e.ScanBytes(c.whole[:keep], all)
		if len(d) == 0 || d[0].Name != c.want {
			t.Errorf("%s: %s, want %s", name, names(d), c.want)
		}
		if len(d) > 0 && c.want != "Eicar-Test-Signature" && d[0].Kind != Suspected {
			t.Errorf("%s: %s is not suspected", name, names(d))
		}
	}
}

// TestArchiveLimitsHoldForNewFormats: a bzip2 bomb is stopped at the
// limits like a zip bomb.
func TestArchiveLimitsHoldForNewFormats(t *testing.T) {
	e := builtin(t)
	e.Limits = Limits{MaxFileSize: 1 << 20}
	bz := tool(t, "bzip2", "bzip2")
	c := exec.Command(bz, "-c")
	c.Stdin = bytes.NewReader(make([]byte, 8<<20))
	bomb, err := c.Output()
	if err != nil {
		t.Fatal(err)
	}
	d := e.ScanBytes(bomb, all)
	if len(d) == 0 || !strings.HasPrefix(d[0].Name, "Heuristics.Limits.Exceeded.") {
		t.Fatalf("bzip2 bomb: %s", names(d))
	}
}

// BenchmarkSniffPlainData is what finding no container costs on 16 MiB of
// random data (the 7z and RAR signature searches, the zip end record),
// beside BenchmarkScan10kNdb's pass over the same size.
func BenchmarkSniffPlainData(b *testing.B) {
	data := make([]byte, 16<<20)
	mrand.New(mrand.NewSource(3)).Read(data)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		unpack.Scan(data, all, Limits{}, nil) // no signature: the sniffing alone
	}
}

// TestZipWithDataAroundIt: a zip with bytes before it and after it (which
// archive/zip and the desktops read past) is opened; a stray end record
// in plain data is not taken for a zip.
func TestZipWithDataAroundIt(t *testing.T) {
	e := builtin(t)
	var b bytes.Buffer
	b.WriteString(strings.Repeat("stub ", 1000))
	zw := zip.NewWriter(&b)
	zw.SetOffset(int64(b.Len()))
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "e.com", Method: zip.Deflate})
	w.Write([]byte(eicar.String))
	zw.Close()
	b.WriteString("trailing bytes after the end record")
	if d := e.ScanBytes(b.Bytes(), all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
		t.Fatalf("a zip between other bytes: %s", names(d))
	}
	stray := append(bytes.Repeat([]byte{7}, 5000), "PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00"...)
	if d := e.ScanBytes(stray, all); len(d) != 0 {
		t.Fatalf("a stray end record: %s", names(d))
	}
}

// TestBase64AsReadersDecodeIt: unpadded base64, and pieces each padded
// one after another, decode as mail readers decode them.
func TestBase64AsReadersDecodeIt(t *testing.T) {
	e := builtin(t)
	E := []byte(eicar.String)
	unpadded := strings.TrimRight(base64.StdEncoding.EncodeToString(E), "=")
	pieces := base64.StdEncoding.EncodeToString(E[:31]) + "\r\n" + base64.StdEncoding.EncodeToString(E[31:])
	for name, b64 := range map[string]string{"unpadded": unpadded, "pieces": pieces} {
		msg := "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64 + "\r\n"
		if d := e.ScanBytes([]byte(msg), all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
			t.Errorf("%s: %s", name, names(d))
		}
	}
}

// TestZipJoinedToAnotherZip: two zips one after the other. Readers that go
// by the end record (archive/zip, Python's zipfile) see only the second;
// streaming readers (Java's ZipInputStream) see the first. EICAR in the
// first is found, and a clean pair stays clean.
func TestZipJoinedToAnotherZip(t *testing.T) {
	e := builtin(t)
	deflated := func(name string, data []byte) []byte { return zipOne(name, data, zip.Deflate) }
	for name, first := range map[string][]byte{
		"deflated": deflated("e.com", []byte(eicar.String)),
		"stored":   eicar.Zip(map[string][]byte{"e.com": []byte(eicar.String)}),
	} {
		joined := append(append([]byte(nil), first...), deflated("readme.txt", []byte("nothing here"))...)
		if r, _ := zip.NewReader(bytes.NewReader(joined), int64(len(joined))); r == nil || len(r.File) != 1 || r.File[0].Name != "readme.txt" {
			t.Fatalf("%s: archive/zip reads the joined pair otherwise than expected", name)
		}
		if d := e.ScanBytes(joined, all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
			t.Errorf("%s: EICAR in the first of two joined zips: %s", name, names(d))
		}
	}
	clean := append(deflated("a.txt", []byte("aaa")), deflated("b.txt", []byte("bbb"))...)
	if d := e.ScanBytes(clean, all); len(d) != 0 {
		t.Errorf("two clean joined zips: %s", names(d))
	}
	if d := e.ScanBytes(deflated("a.txt", []byte("aaa")), all); len(d) != 0 {
		t.Errorf("one clean zip: %s", names(d))
	}
}

// TestUnixArchives: ar (and the Debian package it wraps), cpio in its
// four formats and tar in every dialect, made by the real tools, each
// holding EICAR compressed inside (so that nothing but opening the
// archive finds it): the ar and cpio members were not opened at all, nor
// a v7 tar (no magic), and a .deb's data.tar.xz or .zst not found. Each
// is opened now; the same archive of a clean file is clean.
func TestUnixArchives(t *testing.T) {
	e := builtin(t)
	arTool := tool(t, "ar", "binutils")
	cpioTool := tool(t, "cpio", "cpio")
	debTool := tool(t, "dpkg-deb", "dpkg")
	xzTool := tool(t, "xz", "xz-utils")
	zstTool := tool(t, "zstd", "zstd")
	bzTool := tool(t, "bzip2", "bzip2")
	build := func(content []byte) map[string][]byte {
		packed := map[string][]byte{
			"a.com.xz":  piped(t, content, xzTool, "-c"),
			"a.com.zst": piped(t, content, zstTool, "-c", "-q"),
			"a.com.bz2": piped(t, content, bzTool, "-c"),
		}
		out := map[string][]byte{}
		for _, f := range []string{"a.com.xz", "a.com.zst", "a.com.bz2"} {
			one := map[string][]byte{f: packed[f]}
			out["ar "+f] = made(t, one, "a.a", arTool, "rc", "a.a", f)
			for _, format := range []string{"newc", "crc", "odc", "bin"} {
				out["cpio "+format+" "+f] = made(t, one, "a.cpio", "sh", "-c", "echo "+f+" | "+cpioTool+" -o --quiet -H "+format+" > a.cpio")
			}
			for _, format := range []string{"v7", "gnu", "oldgnu", "pax", "ustar"} {
				out["tar "+format+" "+f] = made(t, one, "a.tar", "tar", "--format="+format, "-cf", "a.tar", f)
			}
		}
		for _, z := range []string{"xz", "zstd", "gzip"} {
			files := map[string][]byte{
				"pkg/DEBIAN/control": []byte("Package: x\nVersion: 1\nArchitecture: all\nMaintainer: a <a@example.com>\nDescription: x\n"),
				"pkg/usr/a.com":      content,
			}
			out[".deb data."+z] = made(t, files, "x.deb", debTool, "--root-owner-group", "-Z"+z, "--build", "pkg", "x.deb")
		}
		return out
	}
	for name, data := range build([]byte(eicar.String)) {
		if d := e.ScanBytes(data, all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" || d[0].Kind != Infected {
			t.Errorf("%s: EICAR inside: %s", name, names(d))
		}
	}
	for name, data := range build([]byte("a harmless program's bytes")) {
		if d := e.ScanBytes(data, all); len(d) != 0 {
			t.Errorf("%s: a clean archive: %s", name, names(d))
		}
	}
}

// TestZipMemberLongerThanItsStream: a zip entry whose central directory
// declares more than its stream holds came out empty through
// archive/zip's reader (it drops what it read when the size disagrees)
// and was judged clean, while unzip extracts it. Made by zip, stored and
// deflated, with and without data descriptors, the sizes raised a little
// and a lot: what the stream holds is
// scanned (EICAR found) and the entry said damaged; the untouched archive
// is clean of damage.
func TestZipMemberLongerThanItsStream(t *testing.T) {
	e := builtin(t)
	zipTool := tool(t, "zip", "zip")
	// Small and large: a small entry comes in one read, which archive/zip
	// dropped whole.
	small := []byte(eicar.String)
	large := append([]byte(eicar.String), bytes.Repeat([]byte(" padding that deflates well"), 200)...)
	for _, content := range [][]byte{small, large} {
		// -fd: data descriptors after the entries, as zips written while
		// streamed have them (archive/zip lost the whole entry with these).
		for _, level := range []string{"-0", "-9", "-0 -fd", "-9 -fd"} {
			args := append([]string{zipTool, "-q"}, strings.Fields(level)...)
			z := made(t, map[string][]byte{"e.com": content}, "a.zip", append(args, "a.zip", "e.com")...)
			if d := e.ScanBytes(z, all); len(d) != 1 || d[0].Name != "Eicar-Test-Signature" {
				t.Fatalf("zip %s, %d bytes, untouched: %s", level, len(content), names(d))
			}
			cd := bytes.Index(z, []byte("PK\x01\x02"))
			for _, more := range []uint32{10, 1 << 20} {
				lying := bytes.Clone(z)
				for _, at := range []int{cd + 20, cd + 24} { // compressed and uncompressed sizes
					binary.LittleEndian.PutUint32(lying[at:], binary.LittleEndian.Uint32(lying[at:])+more)
				}
				d := e.ScanBytes(lying, all)
				eicarFound, broken := false, false
				for _, x := range d {
					eicarFound = eicarFound || x.Name == "Eicar-Test-Signature" && x.Path == "e.com"
					// (damage found inside the entry stands for it)
					broken = broken || x.Name == "Heuristics.Broken.Archive" && (x.Path == "e.com" || strings.HasPrefix(x.Path, "e.com/"))
				}
				if !eicarFound || !broken {
					t.Errorf("zip %s, %d bytes, sizes raised by %d: %s", level, len(content), more, names(d))
				}
			}
		}
	}
}

// TestZstdStartingWithASkippableFrame: a zstd stream may start with a
// skippable frame (the zstd tool passes over it to the frames behind);
// such a stream was not taken for zstd, and EICAR in the frame behind went
// through. The frames are the real zstd's; the skippable one is laid out
// by hand, as no tool writes one.
func TestZstdStartingWithASkippableFrame(t *testing.T) {
	e := builtin(t)
	zst := tool(t, "zstd", "zstd")
	skippable := func(magicLow byte, content []byte) []byte {
		f := binary.LittleEndian.AppendUint32(nil, 0x184D2A50|uint32(magicLow))
		f = binary.LittleEndian.AppendUint32(f, uint32(len(content)))
		return append(f, content...)
	}
	// EICAR's first 63 bytes, then EICAR: the second is a match of the
	// first in the frame, so that it is in no raw bytes of the stream.
	bad := piped(t, []byte(eicar.String[:63]+" "+eicar.String), zst, "-c", "-q")
	if bytes.Contains(bad, []byte(eicar.String)) {
		t.Fatal("EICAR stands in the clear in the frame")
	}
	good := piped(t, []byte("a harmless text"), zst, "-c", "-q")
	for name, data := range map[string][]byte{
		"one skippable frame first":      append(skippable(0, []byte("metadata")), bad...),
		"two, the last magic of fifteen": append(append(skippable(0xf, []byte("a")), skippable(3, make([]byte, 1000))...), bad...),
	} {
		if d := e.ScanBytes(data, all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
			t.Errorf("%s: %s", name, names(d))
		}
	}
	if d := e.ScanBytes(append(skippable(0, []byte("metadata")), good...), all); len(d) != 0 {
		t.Errorf("clean: %s", names(d))
	}
}

// TestRPMPayloadIsOpened: an RPM whose payload (a cpio archive,
// compressed) holds EICAR was not opened: the payload behind the headers
// was never found. Built by rpmbuild with each payload compression; the
// clean twin is clean.
func TestRPMPayloadIsOpened(t *testing.T) {
	e := builtin(t)
	rpmbuild := tool(t, "rpmbuild", "rpm")
	build := func(content, compressor string) []byte {
		top := t.TempDir()
		os.MkdirAll(filepath.Join(top, "SPECS"), 0o755)
		spec := "Name: x\nVersion: 1\nRelease: 1\nSummary: x\nLicense: none\nBuildArch: noarch\n%description\nx\n%install\n" +
			"mkdir -p %{buildroot}/usr/share/x\nprintf '%s' '" + strings.ReplaceAll(content, "%", "%%") + "' > %{buildroot}/usr/share/x/e.com\n%files\n/usr/share/x/e.com\n"
		os.WriteFile(filepath.Join(top, "SPECS", "x.spec"), []byte(spec), 0o644)
		out, err := exec.Command(rpmbuild, "--define", "_topdir "+top, "--define", "_binary_payload "+compressor, "-bb", filepath.Join(top, "SPECS", "x.spec")).CombinedOutput()
		if err != nil {
			t.Fatalf("rpmbuild %s: %v\n%s", compressor, err, out)
		}
		b, err := os.ReadFile(filepath.Join(top, "RPMS", "noarch", "x-1-1.noarch.rpm"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []string{"w9.xzdio", "w9.gzdio", "w9.bzdio", "w19.zstdio"} {
		if d := e.ScanBytes(build(eicar.String, c), all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" {
			t.Errorf("%s: %s", c, names(d))
		}
		if d := e.ScanBytes(build("a harmless file", c), all); len(d) != 0 {
			t.Errorf("%s, clean: %s", c, names(d))
		}
	}
}

// TestZipReadBothWays: where the central directory and a local header
// disagree, a streaming reader (Java's ZipInputStream, unzip on a damaged
// archive) takes the local header's word. A zip made by zip, its central
// directory then saying "stored" for a deflated entry: read by the
// directory alone, the entry was deflate bytes taken for content. The
// local header's reading is scanned too (EICAR found there); the same
// zip untouched is read once.
func TestZipReadBothWays(t *testing.T) {
	e := builtin(t)
	zipTool := tool(t, "zip", "zip")
	content := append([]byte(eicar.String), bytes.Repeat([]byte(" padding that deflates well"), 100)...)
	z := made(t, map[string][]byte{"e.com": content}, "a.zip", zipTool, "-q", "-9", "a.zip", "e.com")
	cd := bytes.Index(z, []byte("PK\x01\x02"))
	if binary.LittleEndian.Uint16(z[cd+10:]) != 8 {
		t.Fatal("zip did not deflate the entry")
	}
	lying := bytes.Clone(z)
	binary.LittleEndian.PutUint16(lying[cd+10:], 0) // the directory says: stored
	if bytes.Contains(lying, []byte(eicar.String)) {
		t.Fatal("EICAR in the clear")
	}
	d := e.ScanBytes(lying, all)
	found := false
	for _, x := range d {
		found = found || x.Name == "Eicar-Test-Signature" && x.Path == "e.com (local header)"
	}
	if !found {
		t.Errorf("the local header's reading: %s", names(d))
	}
	clean := made(t, map[string][]byte{"r.txt": bytes.Repeat([]byte("harmless "), 300)}, "c.zip", zipTool, "-q", "-9", "c.zip", "r.txt")
	if d := e.ScanBytes(clean, all); len(d) != 0 {
		t.Errorf("clean, untouched: %s", names(d))
	}
}

// BenchmarkSniffProgram is what finding no container costs on 1 MiB of a
// real program (this test binary): strings, tables and code, where short
// signatures turn up by chance more often than in random data.
func BenchmarkSniffProgram(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		b.Fatal(err)
	}
	data = data[:min(len(data), 1<<20)]
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		unpack.Scan(data, all, Limits{}, nil)
	}
}

// TestZipMethodsAs7ZipWritesThem: a zip whose entries 7-Zip packed with
// bzip2, LZMA (with and without its end marker) or xz was not opened and
// said broken: the program in it went unseen. Each is opened now
// (clamscan opens the bzip2 one, not the others); one packed with
// PPMd, which nothing here decodes, is Heuristics.Unsupported.Zip,
// suspected, never clean. The clean twins are clean.
func TestZipMethodsAs7ZipWritesThem(t *testing.T) {
	sz := tool(t, "7zz", "7zip")
	e := builtin(t)
	program := func(payload string) []byte {
		return []byte("MZ a program " + payload + strings.Repeat(" and its data", 300))
	}
	for _, c := range []struct{ method, want string }{
		{"BZip2", "Eicar-Test-Signature"},
		{"LZMA", "Eicar-Test-Signature"},
		{"LZMA:eos", "Eicar-Test-Signature"},
		{"XZ", "Eicar-Test-Signature"},
		{"PPMd", "Heuristics.Unsupported.Zip"},
	} {
		zipped := func(payload string) []byte {
			return made(t, map[string][]byte{"a.exe": program(payload)}, "a.zip", sz, "a", "-bd", "-tzip", "-mm="+c.method, "a.zip", "a.exe")
		}
		if d := e.ScanBytes(zipped(eicar.String), all); len(d) != 1 || d[0].Name != c.want || d[0].Path != "a.exe" {
			t.Errorf("%s: %s", c.method, names(d))
		}
		if c.want == "Eicar-Test-Signature" {
			if d := e.ScanBytes(zipped("and nothing else"), all); len(d) != 0 {
				t.Errorf("%s, clean: %s", c.method, names(d))
			}
		}
		if c.method == "LZMA" {
			// Its header asking for a dictionary of 4 GiB: taken as one
			// no larger than a member may be, not allocated.
			z := zipped(eicar.String)
			zr, _ := zip.NewReader(bytes.NewReader(z), int64(len(z)))
			off, _ := zr.File[0].DataOffset()
			binary.LittleEndian.PutUint32(z[off+5:], 0xffffffff)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			d := e.ScanBytes(z, all)
			runtime.ReadMemStats(&after)
			if len(d) != 1 || d[0].Name != "Eicar-Test-Signature" || after.TotalAlloc-before.TotalAlloc > 512<<20 {
				t.Errorf("a 4 GiB dictionary: %s, %d MiB allocated", names(d), (after.TotalAlloc-before.TotalAlloc)>>20)
			}
		}
	}
}

// sevenZipPatched is a 7z 7-Zip made with uncompressed headers, its first
// coder's properties (after the bytes that introduce them) replaced, and
// its header's CRCs made right again.
func sevenZipPatched(t *testing.T, z []byte, coder, props []byte) []byte {
	t.Helper()
	z = bytes.Clone(z)
	start := 32 + int(binary.LittleEndian.Uint64(z[12:]))
	size := int(binary.LittleEndian.Uint64(z[20:]))
	i := bytes.Index(z[start:start+size], coder)
	if i < 0 {
		t.Fatalf("no coder %x", coder)
	}
	copy(z[start+i+len(coder):], props)
	binary.LittleEndian.PutUint32(z[28:], crc32.ChecksumIEEE(z[start:start+size]))
	binary.LittleEndian.PutUint32(z[8:], crc32.ChecksumIEEE(z[12:32]))
	return z
}

// TestSevenZipCodersTakeBoundedMemory: a 7z's coders take the memory
// their properties name from its header, 4 GiB at most: a small 7z whose
// LZMA or LZMA2 dictionary says 1.5 GiB or more is decoded with one no
// larger than what it unpacks (the program in it found, a few MiB
// allocated, where the library's decoder took 1.5 GiB); one whose PPMd
// model says 4 GiB, which cannot be made smaller, is not opened:
// suspected, never clean, nothing made.
func TestSevenZipCodersTakeBoundedMemory(t *testing.T) {
	sz := tool(t, "7zz", "7zip")
	e := builtin(t)
	program := []byte("MZ a program " + eicar.String + strings.Repeat(" and its data", 300))
	files := map[string][]byte{"a.exe": program}
	for _, c := range []struct {
		method       string
		coder, props []byte
		want         string
	}{
		{"LZMA2:d=1m", []byte{0x21, 0x21, 0x01}, []byte{37}, "Eicar-Test-Signature"},                                      // 1.5 GiB
		{"LZMA:d=1m", []byte{0x23, 0x03, 0x01, 0x01, 0x05}, []byte{0x5d, 0xff, 0xff, 0xff, 0xff}, "Eicar-Test-Signature"}, // 4 GiB
		{"PPMd:mem=1m", []byte{0x23, 0x03, 0x04, 0x01, 0x05}, []byte{6, 0xff, 0xff, 0xff, 0xff}, ""},
	} {
		z := sevenZipPatched(t, made(t, files, "a.7z", sz, "a", "-bd", "-mhc=off", "-m0="+c.method, "a.7z", "a.exe"), c.coder, c.props)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		d := e.ScanBytes(z, all)
		runtime.ReadMemStats(&after)
		alloc := (after.TotalAlloc - before.TotalAlloc) >> 20
		if alloc > 64 || len(d) == 0 || c.want != "" && d[0].Name != c.want || c.want == "" && d[0].Kind != Suspected {
			t.Errorf("%s: %s, %d MiB allocated", c.method, names(d), alloc)
		}
	}
}

// xzDictPatched is an xz stream whose first block's LZMA2 dictionary
// byte is replaced by p, its header's CRC made right again.
func xzDictPatched(t *testing.T, x []byte, p byte) []byte {
	t.Helper()
	x = bytes.Clone(x)
	hdr := x[12 : 12+(int(x[12])+1)*4]
	i := 2
	for _, present := range []bool{hdr[1]&0x40 != 0, hdr[1]&0x80 != 0} {
		if present {
			_, k := binary.Uvarint(hdr[i:])
			i += k
		}
	}
	if hdr[i] != 0x21 || hdr[i+1] != 1 {
		t.Fatalf("no LZMA2 filter first: %x", hdr)
	}
	hdr[i+2] = p
	binary.LittleEndian.PutUint32(hdr[len(hdr)-4:], crc32.ChecksumIEEE(hdr[:len(hdr)-4]))
	return x
}

// TestXZDictionaryTakesBoundedMemory: an xz stream's block names its
// LZMA2 dictionary, up to 3 GiB, which the xz reader allocated whole: a
// small .xz whose header says 3 GiB (or the largest, 4 GiB) is decoded
// with a dictionary no larger than what it unpacks, the program in it
// found, alone and as a zip's xz entry, a few MiB allocated.
func TestXZDictionaryTakesBoundedMemory(t *testing.T) {
	xzc := tool(t, "xz", "xz-utils")
	sz := tool(t, "7zz", "7zip")
	e := builtin(t)
	program := []byte("MZ a program " + eicar.String + strings.Repeat(" and its data", 300))
	x := made(t, map[string][]byte{"a.exe": program}, "a.exe.xz", xzc, "-k", "a.exe")
	z := made(t, map[string][]byte{"a.exe": program}, "a.zip", sz, "a", "-bd", "-tzip", "-mm=XZ", "a.zip", "a.exe")
	zr, _ := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	off, _ := zr.File[0].DataOffset()
	for _, p := range []byte{39, 40} {
		inZip := bytes.Clone(z)
		patched := xzDictPatched(t, inZip[off:off+int64(zr.File[0].CompressedSize64)], p)
		copy(inZip[off:], patched)
		// The zip's CRC is of the unpacked bytes: unchanged.
		for name, obj := range map[string][]byte{"xz": xzDictPatched(t, x, p), "zip": inZip} {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			d := e.ScanBytes(obj, all)
			runtime.ReadMemStats(&after)
			alloc := (after.TotalAlloc - before.TotalAlloc) >> 20
			if alloc > 64 || len(d) != 1 || d[0].Name != "Eicar-Test-Signature" {
				t.Errorf("%s, dictionary byte %d: %s, %d MiB allocated", name, p, names(d), alloc)
			}
		}
	}
}

// TestNSISInstallersAsMakensisWritesThem: a program in an NSIS installer
// (makensis, each compressor, solid and not) went through unseen. Its
// files are walked now: found as nsis-file-1 with zlib, LZMA and NSIS's
// bzip2, solid or not. clamscan finds the program in all but the solid
// zlib one. The clean twins are clean.
func TestNSISInstallersAsMakensisWritesThem(t *testing.T) {
	makensis := tool(t, "makensis", "nsis")
	e := builtin(t)
	program := func(payload string) []byte {
		return []byte("MZ a program " + payload + strings.Repeat(" and its data", 300))
	}
	installer := func(compressor string, solid bool, payload string) []byte {
		s := ""
		if solid {
			s = "/SOLID "
		}
		script := "OutFile setup.exe\nSetCompressor " + s + compressor + "\nSection\nSetOutPath $TEMP\nFile a.exe\nSectionEnd\n"
		return made(t, map[string][]byte{"a.exe": program(payload), "s.nsi": []byte(script)}, "setup.exe", makensis, "-V1", "s.nsi")
	}
	db := eicarSigDir(t)
	corpus := t.TempDir()
	for _, c := range []string{"zlib", "lzma", "bzip2"} {
		for _, solid := range []bool{false, true} {
			name := c
			if solid {
				name += "-solid"
			}
			setup := installer(c, solid, eicar.String)
			os.WriteFile(filepath.Join(corpus, name), setup, 0o644)
			d := e.ScanBytes(setup, all)
			switch {
			case len(d) != 1 || d[0].Name != "Eicar-Test-Signature" || d[0].Path != "nsis-file-1":
				t.Errorf("%s: %+v", name, d)
			default:
				if d := e.ScanBytes(installer(c, solid, "and nothing else"), all); len(d) != 0 {
					t.Errorf("%s, clean: %s", name, names(d))
				}
			}
		}
	}
	theirs := clamscanFinds(t, db, corpus)
	for _, name := range []string{"zlib", "lzma", "lzma-solid", "bzip2", "bzip2-solid"} {
		if theirs[name] != "Eicar-Test-Signature" {
			t.Errorf("%s: clamscan finds %q", name, theirs[name])
		}
	}
}
