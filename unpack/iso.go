package unpack

import (
	"encoding/binary"
	"slices"
	"strings"
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
	// isoMaxSteps bounds the directory blocks one tree's description
	// passes over (isoDescribe).
	isoMaxSteps = 1 << 16
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
	primary, joliets := isoVolumes(d, 64)
	if len(joliets) > 0 {
		return joliets[0], true, true
	}
	return primary, false, primary != nil
}

// isoVolumes are the root directory records of the first primary volume
// descriptor and of the supplementary ones that say Joliet (level 1, 2
// or 3), in order, among the first n descriptors from sector 16.
func isoVolumes(d []byte, n int) (primary []byte, joliets [][]byte) {
	for off := isoVDStart; off+isoSector <= len(d) && off < isoVDStart+n*isoSector; off += isoSector {
		vd := d[off : off+isoSector]
		if vd[0] == 255 || string(vd[1:6]) != "CD001" {
			break
		}
		switch {
		case vd[0] == 1 && primary == nil:
			primary = vd[156 : 156+34]
		case vd[0] == 2 && string(vd[88:90]) == "%/" && (vd[90] == '@' || vd[90] == 'C' || vd[90] == 'E'):
			joliets = append(joliets, vd[156:156+34])
		}
	}
	return primary, joliets
}

// iso walks an image's directory tree and scans every file in place;
// then, in a bridge image (ISO 9660 and UDF), the files of the UDF tree
// not scanned yet.
func (s *scan) iso(data []byte, where string, depth int) {
	scanned := map[int64]bool{} // the files' places, for the UDF tree
	room := s.inPlaceRoom(len(data))
	if udfVRS(data) {
		// A bridge image: Windows reads its UDF tree, which may name
		// other files.
		defer func() {
			if !s.stop {
				s.udf(data, where, depth, scanned, room)
			}
		}()
	}
	root, joliet, ok := isoRoot(data)
	if !ok {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	if s.opt.Members != nil {
		s.isoDescribe(data, where, depth)
	}
	type dir struct {
		rec  []byte
		path string
	}
	seen := map[uint32]bool{}
	// A file in several extents: its parts, in order, until the last
	// (records of the same name, flagged but the last). A chain that
	// another record breaks is scanned as it stands, and damaged.
	var parts []byte
	var partsOf string
	flush := func() {
		if parts != nil && !s.stop {
			s.inPlace(parts, room, join(where, partsOf), depth)
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: join(where, partsOf), Kind: Suspected, Depth: depth})
			parts = nil
		}
	}
	walkTree(s, where, depth, dir{root, ""}, func(cur dir, push func(dir)) {
		lba, size := binary.LittleEndian.Uint32(cur.rec[2:]), binary.LittleEndian.Uint32(cur.rec[10:])
		start, end := int64(lba)*isoSector, int64(lba)*isoSector+int64(size)
		if seen[lba] || end > int64(len(data)) {
			if !seen[lba] {
				s.add(Detection{Name: "Heuristics.Broken.Archive", Path: join(where, cur.path), Kind: Suspected, Depth: depth})
			}
			return
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
				push(dir{rec, name})
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
					s.exceeded("FileSize", join(where, name), depth) // stops the walk
					return
				}
				parts, partsOf = append(parts, data[fstart:fend]...), name
				if flags&0x80 != 0 {
					continue
				}
				s.inPlace(parts, room, join(where, name), depth)
				parts = nil
				continue
			}
			scanned[fstart] = true
			s.inPlace(data[fstart:fend], room, join(where, name), depth)
		}
		flush()
	})
}

// inPlace scans a member stored whole in the object: no copy, and no
// share of the unpacked total (it takes no memory of its own). Its
// bytes count against room, its container's (inPlaceRoom).
func (s *scan) inPlace(data []byte, room *int64, where string, depth int) {
	if *room -= int64(len(data)); *room < 0 {
		s.exceeded("Total", where, depth)
		return
	}
	if s.counted(where, depth) {
		s.object(data, where, depth)
	}
}

// inPlaceRoom is how many bytes the members of a container of n bytes
// may be scanned in place, together: its own size (members that do not
// overlap fit in it) and what a scan may unpack more. Records made to
// name the same bytes again and again (ten thousand files of an image
// on one extent of 64 MiB: 640 GiB to scan, from a download of a few
// KiB gzipped) stop the scan at its limit instead.
func (s *scan) inPlaceRoom(n int) *int64 {
	r := int64(n) + s.lim.MaxTotal
	return &r
}

