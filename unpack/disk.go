package unpack

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/fsigkd/fsigkd/internal/diskpart"
)

// Disk images: the .vhd, .vhdx and .img files Windows mounts with a
// double click as it mounts an .iso, which mail and downloads have
// carried programs in to keep them from scanners (and from the mark of
// the web) since 2022. Read here: the image (raw; VHD fixed, dynamic or
// differencing, its blocks where its table says; VHDX, its blocks where
// its table says, by the newer valid header), the partitions (MBR with
// its extended partitions, GPT; none: the disk is one volume), and each
// volume's file system: FAT12/16/32 (fat.go), exFAT (exfat.go) and NTFS
// (ntfs.go); every
// file is walked, in place where it lies in one piece. A volume of
// another file system is walked as one object (its raw bytes). What the
// image's own structures cannot say (a VHDX whose log must be replayed
// first, a table pointing outside the image) is suspected, not judged
// clean.

const (
	diskMaxBlocks = 1 << 22  // a dynamic image's blocks (8 TiB of 2 MiB)
	diskMaxCopy   = 64 << 20 // a structure copied out of several blocks
)

// disk is a virtual disk as an image holds it: blocks of block bytes,
// each at an offset in the image or a hole (-1).
type disk struct {
	d      []byte
	size   int64
	block  int64
	blocks []int64
}

// rawDisk is an image that is the disk itself.
func rawDisk(d []byte) *disk {
	return &disk{d: d, size: int64(len(d)), block: max(int64(len(d)), 1), blocks: []int64{0}}
}

// extents appends where the disk's bytes [off, off+n) are in the image;
// false when they are not all on the disk or the image.
func (k *disk) extents(ext []extent, off, n int64) ([]extent, bool) {
	if off < 0 || n < 0 || off > k.size || n > k.size-off {
		return ext, false
	}
	for n > 0 {
		b, in := off/k.block, off%k.block
		take := min(n, k.block-in)
		e := extent{off: -1, n: take}
		if b < int64(len(k.blocks)) && k.blocks[b] >= 0 {
			e.off = k.blocks[b] + in
			if e.off+take > int64(len(k.d)) {
				return ext, false
			}
		}
		if l := len(ext) - 1; l >= 0 && (ext[l].off < 0 && e.off < 0 || ext[l].off >= 0 && ext[l].off+ext[l].n == e.off) {
			ext[l].n += take
		} else {
			ext = append(ext, e)
		}
		off, n = off+take, n-take
	}
	return ext, true
}

// read gives the disk's bytes [off, off+n): the image's own when they
// lie in one piece, else a copy (of at most diskMaxCopy bytes).
func (k *disk) read(off, n int64) ([]byte, bool) {
	ext, ok := k.extents(nil, off, n)
	if !ok {
		return nil, false
	}
	if len(ext) == 1 && ext[0].off >= 0 {
		return k.d[ext[0].off : ext[0].off+n], true
	}
	if n > diskMaxCopy {
		return nil, false
	}
	return gather(k.d, ext), true
}

// gather copies extents of d out, one after another (holes as zeros).
func gather(d []byte, ext []extent) []byte {
	var b []byte
	for _, e := range ext {
		if e.off < 0 {
			b = append(b, make([]byte, e.n)...)
		} else {
			b = append(b, d[e.off:e.off+e.n]...)
		}
	}
	return b
}

// A volume: a stretch of a disk (a partition, or the whole disk).
type volume struct {
	k           *disk
	start, size int64
}

func (v volume) read(off, n int64) ([]byte, bool) {
	if off < 0 || n < 0 || off > v.size || n > v.size-off {
		return nil, false
	}
	return v.k.read(v.start+off, n)
}

func (v volume) extents(ext []extent, off, n int64) ([]extent, bool) {
	if off < 0 || n < 0 || off > v.size || n > v.size-off {
		return ext, false
	}
	return v.k.extents(ext, v.start+off, n)
}

var (
	vhdCookie  = []byte("conectix")
	vhdxMagic  = []byte("vhdxfile")
	crc32c     = crc32.MakeTable(crc32.Castagnoli)
	vhdxBAT    = []byte{0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08}
	vhdxMeta   = []byte{0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b, 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e}
	vhdxParams = []byte{0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d, 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b}
	vhdxSize   = []byte{0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48, 0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8}
	vhdxSector = []byte{0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47, 0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f}
)

// isDiskImage tells whether d is a VHD or VHDX image, or a raw disk or
// volume whose file system is one read here.
func isDiskImage(d []byte) bool {
	switch {
	case bytes.HasPrefix(d, vhdxMagic), bytes.HasPrefix(d, vhdCookie):
		return true
	case len(d) >= 1024 && bytes.Equal(d[len(d)-512:len(d)-504], vhdCookie):
		return true
	}
	if len(d) < 1024 || d[510] != 0x55 || d[511] != 0xaa {
		return false
	}
	k := rawDisk(d)
	for _, v := range partitions(k) {
		if fsOf(v) != "" {
			return true
		}
	}
	return false
}

