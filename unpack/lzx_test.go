package unpack

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// words is text that compresses as pages do, n bytes or a little more.
func words(seed int64, n int) []byte {
	r := rand.New(rand.NewSource(seed))
	var b bytes.Buffer
	b.WriteString("<html><body>")
	for b.Len() < n {
		fmt.Fprintf(&b, "word%d ", r.Intn(500))
	}
	return b.Bytes()
}

// chmOf compiles files into a CHM with chmcmd (Free Pascal's help
// compiler, which compresses with LZX).
func chmOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	chmcmd := testenv.Need(t, "chmcmd", "fp-utils")
	dir := t.TempDir()
	project := "[OPTIONS]\nCompiled file=a.chm\nTitle=t\n\n[FILES]\n"
	for n, d := range files {
		os.WriteFile(filepath.Join(dir, n), d, 0o644)
		project += n + "\n"
	}
	os.WriteFile(filepath.Join(dir, "a.hhp"), []byte(project), 0o644)
	c := exec.Command(chmcmd, "a.hhp")
	c.Dir = dir
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("chmcmd: %v %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "a.chm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// extracted runs an extractor (extract_chmLib, cabextract) on an
// archive and gives the files it wrote, by name.
func extracted(t *testing.T, archive []byte, cmd ...string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in"), archive, 0o644)
	args := make([]string, len(cmd))
	for i, a := range cmd {
		args[i] = strings.NewReplacer("IN", filepath.Join(dir, "in"), "OUT", filepath.Join(dir, "out")).Replace(a)
	}
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v %s", cmd, err, out)
	}
	got := map[string][]byte{}
	filepath.Walk(filepath.Join(dir, "out"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			got[strings.TrimPrefix(p, filepath.Join(dir, "out")+"/")], _ = os.ReadFile(p)
		}
		return nil
	})
	return got
}

// walked gives what the walk opens in data, by path.
func walked(data []byte) map[string][]byte {
	got := map[string][]byte{}
	Walk(data, Options{Archives: true}, Limits{}, func(b []byte, where string) bool {
		if where != "" {
			got[where] = bytes.Clone(b)
		}
		return false
	})
	return got
}

// eicarFound scans data for EICAR's bytes, in whatever it opens.
func eicarFound(data []byte) []Detection {
	return Scan(data, Options{Archives: true}, Limits{}, func(b []byte, found func(string) bool) {
		if bytes.Contains(b, []byte(eicar.String)) {
			found("EICAR")
		}
	})
}

// TestCHMReadAsLibchmReadsIt: a CHM made by chmcmd (its pages LZX
// compressed, over several frames and reset intervals) is opened file for
// file as libchm's extract_chmLib extracts it; EICAR compiled in is found,
// which no scan saw before; the same help without it is clean.
func TestCHMReadAsLibchmReadsIt(t *testing.T) {
	extract := testenv.Need(t, "extract_chmLib", "libchm-bin")
	files := map[string][]byte{"page.html": words(1, 300<<10), "e.com": []byte(eicar.String)}
	chm := chmOf(t, files)
	if bytes.Contains(chm, []byte(eicar.String)) {
		t.Fatal("EICAR is stored, not compressed")
	}
	want := extracted(t, chm, extract, "IN", "OUT")
	got := walked(chm)
	for name, w := range want {
		if len(w) == 0 {
			continue // an empty file: nothing to scan
		}
		if g, ok := got[name]; !ok || !bytes.Equal(g, w) {
			t.Errorf("%s: %d bytes walked (found %v), %d extracted", name, len(g), ok, len(w))
		}
	}
	if !bytes.Equal(got["page.html"], files["page.html"]) {
		t.Error("page.html differs from what was compiled")
	}
	if d := eicarFound(chm); len(d) != 1 || d[0].Path != "e.com" {
		t.Errorf("EICAR in a CHM: %+v", d)
	}
	clean := chmOf(t, map[string][]byte{"page.html": words(2, 100<<10)})
	if d := eicarFound(clean); len(d) != 0 {
		t.Errorf("a clean CHM: %+v", d)
	}
	cut := chm[:len(chm)*2/3]
	if d := eicarFound(cut); len(d) == 0 {
		t.Error("a CHM cut short is clean")
	}
}