// isoName is a directory record's name as a reader shows it: Joliet's
// UCS-2, or the primary's d-characters without their ";1" version and a
// bare trailing dot.
func isoName(raw []byte, joliet bool) string {
	name := string(raw)
	if joliet {
		name = utf16Text(raw, binary.BigEndian)
	}
	if i := strings.LastIndexByte(name, ';'); i >= 0 {
		name = name[:i]
	}
	return strings.TrimSuffix(name, ".")
}

// isoDescribe describes an image's records as ClamAV does to container
// signatures: the primary directory tree, then the Joliet one when there
// is one, every record but "." and ".." (directories too: their extent's
// size), its name as recorded (Joliet's as UTF-8) up to a ';', each
// directory block looked at once a tree, at most 1,024 of them. It
// gives the blocks it passed over.
func (s *scan) isoDescribe(d []byte, where string, depth int) (passed int) {
	for _, t := range isoTrees(d) {
		seen := map[int64]bool{}
		// Blocks passed over, bounded: records that point again and again
		// at long runs of blocks already seen cost ClamAV their number
		// times the run's length; here the description stops there.
		steps := 0
		var walk func(block, length int64)
		walk = func(block, length int64) {
			if length < 34 {
				return
			}
			for ; length > 0 && !s.stop; block, length = block+1, length-min(length, isoSector) {
				if steps >= isoMaxSteps || len(seen) > 1024 || block*isoSector+isoSector > int64(len(d)) {
					return
				}
				steps++
				if seen[block] {
					continue
				}
				seen[block] = true
				rest := d[block*isoSector : block*isoSector+min(isoSector, length)]
				for len(rest) > 0 && steps < isoMaxSteps {
					size := int(rest[0])
					if size == 0 {
						break // on in the next block
					}
					if size > len(rest) {
						length = isoSector // the record runs over: this directory ends
						break
					}
					rec := rest[:size]
					rest = rest[size:]
					if size < 34 {
						continue
					}
					n := int(rec[32])
					if n == 1 && (rec[33] == 0 || rec[33] == 1) {
						continue // "." and ".."
					}
					n = min(n, size-33)
					name := string(rec[33 : 33+n])
					if t.joliet {
						name = utf16Text(rec[33:33+n], binary.BigEndian)
					}
					if i := strings.IndexByte(name, ';'); i >= 0 {
						name = name[:i]
					}
					at := int64(binary.LittleEndian.Uint32(rec[2:])) + int64(rec[1])
					length := int64(binary.LittleEndian.Uint32(rec[10:]))
					s.describe(Member{Container: TypeISO, ContainerSize: int64(len(d)), Name: name, Packed: length, Size: length}, where, depth)
					if rec[25]&2 != 0 && rec[26] == 0 && rec[27] == 0 {
						walk(at, length)
					}
				}
			}
		}
		walk(int64(binary.LittleEndian.Uint32(t.root[2:]))+int64(t.root[1]), int64(binary.LittleEndian.Uint32(t.root[10:])))
		passed += steps
	}
	return passed
}

// isoTree is a directory tree's root record, and whether its names are
// Joliet's.
type isoTree struct {
	root   []byte
	joliet bool
}

// isoTrees are the trees ClamAV walks: the primary one, then a Joliet
// one, each when its root is not interleaved, among the first 16
// descriptors.
func isoTrees(d []byte) []isoTree {
	interleaved := func(root []byte) bool { return root[26] != 0 || root[27] != 0 }
	primary, joliets := isoVolumes(d, 16)
	var trees []isoTree
	if primary != nil && !interleaved(primary) {
		trees = append(trees, isoTree{root: primary})
	}
	if i := slices.IndexFunc(joliets, func(r []byte) bool { return !interleaved(r) }); i >= 0 {
		trees = append(trees, isoTree{root: joliets[i], joliet: true})
	}
	return trees
}

// walkTree walks an image's directory tree from root, breadth first:
// visit reads a directory, scanning its files and pushing its
// directories, until none is left or the scan stops; past isoMaxDirs
// directories the scan stops at its limit.
func walkTree[D any](s *scan, where string, depth int, root D, visit func(d D, push func(D))) {
	queue := []D{root}
	push := func(d D) { queue = append(queue, d) }
	for n := 0; len(queue) > 0 && !s.stop; n++ {
		if n >= isoMaxDirs {
			s.exceeded("Files", where, depth)
			return
		}
		cur := queue[0]
		queue = queue[1:]
		visit(cur, push)
	}
}
