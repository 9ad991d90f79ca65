package unpack

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
)

// lhaStoredOf lays out a level-0 LHA archive of one stored (-lh0-) member.
func lhaStoredOf(name string, data []byte) []byte {
	var h bytes.Buffer
	h.Write([]byte{0, 0})
	h.WriteString("-lh0-")
	binary.Write(&h, binary.LittleEndian, uint32(len(data)))
	binary.Write(&h, binary.LittleEndian, uint32(len(data)))
	h.Write([]byte{0, 0, 0, 0, 0x20, 0, byte(len(name))})
	h.WriteString(name)
	binary.Write(&h, binary.LittleEndian, crc16(data))
	b := h.Bytes()
	b[0] = byte(len(b) - 2)
	return append(append(b, data...), 0)
}

// arjStoredOf lays out an ARJ archive of one stored member.
func arjStoredOf(name string, data []byte) []byte {
	header := func(kind byte, packed, size, crc uint32, name string) []byte {
		basic := make([]byte, 30)
		basic[0], basic[1], basic[2], basic[6] = 30, 11, 1, kind
		binary.LittleEndian.PutUint32(basic[12:], packed)
		binary.LittleEndian.PutUint32(basic[16:], size)
		binary.LittleEndian.PutUint32(basic[20:], crc)
		basic = append(append(basic, name...), 0, 0)
		b := []byte{0x60, 0xea, 0, 0}
		binary.LittleEndian.PutUint16(b[2:], uint16(len(basic)))
		b = append(b, basic...)
		b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(basic))
		return append(b, 0, 0) // no extended header
	}
	b := header(2, 0, 0, 0, "a.arj")
	b = append(b, header(0, uint32(len(data)), uint32(len(data)), crc32.ChecksumIEEE(data), name)...)
	b = append(b, data...)
	return append(b, 0x60, 0xea, 0, 0)
}

// TestLHAAndARJStored: stored members are found, named, and their CRCs
// checked; a member whose bytes differ from its CRC is said damaged.
func TestLHAAndARJStored(t *testing.T) {
	for name, data := range map[string][]byte{
		"lha": lhaStoredOf("e.com", []byte(eicar.String)),
		"arj": arjStoredOf("e.com", []byte(eicar.String)),
	} {
		var walked []string
		Walk(data, Options{Archives: true}, Limits{}, func(b []byte, where string) bool {
			walked = append(walked, where)
			return false
		})
		if len(walked) != 2 || walked[1] != "e.com" {
			t.Errorf("%s walked: %q", name, walked)
		}
		if d := Scan(data, Options{Archives: true}, Limits{}, func([]byte, func(string) bool) {}); len(d) != 0 {
			t.Errorf("%s: %+v", name, d)
		}
		bad := bytes.Replace(data, []byte("EICAR"), []byte("EICAS"), 1)
		if d := Scan(bad, Options{Archives: true}, Limits{}, func([]byte, func(string) bool) {}); len(d) != 1 || d[0].Name != "Heuristics.Broken.Archive" {
			t.Errorf("%s with a wrong CRC: %+v", name, d)
		}
	}
}

// FuzzLHA and FuzzARJ feed the readers and the shared decoder headers
// and packed data as they come, within the limits of the engine's walk.
func FuzzLHA(f *testing.F) {
	f.Add(lhaStoredOf("e.com", []byte(eicar.String)))
	f.Add(bytes.Replace(lhaStoredOf("e.com", []byte(eicar.String)), []byte("-lh0-"), []byte("-lh5-"), 1))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(d, Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
		for _, p := range []lzhParams{lh5Params, lh7Params} {
			lzhDecode(d, 1<<16, p)
		}
	})
}

func FuzzARJ(f *testing.F) {
	f.Add(arjStoredOf("e.com", []byte(eicar.String)))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(d, Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
		arjDecodeFast(d, 1<<16)
	})
}