// openDisk reads an image's format: the disk it holds, or why not.
func openDisk(d []byte) (*disk, string) {
	switch {
	case bytes.HasPrefix(d, vhdxMagic):
		return openVHDX(d)
	case bytes.HasPrefix(d, vhdCookie):
		return openVHD(d, d[:512])
	case len(d) >= 1024 && bytes.Equal(d[len(d)-512:len(d)-504], vhdCookie):
		return openVHD(d, d[len(d)-512:])
	}
	return rawDisk(d), ""
}

// openVHD reads a VHD by its footer: fixed (the disk, then the footer),
// or dynamic and differencing (a header, a table of blocks; a block's
// sector bitmap, then its data). A differencing disk's blocks its parent
// holds are read as zeros.
func openVHD(d, footer []byte) (*disk, string) {
	if len(footer) < 512 {
		return nil, "footer"
	}
	size := int64(binary.BigEndian.Uint64(footer[48:]))
	switch binary.BigEndian.Uint32(footer[60:]) {
	case 2: // fixed
		k := rawDisk(d[:len(d)-512])
		if size >= 0 && size <= k.size {
			k.size = size
		}
		return k, ""
	case 3, 4:
	default:
		return nil, "disk type"
	}
	hdr := int64(binary.BigEndian.Uint64(footer[16:]))
	if hdr < 0 || hdr > int64(len(d))-1024 || !bytes.Equal(d[hdr:hdr+8], []byte("cxsparse")) {
		return nil, "dynamic header"
	}
	h := d[hdr:]
	table := int64(binary.BigEndian.Uint64(h[16:]))
	entries := int64(binary.BigEndian.Uint32(h[28:]))
	block := int64(binary.BigEndian.Uint32(h[32:]))
	if block < 512 || block&(block-1) != 0 || block > 1<<30 || entries > diskMaxBlocks ||
		table < 0 || table > int64(len(d)) || entries*4 > int64(len(d))-table || size < 0 || size > entries*block {
		return nil, "block table"
	}
	bitmap := (block/512/8 + 511) &^ 511
	k := &disk{d: d, size: size, block: block, blocks: make([]int64, entries)}
	for i := range k.blocks {
		s := binary.BigEndian.Uint32(d[table+4*int64(i):])
		if s == 0xffffffff {
			k.blocks[i] = -1
			continue
		}
		k.blocks[i] = int64(s)*512 + bitmap
		if k.blocks[i]+block > int64(len(d)) {
			return nil, "block past the image"
		}
	}
	return k, ""
}

// openVHDX reads a VHDX: the valid header with the higher sequence
// number, its region table, the metadata (block size, disk size, sector
// size) and the block table. An image whose log is not empty is one
// Windows changes as it opens it: not read.
func openVHDX(d []byte) (*disk, string) {
	const kib64 = 64 << 10
	var head []byte
	var seq uint64
	for _, at := range []int{kib64, 2 * kib64} {
		if at+4096 > len(d) || !bytes.Equal(d[at:at+4], []byte("head")) || !vhdxSum(d[at:at+4096]) {
			continue
		}
		if s := binary.LittleEndian.Uint64(d[at+8:]); head == nil || s > seq {
			head, seq = d[at:at+4096], s
		}
	}
	if head == nil {
		return nil, "header"
	}
	if !allZero(head[48:64]) {
		return nil, "log to replay"
	}
	var bat, meta []byte
	for _, at := range []int{3 * kib64, 4 * kib64} {
		if at+kib64 > len(d) || !bytes.Equal(d[at:at+4], []byte("regi")) || !vhdxSum(d[at:at+kib64]) {
			continue
		}
		n := int(binary.LittleEndian.Uint32(d[at+8:]))
		for i := 0; i < n && 16+32*(i+1) <= kib64; i++ {
			e := d[at+16+32*i:]
			off, length := int64(binary.LittleEndian.Uint64(e[16:])), int64(binary.LittleEndian.Uint32(e[24:]))
			if off < 0 || off > int64(len(d)) || length > int64(len(d))-off {
				return nil, "region past the image"
			}
			switch {
			case bytes.Equal(e[:16], vhdxBAT):
				bat = d[off : off+length]
			case bytes.Equal(e[:16], vhdxMeta):
				meta = d[off : off+length]
			}
		}
		break
	}
	if bat == nil || meta == nil || len(meta) < 32 || !bytes.Equal(meta[:8], []byte("metadata")) {
		return nil, "regions"
	}
	var block, size, sector int64
	n := int(binary.LittleEndian.Uint16(meta[10:]))
	for i := 0; i < n && 32+32*(i+1) <= len(meta); i++ {
		e := meta[32+32*i:]
		off, length := int(binary.LittleEndian.Uint32(e[16:])), int(binary.LittleEndian.Uint32(e[20:]))
		if off < 0 || off > len(meta) || length < 4 || length > len(meta)-off {
			continue
		}
		v := meta[off : off+length]
		switch {
		case bytes.Equal(e[:16], vhdxParams):
			block = int64(binary.LittleEndian.Uint32(v))
		case bytes.Equal(e[:16], vhdxSize) && length >= 8:
			size = int64(binary.LittleEndian.Uint64(v))
		case bytes.Equal(e[:16], vhdxSector):
			sector = int64(binary.LittleEndian.Uint32(v))
		}
	}
	if block < 1<<20 || block > 256<<20 || block&(block-1) != 0 || sector != 512 && sector != 4096 || size < 0 || size/block >= diskMaxBlocks {
		return nil, "metadata"
	}
	chunk := (1 << 23) * sector / block // blocks a sector bitmap entry follows
	blocks := (size + block - 1) / block
	if blocks+blocks/chunk > int64(len(bat))/8 {
		return nil, "block table"
	}
	k := &disk{d: d, size: size, block: block, blocks: make([]int64, blocks)}
	for b := range blocks {
		i := b + b/chunk
		if 8*(i+1) > int64(len(bat)) {
			return nil, "block table"
		}
		e := binary.LittleEndian.Uint64(bat[8*i:])
		k.blocks[b] = -1
		switch e & 7 {
		case 6, 7: // present (fully; partly: a differencing disk's)
			off := int64(e >> 20 << 20)
			if off < 0 || off > int64(len(d))-block {
				return nil, "block past the image"
			}
			k.blocks[b] = off
		}
	}
	return k, ""
}

