package unpack

import (
	"encoding/binary"
	"strings"
	"unicode/utf16"

	"github.com/fsigkd/fsigkd/internal/diskpart"
)

// FAT12, FAT16 and FAT32 volumes (Microsoft's FAT specification): the
// boot sector's parameters, the first FAT, the root directory (a region
// of its own, or FAT32's cluster chain), each directory's entries with
// their long names; each file's cluster chain as far as its size needs,
// in place where its clusters follow one another.

const (
	fatMaxDirBytes = 64 << 20 // directory data one volume's walk reads
	fatMaxTable    = 256 << 20
)

// fatVol is a FAT volume's layout.
type fatVol struct {
	v        volume
	bits     int   // 12, 16 or 32
	cluster  int64 // bytes a cluster
	data     int64 // where cluster 2 begins
	clusters uint32
	table    []byte // the first FAT
	root     int64  // FAT12/16: the root directory's place; FAT32: 0
	rootSize int64
	rootClus uint32
}

func openFAT(v volume) (*fatVol, bool) {
	b, ok := v.read(0, 512)
	if !ok || !diskpart.FATBoot(b) {
		return nil, false
	}
	bps := int64(binary.LittleEndian.Uint16(b[11:]))
	f := &fatVol{v: v, cluster: bps * int64(b[13])}
	rsvd, fats := int64(binary.LittleEndian.Uint16(b[14:])), int64(b[16])
	rootEnt := int64(binary.LittleEndian.Uint16(b[17:]))
	fatSz := int64(binary.LittleEndian.Uint16(b[22:]))
	if fatSz == 0 {
		fatSz = int64(binary.LittleEndian.Uint32(b[36:]))
	}
	tot := int64(binary.LittleEndian.Uint16(b[19:]))
	if tot == 0 {
		tot = int64(binary.LittleEndian.Uint32(b[32:]))
	}
	rootSecs := (rootEnt*32 + bps - 1) / bps
	f.root, f.rootSize = (rsvd+fats*fatSz)*bps, rootEnt*32
	f.data = (rsvd + fats*fatSz + rootSecs) * bps
	if tot*bps < f.data || fatSz*bps > fatMaxTable {
		return nil, false
	}
	n := (tot*bps - f.data) / f.cluster
	switch {
	case n < 4085:
		f.bits = 12
	case n < 65525:
		f.bits = 16
	default:
		f.bits = 32
		f.root, f.rootSize = 0, 0
		f.rootClus = binary.LittleEndian.Uint32(b[44:]) & 0x0fffffff
	}
	f.clusters = uint32(n)
	if f.table, ok = v.read(rsvd*bps, fatSz*bps); !ok {
		return nil, false
	}
	return f, true
}

// next is the cluster after c in its chain; ok is false at the chain's
// end or a cluster that is none.
func (f *fatVol) next(c uint32) (uint32, bool) {
	var e uint32
	switch f.bits {
	case 12:
		i := int(c) + int(c)/2
		if i+1 >= len(f.table) {
			return 0, false
		}
		e = uint32(binary.LittleEndian.Uint16(f.table[i:]))
		if c&1 != 0 {
			e >>= 4
		}
		e &= 0xfff
		if e >= 0xff7 {
			return 0, false
		}
	case 16:
		if int(c)*2+2 > len(f.table) {
			return 0, false
		}
		e = uint32(binary.LittleEndian.Uint16(f.table[c*2:]))
		if e >= 0xfff7 {
			return 0, false
		}
	default:
		if int64(c)*4+4 > int64(len(f.table)) {
			return 0, false
		}
		e = binary.LittleEndian.Uint32(f.table[c*4:]) & 0x0fffffff
		if e >= 0x0ffffff7 {
			return 0, false
		}
	}
	return e, e >= 2 && e < f.clusters+2
}

// chain is where a chain's first n bytes are on the image; false when
// the chain is shorter, loops or leaves the volume.
func (f *fatVol) chain(first uint32, n int64) ([]extent, bool) {
	var ext []extent
	c := first
	for got := int64(0); got < n; got += f.cluster {
		if c < 2 || c >= f.clusters+2 {
			return ext, false
		}
		var ok bool
		if ext, ok = f.v.extents(ext, f.data+int64(c-2)*f.cluster, min(f.cluster, n-got)); !ok {
			return ext, false
		}
		if got+f.cluster >= n {
			break
		}
		if c, ok = f.next(c); !ok {
			return ext, false
		}
	}
	return ext, true
}

