package unpack

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/fsigkd/fsigkd/internal/forms"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// udfFiles are the files of the test images: a zip whose member (packed)
// holds the mark, so that only a walk of the image's tree finds it, and
// a file of several MiB.
func udfFiles(t *testing.T) map[string][]byte {
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	w, _ := zw.Create("inner.txt")
	w.Write(bytes.Repeat([]byte("UDF-MARK packed away "), 100))
	zw.Close()
	return map[string][]byte{
		"readme.txt":        []byte("nothing here"),
		"deep/er/setup.zip": z.Bytes(),
		"big.bin":           bytes.Repeat([]byte("0123456789abcdef"), 3<<16),
	}
}

// genisoimage makes a bridge image (ISO 9660, Joliet and UDF 1.02) of
// files, as DVD images are made.
func genisoimage(t *testing.T, files map[string][]byte) []byte {
	bin := testenv.Need(t, "genisoimage", "genisoimage")
	dir := t.TempDir()
	for name, b := range files {
		p := filepath.Join(dir, "in", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, b, 0o644)
	}
	out := filepath.Join(dir, "a.iso")
	if b, err := exec.Command(bin, "-quiet", "-udf", "-J", "-o", out, filepath.Join(dir, "in")).CombinedOutput(); err != nil {
		t.Fatalf("genisoimage: %v %s", err, b)
	}
	img, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// blindISOTree points the ISO 9660 and Joliet records of a file named
// name at another file's data (other): a bridge image whose ISO 9660
// tree shows one thing and whose UDF tree, which Windows reads, another.
func blindISOTree(t *testing.T, img []byte, name, other string) []byte {
	img = bytes.Clone(img)
	record := func(n []byte) []byte {
		i := bytes.Index(img, n)
		if i < 33 || int(img[i-1]) != len(n) {
			t.Fatalf("no record of %q", n)
		}
		return img[i-33:]
	}
	joliet := func(s string) []byte {
		var b []byte
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u>>8), byte(u))
		}
		return b
	}
	for _, pair := range [][2][]byte{
		{[]byte(strings.ToUpper(name) + ";1"), []byte(strings.ToUpper(other) + ";1")},
		{joliet(name), joliet(other)},
	} {
		to, from := record(pair[0]), record(pair[1])
		copy(to[2:18], from[2:18]) // the extent and its size, both byte orders
	}
	return img
}

// TestUDFImagesWalked: the files of a UDF image are walked wherever its
// UDF tree names them: an image with UDF alone (a reader of ISO 9660
// alone sees no file), a bridge image, and a bridge image whose ISO 9660
// trees name another file's data in the place of the zip that holds the
// mark; each file comes back as 7-Zip extracts it, byte for byte.
func TestUDFImagesWalked(t *testing.T) {
	files := udfFiles(t)
	bridge := genisoimage(t, files)
	images := map[string][]byte{
		"UDF alone":         forms.UDFOnly(t, bridge),
		"bridge":            bridge,
		"bridge, ISO blind": blindISOTree(t, bridge, "setup.zip", "readme.txt"),
	}
	mark := []byte("UDF-MARK")
	match := func(data []byte, found func(string) bool) {
		if bytes.Contains(data, mark) {
			found("Mark")
		}
	}
	for name, img := range images {
		if bytes.Contains(img, mark) {
			t.Fatalf("%s: the mark lies in the image as it is", name)
		}
		got := Scan(img, Options{Archives: true}, Limits{}, match)
		if len(got) != 1 || got[0].Name != "Mark" || got[0].Path != "deep/er/setup.zip/inner.txt" {
			t.Errorf("%s: %+v", name, got)
		}
	}
	if !isUDF(images["UDF alone"]) || isUDF(bridge) {
		t.Fatal("typed wrong")
	}
	// What the walk visits of the image with UDF alone, against 7-Zip.
	sz := testenv.Need(t, "7zz", "7zip")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.iso"), images["UDF alone"], 0o644)
	if out, err := exec.Command(sz, "x", "-bd", "-y", "-o"+filepath.Join(dir, "x"), filepath.Join(dir, "a.iso")).CombinedOutput(); err != nil {
		t.Fatalf("7zz: %v %s", err, out)
	}
	visited := map[string][]byte{}
	Walk(images["UDF alone"], Options{Archives: true}, Limits{}, func(data []byte, where string) bool {
		if _, ok := files[where]; ok {
			visited[where] = bytes.Clone(data)
		}
		return false
	})
	for name, want := range files {
		theirs, err := os.ReadFile(filepath.Join(dir, "x", name))
		if err != nil || !bytes.Equal(theirs, want) {
			t.Fatalf("7-Zip's %s: %v", name, err)
		}
		if !bytes.Equal(visited[name], want) {
			t.Errorf("%s: walked %d bytes, 7-Zip extracts %d", name, len(visited[name]), len(want))
		}
	}
}

