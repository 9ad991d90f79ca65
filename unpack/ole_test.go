package unpack

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// oleStream is one stream of oleOf: its name and its bytes.
type oleStream struct {
	name string
	data []byte
}

// oleOf lays out a version 3 compound file (512-byte sectors) holding
// streams in the root storage, every chain backwards (its last sector
// first in the file), as a document saved many times ends up: a stream's
// bytes never lie in one run, in the FAT's sectors as in the mini
// stream's. (No tool in Debian writes a compound file so; python3-olefile
// reads what this writes, which the test checks.)
func oleOf(backwards bool, streams ...oleStream) []byte {
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
		if len(st.data) >= cutoff {
			continue
		}
		n := (len(st.data) + mini - 1) / mini
		base := len(miniSectors)
		for i := 0; i < n; i++ {
			miniSectors = append(miniSectors, nil)
			miniFAT = append(miniFAT, 0)
		}
		for i := 0; i < n; i++ {
			piece := make([]byte, mini)
			copy(piece, st.data[i*mini:min((i+1)*mini, len(st.data))])
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
		if len(st.data) >= cutoff {
			starts[k] = alloc(st.data, sec)
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
		dir = append(dir, entry(st.name, 2, right, oleFree, starts[k], len(st.data))...)
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
	copy(h, oleMagic)
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

func u32s(v []uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// oleStreams reads a compound file with python3-olefile: each stream's
// path and the SHA-256 of its bytes.
func oleStreams(t *testing.T, d []byte) []string {
	t.Helper()
	py := "/usr/bin/python3" // the system's, where python3-olefile installs
	if exec.Command(py, "-c", "import olefile").Run() != nil {
		testenv.Need(t, "python3-olefile module (python3 -c 'import olefile')", "python3-olefile")
	}
	f := filepath.Join(t.TempDir(), "a.doc")
	os.WriteFile(f, d, 0o644)
	out, err := exec.Command(py, "-c", `import sys, olefile, hashlib
o = olefile.OleFileIO(sys.argv[1])
for s in o.listdir():
    print("/".join(s), hashlib.sha256(o.openstream(s).read()).hexdigest())`, f).CombinedOutput()
	if err != nil {
		t.Fatalf("olefile: %v\n%s", err, out)
	}
	lines := strings.Fields(strings.ReplaceAll(string(out), "\n", " "))
	var got []string
	for i := 0; i+1 < len(lines); i += 2 {
		got = append(got, lines[i]+" "+lines[i+1])
	}
	sort.Strings(got)
	return got
}

// TestOLEStreamsReassembled: a compound file whose streams lie backwards
// in their sectors and mini sectors (EICAR across a sector's end in a
// large stream, across a mini sector's end in a small one): python3-olefile
// reads each stream whole, and so does the walk, which finds EICAR in
// each at its path; the raw bytes hold it nowhere. The clean twin is
// clean.
func TestOLEStreamsReassembled(t *testing.T) {
	big := append(append(bytes.Repeat([]byte("w"), 490), eicar.String...), bytes.Repeat([]byte("x"), 5000)...)
	small := append(bytes.Repeat([]byte("s"), 30), eicar.String...)
	doc := oleOf(true, oleStream{"WordDocument", big}, oleStream{"\x05Macros", small})
	if bytes.Contains(doc, []byte(eicar.String)) {
		t.Fatal("EICAR stands in the clear: the test proves nothing")
	}
	want := []string{fmt.Sprintf("WordDocument %x", sha256.Sum256(big)), fmt.Sprintf("\x05Macros %x", sha256.Sum256(small))}
	sort.Strings(want)
	if got := oleStreams(t, doc); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("olefile reads %q, want %q", got, want)
	}
	var walked []string
	Walk(doc, Options{Archives: true}, Limits{}, func(b []byte, where string) bool {
		if where != "" {
			walked = append(walked, fmt.Sprintf("%s %x", where, sha256.Sum256(b)))
		}
		return false
	})
	sort.Strings(walked)
	wantWalk := []string{fmt.Sprintf("Macros %x", sha256.Sum256(small)), fmt.Sprintf("WordDocument %x", sha256.Sum256(big))}
	sort.Strings(wantWalk)
	if strings.Join(walked, ",") != strings.Join(wantWalk, ",") {
		t.Errorf("walked %q, want %q", walked, wantWalk)
	}
	match := func(b []byte, found func(string) bool) {
		if bytes.Contains(b, []byte(eicar.String)) {
			found("Eicar")
		}
	}
	d := Scan(doc, Options{Archives: true}, Limits{}, match)
	if len(d) != 2 {
		t.Errorf("found %+v", d)
	}
	// In one run (most writers' large streams): read in place, found.
	inOrder := oleOf(false, oleStream{"WordDocument", big})
	if d := Scan(inOrder, Options{Archives: true}, Limits{}, match); len(d) != 1 || d[0].Path != "WordDocument" {
		t.Errorf("in order: %+v", d)
	}
	clean := oleOf(true, oleStream{"WordDocument", bytes.Repeat([]byte("text "), 2000)}, oleStream{"Small", []byte("a little")})
	if d := Scan(clean, Options{Archives: true}, Limits{}, match); len(d) != 0 {
		t.Errorf("clean: %+v", d)
	}
}

// FuzzOLE feeds the reader compound files as they come.
func FuzzOLE(f *testing.F) {
	f.Add(oleOf(true, oleStream{"WordDocument", bytes.Repeat([]byte("w"), 5000)}, oleStream{"s", []byte("small")}))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(append(append([]byte{}, oleMagic...), d...), Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
	})
}
