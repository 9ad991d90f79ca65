package unpack

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
)

// arOf lays out an ar archive of one member.
func arOf(name string, data []byte) []byte {
	var b bytes.Buffer
	b.Write(magicAr)
	fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", name+"/", 0, 0, 0, 0o644, len(data))
	b.Write(data)
	if len(data)%2 == 1 {
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// newcOf lays out a newc cpio archive of one regular file and the trailer.
func newcOf(name string, data []byte) []byte {
	var b bytes.Buffer
	entry := func(name string, mode int, data []byte) {
		fmt.Fprintf(&b, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x", 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
		b.WriteString(name + "\x00")
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
		b.Write(data)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	entry(name, 0o100644, data)
	entry("TRAILER!!!", 0, nil)
	return b.Bytes()
}

// TestArAndCpioMembersShorterThanSaid: a member whose header says more
// than the archive holds is scanned as far as it goes and said damaged,
// never clean.
func TestArAndCpioMembersShorterThanSaid(t *testing.T) {
	for name, data := range map[string][]byte{
		"ar":   arOf("e.com", []byte(eicar.String)),
		"cpio": newcOf("e.com", []byte(eicar.String)),
	} {
		cut := data[:bytes.Index(data, []byte(eicar.String))+40] // the member cut inside
		d := Scan(cut, Options{Archives: true}, Limits{}, func(b []byte, found func(string) bool) {})
		if len(d) != 1 || d[0].Name != "Heuristics.Broken.Archive" || d[0].Kind != Suspected {
			t.Errorf("%s cut short: %+v", name, d)
		}
		var walked []string
		Walk(data, Options{Archives: true}, Limits{}, func(b []byte, where string) bool {
			walked = append(walked, where)
			return false
		})
		if len(walked) != 2 || walked[1] != "e.com" {
			t.Errorf("%s walked: %q", name, walked)
		}
	}
}

// FuzzAr and FuzzCpio feed the readers headers and members as they come,
// within the limits of the engine's walk.
func FuzzAr(f *testing.F) {
	f.Add(arOf("e.com", []byte(eicar.String)))
	f.Add(append(arOf("//", []byte("a-very-long-member-name.txt/\n")), arOf("/0", []byte("x"))[len(magicAr):]...))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(append(append([]byte{}, magicAr...), d...), Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
	})
}

func FuzzCpio(f *testing.F) {
	f.Add(newcOf("e.com", []byte(eicar.String)))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(d, Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
	})
}

// rpmOf lays out an RPM of payload: the lead, an empty signature header
// padded to 8, an empty header.
func rpmOf(payload []byte) []byte {
	b := append([]byte{}, magicRPM...)
	b = append(b, make([]byte, 92)...)
	header := []byte{0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	b = append(b, header...) // the signature header, 16 bytes: 8-aligned already
	b = append(b, header...)
	return append(b, payload...)
}

func FuzzRPM(f *testing.F) {
	f.Add(rpmOf(newcOf("e.com", []byte(eicar.String))))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(rpmOf(d), Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
		Scan(append(append([]byte{}, magicRPM...), d...), Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
	})
}

// FuzzSMIMEContent feeds the CMS reader DER as it comes.
func FuzzSMIMEContent(f *testing.F) {
	f.Add([]byte{0x30, 0x80})
	f.Add([]byte("\x30\x1f\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02\xa0\x12\x30\x10\x02\x01\x01\x31\x00\x30\x09\x06\x01\x00\xa0\x04\x04\x02hi"))
	f.Fuzz(func(t *testing.T, d []byte) { smimeContent(d) })
}
