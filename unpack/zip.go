package unpack

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"slices"
)

// Zip archives: the central directory's entries, each read as far as
// its stream goes, and the local headers walked as streaming readers
// walk them.

func isZip(d []byte) bool {
	return len(d) >= 4 && d[0] == 'P' && d[1] == 'K' && ((d[2] == 3 && d[3] == 4) || (d[2] == 5 && d[3] == 6))
}

func (s *scan) zip(data []byte, where string, depth int) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	if n := len(s.within); n > 0 && s.within[n-1] == TypeZip && slices.ContainsFunc(zr.File, func(f *zip.File) bool { return f.Name == "[Content_Types].xml" }) {
		s.within[n-1] = "" // an Office document: ClamAV types it as one, not as a zip
	}
	listed := map[int64]zipListed{} // by data offset, for zipLocal
	for i, f := range zr.File {
		if off, err := f.DataOffset(); err == nil {
			listed[off] = zipListed{size: int64(f.CompressedSize64), method: f.Method}
		}
		// Every record of the central directory, a directory's too,
		// counted from one.
		s.describe(Member{Container: TypeZip, ContainerSize: int64(len(data)), Name: f.Name,
			Packed: int64(f.CompressedSize64), Size: int64(f.UncompressedSize64), Encrypted: f.Flags&1 != 0, Pos: i + 1}, where, depth)
		if s.stop {
			return
		}
		if f.FileInfo().IsDir() {
			continue
		}
		at := join(where, f.Name)
		if f.Flags&1 != 0 {
			s.add(Detection{Name: "Heuristics.Encrypted.Zip", Path: at, Kind: Suspected, Depth: depth})
			if s.visit != nil && s.visit(nil, at) { // its name, for the name rules
				s.stop = true
			}
			continue
		}
		s.zipMember(f, at, depth)
	}
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		s.zipLocal(data, listed, where, depth)
	}
}

// zipMember scans a zip entry as far as its stream goes, whatever its
// header says: archive/zip's reader stops at the declared size and, when
// the stream and the size disagree, drops the last bytes it read (an
// entry declared larger than its stream came out empty and was judged
// clean, while unzip extracts it). A deflate stream is read to its own
// end; a stored one for its declared length, as far as the archive goes.
// A length or CRC other than declared is Broken.Archive, after what came
// out is scanned.
func (s *scan) zipMember(f *zip.File, at string, depth int) {
	raw, err := f.OpenRaw()
	var r io.Reader
	switch {
	case err != nil:
	case f.Method == zip.Store:
		r = raw
	case f.Method == zip.Deflate:
		// A ByteReader: flate reads no further than its stream.
		fr := flate.NewReader(bufio.NewReader(raw))
		defer fr.Close()
		r = fr
	case f.Method == 9: // Deflate64
		packed, rerr := io.ReadAll(io.LimitReader(raw, s.lim.MaxFileSize+1))
		out, derr := inflate64(packed, int(min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked)))
		if err = rerr; err == nil && derr != nil && !errors.Is(derr, io.ErrUnexpectedEOF) {
			err = derr
		}
		r = &erring{r: bytes.NewReader(out), err: derr}
	case f.Method == 12: // bzip2, as 7-Zip and WinZip write it
		r = bzip2.NewReader(raw)
	case f.Method == 14: // LZMA
		r, err = zipLZMA(raw, f, s.lim.MaxFileSize)
	case f.Method == 95: // xz, as 7-Zip writes it
		packed, rerr := io.ReadAll(io.LimitReader(raw, s.lim.MaxFileSize+1))
		if r, err = xzOpen(packed, min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked)); s.xzUnopened(err, at, depth) {
			return
		}
		if err == nil {
			err = rerr
		}
	default:
		// PPMd (98), zstd (93), WavPack...: 7-Zip writes some; never
		// passed as clean.
		s.add(Detection{Name: "Heuristics.Unsupported.Zip", Path: at, Kind: Suspected, Depth: depth})
		return
	}
	if err != nil {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: at, Kind: Suspected, Depth: depth})
		return
	}
	got := newSummed(r)
	s.member(got, int64(f.CompressedSize64), at, depth)
	if got.eof && !got.is(f.UncompressedSize64, f.CRC32) {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: at, Kind: Suspected, Depth: depth})
	}
}

