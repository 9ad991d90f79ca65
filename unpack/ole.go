package unpack

import (
	"encoding/binary"
	"path"
	"strings"
	"unicode/utf16"
)

// OLE2 compound files (Word, Excel and PowerPoint 97-2003, MSI, Outlook
// .msg): a file system in a file. A stream lies in sectors chained through
// the FAT, anywhere in the file and in any order, or, under the mini
// stream cutoff, in 64-byte mini sectors chained through the mini FAT
// inside the root's mini stream: read raw, a stream is only found when it
// happens to lie in one run. Every stream is reassembled as a reader does
// and scanned as a member, named by its path in the storages. A chain
// that loops or leaves the file is Broken.Archive, what it gave scanned.

var oleMagic = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}

const (
	oleFree  = 0xffffffff
	oleEnd   = 0xfffffffe
	oleMaxSz = 1 << 20 // sectors of one chain, at most
)

type oleFile struct {
	d         []byte
	shift     uint
	miniShift uint
	cutoff    uint64
	fat       []uint32
	broken    bool
}

// sector is the bytes of sector n (nil: outside the file).
func (o *oleFile) sector(n uint32) []byte {
	size := 1 << o.shift
	off := (int64(n) + 1) << o.shift
	if off < 0 || off+int64(size) > int64(len(o.d)) {
		if off < int64(len(o.d)) {
			return o.d[off:] // the last sector, short
		}
		return nil
	}
	return o.d[off : off+int64(size)]
}

// chain follows a chain from start through table, giving each link to
// visit; a loop, a link out of the table or out of the file marks the
// file broken and ends the chain.
func (o *oleFile) chain(start uint32, table []uint32, visit func(n uint32) bool) {
	seen := map[uint32]bool{}
	for n := start; n != oleEnd && n != oleFree; {
		if seen[n] || len(seen) >= oleMaxSz || int(n) >= len(table) {
			if n != oleEnd {
				o.broken = true
			}
			return
		}
		seen[n] = true
		if !visit(n) {
			return
		}
		n = table[n]
	}
}

// inRun is the stream of size bytes from start when its sectors lie in
// one run, in order (as most writers leave a large stream): a slice of
// the file, no copy.
func (o *oleFile) inRun(start uint32, size uint64) ([]byte, bool) {
	n, prev := 0, start
	run := true
	o.chain(start, o.fat, func(s uint32) bool {
		if n > 0 && s != prev+1 {
			run = false
			return false
		}
		prev, n = s, n+1
		return uint64(n)<<o.shift < size
	})
	off := (int64(start) + 1) << o.shift
	if !run || o.broken || uint64(n)<<o.shift < size || off+int64(size) > int64(len(o.d)) {
		return nil, false
	}
	return o.d[off : off+int64(size)], true
}

// read is the chain from start in the FAT's sectors, up to size bytes.
func (o *oleFile) read(start uint32, size uint64) []byte {
	var out []byte
	o.chain(start, o.fat, func(n uint32) bool {
		s := o.sector(n)
		if s == nil {
			o.broken = true
			return false
		}
		out = append(out, s...)
		return uint64(len(out)) < size
	})
	if uint64(len(out)) > size {
		out = out[:size]
	}
	return out
}

