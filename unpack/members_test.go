package unpack

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
)

// FuzzMembersDescribed: whatever a container says of its members, the
// descriptions a scan gives are sane (no negative size or place, a
// container type named) and the scan neither panics nor runs past its
// limits; a detection reported from a description is the container's.
func FuzzMembersDescribed(f *testing.F) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "a/e.com", Size: int64(len(eicar.String)), Mode: 0o644})
	tw.Write([]byte(eicar.String))
	tw.Close()
	f.Add(tb.Bytes())
	f.Add(eicar.Zip(map[string][]byte{"dir/e.com": []byte(eicar.String), "b.txt": []byte("b")}))
	f.Add(newcOf("e.com", []byte(eicar.String)))
	f.Add(arjStoredOf("e.com", []byte(eicar.String)))
	f.Add([]byte(eicar.Mails()["base64"]))
	f.Fuzz(func(t *testing.T, d []byte) {
		found := Scan(d, Options{Archives: true, MIME: true, Members: func(m Member, found func(string) bool) {
			if m.Size < 0 || m.Packed < 0 || m.Pos < 0 || m.Container == "" || m.ContainerSize <= 0 {
				t.Fatalf("described as %+v", m)
			}
			found("Test.Described")
		}}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
		for _, x := range found {
			if x.Name == "Test.Described" && x.Depth < 0 {
				t.Fatalf("a description's detection at depth %d", x.Depth)
			}
		}
	})
}

// TestISODescriptionOfLoopingDirectoriesIsBounded: an image whose 1,024
// directory blocks hold records that each point back at the first with
// the longest extent a record can say (each such record has the walk
// pass over every block already seen) is described within a bounded
// number of blocks passed over, not records times blocks (61 million
// here); and a small image of files is described whole, its one block
// passed over once.
func TestISODescriptionOfLoopingDirectoriesIsBounded(t *testing.T) {
	const first, blocks = 18, 1024
	d := make([]byte, (first+blocks+1)*isoSector)
	record := func(b []byte, block, size uint32) {
		b[0], b[32], b[33], b[25] = 34, 1, 'A', 2
		binary.LittleEndian.PutUint32(b[2:], block)
		binary.LittleEndian.PutUint32(b[10:], size)
	}
	pvd := d[16*isoSector:]
	pvd[0] = 1
	copy(pvd[1:], "CD001")
	record(pvd[156:], first, blocks*isoSector)
	term := d[17*isoSector:]
	term[0] = 255
	copy(term[1:], "CD001")
	for b := first; b < first+blocks; b++ {
		for r := 0; r+34 <= isoSector; r += 34 {
			record(d[b*isoSector+r:], first, 0xffffffff)
		}
	}
	described := 0
	s := &scan{lim: Limits{}.withDefaults(), opt: Options{Members: func(Member, func(string) bool) { described++ }}}
	if passed := s.isoDescribe(d, "", 1); passed > isoMaxSteps+1 || described == 0 {
		t.Fatalf("passed over %d blocks (at most %d), %d records described", passed, isoMaxSteps, described)
	}
	described = 0
	small := d[:(first+1)*isoSector]
	record(small[16*isoSector+156:], first, isoSector)
	for r := 0; r+34 <= isoSector; r += 34 {
		small[first*isoSector+r+25] = 0 // files
	}
	if passed := s.isoDescribe(small, "", 1); passed != 1 || described != isoSector/34 {
		t.Fatalf("a small image: passed over %d blocks, %d records described", passed, described)
	}
}

// TestDescriptionsOfAZipOfDirectoriesAreBounded: a zip of directory
// records alone (no file to count against MaxFiles) is described at most
// four times MaxFiles, and then the scan stops at the limit, reported.
func TestDescriptionsOfAZipOfDirectoriesAreBounded(t *testing.T) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := range 500 {
		zw.Create(fmt.Sprintf("d%d/", i))
	}
	zw.Close()
	described := 0
	found := Scan(b.Bytes(), Options{Archives: true, Members: func(Member, func(string) bool) { described++ }},
		Limits{MaxFiles: 100}, func([]byte, func(string) bool) {})
	if described != 400 || len(found) != 1 || found[0].Name != limitPrefix+"Files" {
		t.Fatalf("%d described, found %v", described, found)
	}
}
