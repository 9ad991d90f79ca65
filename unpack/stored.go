package unpack

import (
	"bytes"
	"strconv"
	"strings"
)

// The stored archives of Unix: ar (static libraries, and the outer layer
// of a Debian package, whose members are tar streams compressed with gzip,
// xz or zstd), RPM (a header, then a cpio payload compressed with gzip,
// bzip2, xz or zstd) and cpio in its four formats (newc and crc, "070701" and
// "070702"; odc, "070707"; the old binary one, 0x71c7 either way round:
// initramfs images, RPM payloads). Their members are stored, each at an
// offset its header gives: read as the unarchivers read them, then opened
// as any object is (a .deb's data.tar.xz is found and opened so). A header
// that lies about its size is Broken.Archive, and what it holds is
// scanned as far as it goes.

var magicAr = []byte("!<arch>\n")

func isAr(d []byte) bool { return bytes.HasPrefix(d, magicAr) }

// ar reads an ar archive: 60-byte headers, data padded to an even offset;
// GNU's long names ("//" table, "/N" references), BSD's ("#1/N": the name
// before the data); the symbol tables skipped.
func (s *scan) ar(data []byte, where string, depth int) {
	var longNames []byte
	off := len(magicAr)
	for off < len(data) && !s.stop {
		if off+60 > len(data) {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
			return
		}
		h := data[off : off+60]
		size, err := strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
		if err != nil || size < 0 || string(h[58:60]) != "`\n" {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
			return
		}
		off += 60
		body, short := data[off:], false
		if int64(len(body)) < size {
			short = true
		} else {
			body = body[:size]
		}
		name := strings.TrimRight(string(h[:16]), " ")
		switch {
		case name == "/" || name == "/SYM64/" || name == "__.SYMDEF" || name == "__.SYMDEF SORTED":
			name = "" // a symbol table
		case name == "//":
			longNames, name = body, ""
		case strings.HasPrefix(name, "#1/"):
			n, err := strconv.Atoi(name[3:])
			if err != nil || n < 0 || n > len(body) {
				s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
				return
			}
			name, body = strings.TrimRight(string(body[:n]), "\x00"), body[n:]
		case strings.HasPrefix(name, "/") && len(name) > 1:
			n, err := strconv.Atoi(name[1:])
			if err != nil || n < 0 || n >= len(longNames) {
				name = "unnamed"
				break
			}
			name = string(longNames[n:])
			if i := strings.IndexAny(name, "\n"); i >= 0 {
				name = name[:i]
			}
			name = strings.TrimSuffix(name, "/")
		default:
			name = strings.TrimSuffix(name, "/")
		}
		if name != "" {
			s.memberData(body, -1, join(where, name), depth)
		}
		if short {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: join(where, name), Kind: Suspected, Depth: depth})
			return
		}
		off += int(size) + int(size&1)
	}
}

// isCpio tells whether d starts with a cpio header of any format whose
// fields all read and whose name is a NUL-ended path: a magic alone ("070701"
// opens many a text, and two bytes 0x71c7 many a binary) is not enough.
func isCpio(d []byte) bool {
	h, ok := cpioHeader(d)
	if !ok || h.nameLen < 2 || h.nameLen > 4096 || h.hdr+h.nameLen > len(d) || d[h.hdr+h.nameLen-1] != 0 {
		return false
	}
	for _, b := range d[h.hdr : h.hdr+h.nameLen-1] {
		if b < 0x20 || b == 0x7f {
			return false
		}
	}
	return true
}

// cpio reads a cpio archive to its trailer ("TRAILER!!!").
func (s *scan) cpio(data []byte, where string, depth int) {
	off := 0
	broken := func(at string) {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: at, Kind: Suspected, Depth: depth - 1})
	}
	file := 0
	for off < len(data) && !s.stop {
		h, ok := cpioHeader(data[off:])
		if !ok {
			broken(where)
			return
		}
		file++ // every header, from one, as ClamAV counts
		nameEnd := off + h.hdr + h.nameLen
		if h.nameLen < 1 || nameEnd > len(data) {
			broken(where)
			return
		}
		name := strings.TrimRight(string(data[off+h.hdr:nameEnd]), "\x00")
		if name == "TRAILER!!!" {
			return
		}
		start := align(nameEnd-off, h.pad) + off
		if start > len(data) {
			broken(where)
			return
		}
		body, short := data[start:], false
		if int64(len(body)) < h.size {
			short = true
		} else {
			body = body[:h.size]
		}
		if h.size > 0 { // an entry with data, whatever its kind
			s.describe(Member{Container: h.typ, ContainerSize: int64(len(data)), Name: cpioName(name),
				Packed: h.size, Size: h.size, Pos: file}, where, depth)
		}
		if h.regular {
			s.memberData(body, -1, join(where, name), depth)
		}
		if short {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: join(where, name), Kind: Suspected, Depth: depth})
			return
		}
		off = align(start-off+int(h.size), h.pad) + off
	}
}

