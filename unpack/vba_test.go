package unpack

import (
	"bytes"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/forms"
)

// TestOVBADecompressionAsSpecified: MS-OVBA's own example (3.2.3, a
// container with copy tokens of several widths) decompresses to its text.
func TestOVBADecompressionAsSpecified(t *testing.T) {
	compressed := []byte{0x01, 0x2f, 0xb0, 0x00, 0x23, 0x61, 0x61, 0x61, 0x62, 0x63, 0x64, 0x65, 0x82, 0x66, 0x00, 0x70,
		0x61, 0x67, 0x68, 0x69, 0x6a, 0x01, 0x38, 0x08, 0x61, 0x6b, 0x6c, 0x00, 0x30, 0x6d, 0x6e, 0x6f,
		0x70, 0x06, 0x71, 0x02, 0x70, 0x04, 0x10, 0x72, 0x73, 0x74, 0x75, 0x76, 0x10, 0x77, 0x78, 0x79,
		0x7a, 0x00, 0x3c}
	want := "#aaabcdefaaaaghijaaaaaklaaamnopqaaaaaaaaaaaarstuvwxyzaaa"
	got, err := ovbaDecompress(compressed, 1<<20)
	if err != nil || string(got) != want {
		t.Fatalf("%q, %v; want %q", got, err, want)
	}
}

// ovbaStored is data as a container of stored (uncompressed) chunks.
func ovbaStored(data []byte) []byte {
	out := []byte{1}
	for len(data) > 0 {
		chunk := make([]byte, 4096)
		n := copy(chunk, data)
		data = data[n:]
		out = append(out, 0xff, 0x3f) // size 4098, signature 3, stored
		out = append(out, chunk...)
	}
	return out
}

func TestOVBAStoredChunks(t *testing.T) {
	src := bytes.Repeat([]byte("Sub AutoOpen()\r\n"), 300)
	got, err := ovbaDecompress(ovbaStored(src), 1<<20)
	if err != nil || !bytes.HasPrefix(got, src) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
}

// ovbaLiterals is data compressed as MS-OVBA's literals (forms).
var ovbaLiterals = forms.OVBALiterals

// TestVBASourceScanned: a document's macro module, its source compressed
// at the offset its project's dir gives (after a performance cache): the
// source is decompressed and scanned (EICAR in a comment is found at
// Module1/source); EICAR stands in no raw run. The clean twin is clean.
func TestVBASourceScanned(t *testing.T) {
	doc := forms.VBADocument
	match := func(b []byte, found func(string) bool) {
		if bytes.Contains(b, []byte(eicar.String)) {
			found("Eicar")
		}
	}
	bad := doc("Attribute VB_Name = \"Module1\"\r\nSub AutoOpen()\r\n' " + eicar.String + "\r\nEnd Sub\r\n")
	if bytes.Contains(bad, []byte(eicar.String)) {
		t.Fatal("EICAR in the clear")
	}
	if d := Scan(bad, Options{Archives: true}, Limits{}, match); len(d) != 1 || d[0].Path != "Module1/source" {
		t.Errorf("%+v", d)
	}
	if d := Scan(doc("Sub AutoOpen()\r\nMsgBox \"hello\"\r\nEnd Sub\r\n"), Options{Archives: true}, Limits{}, match); len(d) != 0 {
		t.Errorf("clean: %+v", d)
	}
}

func FuzzOVBA(f *testing.F) {
	f.Add(ovbaLiterals([]byte("Sub AutoOpen()")))
	f.Add([]byte{0x01, 0x2f, 0xb0, 0x00, 0x23, 0x61, 0x61, 0x61, 0x62, 0x63, 0x64, 0x65, 0x82, 0x66, 0x00, 0x70})
	f.Fuzz(func(t *testing.T, d []byte) {
		ovbaDecompress(d, 1<<20)
		vbaModules(d)
	})
}