// dirBytes is a directory's entries: FAT12/16's root region, or a
// chain followed to its end (bounded by what is left of budget).
func (f *fatVol) dirBytes(first uint32, root bool, budget *int64) ([]byte, bool) {
	if root && f.bits != 32 {
		*budget -= f.rootSize
		return f.v.read(f.root, f.rootSize)
	}
	var out []byte
	seen := map[uint32]bool{}
	for c := first; ; {
		if c < 2 || c >= f.clusters+2 || seen[c] {
			return out, false
		}
		seen[c] = true
		if *budget -= f.cluster; *budget < 0 {
			return out, false
		}
		b, ok := f.v.read(f.data+int64(c-2)*f.cluster, f.cluster)
		if !ok {
			return out, false
		}
		out = append(out, b...)
		var more bool
		if c, more = f.next(c); !more {
			return out, true
		}
	}
}

// fat walks a FAT volume's files.
func (s *scan) fat(v volume, room *int64, where string, depth int) {
	f, ok := openFAT(v)
	broken := func(at string) { s.brokenAt(join(where, at), depth) }
	if !ok {
		broken("")
		return
	}
	type dir struct {
		first uint32
		root  bool
		path  string
	}
	budget := int64(fatMaxDirBytes)
	seen := map[uint32]bool{}
	walkTree(s, where, depth, dir{f.rootClus, true, ""}, func(cur dir, push func(dir)) {
		if !cur.root {
			if seen[cur.first] {
				return
			}
			seen[cur.first] = true
		}
		b, ok := f.dirBytes(cur.first, cur.root, &budget)
		if !ok {
			broken(cur.path)
		}
		var long []uint16
		var sum byte
		for i := 0; i+32 <= len(b) && !s.stop; i += 32 {
			e := b[i : i+32]
			switch {
			case e[0] == 0:
				return
			case e[0] == 0xe5:
				long = nil
				continue
			case e[11]&0x3f == 0x0f: // a part of a long name, last part first
				if e[0]&0x40 != 0 {
					long, sum = nil, e[13]
				}
				part := make([]uint16, 0, 13)
				for _, off := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
					part = append(part, binary.LittleEndian.Uint16(e[off:]))
				}
				long = append(part, long...)
				continue
			case e[11]&0x08 != 0: // the volume's label
				long = nil
				continue
			}
			name := fatShortName(e)
			if long != nil && fatSum(e) == sum {
				name = fatLongName(long)
			}
			long = nil
			if name == "." || name == ".." {
				continue
			}
			first := uint32(binary.LittleEndian.Uint16(e[26:]))
			if f.bits == 32 {
				first |= uint32(binary.LittleEndian.Uint16(e[20:])) << 16
			}
			path := join(cur.path, name)
			if e[11]&0x10 != 0 {
				push(dir{first, false, path})
				continue
			}
			size := int64(binary.LittleEndian.Uint32(e[28:]))
			if size == 0 {
				continue
			}
			if size > s.lim.MaxFileSize {
				s.exceeded("FileSize", join(where, path), depth)
				return
			}
			ext, ok := f.chain(first, size)
			if !ok {
				broken(path)
				continue
			}
			s.extentsFile(v.k.d, ext, room, join(where, path), depth)
		}
	})
}

// fatShortName is an 8.3 name as Windows shows it: the case its flags
// say, the first byte 0x05 standing for 0xE5.
func fatShortName(e []byte) string {
	base, ext := []byte(strings.TrimRight(string(e[:8]), " ")), strings.TrimRight(string(e[8:11]), " ")
	if len(base) > 0 && base[0] == 0x05 {
		base[0] = 0xe5
	}
	name := string(base)
	if e[12]&0x08 != 0 {
		name = strings.ToLower(name)
	}
	if e[12]&0x10 != 0 {
		ext = strings.ToLower(ext)
	}
	if ext != "" {
		name += "." + ext
	}
	return latin1([]byte(name))
}

// fatSum is the checksum of a short name its long name's parts carry.
func fatSum(e []byte) byte {
	var sum byte
	for _, c := range e[:11] {
		sum = (sum>>1 | sum<<7) + c
	}
	return sum
}

// fatLongName is a long name's characters up to its end (0, then 0xFFFF
// padding).
func fatLongName(u []uint16) string {
	for i, c := range u {
		if c == 0 {
			u = u[:i]
			break
		}
	}
	return string(utf16.Decode(u))
}
