package cvd

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/cvdtest"
)

func members(t *testing.T, p string) (Header, map[string]string, error) {
	t.Helper()
	got := map[string]string{}
	h, err := Each(p, func(name string, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[name] = string(b)
		return err
	})
	return h, got, err
}

// TestContainersAsSigtoolBuildsThem: a .cud built by ClamAV's sigtool is
// read member by member with its header; the same made a .cld (its
// archive uncompressed) too.
func TestContainersAsSigtoolBuildsThem(t *testing.T) {
	files := map[string]string{".hdb": "44d88612fea8a8f36de82e1278abb02f:68:Test.Hash\n", ".ndb": "Test.Body:0:*:414243\n", ".ldb": "Test.Logical;Target:0;0;414243\n"}
	cud := cvdtest.Build(t, "daily", 7, files)
	h, got, err := members(t, cud)
	if err != nil || h.Version != 7 || h.Signatures != 3 || h.Builder != "tester" || h.Built.IsZero() {
		t.Fatalf("%+v %v", h, err)
	}
	for ext, body := range files {
		if got["daily"+ext] != body {
			t.Errorf("daily%s: %q", ext, got["daily"+ext])
		}
	}
	cld := filepath.Join(t.TempDir(), "daily.cld")
	cvdtest.CLD(t, cud, cld)
	if h, got2, err := members(t, cld); err != nil || h.Version != 7 || got2["daily.ndb"] != files[".ndb"] {
		t.Fatalf(".cld: %+v %v %v", h, got2, err)
	}
}

// TestDamagedContainersRefused: a byte changed in a compressed container
// fails its MD5; one changed in a .cld's member fails .info's SHA-256; a
// file that is no container, or cut short, is said to be so.
func TestDamagedContainersRefused(t *testing.T) {
	cud := cvdtest.Build(t, "main", 3, map[string]string{".ndb": "Test.Body:0:*:414243\n" + strings.Repeat("# padding\n", 100)})
	b, _ := os.ReadFile(cud)
	dir := t.TempDir()

	bad := append([]byte(nil), b...)
	bad[len(bad)-20] ^= 0xff // in the gzip stream's end (its CRC, or the data)
	p := filepath.Join(dir, "bad.cud")
	os.WriteFile(p, bad, 0o644)
	if _, _, err := members(t, p); err == nil {
		t.Error("a damaged .cud was read")
	}

	cld := filepath.Join(dir, "main.cld")
	cvdtest.CLD(t, cud, cld)
	c, _ := os.ReadFile(cld)
	i := strings.Index(string(c), "Test.Body")
	c[i] = 'X'
	os.WriteFile(cld, c, 0o644)
	if _, _, err := members(t, cld); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("a .cld whose member changed: %v", err)
	}

	for name, body := range map[string][]byte{"x.cvd": []byte("not a container at all"), "short.cvd": b[:600], "noheader.cvd": append(make([]byte, 512), b[512:]...)} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, body, 0o644)
		if _, _, err := members(t, p); err == nil {
			t.Errorf("%s was read", name)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add("ClamAV-VDB:06 Dec 2026 20-23 +0000:5:3:216:5dd2ccfaf8e7600f1b23d86621a7be5b:X:tester:1796588613")
	f.Add("ClamAV-VDB::::::::")
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		for len(b) < HeaderSize {
			b = append(b, ' ')
		}
		ParseHeader(b)
	})
}
