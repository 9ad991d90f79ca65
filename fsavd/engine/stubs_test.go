package engine

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	mrand "math/rand"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/packtest"
)

// payload is EICAR followed by text that no two compressions leave
// alike, so that a packed copy never holds EICAR's bytes as they are: a
// detection in it is one the engine found by opening the container.
func payload() []byte {
	r := make([]byte, 3000)
	mrand.New(mrand.NewSource(7)).Read(r)
	return append([]byte(eicar.String+"\n"), base64.StdEncoding.EncodeToString(r)...)
}

// TestContainersBehindStubs: each container 7-Zip opens behind other
// data (a self-extractor's stub, a polyglot), found behind stubs from
// 70 KB to 12 MiB (7-Zip looks 8 MiB in, ClamAV further: a 7z or a
// cabinet behind 10 MB was opened by clamscan and had not been here),
// its packed member scanned; the same with a clean member is clean.
func TestContainersBehindStubs(t *testing.T) {
	e := builtin(t)
	E, clean := payload(), []byte(strings.Repeat("nothing to see here\n", 200))
	for name, build := range behindKinds(t) {
		bad, good := build(E), build(clean)
		for _, n := range []int{70_000, 2 << 20, 8<<20 - 4096, 12 << 20} {
			stub := make([]byte, n)
			mrand.New(mrand.NewSource(int64(n))).Read(stub)
			stub[0], stub[1] = 'M', 'Z'
			d := e.ScanBytes(append(append([]byte(nil), stub...), bad...), all)
			if len(d) == 0 || d[0].Name != "Eicar-Test-Signature" || d[0].Path == "" {
				t.Errorf("%s behind %d bytes: %s", name, n, names(d))
			}
			if d := e.ScanBytes(append(append([]byte(nil), stub...), good...), all); len(d) != 0 {
				t.Errorf("%s behind %d bytes, clean: %s", name, n, names(d))
			}
		}
	}
}

// TestShortSignaturesInPlainData: bytes that begin a gzip or a tar
// header, in data that holds no archive, are not taken for one (no
// Broken.Archive suspicion for a download that happens to hold them).
func TestShortSignaturesInPlainData(t *testing.T) {
	e := builtin(t)
	d := make([]byte, 3<<20)
	mrand.New(mrand.NewSource(11)).Read(d)
	for i := 1000; i+600 < len(d); i += 50_000 {
		copy(d[i:], "\x1f\x8b\x08\x00")        // gzip's first bytes, and a header that is not one
		copy(d[i+300:], "ustar\x0000 the tar") // tar's magic, and no header around it
	}
	if got := e.ScanBytes(d, all); len(got) != 0 {
		t.Fatalf("plain data: %s", names(got))
	}
	text := []byte(strings.Repeat("A tar header says ustar at offset 257; gzip starts 1f 8b 08. ", 1000))
	if got := e.ScanBytes(text, all); len(got) != 0 {
		t.Fatalf("text about archives: %s", names(got))
	}
}

// TestISOImages: an ISO 9660 image (as mail and downloads carry them,
// opened by a double click on Windows) is opened: a packed archive
// stored in it is opened in turn, however many archives of its kind come
// before it, under the names Windows shows (Joliet's).
func TestISOImages(t *testing.T) {
	e := builtin(t)
	sz := tool(t, "7zz", "7zip")
	xo := tool(t, "xorriso", "xorriso")
	sevenZip := func(name string, m []byte) []byte {
		return made(t, map[string][]byte{name: m}, "a.7z", sz, "a", "-bd", "a.7z", name)
	}
	image := func(files map[string][]byte) []byte {
		return made(t, files, "out.iso", xo, "-as", "mkisofs", "-quiet", "-J", "-o", "out.iso", "files")
	}
	clean := []byte(strings.Repeat("nothing to see here\n", 200))
	bad := image(map[string][]byte{
		"files/a-first.7z":                sevenZip("readme.txt", clean),
		"files/Deep/Long Name Archive.7z": sevenZip("payload.txt", payload()),
		"files/notes.txt.gz":              packtest.Gzip(clean),
	})
	d := e.ScanBytes(bad, all)
	if len(d) != 1 || d[0].Name != "Eicar-Test-Signature" || d[0].Path != "Deep/Long Name Archive.7z/payload.txt" {
		t.Fatalf("an image holding a 7z of EICAR after another 7z: %s", names(d))
	}
	good := image(map[string][]byte{"files/a-first.7z": sevenZip("readme.txt", clean), "files/notes.txt.gz": packtest.Gzip(clean)})
	if d := e.ScanBytes(good, all); len(d) != 0 {
		t.Fatalf("a clean image: %s", names(d))
	}
	// A directory record that points past the image: damaged, not clean.
	broken := append([]byte(nil), bad[:len(bad)-4*isoSectorForTest]...)
	if d := e.ScanBytes(broken, all); len(d) == 0 {
		t.Fatalf("a cut image: clean")
	}
}