// lzxCabOf lays out a cabinet of one LZX folder holding a CHM's
// compressed section (which must be one reset interval: chmcmd resets
// every 64 KiB) split into its frames, one CFDATA block each, by the
// CHM's reset table; its files are the CHM's compressed files. (chmcmd
// codes the last frame whole, past the section's end: so does the
// cabinet.)
func lzxCabOf(t *testing.T, chm []byte) []byte {
	t.Helper()
	entries, content, err := chmDirectory(chm)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]chmEntry{}
	for _, e := range entries {
		byName[e.name] = e
	}
	at := func(name string) []byte {
		e := byName[name]
		return chm[content+e.offset : content+e.offset+e.length]
	}
	stream, table := at(chmContent), at(chmReset)
	length := int(binary.LittleEndian.Uint64(table[0x10:]))
	if length > 2*lzxFrame {
		t.Fatalf("section 1 is %d bytes, more than one reset interval", length)
	}
	var frames []int // where each frame starts, then the end (the table may list it too)
	for i := 0; i < int(binary.LittleEndian.Uint32(table[4:])); i++ {
		if at := int(binary.LittleEndian.Uint64(table[0x28+8*i:])); at < len(stream) {
			frames = append(frames, at)
		}
	}
	frames = append(frames, len(stream))
	var files []chmEntry
	for _, e := range entries {
		if e.section == 1 && e.length > 0 && !strings.HasPrefix(e.name, "::") && !strings.HasPrefix(e.name, "/#") && !strings.HasPrefix(e.name, "/$") {
			e.name = strings.TrimPrefix(e.name, "/")
			files = append(files, e)
		}
	}
	var fileRecs bytes.Buffer
	for _, f := range files {
		binary.Write(&fileRecs, binary.LittleEndian, []uint32{uint32(f.length), uint32(f.offset)})
		binary.Write(&fileRecs, binary.LittleEndian, []uint16{0, 0x5a21, 0, 0x20})
		fileRecs.WriteString(f.name + "\x00")
	}
	var blocks bytes.Buffer
	for i := 0; i+1 < len(frames); i++ {
		out := lzxFrame // chmcmd codes every frame whole, the last one too
		binary.Write(&blocks, binary.LittleEndian, uint32(0))
		binary.Write(&blocks, binary.LittleEndian, []uint16{uint16(frames[i+1] - frames[i]), uint16(out)})
		blocks.Write(stream[frames[i]:frames[i+1]])
	}
	filesAt := 36 + 8
	dataAt := filesAt + fileRecs.Len()
	var b bytes.Buffer
	b.WriteString("MSCF")
	binary.Write(&b, binary.LittleEndian, []uint32{0, uint32(dataAt + blocks.Len()), 0, uint32(filesAt), 0})
	b.Write([]byte{3, 1})
	binary.Write(&b, binary.LittleEndian, []uint16{1, uint16(len(files)), 0, 0, 0})
	binary.Write(&b, binary.LittleEndian, uint32(dataAt))
	binary.Write(&b, binary.LittleEndian, []uint16{uint16(len(frames) - 1), 3 | 16<<8})
	b.Write(fileRecs.Bytes())
	b.Write(blocks.Bytes())
	return b.Bytes()
}

// TestLZXCabinets: a cabinet's LZX folder, over two frames, is opened as
// cabextract (libmspack) extracts it, also behind a stub; EICAR in it is
// found; without it, clean. No Debian tool writes LZX cabinets: the
// folder is a stream chmcmd compressed, and cabextract checks the layout.
func TestLZXCabinets(t *testing.T) {
	cabextract := testenv.Need(t, "cabextract", "cabextract")
	for name, content := range map[string][]byte{"with EICAR": []byte(eicar.String), "clean": []byte("a harmless program's bytes")} {
		cab := lzxCabOf(t, chmOf(t, map[string][]byte{"page.html": words(3, 50<<10), "e.com": content}))
		want := extracted(t, cab, cabextract, "-q", "-d", "OUT", "IN")
		got := walked(cab)
		if len(want) != 2 {
			t.Fatalf("%s: cabextract gave %d files", name, len(want))
		}
		for f, w := range want {
			if !bytes.Equal(got[f], w) {
				t.Errorf("%s: %s: %d bytes walked, %d extracted", name, f, len(got[f]), len(w))
			}
		}
		for form, data := range map[string][]byte{"at 0": cab, "behind a stub": append(bytes.Repeat([]byte("MZ stub "), 4000), cab...)} {
			d := eicarFound(data)
			if name == "clean" && len(d) != 0 || name != "clean" && (len(d) != 1 || d[0].Path != "e.com" && !strings.HasSuffix(d[0].Path, "/e.com")) {
				t.Errorf("%s, %s: %+v", name, form, d)
			}
		}
	}
}