// cpioName is a cpio member's name as ClamAV gives it to container
// signatures: at most 512 bytes, each byte outside ASCII and each of
// %, \, tab, CR and LF made _.
func cpioName(name string) string {
	b := []byte(name[:min(len(name), 512)])
	for i, c := range b {
		if c >= 0x80 || strings.IndexByte("%\\\t\n\r", c) >= 0 {
			b[i] = '_'
		}
	}
	return string(b)
}

// cpioEntry is what a cpio header says: its own length, the name's and
// the data's, the alignment of name and data, and whether the entry is a
// regular file.
type cpioEntry struct {
	hdr, nameLen, pad int
	size              int64
	regular           bool
	typ               string // the format, as ClamAV names it
}

// cpioHeader reads the header at the start of d.
func cpioHeader(d []byte) (cpioEntry, bool) {
	field := func(from, n, base int) (int64, bool) {
		if from+n > len(d) {
			return 0, false
		}
		for _, c := range d[from : from+n] {
			if !(c >= '0' && c <= '9' || base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')) {
				return 0, false // a sign or a space is no field of a real header
			}
		}
		v, err := strconv.ParseInt(string(d[from:from+n]), base, 64)
		return v, err == nil
	}
	var e cpioEntry
	switch {
	case len(d) >= 110 && (string(d[:6]) == "070701" || string(d[:6]) == "070702"):
		mode, ok1 := field(14, 8, 16)
		size, ok2 := field(54, 8, 16)
		name, ok3 := field(94, 8, 16)
		e = cpioEntry{hdr: 110, nameLen: int(name), pad: 4, size: size, regular: mode&0o170000 == 0o100000, typ: TypeCpioNewc}
		if d[5] == '2' {
			e.typ = TypeCpioCRC
		}
		return e, ok1 && ok2 && ok3
	case len(d) >= 76 && string(d[:6]) == "070707":
		mode, ok1 := field(18, 6, 8)
		name, ok2 := field(59, 6, 8)
		size, ok3 := field(65, 11, 8)
		e = cpioEntry{hdr: 76, nameLen: int(name), pad: 1, size: size, regular: mode&0o170000 == 0o100000, typ: TypeCpioODC}
		return e, ok1 && ok2 && ok3
	case len(d) >= 26 && (d[0] == 0xc7 && d[1] == 0x71 || d[0] == 0x71 && d[1] == 0xc7):
		word := func(i int) int64 {
			if d[0] == 0xc7 { // little-endian
				return int64(d[i]) | int64(d[i+1])<<8
			}
			return int64(d[i])<<8 | int64(d[i+1])
		}
		mode := word(6)
		e = cpioEntry{hdr: 26, nameLen: int(word(20)), pad: 2, size: word(22)<<16 | word(24), regular: mode&0o170000 == 0o100000, typ: TypeCpioOld}
		return e, true
	}
	return e, false
}

// align rounds n up to a multiple of to.
func align(n, to int) int { return (n + to - 1) / to * to }

var magicRPM = []byte{0xed, 0xab, 0xee, 0xdb}

func isRPM(d []byte) bool { return len(d) >= 96+16 && bytes.HasPrefix(d, magicRPM) }

// rpm skips an RPM's lead (96 bytes), its signature header (padded to 8)
// and its header, and opens the payload that follows as any object: its
// compression found by its magic, the cpio inside read by cpio.
func (s *scan) rpm(data []byte, where string, depth int) {
	off := 96
	for i := 0; i < 2; i++ {
		h := data[off:]
		if len(h) < 16 || !bytes.HasPrefix(h, []byte{0x8e, 0xad, 0xe8, 0x01}) {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
			return
		}
		n := int64(h[8])<<24 | int64(h[9])<<16 | int64(h[10])<<8 | int64(h[11])
		size := int64(h[12])<<24 | int64(h[13])<<16 | int64(h[14])<<8 | int64(h[15])
		total := 16 + 16*n + size
		if total > int64(len(h)) {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
			return
		}
		off += int(total)
		if i == 0 {
			off = align(off, 8) // the signature header is padded
		}
	}
	if off > len(data) {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	s.memberData(data[off:], -1, join(where, "payload"), depth)
}