const isoSectorForTest = 2048

// TestUnreadCabinetBehindAStub: a cabinet the engine cannot read (a
// Quantum folder, or an LZX folder that does not decode) is suspected
// where it is the object, and left to the object's own scan where it is
// found behind other data: an installer is not blocked for a stretch of
// it that no reader opens.
func TestUnreadCabinetBehindAStub(t *testing.T) {
	e := builtin(t)
	gc := tool(t, "gcab", "gcab")
	for method, want := range map[uint16]string{2 | 4<<4 | 15<<8: "Heuristics.Unsupported.CAB", 3 | 15<<8: "Heuristics.Broken.Archive"} {
		cab := made(t, map[string][]byte{"m.txt": []byte(strings.Repeat("setup data ", 500))}, "a.cab", gc, "-c", "-z", "a.cab", "m.txt")
		binary.LittleEndian.PutUint16(cab[36+6:], method) // the first folder's method, over MSZIP's data
		if d := e.ScanBytes(cab, all); len(d) != 1 || d[0].Name != want {
			t.Fatalf("a cabinet of method %#x: %s", method, names(d))
		}
		installer := append(bytes.Repeat([]byte("MZ installer code "), 20000), cab...)
		if d := e.ScanBytes(installer, all); len(d) != 0 {
			t.Fatalf("an installer carrying a cabinet of method %#x: %s", method, names(d))
		}
	}
}

// TestGzipHeaderByChanceBehindData: a gzip header whose stream does not
// inflate, inside other data, is no archive: not suspected.
func TestGzipHeaderByChanceBehindData(t *testing.T) {
	e := builtin(t)
	g := packtest.Gzip([]byte(strings.Repeat("data ", 2000)))
	for i := 20; i < len(g)-8; i++ {
		g[i] ^= 0x5a // the deflate stream, garbled
	}
	obj := append(bytes.Repeat([]byte("MZ program "), 1000), g...)
	if d := e.ScanBytes(obj, all); len(d) != 0 {
		t.Fatalf("a garbled gzip inside a program: %s", names(d))
	}
}

// TestSecondArchiveBehindAStub: behind a stub, a clean archive first does
// not hide a second of the same kind (7-Zip reaches it with "open
// inside"), for each kind that can come more than once.
func TestSecondArchiveBehindAStub(t *testing.T) {
	e := builtin(t)
	clean := []byte(strings.Repeat("nothing to see here\n", 200))
	for name, build := range behindKinds(t) {
		if name == "tar of a gzip" {
			continue // a tar's later headers are its own members'
		}
		obj := append(bytes.Repeat([]byte("MZ stub "), 10000), build(clean)...)
		obj = append(obj, bytes.Repeat([]byte("padding "), 1000)...)
		obj = append(obj, build(payload())...)
		if d := e.ScanBytes(obj, all); len(d) == 0 || d[0].Name != "Eicar-Test-Signature" || d[0].Path == "" {
			t.Errorf("%s: a second archive behind a clean one: %s", name, names(d))
		}
	}
}

// behindKinds builds, around one member, each container that is opened
// behind other data.
func behindKinds(t *testing.T) map[string]func(member []byte) []byte {
	sz := tool(t, "7zz", "7zip")
	gc := tool(t, "gcab", "gcab")
	return map[string]func(member []byte) []byte{
		"7z": func(m []byte) []byte {
			return made(t, map[string][]byte{"m.txt": m}, "a.7z", sz, "a", "-bd", "a.7z", "m.txt")
		},
		"cab mszip": func(m []byte) []byte {
			return made(t, map[string][]byte{"m.txt": m}, "a.cab", gc, "-c", "-z", "a.cab", "m.txt")
		},
		"gzip":           packtest.Gzip,
		"tar of a gzip":  func(m []byte) []byte { return tarOf(map[string][]byte{"m.txt.gz": packtest.Gzip(m)}) },
		"rar5 of a gzip": func(m []byte) []byte { return eicar.StoredRAR5("m.txt.gz", packtest.Gzip(m)) },
	}
}
