package unpack

import (
	"bytes"
	"encoding/binary"
	"io"
)

// UDF images (ECMA-167 as OSTA's UDF profiles it): the file system of
// DVDs and of the .iso and .img files Windows mounts with a double click,
// where it reads UDF before ISO 9660. An image with UDF alone (no ISO
// 9660 descriptor: how mail carried programs past readers of ISO 9660
// alone in 2022) or whose ISO 9660 tree names other files than its UDF
// one (a bridge image made against a scanner) would keep its files
// from being opened; every file of the UDF tree is walked, in place
// where it lies in one extent. Read here: the anchor at sector 256 (of
// 2,048, 512 or 4,096 bytes), the volume descriptors it points at
// (partitions, the logical volume and its maps: physical ones and the
// metadata partition of UDF 2.5), the file set, then the directory
// tree from its root: file entries and extended ones, their data
// embedded, in short, long or extended extents (continued ones
// followed), the holes in a sparse file read as zeros.

const (
	udfMaxExtents = 1 << 16 // extents one image's walk reads
	udfMaxVDS     = 64      // volume descriptors read
)

// udfVRS tells whether d holds a UDF volume recognition sequence
// ("BEA01", then "NSR02" or "NSR03") among the descriptors from 32 KiB.
func udfVRS(d []byte) bool {
	bea := false
	for off := isoVDStart; off+isoSector <= len(d) && off < isoVDStart+32*isoSector; off += isoSector {
		switch string(d[off+1 : off+6]) {
		case "BEA01":
			bea = true
		case "NSR02", "NSR03":
			return bea
		case "CD001", "BOOT2", "TEA01":
		default:
			return false
		}
	}
	return false
}

// isUDF tells whether d is an image with UDF and no ISO 9660 descriptor
// first (an image with one is opened as ISO 9660, and its UDF tree walked
// too).
func isUDF(d []byte) bool { return !isISO(d) && udfVRS(d) }

// udfVolume is what an image's descriptors say of its logical volume.
type udfVolume struct {
	d     []byte
	block int64
	parts map[uint16]int64 // partition number: its first block
	maps  []udfMap
	fsd   udfLongAD
	reads int // extents read, against udfMaxExtents
}

// udfMap is a partition map: a physical partition, or the metadata
// partition (its blocks those of its metadata file's data, meta).
type udfMap struct {
	part uint16
	meta []extent // nil: physical
}

type udfLongAD struct {
	length uint32
	lbn    uint32
	ref    uint16
}

// extent is a stretch of a file's data: at off in the image, or
// zeros (a hole: off < 0). (Disk images' files too.)
type extent struct{ off, n int64 }

func readLongAD(b []byte) udfLongAD {
	return udfLongAD{binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint16(b[8:])}
}

// udfTag checks a descriptor's tag at off (its checksum) and gives its
// identifier; -1 when there is none.
func udfTag(d []byte, off int64) int {
	if off < 0 || off+16 > int64(len(d)) {
		return -1
	}
	t := d[off : off+16]
	var sum byte
	for i, c := range t {
		if i != 4 {
			sum += c
		}
	}
	if sum != t[4] {
		return -1
	}
	return int(binary.LittleEndian.Uint16(t))
}

// udfOpen reads the anchor and the volume descriptors.
func udfOpen(d []byte) (*udfVolume, bool) {
	for _, sector := range []int64{2048, 512, 4096} {
		avdp := 256 * sector
		if udfTag(d, avdp) != 2 {
			continue
		}
		v := &udfVolume{d: d, parts: map[uint16]int64{}}
		length, loc := int64(binary.LittleEndian.Uint32(d[avdp+16:])), int64(binary.LittleEndian.Uint32(d[avdp+20:]))
		var lvd []byte
		for i := int64(0); i < min(length/sector, udfMaxVDS); i++ {
			off := (loc + i) * sector
			switch udfTag(d, off) {
			case 5: // partition
				if off+196 <= int64(len(d)) {
					v.parts[binary.LittleEndian.Uint16(d[off+22:])] = int64(binary.LittleEndian.Uint32(d[off+188:]))
				}
			case 6: // logical volume
				if off+440 <= int64(len(d)) && lvd == nil {
					lvd = d[off:min(int64(len(d)), off+sector)]
				}
			case 8: // the sequence's end
				i = udfMaxVDS
			}
		}
		if lvd == nil || len(v.parts) == 0 {
			return nil, false
		}
		v.block = int64(binary.LittleEndian.Uint32(lvd[212:]))
		if v.block < 512 || v.block > 1<<16 || v.block&(v.block-1) != 0 {
			return nil, false
		}
		v.fsd = readLongAD(lvd[248:])
		n, tab := int(binary.LittleEndian.Uint32(lvd[268:])), lvd[440:]
		for k := 0; k < n && k < 64 && len(tab) >= 2 && int(tab[1]) <= len(tab) && tab[1] >= 6; k++ {
			m := tab[:tab[1]]
			tab = tab[tab[1]:]
			switch {
			case m[0] == 1:
				v.maps = append(v.maps, udfMap{part: binary.LittleEndian.Uint16(m[4:])})
			case m[0] == 2 && len(m) >= 44:
				v.maps = append(v.maps, udfMap{part: binary.LittleEndian.Uint16(m[38:])})
				if string(m[5:28]) == "*UDF Metadata Partition" {
					// Its blocks are those of the metadata file, in
					// the physical partition.
					meta := v.maps[len(v.maps)-1]
					phys := udfVolume{d: d, block: v.block, parts: v.parts, maps: []udfMap{{part: meta.part}}}
					ext, _, ok := phys.data(udfLongAD{lbn: binary.LittleEndian.Uint32(m[40:])}, 1<<40)
					v.reads += phys.reads
					if !ok {
						return nil, false
					}
					v.maps[len(v.maps)-1].meta = ext
				}
			}
		}
		return v, len(v.maps) > 0
	}
	return nil, false
}