// zipLZMA reads a zip entry packed with LZMA (APPNOTE 5.8.8): a version,
// the properties' size and the properties (the literal and position
// bits, the dictionary's size), then the stream, ended by its marker when
// the entry's flags say so (bit 1), else by the entry's size. The
// dictionary is made no larger than limit, the most a member may hold
// (a crafted header asks for 4 GiB): a stream that reaches further back
// than limit bytes reaches past a member's end.
func zipLZMA(raw io.Reader, f *zip.File, limit int64) (io.Reader, error) {
	var head [4]byte
	if _, err := io.ReadFull(raw, head[:]); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint16(head[2:]) != 5 {
		return nil, errors.New("zip LZMA: bad properties")
	}
	var props [5]byte
	if _, err := io.ReadFull(raw, props[:]); err != nil {
		return nil, err
	}
	size := f.UncompressedSize64
	if f.Flags&2 != 0 {
		size = ^uint64(0) // ended by its marker
	}
	return lzmaReader(props[:], size, limit, raw)
}

// zipListed is what the central directory says of an entry.
type zipListed struct {
	size   int64
	method uint16
	name   string
}

// zipLocal walks a zip's local file headers from its first byte, as
// streaming readers do (Java's ZipInputStream, an unzip of a damaged
// archive), and scans the entries the central directory did not list
// (listed: by their data offsets, with their compressed sizes and
// methods): a zip whose end record belongs to another archive joined
// after it cannot hide its own entries. A listed entry is skipped by its
// listed size, not read again, unless its local header says another
// method or size: that reading is scanned too, or another name: that
// name is given to the visit (the name rules) too. It gives where the
// walk ended. An unlisted one whose
// size is left to a data descriptor is read to the end
// of its deflate stream. One it cannot read on (stored with a
// descriptor, a method other than stored or deflate) ends the walk and is
// reported damaged.
func (s *scan) zipLocal(data []byte, listed map[int64]zipListed, where string, depth int) (end int) {
	const head = 30
	off := 0
	defer func() { end = off }()
	for !s.stop && off+head <= len(data) && bytes.HasPrefix(data[off:], []byte("PK\x03\x04")) {
		flags := binary.LittleEndian.Uint16(data[off+6:])
		method := binary.LittleEndian.Uint16(data[off+8:])
		size := int64(binary.LittleEndian.Uint32(data[off+18:]))
		nameLen := int(binary.LittleEndian.Uint16(data[off+26:]))
		extraLen := int(binary.LittleEndian.Uint16(data[off+28:]))
		start := off + head + nameLen + extraLen
		if start > len(data) {
			return // cut short: the central directory's reading stands
		}
		name := string(data[off+head : off+head+nameLen])
		at := join(where, name)
		described := flags&8 != 0
		l, ok := listed[int64(start)]
		if ok && (l.method != method || !described && l.size != size) {
			// The central directory and the local header disagree: a
			// streaming reader (Java's, a damaged archive's unzip)
			// takes the local header's word, so that reading is
			// scanned too, under the entry's name.
			ok = false
			at += " (local header)"
		}
		if ok && name != l.name && s.visit != nil && s.visit(nil, at) {
			// Named otherwise in the central directory: the name a
			// streaming reader writes is seen by the name rules too.
			s.stop = true
			return
		}
		if ok {
			size = l.size // skipped by its listed size
		} else {
			switch {
			case flags&1 != 0:
				s.add(Detection{Name: "Heuristics.Encrypted.Zip", Path: at, Kind: Suspected, Depth: depth})
				if described {
					return // its end cannot be found
				}
			case method == 8:
				br := bytes.NewReader(data[start:])
				fr := flate.NewReader(br) // a ByteReader: flate reads no further than its stream
				s.member(fr, -1, at, depth)
				fr.Close()
				size = int64(len(data)-start) - int64(br.Len())
			case method == 0 && !described && size <= int64(len(data)-start):
				s.memberData(data[start:start+int(size)], size, at, depth)
			default:
				s.add(Detection{Name: "Heuristics.Broken.Archive", Path: at, Kind: Suspected, Depth: depth})
				return
			}
		}
		if size > int64(len(data)-start) {
			return
		}
		off = start + int(size)
		if described {
			// The data descriptor: its signature is optional.
			if bytes.HasPrefix(data[off:], []byte("PK\x07\x08")) {
				off += 4
			}
			off += 12
		}
	}
	return off
}
