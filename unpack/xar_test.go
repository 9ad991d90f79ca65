package unpack

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// xarOf lays out a XAR archive of a table of contents and a heap.
func xarOf(toc string, heap []byte) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write([]byte(toc))
	w.Close()
	h := make([]byte, 28)
	copy(h, "xar!")
	binary.BigEndian.PutUint16(h[4:], 28)
	binary.BigEndian.PutUint16(h[6:], 1)
	binary.BigEndian.PutUint64(h[8:], uint64(z.Len()))
	binary.BigEndian.PutUint64(h[16:], uint64(len(toc)))
	return append(append(h, z.Bytes()...), heap...)
}

// xarFile is a table's entry for a file stored at offset, length bytes.
func xarFile(name string, offset, length int, encoding string) string {
	return fmt.Sprintf(`<file><name>%s</name><type>file</type><data><offset>%d</offset><length>%d</length><size>%d</size><encoding style="%s"/></data></file>`,
		name, offset, length, length, encoding)
}

// TestXarDamaged: a file whose data lies outside the heap is said
// damaged, one of an encoding not read is unopened (suspected), the
// others of the archive still walked; directories nested past 256 deep
// and a table that does not parse are damage, not a failure.
func TestXarDamaged(t *testing.T) {
	mark := []byte("XAR-MARK")
	match := func(data []byte, found func(string) bool) {
		if bytes.Contains(data, mark) {
			found("Mark")
		}
	}
	heap := []byte("....XAR-MARK....")
	toc := "<xar><toc>" + xarFile("out.bin", 10, 100, "application/octet-stream") + xarFile("odd.bin", 0, 4, "application/x-lzfse") +
		`<file><name>d</name><type>directory</type>` + xarFile("in.bin", 4, 8, "application/octet-stream") + `</file></toc></xar>`
	got := Scan(xarOf(toc, heap), Options{Archives: true}, Limits{}, match)
	want := map[string]string{"out.bin": "Heuristics.Broken.Archive", "odd.bin": "Heuristics.Unsupported.XAR", "d/in.bin": "Mark"}
	for _, d := range got {
		if want[d.Path] == d.Name {
			delete(want, d.Path)
		}
	}
	if len(want) != 0 {
		t.Fatalf("%+v: missing %v", got, want)
	}
	deep := "<xar><toc>" + strings.Repeat("<file><name>d</name><type>directory</type>", 300) + "</toc></xar>"
	for _, toc := range []string{deep, "<xar><toc><file><name>x", "not xml at all"} {
		got := Scan(xarOf(toc, nil), Options{Archives: true}, Limits{}, match)
		if len(got) == 0 || got[len(got)-1].Name != "Heuristics.Broken.Archive" {
			t.Fatalf("%.40q: %+v", toc, got)
		}
	}
}

// TestXarTableBounded: a table of contents that unpacks past 16 MiB (a
// few KiB packed) is not unpacked whole: the scan stops at its limit.
func TestXarTableBounded(t *testing.T) {
	toc := "<xar><toc>" + strings.Repeat(" ", 20<<20) + "</toc></xar>"
	got := Scan(xarOf(toc, nil), Options{Archives: true}, Limits{}, func([]byte, func(string) bool) {})
	if len(got) != 1 || got[0].Name != "Heuristics.Limits.Exceeded.FileSize" {
		t.Fatalf("%+v", got)
	}
}

func FuzzXar(f *testing.F) {
	f.Add([]byte("<xar><toc>"+xarFile("a", 0, 4, "application/x-gzip")+"</toc></xar>"), []byte("abcd"))
	f.Fuzz(func(t *testing.T, toc, heap []byte) {
		Scan(xarOf(string(toc), heap), Options{Archives: true}, Limits{MaxFiles: 100}, func([]byte, func(string) bool) {})
	})
}