// FuzzLZX feeds the LZX decoder, and the CHM reader, data as it comes.
func FuzzLZX(f *testing.F) {
	f.Add([]byte{0, 0x30, 0, 0, 0, 0, 0, 0}, uint8(16), uint8(2))
	f.Fuzz(func(t *testing.T, d []byte, window, reset uint8) {
		lzxDecode(d, 1<<17, uint(window%8+15), int(reset%4))
		Scan(append(append([]byte{}, magicITSF...), d...), Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
	})
}

// lzxStoredStream codes data as one stored LZX block, the E8 translation's
// file size given (0: none), as an encoder would: the header bits, the
// block's type and length, padding to a 16-bit word, the three repeated
// offsets, the bytes, a pad byte when their count is odd.
func lzxStoredStream(data []byte, e8 uint32) []byte {
	var out []byte
	var acc uint32
	var n uint
	put := func(v uint32, bits uint) {
		for i := int(bits) - 1; i >= 0; i-- {
			acc = acc<<1 | v>>uint(i)&1
			if n++; n == 16 {
				out = binary.LittleEndian.AppendUint16(out, uint16(acc))
				acc, n = 0, 0
			}
		}
	}
	if e8 != 0 {
		put(1, 1)
		put(e8>>16, 16)
		put(e8&0xffff, 16)
	} else {
		put(0, 1)
	}
	put(lzxStored, 3)
	put(uint32(len(data))>>8, 16)
	put(uint32(len(data))&0xff, 8)
	if n == 0 {
		put(0, 16)
	}
	for n != 0 {
		put(0, 1)
	}
	for range 3 {
		out = binary.LittleEndian.AppendUint32(out, 1)
	}
	out = append(out, data...)
	if len(data)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

// storedLZXCab lays out a cabinet of one LZX folder holding data as a
// stored block, split into CFDATA blocks of a frame each.
func storedLZXCab(data []byte, e8 uint32) []byte {
	stream := lzxStoredStream(data, e8)
	head := len(stream) - len(data) - len(data)%2
	var blocks bytes.Buffer
	nblocks := 0
	for at, in := 0, 0; in < len(data); nblocks++ {
		out := min(lzxFrame, len(data)-in)
		end := at + out
		if at == 0 {
			end += head
		}
		if in+out == len(data) {
			end = len(stream)
		}
		binary.Write(&blocks, binary.LittleEndian, uint32(0))
		binary.Write(&blocks, binary.LittleEndian, []uint16{uint16(end - at), uint16(out)})
		blocks.Write(stream[at:end])
		at, in = end, in+out
	}
	name := "a.exe\x00"
	filesAt, dataAt := 44, 44+16+len(name)
	var b bytes.Buffer
	b.WriteString("MSCF")
	binary.Write(&b, binary.LittleEndian, []uint32{0, uint32(dataAt + blocks.Len()), 0, uint32(filesAt), 0})
	b.Write([]byte{3, 1})
	binary.Write(&b, binary.LittleEndian, []uint16{1, 1, 0, 0, 0})
	binary.Write(&b, binary.LittleEndian, uint32(dataAt))
	binary.Write(&b, binary.LittleEndian, []uint16{uint16(nblocks), 3 | 16<<8})
	binary.Write(&b, binary.LittleEndian, []uint32{uint32(len(data)), 0})
	binary.Write(&b, binary.LittleEndian, []uint16{0, 0x5a21, 0, 0x20})
	b.WriteString(name)
	b.Write(blocks.Bytes())
	return b.Bytes()
}

// TestLZXStoredBlocksAndE8: a stored LZX block over two frames, odd in
// length, with x86 CALLs (0xE8) whose targets the coder made absolute,
// within a frame's reach of the translation, at its edges and outside
// it: the bytes come out as cabextract (libmspack) gives them, the calls
// relative again, EICAR among them found.
func TestLZXStoredBlocksAndE8(t *testing.T) {
	cabextract := testenv.Need(t, "cabextract", "cabextract")
	data := bytes.Repeat([]byte{0x90}, 40001)
	for _, at := range []int{0, 100, 32000, 32757, 32758, 32763, 32768, 39990, 39991} {
		data[at] = 0xe8
		binary.LittleEndian.PutUint32(data[at+1:], uint32(at*3+7))
	}
	binary.LittleEndian.PutUint32(data[201:], 0xfffffff0) // a negative target
	data[200] = 0xe8
	copy(data[20000:], eicar.String)
	cab := storedLZXCab(data, 12000000)
	want := extracted(t, cab, cabextract, "-q", "-d", "OUT", "IN")["a.exe"]
	if len(want) != len(data) || bytes.Equal(want, data) {
		t.Fatalf("cabextract gave %d bytes, untranslated: %v", len(want), bytes.Equal(want, data))
	}
	if got := walked(cab)["a.exe"]; !bytes.Equal(got, want) {
		t.Errorf("%d bytes walked differ from cabextract's %d", len(got), len(want))
	}
	if d := eicarFound(cab); len(d) != 1 || d[0].Path != "a.exe" {
		t.Errorf("EICAR in a stored LZX block: %+v", d)
	}
	plain := storedLZXCab(data, 0)
	if got := walked(plain)["a.exe"]; !bytes.Equal(got, data) {
		t.Error("without the translation, the bytes came out changed")
	}
}