func (s *scan) ole(data []byte, where string, depth int) {
	if len(data) < 512 {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	h := data[:512]
	o := &oleFile{d: data, shift: uint(binary.LittleEndian.Uint16(h[30:])), miniShift: uint(binary.LittleEndian.Uint16(h[32:])),
		cutoff: uint64(binary.LittleEndian.Uint32(h[56:]))}
	if o.shift != 9 && o.shift != 12 || o.miniShift != 6 {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	// The FAT's sectors: 109 in the header, the rest in the DIFAT chain.
	var fatSectors []uint32
	for i := 0; i < 109; i++ {
		if n := binary.LittleEndian.Uint32(h[76+4*i:]); n != oleFree {
			fatSectors = append(fatSectors, n)
		}
	}
	per := 1<<o.shift/4 - 1
	seen := map[uint32]bool{}
	for n := binary.LittleEndian.Uint32(h[68:]); n != oleEnd && n != oleFree && len(seen) < oleMaxSz; {
		sec := o.sector(n)
		if seen[n] || len(sec) < 1<<o.shift {
			o.broken = true
			break
		}
		seen[n] = true
		for i := 0; i < per; i++ {
			if v := binary.LittleEndian.Uint32(sec[4*i:]); v != oleFree {
				fatSectors = append(fatSectors, v)
			}
		}
		n = binary.LittleEndian.Uint32(sec[4*per:])
	}
	for _, n := range fatSectors {
		sec := o.sector(n)
		if len(sec) < 1<<o.shift || len(o.fat) >= oleMaxSz {
			o.broken = true
			break
		}
		for i := 0; i < 1<<o.shift/4; i++ {
			o.fat = append(o.fat, binary.LittleEndian.Uint32(sec[4*i:]))
		}
	}
	dir := o.read(binary.LittleEndian.Uint32(h[48:]), uint64(len(data)))
	miniFAT := bytesToUint32s(o.read(binary.LittleEndian.Uint32(h[60:]), uint64(len(data))))
	type entry struct {
		name               string
		typ                byte
		left, right, child uint32
		start              uint32
		size               uint64
	}
	var entries []entry
	for off := 0; off+128 <= len(dir); off += 128 {
		e := dir[off : off+128]
		nameLen := int(binary.LittleEndian.Uint16(e[64:]))
		if nameLen > 64 {
			nameLen = 64
		}
		units := make([]uint16, 0, nameLen/2)
		for i := 0; i+1 < nameLen; i += 2 {
			if u := binary.LittleEndian.Uint16(e[i:]); u != 0 {
				units = append(units, u)
			}
		}
		name := strings.Map(func(r rune) rune {
			if r < 0x20 || r == '/' {
				return -1 // "\x05SummaryInformation" and the like
			}
			return r
		}, string(utf16.Decode(units)))
		size := binary.LittleEndian.Uint64(e[120:])
		if binary.LittleEndian.Uint16(h[26:]) == 3 {
			size &= 0xffffffff // version 3 files leave the high half undefined
		}
		entries = append(entries, entry{name: name, typ: e[66], left: binary.LittleEndian.Uint32(e[68:]), right: binary.LittleEndian.Uint32(e[72:]),
			child: binary.LittleEndian.Uint32(e[76:]), start: binary.LittleEndian.Uint32(e[116:]), size: size})
	}
	if len(entries) == 0 || entries[0].typ != 5 {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	mini := o.read(entries[0].start, entries[0].size) // the root's mini stream
	readMini := func(start uint32, size uint64) []byte {
		var out []byte
		msize := 1 << o.miniShift
		o.chain(start, miniFAT, func(n uint32) bool {
			off := int(n) * msize
			if off+msize > len(mini) {
				o.broken = true
				return false
			}
			out = append(out, mini[off:off+msize]...)
			return uint64(len(out)) < size
		})
		if uint64(len(out)) > size {
			out = out[:size]
		}
		return out
	}
	room := s.inPlaceRoom(len(data))
	// The storages' trees, from the root: each stream with its path
	// (walked with a stack of our own: a directory may be built as deep
	// as the file is long).
	type at struct {
		n    uint32
		path string
	}
	visited := map[uint32]bool{}
	streams := map[string]entry{} // by path, for the VBA project's dir
	stack := []at{{entries[0].child, where}}
	for len(stack) > 0 && !s.stop {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if top.n == oleFree {
			continue
		}
		if int(top.n) >= len(entries) || visited[top.n] {
			o.broken = true
			continue
		}
		visited[top.n] = true
		e := entries[top.n]
		stack = append(stack, at{e.right, top.path}, at{e.left, top.path})
		switch e.typ {
		case 1: // a storage
			stack = append(stack, at{e.child, join(top.path, e.name)})
		case 2: // a stream
			if len(streams) < maxParts {
				streams[join(top.path, e.name)] = e
			}
			if e.size >= o.cutoff {
				if run, ok := o.inRun(e.start, e.size); ok {
					s.packedIn(e.name, run, join(top.path, e.name), depth)
					s.inPlace(run, room, join(top.path, e.name), depth) // stored whole: no copy
					continue
				}
			}
			// Gathered from its sectors: no more than a member may hold
			// (one more byte says it is over).
			limit := min(e.size, uint64(s.lim.MaxFileSize)+1)
			var data []byte
			if e.size < o.cutoff {
				data = readMini(e.start, limit)
			} else {
				data = o.read(e.start, limit)
			}
			if uint64(len(data)) < limit {
				o.broken = true
			}
			s.packedIn(e.name, data, join(top.path, e.name), depth)
			s.memberData(data, -1, join(top.path, e.name), depth)
		}
	}
	// The VBA projects: each module's source, decompressed.
	gather := func(e entry) []byte {
		limit := min(e.size, uint64(s.lim.MaxFileSize)+1)
		if e.size < o.cutoff {
			return readMini(e.start, limit)
		}
		return o.read(e.start, limit)
	}
	for p, e := range streams {
		if s.stop || path.Base(p) != "dir" {
			continue
		}
		storage := path.Dir(p)
		if storage == "." {
			storage = ""
		}
		dir, err := ovbaDecompress(gather(e), int(s.lim.MaxFileSize))
		if err != nil && len(dir) == 0 {
			continue // no VBA project's dir: some other stream of that name
		}
		for name, off := range vbaModules(dir) {
			m, ok := streams[join(storage, name)]
			if !ok {
				continue
			}
			data := gather(m)
			if off < 0 || off >= len(data) {
				o.broken = true
				continue
			}
			src, _ := ovbaDecompress(data[off:], int(s.lim.MaxFileSize))
			s.macro = true
			s.memberData(src, int64(len(data)-off), join(storage, name)+"/source", depth)
			s.macro = false
		}
	}
	if o.broken {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
	}
}

func bytesToUint32s(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}

// packedIn walks the file a stream of this name packs, before the
// stream, so that it is found under its own name: an object's
// "\x01Ole10Native" (its control character dropped from the name).
func (s *scan) packedIn(name string, stream []byte, where string, depth int) {
	if strings.EqualFold(name, "Ole10Native") {
		s.ole10Native(stream, where, depth)
	}
}