// at is where block lbn of partition map ref lies in the image (-1:
// nowhere it can be read).
func (v *udfVolume) at(ref uint16, lbn uint32) int64 {
	if int(ref) >= len(v.maps) {
		return -1
	}
	m := v.maps[ref]
	if m.meta != nil {
		off := int64(lbn) * v.block
		for _, e := range m.meta {
			if off < e.n {
				if e.off < 0 {
					return -1
				}
				return e.off + off
			}
			off -= e.n
		}
		return -1
	}
	start, ok := v.parts[m.part]
	if !ok {
		return -1
	}
	return (start + int64(lbn)) * v.block
}

// data reads the file entry at icb: its file type (4 a directory, 5 a
// file...) and its data's extents, at most limit bytes of them.
func (v *udfVolume) data(icb udfLongAD, limit int64) ([]extent, byte, bool) {
	ref := icb.ref // the entry's short extents lie in its partition
	off := v.at(ref, icb.lbn)
	tag := udfTag(v.d, off)
	var lea, lad, head int64
	switch {
	case tag == 261 && off+176 <= int64(len(v.d)): // file entry
		lea, lad, head = int64(binary.LittleEndian.Uint32(v.d[off+168:])), int64(binary.LittleEndian.Uint32(v.d[off+172:])), 176
	case tag == 266 && off+216 <= int64(len(v.d)): // extended file entry
		lea, lad, head = int64(binary.LittleEndian.Uint32(v.d[off+208:])), int64(binary.LittleEndian.Uint32(v.d[off+212:])), 216
	default:
		return nil, 0, false
	}
	fileType, flags := v.d[off+27], binary.LittleEndian.Uint16(v.d[off+34:])
	size := int64(binary.LittleEndian.Uint64(v.d[off+56:]))
	ads := off + head + lea
	if lea < 0 || lad < 0 || ads+lad > int64(len(v.d)) || ads+lad > off+v.block || size < 0 {
		return nil, fileType, false
	}
	size = min(size, limit)
	if flags&7 == 3 { // the data in the entry itself
		return []extent{{ads, min(size, lad)}}, fileType, true
	}
	var out []extent
	var got int64
	kind := flags & 7
	step := map[uint16]int64{0: 8, 1: 16, 2: 20}[kind]
	if step == 0 {
		return nil, fileType, false
	}
	p, end := ads, ads+lad
	for got < size {
		if p+step > end {
			return out, fileType, false // the extents end before the data
		}
		if v.reads++; v.reads > udfMaxExtents {
			return out, fileType, false
		}
		ad := v.d[p : p+step]
		p += step
		length := int64(binary.LittleEndian.Uint32(ad) & 0x3fffffff)
		typ := binary.LittleEndian.Uint32(ad) >> 30
		var lbn uint32
		pref := ref
		switch kind {
		case 0:
			lbn = binary.LittleEndian.Uint32(ad[4:])
		case 1:
			lbn, pref = binary.LittleEndian.Uint32(ad[4:]), binary.LittleEndian.Uint16(ad[8:])
		case 2:
			lbn, pref = binary.LittleEndian.Uint32(ad[12:]), binary.LittleEndian.Uint16(ad[16:])
		}
		if length == 0 {
			break
		}
		if typ == 3 { // the extents go on in the block at lbn
			next := v.at(pref, lbn)
			if next < 0 || next+min(length, v.block) > int64(len(v.d)) {
				return out, fileType, false
			}
			// An allocation extent descriptor (tag 258) heads it.
			if udfTag(v.d, next) == 258 {
				p, end = next+24, next+min(length, v.block)
			} else {
				p, end = next, next+min(length, v.block)
			}
			continue
		}
		n := min(length, size-got)
		e := extent{off: -1, n: n}
		if typ == 0 {
			if e.off = v.at(pref, lbn); e.off < 0 || e.off+n > int64(len(v.d)) {
				return out, fileType, false
			}
		}
		out = append(out, e)
		got += n
	}
	return out, fileType, true
}

