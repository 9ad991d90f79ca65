package unpack

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"strings"
)

// ARJ: a main header, then members, each a header (0x60 0xEA, its size,
// the header itself, its CRC-32, extended headers) and its packed data;
// a header of size 0 ends the archive. Methods opened: 0 (stored), 1 to
// 3 (lzh.go, with ARJ's window) and 4 (arjDecodeFast). A garbled
// (password) member is Heuristics.Encrypted.ARJ; a member continued in
// another volume is scanned as far as it goes and said damaged. The
// member's CRC-32 is checked against what came out.

const (
	arjMaxHeader = 2600 // as ARJ itself limits a basic header
	arjGarbled   = 0x01
	arjVolume    = 0x04 // continued in the next volume
	arjExtFile   = 0x08 // continued from the previous one
	arjDirectory = 3
	arjLabel     = 4
)

// arjMethods are the methods opened (nil: stored).
var arjMethods = map[byte]lzDecoder{
	0: nil, 1: lzhWith(arjParams), 2: lzhWith(arjParams), 3: lzhWith(arjParams), 4: arjDecodeFast,
}

// arjHeader reads the header at d: its basic header and the length of
// the whole (CRC and extended headers included); size 0 is the end.
func arjHeader(d []byte) (basic []byte, length int, ok bool) {
	if len(d) < 4 || d[0] != 0x60 || d[1] != 0xea {
		return nil, 0, false
	}
	n := int(binary.LittleEndian.Uint16(d[2:4]))
	if n == 0 {
		return nil, 4, true
	}
	if n < 30 || n > arjMaxHeader || len(d) < 4+n+4 {
		return nil, 0, false
	}
	basic = d[4 : 4+n]
	if crc32.ChecksumIEEE(basic) != binary.LittleEndian.Uint32(d[4+n:]) {
		return nil, 0, false
	}
	at := 4 + n + 4
	for ext := 0; ; ext++ {
		if at+2 > len(d) || ext > 16 {
			return nil, 0, false
		}
		size := int(binary.LittleEndian.Uint16(d[at:]))
		at += 2
		if size == 0 {
			return basic, at, true
		}
		at += size + 4
	}
}

// isARJ tells whether d starts with an ARJ main header (its CRC right).
func isARJ(d []byte) bool {
	b, _, ok := arjHeader(d)
	return ok && b != nil && b[6] == 2
}

func arjBehind(d []byte, i int) bool { return isARJ(d[i:]) }

// arj opens an ARJ archive.
func (s *scan) arj(data []byte, where string, depth int) {
	_, off, _ := arjHeader(data)
	file := 0
	for off < len(data) && !s.stop {
		b, n, ok := arjHeader(data[off:])
		if !ok {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
			return
		}
		off += n
		if b == nil {
			return
		}
		first := int(b[0])
		if first < 30 || first > len(b) {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
			return
		}
		flags, method, kind := b[4], b[5], b[6]
		packed := int64(binary.LittleEndian.Uint32(b[12:16]))
		size := int64(binary.LittleEndian.Uint32(b[16:20]))
		crc := binary.LittleEndian.Uint32(b[20:24])
		name := b[first:]
		if i := strings.IndexByte(string(name), 0); i >= 0 {
			name = name[:i]
		}
		// Every entry, from one, its name as stored.
		file++
		s.describe(Member{Container: TypeARJ, ContainerSize: int64(len(data)), Name: string(name),
			Packed: packed, Size: size, Encrypted: flags&arjGarbled != 0, Pos: file}, where, depth)
		at := join(where, strings.ReplaceAll(string(name), `\`, "/"))
		body, short := data[off:], false
		if int64(len(body)) < packed {
			short = true
		} else {
			body = body[:packed]
		}
		off += len(body)
		if kind == arjDirectory || kind == arjLabel {
			continue
		}
		decode, known := arjMethods[method]
		switch {
		case flags&arjGarbled != 0:
			s.add(Detection{Name: "Heuristics.Encrypted.ARJ", Path: at, Kind: Suspected, Depth: depth})
		case !known:
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: at, Kind: Suspected, Depth: depth})
		default:
			s.lzMember(body, decode, size, short || flags&(arjVolume|arjExtFile) != 0, at, depth,
				func(out []byte) bool { return crc32.ChecksumIEEE(out) == crc })
			continue
		}
		if s.visit != nil && s.visit(nil, at) { // its name, for the name rules
			s.stop = true
		}
	}
}

// arjDecodeFast decodes ARJ's method 4: a literal or a match, each
// length and position in a code of unary-prefixed widths.
func arjDecodeFast(src []byte, size int) ([]byte, error) {
	r := &msbBits{b: src}
	out := make([]byte, 0, min(size, 1<<20))
	// varWidth reads a value whose width grows by one for each 1 bit
	// before a 0 (from start to stop bits), offset by what the shorter
	// widths cover.
	varWidth := func(start, stop uint) int {
		plus, pwr, width := 0, 1<<start, start
		for ; width < stop; width++ {
			if r.bits(1) == 0 {
				break
			}
			plus += pwr
			pwr <<= 1
		}
		v := 0
		if width != 0 {
			v = r.bits(width)
		}
		return v + plus
	}
	for len(out) < size {
		n := varWidth(0, 7)
		if r.over {
			return out, io.ErrUnexpectedEOF
		}
		if n == 0 {
			b := r.bits(8)
			if r.over {
				return out, io.ErrUnexpectedEOF
			}
			out = append(out, byte(b))
			continue
		}
		length := n - 1 + lzhThreshold
		dist := varWidth(9, 13) + 1
		if r.over {
			return out, io.ErrUnexpectedEOF
		}
		var err error
		if out, err = lzCopy(out, dist, length, size, arjParams.window, 0); err != nil {
			return out, err
		}
	}
	return out, nil
}