// TestUDFImagesDamaged: an image whose UDF descriptors are cut or
// garbled is said damaged, never walked out of its bounds; a directory
// that names itself is walked once.
func TestUDFImagesDamaged(t *testing.T) {
	img := forms.UDFOnly(t, genisoimage(t, udfFiles(t)))
	for name, d := range map[string][]byte{
		"cut after the anchor": img[:257*isoSector],
		"anchor garbled":       func() []byte { b := bytes.Clone(img); b[256*isoSector+4] ^= 1; return b }(),
	} {
		got := Scan(d, Options{Archives: true}, Limits{}, func([]byte, func(string) bool) {})
		if len(got) != 1 || got[0].Name != "Heuristics.Broken.Archive" {
			t.Errorf("%s: %+v", name, got)
		}
	}
	for cut := 257 * isoSector; cut < len(img); cut += len(img) / 97 {
		Scan(img[:cut], Options{Archives: true}, Limits{}, func([]byte, func(string) bool) {})
	}
}

// FuzzUDF: no image, however made, makes the walk fail or read outside
// it.
func FuzzUDF(f *testing.F) {
	f.Add(make([]byte, 300*isoSector))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(d, Options{Archives: true}, Limits{MaxFiles: 100}, func([]byte, func(string) bool) {})
		if v, ok := udfOpen(d); ok {
			v.data(v.fsd, 1<<20)
		}
	})
}

// TestUDFSparseFileBounded: a file entry that says its file is 1 GiB of
// a hole (allocated, not recorded: zeros) is read within the limits on
// what a scan unpacks, not allocated whole: the scan stops at the
// file's size limit.
func TestUDFSparseFileBounded(t *testing.T) {
	files := udfFiles(t)
	img := forms.UDFOnly(t, genisoimage(t, files))
	fe := -1
	for off := 0; off+2048 <= len(img); off += 2048 {
		if udfTag(img, int64(off)) == 261 && binary.LittleEndian.Uint64(img[off+56:]) == uint64(len(files["big.bin"])) {
			fe = off
		}
	}
	if fe < 0 || binary.LittleEndian.Uint16(img[fe+34:])&7 != 0 {
		t.Fatal("no file entry of big.bin with short extents")
	}
	binary.LittleEndian.PutUint64(img[fe+56:], 1<<30)
	ad := fe + 176 + int(binary.LittleEndian.Uint32(img[fe+168:]))
	binary.LittleEndian.PutUint32(img[ad:], 1<<30|(1<<30-2048))
	var sum byte
	for i, c := range img[fe : fe+16] {
		if i != 4 {
			sum += c
		}
	}
	img[fe+4] = sum
	got := Scan(img, Options{Archives: true}, Limits{MaxFileSize: 8 << 20}, func([]byte, func(string) bool) {})
	if len(got) != 1 || got[0].Name != "Heuristics.Limits.Exceeded.FileSize" || got[0].Path != "big.bin" {
		t.Fatalf("%+v", got)
	}
}

// TestUDFImagesOfEveryRevisionOpen: images mkudffs makes (UDF 1.02,
// 1.50 and 2.01; sectors of 512 bytes as on a disk, of 2,048 as on a
// DVD) open, their file set and root directory read: none is said
// damaged. (Their roots are empty: mkudffs writes no files, and this
// machine's kernel mounts no UDF to write some.)
func TestUDFImagesOfEveryRevisionOpen(t *testing.T) {
	mk := testenv.Need(t, "mkudffs", "udftools")
	for _, rev := range []string{"0x0102", "0x0150", "0x0201"} {
		for _, media := range []string{"hd", "dvd"} {
			img := filepath.Join(t.TempDir(), "u.img")
			if err := os.WriteFile(img, nil, 0o644); err != nil || os.Truncate(img, 8<<20) != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(mk, "--media-type="+media, "--udfrev="+rev, "--label=T", img).CombinedOutput(); err != nil {
				t.Fatalf("mkudffs: %v %s", err, out)
			}
			d, _ := os.ReadFile(img)
			v, ok := udfOpen(d)
			if !ok || !isUDF(d) {
				t.Fatalf("%s %s: not opened", rev, media)
			}
			fsd := v.at(v.fsd.ref, v.fsd.lbn)
			if _, typ, ok := v.data(readLongAD(d[fsd+400:]), 1<<20); !ok || typ != 4 {
				t.Fatalf("%s %s: root read %v, its type %d", rev, media, ok, typ)
			}
			if got := Scan(d, Options{Archives: true}, Limits{}, func([]byte, func(string) bool) {}); len(got) != 0 {
				t.Fatalf("%s %s: %+v", rev, media, got)
			}
		}
	}
}
