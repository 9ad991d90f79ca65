package unpack

import (
	"encoding/binary"
	"strings"
)

// LHA (.lzh, .lha, and LHA self-extractors): members one after another,
// each a header of level 0, 1, 2 or 3 and its packed data, the archive
// ended by a zero byte. Methods opened: -lh0- and -lz4- (stored), -lh4-
// to -lh7- (lzh.go); directories (-lhd-) are passed over. Any other
// method (-lh1- to -lh3-, -lzs-, -lz5-, PMarc's) is
// Heuristics.Unsupported.LHA: never clean. The member's CRC-16 is checked
// against what came out.

// lzDecoder decodes a member's packed data into at most size bytes.
type lzDecoder func(src []byte, size int) ([]byte, error)

func lzhWith(p lzhParams) lzDecoder {
	return func(src []byte, size int) ([]byte, error) { return lzhDecode(src, size, p) }
}

// lhaMethods are the methods opened, by their five-byte name (nil:
// stored).
var lhaMethods = map[string]lzDecoder{
	"-lh0-": nil, "-lz4-": nil,
	"-lh4-": lzhWith(lh4Params), "-lh5-": lzhWith(lh5Params), "-lh6-": lzhWith(lh6Params), "-lh7-": lzhWith(lh7Params),
}

// isLHA tells whether d starts with an LHA member's header: a method
// name "-lh?-" or "-lz?-" at 2 (a digit or a letter in it) and a header
// level of 0 to 3 at 20, a control byte no text holds there.
func isLHA(d []byte) bool {
	return len(d) >= 24 && d[2] == '-' && d[3] == 'l' && (d[4] == 'h' || d[4] == 'z') &&
		(d[5] >= '0' && d[5] <= '9' || d[5] >= 'a' && d[5] <= 'z') && d[6] == '-' && d[20] <= 3
}

// lhaBehind: a whole LHA header around the "-l" found at i (a
// self-extractor's stub before it).
func lhaBehind(d []byte, i int) bool {
	if i < 2 || !isLHA(d[i-2:]) {
		return false
	}
	_, err := readLHAHeader(d[i-2:])
	return err == nil
}

// lhaHeader is what a member's header says.
type lhaHeader struct {
	method       string
	packed, size int64
	crc          uint16
	name         string
	length       int // of the header, extended headers included
}

func readLHAHeader(d []byte) (lhaHeader, error) {
	var h lhaHeader
	if !isLHA(d) {
		return h, errCabFormat
	}
	le16 := func(b []byte) int { return int(binary.LittleEndian.Uint16(b)) }
	le32 := func(b []byte) int64 { return int64(binary.LittleEndian.Uint32(b)) }
	h.method = string(d[2:7])
	h.packed, h.size = le32(d[7:11]), le32(d[11:15])
	level := d[20]
	var ext, sizeLen int // where the first extended header's size is, and its width
	switch level {
	case 0, 1:
		h.length = int(d[0]) + 2
		n := int(d[21])
		if 24+n > h.length || h.length > len(d) {
			return h, errCabFormat
		}
		h.name = string(d[22 : 22+n])
		h.crc = uint16(le16(d[22+n:]))
		if level == 0 {
			return h, nil
		}
		ext, sizeLen = h.length-2, 2
	case 2:
		h.length = le16(d[0:2])
		h.crc = uint16(le16(d[21:23]))
		ext, sizeLen = 24, 2
	case 3:
		if le16(d[0:2]) != 4 || len(d) < 32 {
			return h, errCabFormat
		}
		h.length = int(le32(d[24:28]))
		h.crc = uint16(le16(d[21:23]))
		ext, sizeLen = 28, 4
	}
	if h.length < ext+sizeLen || h.length > len(d) {
		return h, errCabFormat
	}
	// Extended headers: a size (of the whole header), a type, its data,
	// the next one's size at its end. Level 1 counts them in the packed
	// size and places them after the base header.
	var dir string
	at := ext
	next := func(at int) int {
		if sizeLen == 2 {
			return le16(d[at:])
		}
		return int(le32(d[at:]))
	}
	size := next(at)
	at += sizeLen
	for n := 0; size != 0; n++ {
		if n > 64 || size < 1+sizeLen || at+size > len(d) {
			return h, errCabFormat
		}
		e := d[at : at+size]
		switch body := e[1 : size-sizeLen]; e[0] {
		case 1:
			h.name = string(body)
		case 2:
			dir = strings.ReplaceAll(string(body), "\xff", "/")
		}
		at += size
		if level == 1 {
			h.packed -= int64(size)
		}
		size = next(at - sizeLen)
	}
	if level == 1 {
		h.length = at
	}
	if h.packed < 0 || h.length > len(d) || at > h.length {
		return h, errCabFormat
	}
	if dir != "" {
		h.name = strings.TrimSuffix(dir, "/") + "/" + h.name
	}
	return h, nil
}

// lha opens an LHA archive.
func (s *scan) lha(data []byte, where string, depth int) {
	off := 0
	for off < len(data) && data[off] != 0 && !s.stop {
		h, err := readLHAHeader(data[off:])
		if err != nil {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
			return
		}
		at := join(where, h.name)
		off += h.length
		body, short := data[off:], false
		if int64(len(body)) < h.packed {
			short = true
		} else {
			body = body[:h.packed]
		}
		off += len(body)
		if h.method == "-lhd-" {
			continue
		}
		decode, known := lhaMethods[h.method]
		if !known {
			s.add(Detection{Name: "Heuristics.Unsupported.LHA", Path: at, Kind: Suspected, Depth: depth})
			if s.visit != nil && s.visit(nil, at) { // its name, for the name rules
				s.stop = true
			}
			continue
		}
		s.lzMember(body, decode, h.size, short, at, depth, func(out []byte) bool { return crc16(out) == h.crc })
	}
}

// lzMember scans one member of an LHA or ARJ archive: body stored
// (decode nil) or packed, size bytes declared, short when the archive
// ends inside it; good checks what came out whole (its CRC). What came
// out is scanned however it ended; a member that ended early, did not
// decode or fails its check is also Broken.Archive.
func (s *scan) lzMember(body []byte, decode lzDecoder, size int64, short bool, at string, depth int, good func([]byte) bool) {
	room := min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked)
	want := int(min(size, room+1))
	out, err := body[:min(len(body), want)], error(nil)
	if decode != nil {
		out, err = decode(body, want)
	}
	broken := err != nil || short || len(out) < want
	s.memberData(out, int64(len(body)), at, depth)
	if !broken && int64(len(out)) == size && !good(out) {
		broken = true
	}
	if broken && int64(len(out)) <= room {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: at, Kind: Suspected, Depth: depth})
	}
}

// crc16 is LHA's CRC-16 (polynomial 0xA001, reflected, from 0).
func crc16(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c = c>>8 ^ crc16Table[byte(c)^x]
	}
	return c
}

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xa001
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()
