package diskpart

import (
	"encoding/binary"
	"testing"
)

// mbr is a first sector with the given entries (type, start sector,
// sectors).
func mbr(entries ...[3]uint32) []byte {
	b := make([]byte, 512)
	for i, e := range entries {
		p := b[446+16*i:]
		p[4] = byte(e[0])
		binary.LittleEndian.PutUint32(p[8:], e[1])
		binary.LittleEndian.PutUint32(p[12:], e[2])
	}
	b[510], b[511] = 0x55, 0xaa
	return b
}

// TestPartitionsPrimaryAndLogical: primary partitions, and an extended
// one's chain of logical partitions, each from its own boot record.
func TestPartitionsPrimaryAndLogical(t *testing.T) {
	d := make([]byte, 64*512)
	copy(d, mbr([3]uint32{0x0c, 2, 8}, [3]uint32{0x05, 16, 40}))
	copy(d[16*512:], mbr([3]uint32{0x07, 1, 4}, [3]uint32{0x05, 10, 20})) // the next record: 16+10
	copy(d[26*512:], mbr([3]uint32{0x07, 1, 5}))
	got := Partitions(Bytes(d), int64(len(d)))
	want := []Extent{{2 * 512, 8 * 512}, {17 * 512, 4 * 512}, {27 * 512, 5 * 512}}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
}

// TestLogicalChainThatLoops: a chain of boot records whose next names
// itself is followed once.
func TestLogicalChainThatLoops(t *testing.T) {
	d := make([]byte, 32*512)
	copy(d, mbr([3]uint32{0x05, 4, 20}))
	copy(d[4*512:], mbr([3]uint32{0x07, 1, 2}, [3]uint32{0x05, 0, 20}))
	if got := Partitions(Bytes(d), int64(len(d))); len(got) != 1 {
		t.Fatalf("a looping chain: %v", got)
	}
}

// TestNoPartitionTable: no signature, or entries that are no table's
// (a boot flag other than 0 or 0x80: a volume's boot code), give none.
func TestNoPartitionTable(t *testing.T) {
	bad := mbr([3]uint32{0x07, 1, 8})
	bad[446] = 0x12
	for name, d := range map[string][]byte{"no signature": make([]byte, 1024), "boot code": append(bad, make([]byte, 4096)...)} {
		if got := Partitions(Bytes(d), int64(len(d))); got != nil {
			t.Errorf("%s: %v", name, got)
		}
	}
}

// FuzzPartitions: any first sectors give partitions within bounds, in
// bounded number, without a panic.
func FuzzPartitions(f *testing.F) {
	d := make([]byte, 8*512)
	copy(d, mbr([3]uint32{0x05, 1, 6}))
	copy(d[512:], mbr([3]uint32{0x07, 1, 2}, [3]uint32{0x05, 3, 2}))
	f.Add(d)
	g := make([]byte, 4*512)
	copy(g, mbr([3]uint32{0xee, 1, 3}))
	copy(g[512:], "EFI PART")
	f.Add(g)
	f.Fuzz(func(t *testing.T, d []byte) {
		got := Partitions(Bytes(d), int64(len(d)))
		if len(got) > MaxPartitions {
			t.Fatalf("%d partitions", len(got))
		}
		for _, p := range got {
			if p.Size < 0 {
				t.Fatalf("a negative size: %v", p)
			}
		}
	})
}
