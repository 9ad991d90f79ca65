// Package diskpart reads what a raw disk holds: its partition table (an
// MBR, with the logical partitions of its extended ones, or a GPT) and
// each volume's file system by its boot sector. The scanner (package
// unpack), which then walks the volumes, and the type rules (package
// policy: block_types' vhd), which must not depend on the archive
// readers, both read disks by it, so that what the rules call a disk
// image is what the scanner opens.
package diskpart

import (
	"bytes"
	"encoding/binary"
)

// MaxPartitions bounds the partitions read of one disk (a chain of
// extended boot records is followed no further).
const MaxPartitions = 128

// Extent is a partition: its start and size in bytes.
type Extent struct{ Start, Size int64 }

// ReadFunc gives the n bytes of the disk at off; false when it cannot
// (past its end, a hole it cannot read).
type ReadFunc func(off, n int64) ([]byte, bool)

// Bytes reads a disk held in memory.
func Bytes(d []byte) ReadFunc {
	return func(off, n int64) ([]byte, bool) {
		if off < 0 || n < 0 || off > int64(len(d)) || n > int64(len(d))-off {
			return nil, false
		}
		return d[off : off+n], true
	}
}

// Partitions are the partitions of a disk of size bytes: its MBR's (the
// logical ones of its extended partitions too) or its GPT's; nil when it
// has no partition table (no MBR signature, a first sector whose entries
// are no partition table's, no partition).
func Partitions(read ReadFunc, size int64) []Extent {
	mbr, ok := read(0, 512)
	if !ok || mbr[510] != 0x55 || mbr[511] != 0xaa {
		return nil
	}
	var parts []Extent
	for i := range 4 {
		e := mbr[446+16*i:]
		typ := e[4]
		start, n := int64(binary.LittleEndian.Uint32(e[8:]))*512, int64(binary.LittleEndian.Uint32(e[12:]))*512
		switch {
		case e[0]&0x7f != 0:
			return nil // not a partition table
		case typ == 0 || n == 0:
		case typ == 0xee:
			if g := gpt(read, size); g != nil {
				return g[:min(len(g), MaxPartitions)]
			}
		case typ == 0x05 || typ == 0x0f || typ == 0x85:
			parts = append(parts, logical(read, size, start)...)
		default:
			parts = append(parts, Extent{start, min(n, max(size-start, 0))})
		}
	}
	return parts[:min(len(parts), MaxPartitions)]
}

// logical follows an extended partition's chain of boot records: each a
// logical partition (from itself) and the next record (from the
// extended partition's start).
func logical(read ReadFunc, size, ext int64) []Extent {
	var parts []Extent
	seen := map[int64]bool{}
	for at := ext; len(parts) < MaxPartitions && !seen[at]; {
		seen[at] = true
		b, ok := read(at, 512)
		if !ok || b[510] != 0x55 || b[511] != 0xaa {
			break
		}
		e, next := b[446:], b[462:]
		if start, n := int64(binary.LittleEndian.Uint32(e[8:]))*512, int64(binary.LittleEndian.Uint32(e[12:]))*512; e[4] != 0 && n > 0 {
			parts = append(parts, Extent{at + start, min(n, max(size-at-start, 0))})
		}
		if next[4] == 0 {
			break
		}
		at = ext + int64(binary.LittleEndian.Uint32(next[8:]))*512
	}
	return parts
}

// gpt reads a GPT (sectors of 512 or 4,096 bytes): each entry with a type
// is a partition.
func gpt(read ReadFunc, size int64) []Extent {
	for _, sector := range []int64{512, 4096} {
		h, ok := read(sector, 92)
		if !ok || !bytes.Equal(h[:8], []byte("EFI PART")) {
			continue
		}
		at := int64(binary.LittleEndian.Uint64(h[72:])) * sector
		n, esize := int64(binary.LittleEndian.Uint32(h[80:])), int64(binary.LittleEndian.Uint32(h[84:]))
		if esize < 128 || esize > 4096 || n > 1024 {
			return nil
		}
		var parts []Extent
		for i := range n {
			e, ok := read(at+i*esize, 128)
			if !ok {
				break
			}
			if allZero(e[:16]) {
				continue
			}
			first, last := int64(binary.LittleEndian.Uint64(e[32:])), int64(binary.LittleEndian.Uint64(e[40:]))
			if first < 0 || last < first || last >= size/sector {
				continue
			}
			parts = append(parts, Extent{first * sector, (last - first + 1) * sector})
		}
		return parts
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// FileSystem names the file system whose boot sector b starts with:
// "fat", "exfat", "ntfs", or "" for another (or none).
func FileSystem(b []byte) string {
	if len(b) < 512 {
		return ""
	}
	switch {
	case bytes.Equal(b[3:11], []byte("NTFS    ")):
		return "ntfs"
	case bytes.Equal(b[3:11], []byte("EXFAT   ")):
		return "exfat"
	case FATBoot(b):
		return "fat"
	}
	return ""
}

// FATBoot tells whether a boot sector's parameters are a FAT volume's
// (a jump, a sector size, a power of two of sectors a cluster, reserved
// sectors, one to four FATs of some size, a total of sectors).
func FATBoot(b []byte) bool {
	if len(b) < 512 || b[0] != 0xeb && b[0] != 0xe9 {
		return false
	}
	bps := binary.LittleEndian.Uint16(b[11:])
	spc := b[13]
	rsvd := binary.LittleEndian.Uint16(b[14:])
	fats := b[16]
	fatSz := uint32(binary.LittleEndian.Uint16(b[22:]))
	if fatSz == 0 {
		fatSz = binary.LittleEndian.Uint32(b[36:])
	}
	tot := uint32(binary.LittleEndian.Uint16(b[19:]))
	if tot == 0 {
		tot = binary.LittleEndian.Uint32(b[32:])
	}
	return (bps == 512 || bps == 1024 || bps == 2048 || bps == 4096) &&
		spc != 0 && spc&(spc-1) == 0 && rsvd > 0 && fats > 0 && fats <= 4 && fatSz > 0 && tot > 0
}
