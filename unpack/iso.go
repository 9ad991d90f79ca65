package unpack

import (
	"encoding/binary"
	"strings"
	"unicode/utf16"
)

// ISO 9660 images (.iso, .img: the CD and DVD images that mail and
// downloads carry, mounted by a double click on Windows) hold their files
// stored. A stored file's bytes are matched in the image itself, but an
// archive stored in one is packed: the image must be opened for it to be
// opened. Read here: the volume descriptors from sector 16, the Joliet
// directory tree when there is one (its names are the ones Windows shows)
// or else the primary one, files in one extent or several.

const (
	isoSector  = 2048
	isoVDStart = 16 * isoSector
	isoMaxDirs = 10000 // directories walked in one image
)

// isISO tells whether d is an ISO 9660 image (its first volume
// descriptor in place; an isohybrid image's boot record before it is no
// matter).
func isISO(d []byte) bool {
	return len(d) >= isoVDStart+isoSector && string(d[isoVDStart+1:isoVDStart+6]) == "CD001"
}

// isoRoot finds the root directory record to walk: the Joliet one
// (UCS-2 names) when a supplementary descriptor says Joliet, else the
// primary one. ok is false when no usable descriptor is found.
func isoRoot(d []byte) (root []byte, joliet, ok bool) {
	for off := isoVDStart; off+isoSector <= len(d) && off < isoVDStart+64*isoSector; off += isoSector {
		vd := d[off : off+isoSector]
		if string(vd[1:6]) != "CD001" {
			break
		}
		switch vd[0] {
		case 1:
			if root == nil {
				root = vd[156 : 156+34]
			}
		case 2:
			if esc := string(vd[88:91]); esc == "%/@" || esc == "%/C" || esc == "%/E" {
				return vd[156 : 156+34], true, true
			}
		case 255:
			return root, false, root != nil
		}
	}
	return root, false, root != nil
}

// iso walks an image's directory tree and scans every file in place.
func (s *scan) iso(data []byte, where string, depth int) {
	root, joliet, ok := isoRoot(data)
	if !ok {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	type dir struct {
		rec  []byte
		path string
	}
	seen := map[uint32]bool{}
	queue := []dir{{root, ""}}
	// A file in several extents: its parts, in order, until the last
	// (records of the same name, flagged but the last). A chain that
	// another record breaks is scanned as it stands, and damaged.
	var parts []byte
	var partsOf string
	flush := func() {
		if parts != nil {
			s.inPlace(parts, join(where, partsOf), depth)
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: join(where, partsOf), Kind: Suspected, Depth: depth})
			parts = nil
		}
	}
	for n := 0; len(queue) > 0 && !s.stop; n++ {
		if n >= isoMaxDirs {
			s.exceeded("Files", where, depth)
			return
		}
		cur := queue[0]
		queue = queue[1:]
		lba, size := binary.LittleEndian.Uint32(cur.rec[2:]), binary.LittleEndian.Uint32(cur.rec[10:])
		start, end := int64(lba)*isoSector, int64(lba)*isoSector+int64(size)
		if seen[lba] || end > int64(len(data)) {
			if !seen[lba] {
				s.add(Detection{Name: "Heuristics.Broken.Archive", Path: join(where, cur.path), Kind: Suspected, Depth: depth})
			}
			continue
		}
		seen[lba] = true
		ext := data[start:end]
		for i := 0; i < len(ext) && !s.stop; {
			l := int(ext[i])
			if l == 0 { // the rest of this sector is padding
				i = (i/isoSector + 1) * isoSector
				continue
			}
			if l < 34 || i+l > len(ext) || 33+int(ext[i+32]) > l {
				s.add(Detection{Name: "Heuristics.Broken.Archive", Path: join(where, cur.path), Kind: Suspected, Depth: depth})
				break
			}
			rec := ext[i : i+l]
			i += l
			raw := rec[33 : 33+int(rec[32])]
			if len(raw) == 1 && raw[0] <= 1 {
				continue // . and ..
			}
			name := join(cur.path, isoName(raw, joliet))
			flags := rec[25]
			if parts != nil && name != partsOf {
				flush()
			}
			if flags&2 != 0 {
				queue = append(queue, dir{rec, name})
				continue
			}
			flba, fsize := binary.LittleEndian.Uint32(rec[2:]), binary.LittleEndian.Uint32(rec[10:])
			fstart, fend := int64(flba)*isoSector, int64(flba)*isoSector+int64(fsize)
			if fend > int64(len(data)) {
				s.add(Detection{Name: "Heuristics.Broken.Archive", Path: join(where, name), Kind: Suspected, Depth: depth})
				continue
			}
			if flags&0x80 != 0 || parts != nil {
				// Multi-extent: joined (held: its parts are apart).
				if int64(len(parts))+fend-fstart > s.lim.MaxFileSize {
					s.exceeded("FileSize", join(where, name), depth)
					return
				}
				parts, partsOf = append(parts, data[fstart:fend]...), name
				if flags&0x80 != 0 {
					continue
				}
				s.inPlace(parts, join(where, name), depth)
				parts = nil
				continue
			}
			s.inPlace(data[fstart:fend], join(where, name), depth)
		}
		flush()
	}
}

// inPlace scans a member stored whole in the object: no copy, and no
// share of the unpacked total (it takes no memory of its own).
func (s *scan) inPlace(data []byte, where string, depth int) {
	if s.counted(where, depth) {
		s.object(data, where, depth)
	}
}

// isoName is a directory record's name as a reader shows it: Joliet's
// UCS-2, or the primary's d-characters without their ";1" version and a
// bare trailing dot.
func isoName(raw []byte, joliet bool) string {
	if joliet {
		u := make([]uint16, len(raw)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(raw[2*i:])
		}
		raw = []byte(string(utf16.Decode(u)))
	}
	name := string(raw)
	if i := strings.LastIndexByte(name, ';'); i >= 0 {
		name = name[:i]
	}
	return strings.TrimSuffix(name, ".")
}
