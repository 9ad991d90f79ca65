package unpack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
	"strings"
)

// Compiled HTML help (CHM, "ITSF"): a directory of listing chunks
// (PMGL) naming each file by its section and range; section 0 is stored
// in the file, section 1 is one LZX stream (lzx.go) reset every few
// frames, whose control data and uncompressed length are files of the
// directory too. Every file is scanned, the pages and whatever else was
// compiled in; the compressed stream is decoded once, as far as its
// files reach and the limits allow.

var magicITSF = []byte("ITSF")

var errCHM = errors.New("chm: damaged")

const (
	chmContent = "::DataSpace/Storage/MSCompressed/Content"
	chmControl = "::DataSpace/Storage/MSCompressed/ControlData"
	chmReset   = "::DataSpace/Storage/MSCompressed/Transform/{7FC28940-9D31-11D0-9B27-00A0C91E9C7C}/InstanceData/ResetTable"
)

func isCHM(d []byte) bool {
	return len(d) >= 0x58 && bytes.HasPrefix(d, magicITSF) && (le32(d[4:]) == 2 || le32(d[4:]) == 3)
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// chmEntry is a file of the directory.
type chmEntry struct {
	name           string
	section        uint64
	offset, length uint64
}

// chmDirectory reads the header and every listing chunk; it gives the
// files and where section 0 starts.
func chmDirectory(d []byte) ([]chmEntry, uint64, error) {
	dirOff, dirLen := le64(d[0x48:]), le64(d[0x50:])
	content := dirOff + dirLen
	if le32(d[4:]) == 3 {
		if len(d) < 0x60 {
			return nil, 0, errCHM
		}
		content = le64(d[0x58:])
	}
	if dirOff > uint64(len(d)) || dirOff+0x54 > uint64(len(d)) || !bytes.HasPrefix(d[dirOff:], []byte("ITSP")) {
		return nil, 0, errCHM
	}
	dir := d[dirOff:]
	headLen, chunk, chunks := uint64(le32(dir[8:])), uint64(le32(dir[0x10:])), uint64(le32(dir[0x2c:]))
	if chunk < 0x20 || chunk > 1<<20 || chunks > 1<<16 || headLen > uint64(len(dir)) {
		return nil, 0, errCHM
	}
	var out []chmEntry
	for i := uint64(0); i < chunks; i++ {
		at := headLen + i*chunk
		if at+chunk > uint64(len(dir)) {
			return out, content, errCHM
		}
		c := dir[at : at+chunk]
		if !bytes.HasPrefix(c, []byte("PMGL")) {
			continue // an index chunk (PMGI)
		}
		free := uint64(le32(c[4:]))
		if free > chunk-0x14 {
			return out, content, errCHM
		}
		r := &chmReader{b: c[0x14 : chunk-free]}
		for r.off < len(r.b) && r.err == nil && len(out) < 1<<20 {
			n := r.encint()
			name := string(r.take(n))
			e := chmEntry{name: name, section: r.encint(), offset: r.encint(), length: r.encint()}
			if r.err == nil {
				out = append(out, e)
			}
		}
		if r.err != nil {
			return out, content, errCHM
		}
	}
	return out, content, nil
}

// chmReader reads a listing chunk's entries.
type chmReader struct {
	b   []byte
	off int
	err error
}

// encint reads CHM's variable-length integer: 7 bits a byte, most
// significant first, the top bit set on all but the last.
func (r *chmReader) encint() uint64 {
	var v uint64
	for i := 0; i < 9; i++ {
		if r.off >= len(r.b) {
			break
		}
		c := r.b[r.off]
		r.off++
		v = v<<7 | uint64(c&0x7f)
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errCHM
	return 0
}

func (r *chmReader) take(n uint64) []byte {
	if r.err != nil || n > uint64(len(r.b)-r.off) {
		r.err = errCHM
		return nil
	}
	p := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return p
}

// chm opens a compiled help file.
func (s *scan) chm(data []byte, where string, depth int) {
	entries, content, err := chmDirectory(data)
	if err != nil && len(entries) == 0 {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	damaged := err != nil
	named := map[string]chmEntry{}
	var need uint64 // how far into section 1 its files reach
	for _, e := range entries {
		named[e.name] = e
		if e.section == 1 && e.length > 0 {
			need = max(need, e.offset+e.length)
		}
	}
	stored := func(e chmEntry) ([]byte, bool) {
		from := content + e.offset
		if e.section != 0 || from < content || from > uint64(len(data)) || e.length > uint64(len(data))-from {
			return nil, false
		}
		return data[from : from+e.length], true
	}
	var section1 []byte
	var section1Err error
	if need > 0 {
		section1, section1Err = s.chmSection1(named, stored, need)
	}
	listed := 0 // the files described, as libmspack lists them
	for _, e := range entries {
		if s.stop {
			return
		}
		if chmListed(e) {
			s.describe(Member{Container: TypeCHM, ContainerSize: int64(len(data)), Name: e.name, Size: int64(e.length), Pos: listed}, where, depth)
			listed++
		}
		if e.length == 0 || strings.HasSuffix(e.name, "/") || e.name == chmContent {
			continue
		}
		at := join(where, e.name)
		var body []byte
		ok := false
		switch e.section {
		case 0:
			body, ok = stored(e)
		case 1:
			if section1Err == errCabTooBig {
				s.exceeded("Total", at, depth)
				return
			}
			if e.offset <= uint64(len(section1)) {
				body = section1[e.offset:min(uint64(len(section1)), e.offset+e.length)]
				ok = uint64(len(body)) == e.length
			}
		}
		s.memberData(body, int64(len(body)), at, depth)
		if !ok {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: at, Kind: Suspected, Depth: depth})
		}
	}
	if damaged {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
	}
}

// chmListed tells whether e is one of the files ClamAV describes to its
// container signatures: those libmspack lists, in the directory's order
// (counted from zero), not its system files ("::..."), a name shorter
// than two bytes, a directory (empty, its name ending in /), nor a file
// of a section other than 0 and 1. Their sizes unpacked alone: packed
// is 0.
func chmListed(e chmEntry) bool {
	switch {
	case len(e.name) < 2 || e.name[0] == 0 || e.name[1] == 0, strings.HasPrefix(e.name, "::"), e.section > 1:
		return false
	}
	return !(e.offset == 0 && e.length == 0 && strings.HasSuffix(e.name, "/"))
}

// chmSection1 decodes the compressed section as far as need, within the
// limits: its parameters from the control data, its length from the
// reset table.
func (s *scan) chmSection1(named map[string]chmEntry, stored func(chmEntry) ([]byte, bool), need uint64) ([]byte, error) {
	packed, ok1 := stored(named[chmContent])
	control, ok2 := stored(named[chmControl])
	if !ok1 || !ok2 || len(control) < 24 || string(control[4:8]) != "LZXC" {
		return nil, errCHM
	}
	reset, window := uint64(le32(control[12:])), uint64(le32(control[16:]))
	if le32(control[8:]) == 2 { // in frames
		reset, window = reset*lzxFrame, window*lzxFrame
	}
	if window == 0 || window&(window-1) != 0 || reset%lzxFrame != 0 {
		return nil, errCHM
	}
	if table, ok := stored(named[chmReset]); ok && len(table) >= 0x18 {
		need = min(need, le64(table[0x10:]))
	}
	room := uint64(min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked))
	if need > room {
		return nil, errCabTooBig
	}
	return lzxDecode(packed, int(need), uint(bits.TrailingZeros64(window)), int(reset/lzxFrame))
}