// vhdxSum checks a VHDX structure's CRC-32C (its field at 4 taken as 0).
func vhdxSum(b []byte) bool {
	want := binary.LittleEndian.Uint32(b[4:])
	c := crc32.Update(0, crc32c, b[:4])
	c = crc32.Update(c, crc32c, []byte{0, 0, 0, 0})
	return crc32.Update(c, crc32c, b[8:]) == want
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// partitions are a disk's volumes: its partitions (diskpart: the MBR's,
// the logical ones of its extended partitions too, or the GPT's); with
// none, or a volume's own boot sector at its start, the disk itself.
func partitions(k *disk) []volume {
	whole := []volume{{k: k, size: k.size}}
	if fsOf(whole[0]) != "" {
		return whole
	}
	parts := diskpart.Partitions(k.read, k.size)
	if len(parts) == 0 {
		return whole
	}
	vols := make([]volume, len(parts))
	for i, p := range parts {
		vols[i] = volume{k: k, start: p.Start, size: p.Size}
	}
	return vols
}

// fsOf names a volume's file system: "fat", "exfat", "ntfs", or "" for
// another.
func fsOf(v volume) string {
	b, ok := v.read(0, 512)
	if !ok {
		return ""
	}
	return diskpart.FileSystem(b)
}

// diskImage walks a disk image's volumes' files.
func (s *scan) diskImage(data []byte, where string, depth int) {
	k, _ := openDisk(data)
	if k == nil {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	room := s.inPlaceRoom(len(data))
	vols := partitions(k)
	for i, v := range vols {
		if s.stop {
			return
		}
		at := where
		if len(vols) > 1 || v.start > 0 {
			at = join(where, fmt.Sprintf("partition-%d", i+1))
		}
		switch fsOf(v) {
		case "fat":
			s.fat(v, room, at, depth)
		case "ntfs":
			s.ntfs(v, room, at, depth)
		case "exfat":
			s.exfat(v, room, at, depth)
		default:
			if len(k.blocks) == 1 && k.blocks[0] == 0 && v.start == 0 && v.size == int64(len(data)) {
				continue // the image itself, scanned as it is
			}
			s.diskFile(k.d, v, 0, v.size, room, at, depth)
		}
	}
}

// brokenAt says that what is at path could not be read whole: suspected.
func (s *scan) brokenAt(path string, depth int) {
	s.add(Detection{Name: "Heuristics.Broken.Archive", Path: path, Kind: Suspected, Depth: depth})
}

// diskFile walks the bytes [off, off+n) of a volume as a file: in place
// when the image holds them in one piece.
func (s *scan) diskFile(d []byte, v volume, off, n int64, room *int64, where string, depth int) {
	ext, ok := v.extents(nil, off, n)
	if !ok {
		s.brokenAt(where, depth)
		return
	}
	s.extentsFile(d, ext, room, where, depth)
}

// extentsFile walks a file whose data is ext, of the image d.
func (s *scan) extentsFile(d []byte, ext []extent, room *int64, where string, depth int) {
	var n int64
	for _, e := range ext {
		n += e.n
	}
	if n > s.lim.MaxFileSize {
		s.exceeded("FileSize", where, depth)
		return
	}
	if len(ext) == 1 && ext[0].off >= 0 {
		s.inPlace(d[ext[0].off:ext[0].off+n], room, where, depth)
		return
	}
	r, recorded := extentsReader(d, ext)
	s.member(r, recorded, where, depth)
}