// reader reads a file's data from its extents, a hole's as zeros; and
// says how many of its bytes are recorded (for the unpacked ratio).
func (v *udfVolume) reader(ext []extent) (io.Reader, int64) { return extentsReader(v.d, ext) }

// extentsReader reads extents of d one after the other, and says how
// many of their bytes d holds (not holes).
func extentsReader(d []byte, ext []extent) (io.Reader, int64) {
	rs := make([]io.Reader, len(ext))
	var recorded int64
	for i, e := range ext {
		if e.off < 0 {
			rs[i] = io.LimitReader(zeros{}, e.n)
		} else {
			rs[i] = bytes.NewReader(d[e.off : e.off+e.n])
			recorded += e.n
		}
	}
	return io.MultiReader(rs...), recorded
}

// zeros reads as zeros without end.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// udfMaxDirBytes bounds the directory data of one image copied out of
// several extents (a directory in one extent is read in place).
const udfMaxDirBytes = 64 << 20

// udfName is a file identifier as a reader shows it: its first byte
// says 8 bits a character or 16 (big-endian).
func udfName(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	switch b[0] {
	case 16, 255:
		return utf16Text(b[1:], binary.BigEndian)
	}
	return latin1(b[1:])
}

// udf walks an image's UDF tree and scans every file; skip are the
// places of files already scanned (by the ISO 9660 tree of the same
// image), room what may still be scanned in place (nil: the image's
// own).
func (s *scan) udf(data []byte, where string, depth int, skip map[int64]bool, room *int64) {
	if room == nil {
		room = s.inPlaceRoom(len(data))
	}
	v, ok := udfOpen(data)
	if !ok {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	broken := func(at string) {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: join(where, at), Kind: Suspected, Depth: depth})
	}
	fsd := v.at(v.fsd.ref, v.fsd.lbn)
	if udfTag(data, fsd) != 256 || fsd+416 > int64(len(data)) {
		broken("")
		return
	}
	type dir struct {
		icb  udfLongAD
		path string
	}
	seen := map[int64]bool{}
	var dirBytes int64 // copied out of several extents
	walkTree(s, where, depth, dir{readLongAD(data[fsd+400:]), ""}, func(cur dir, push func(dir)) {
		at := v.at(cur.icb.ref, cur.icb.lbn)
		if seen[at] {
			return
		}
		seen[at] = true
		ext, _, ok := v.data(cur.icb, udfMaxDirBytes)
		var fids []byte
		for _, e := range ext {
			if e.off < 0 || len(ext) > 1 && dirBytes+e.n > udfMaxDirBytes {
				ok = false // a hole holds no names
				break
			}
			if len(ext) == 1 {
				fids = v.d[e.off : e.off+e.n]
			} else {
				fids = append(fids, v.d[e.off:e.off+e.n]...)
				dirBytes += e.n
			}
		}
		if !ok {
			broken(cur.path)
			return
		}
		for i := 0; i+38 <= len(fids) && !s.stop; {
			if udfTag(fids, int64(i)) != 257 {
				broken(cur.path)
				break
			}
			chars, lfi, liu := fids[i+18], int(fids[i+19]), int(binary.LittleEndian.Uint16(fids[i+36:]))
			next := i + (38+liu+lfi+3)&^3
			if i+38+liu+lfi > len(fids) {
				broken(cur.path)
				break
			}
			icb := readLongAD(fids[i+20:])
			name := join(cur.path, udfName(fids[i+38+liu:i+38+liu+lfi]))
			i = next
			if chars&(4|8) != 0 { // deleted, or the parent
				continue
			}
			if chars&2 != 0 {
				push(dir{icb, name})
				continue
			}
			fext, _, ok := v.data(icb, s.lim.MaxFileSize+1)
			switch {
			case ok && len(fext) > 0 && fext[0].off >= 0 && skip[fext[0].off]:
				continue // scanned as the ISO 9660 tree's
			case len(fext) == 1 && fext[0].off >= 0:
				if fext[0].n > s.lim.MaxFileSize {
					s.exceeded("FileSize", join(where, name), depth) // stops the walk
					return
				}
				s.inPlace(v.d[fext[0].off:fext[0].off+fext[0].n], room, join(where, name), depth)
			default:
				// Several extents, or holes: read out, within the
				// limits on what a scan unpacks.
				r, recorded := v.reader(fext)
				s.member(r, recorded, join(where, name), depth)
			}
			if !ok && !s.stop {
				broken(name)
			}
		}
	})
}
