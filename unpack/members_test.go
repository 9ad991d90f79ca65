package unpack

import (
	"archive/tar"
	"bytes"
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
