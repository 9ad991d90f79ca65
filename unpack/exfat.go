package unpack

import (
	"bytes"
	"encoding/binary"
	"unicode/utf16"
)

// exFAT volumes (Microsoft's exFAT specification): the boot sector's
// layout, the FAT, and each directory's entry sets (a file entry, its
// stream extension, its name entries) from the root; each file's data
// in its clusters, one after another where the stream says it needs no
// FAT chain, else along its chain, as far as its valid data length
// (zeros after it, up to its length).

type exfatVol struct {
	v        volume
	cluster  int64
	heap     int64 // where cluster 2 begins
	clusters uint32
	table    []byte
	root     uint32
}

func openExFAT(v volume) (*exfatVol, bool) {
	b, ok := v.read(0, 512)
	if !ok || !bytes.Equal(b[3:11], []byte("EXFAT   ")) {
		return nil, false
	}
	sectorShift, clusterShift := int(b[108]), int(b[109])
	if sectorShift < 9 || sectorShift > 12 || clusterShift > 25-sectorShift {
		return nil, false
	}
	sector := int64(1) << sectorShift
	f := &exfatVol{v: v, cluster: sector << clusterShift}
	fatOff, fatLen := int64(binary.LittleEndian.Uint32(b[80:]))*sector, int64(binary.LittleEndian.Uint32(b[84:]))*sector
	f.heap = int64(binary.LittleEndian.Uint32(b[88:])) * sector
	f.clusters = binary.LittleEndian.Uint32(b[92:])
	f.root = binary.LittleEndian.Uint32(b[96:])
	if fatLen > fatMaxTable || int64(f.clusters+2)*4 > fatLen+4 {
		return nil, false
	}
	if f.table, ok = v.read(fatOff, fatLen); !ok {
		return nil, false
	}
	return f, true
}

func (f *exfatVol) valid(c uint32) bool { return c >= 2 && c < f.clusters+2 }

// extents is where a stream's first n bytes are: its clusters from
// first on, in a row (contiguous) or along its FAT chain.
func (f *exfatVol) extents(first uint32, n int64, contiguous bool) ([]extent, bool) {
	var ext []extent
	c := first
	for got := int64(0); got < n; got += f.cluster {
		if !f.valid(c) {
			return ext, false
		}
		var ok bool
		if ext, ok = f.v.extents(ext, f.heap+int64(c-2)*f.cluster, min(f.cluster, n-got)); !ok {
			return ext, false
		}
		if contiguous {
			c++
			continue
		}
		if int(c)*4+4 > len(f.table) {
			return ext, false
		}
		c = binary.LittleEndian.Uint32(f.table[c*4:])
		if got+f.cluster < n && !f.valid(c) {
			return ext, false
		}
	}
	return ext, true
}

// exfat walks an exFAT volume's files.
func (s *scan) exfat(v volume, room *int64, where string, depth int) {
	broken := func(at string) { s.brokenAt(join(where, at), depth) }
	f, ok := openExFAT(v)
	if !ok {
		broken("")
		return
	}
	type dir struct {
		first      uint32
		size       int64
		contiguous bool
		path       string
	}
	budget := int64(fatMaxDirBytes)
	// The root has no stream entry: its chain, to its end.
	rootSize := int64(0)
	seen := map[uint32]bool{}
	for c := f.root; f.valid(c) && !seen[c] && rootSize < fatMaxDirBytes && int(c)*4+4 <= len(f.table); c = binary.LittleEndian.Uint32(f.table[c*4:]) {
		seen[c] = true
		rootSize += f.cluster
	}
	clear(seen)
	walkTree(s, where, depth, dir{f.root, rootSize, false, ""}, func(cur dir, push func(dir)) {
		if seen[cur.first] {
			return
		}
		seen[cur.first] = true
		if budget -= cur.size; budget < 0 {
			broken(cur.path)
			return
		}
		ext, ok := f.extents(cur.first, cur.size, cur.contiguous)
		if !ok {
			broken(cur.path)
			return
		}
		b := gather(f.v.k.d, ext)
		for i := 0; i+32 <= len(b) && !s.stop; i += 32 {
			e := b[i : i+32]
			if e[0] == 0 {
				return
			}
			if e[0] != 0x85 {
				continue
			}
			count := int(e[1])
			attrs := binary.LittleEndian.Uint16(e[4:])
			if count < 2 || i+32*(count+1) > len(b) || b[i+32] != 0xc0 {
				broken(cur.path)
				continue
			}
			st := b[i+32 : i+64]
			nameLen := int(st[3])
			var name []uint16
			for j := 2; j <= count && len(name) < nameLen; j++ {
				ne := b[i+32*j : i+32*j+32]
				if ne[0] != 0xc1 {
					break
				}
				for k := 2; k < 32 && len(name) < nameLen; k += 2 {
					name = append(name, binary.LittleEndian.Uint16(ne[k:]))
				}
			}
			i += 32 * count
			path := join(cur.path, string(utf16.Decode(name)))
			contiguous := st[1]&2 != 0
			first := binary.LittleEndian.Uint32(st[20:])
			valid, size := int64(binary.LittleEndian.Uint64(st[8:])), int64(binary.LittleEndian.Uint64(st[24:]))
			if valid < 0 || size < 0 || valid > size {
				broken(path)
				continue
			}
			if attrs&0x10 != 0 {
				push(dir{first, min(size, fatMaxDirBytes), contiguous, path})
				continue
			}
			if size == 0 {
				continue
			}
			if size > s.lim.MaxFileSize {
				s.exceeded("FileSize", join(where, path), depth)
				return
			}
			ext, ok := f.extents(first, valid, contiguous)
			if !ok {
				broken(path)
				continue
			}
			if size > valid {
				ext = append(ext, extent{-1, size - valid}) // past the valid data: zeros
			}
			s.extentsFile(f.v.k.d, ext, room, join(where, path), depth)
		}
	})
}
