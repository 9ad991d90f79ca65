package unpack

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// xzWith compresses data with the real xz and the filter flags given.
func xzWith(t testing.TB, data []byte, flags ...string) []byte {
	t.Helper()
	c := exec.Command(testenv.Need(t, "xz", "xz-utils"), append(append([]string{"-c", "-q"}, flags...), "--lzma2")...)
	c.Stdin = bytes.NewReader(data)
	out, err := c.Output()
	if err != nil {
		t.Fatalf("xz %v: %v", flags, err)
	}
	return out
}

// TestXZFiltersUndone: a program (this test's own binary, 1 MiB of it)
// through each BCJ filter and Delta, by the real xz, comes back byte for
// byte; with several blocks (the index finds them) too. The xz reader
// refused every one, and a valid, clean file was judged broken.
func TestXZFiltersUndone(t *testing.T) {
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	program := self[:min(len(self), 1<<20)]
	for _, flags := range [][]string{{"--x86"}, {"--arm"}, {"--armthumb"}, {"--arm64"}, {"--powerpc"}, {"--sparc"}, {"--ia64"}, {"--delta=dist=4"},
		{"--x86", "--block-size=100000"}, {"--x86=start=4096"}, {"--delta", "--x86"}} {
		packed := xzWith(t, program, flags...)
		out, handled, err := xzFiltered(packed, 8<<20)
		if !handled || err != nil || !bytes.Equal(out, program) {
			t.Errorf("%v: handled %v, %v, %d bytes back of %d, same: %v", flags, handled, err, len(out), len(program), bytes.Equal(out, program))
		}
	}
	if _, handled, _ := xzFiltered(xzWith(t, program), 8<<20); handled {
		t.Error("a plain LZMA2 stream was taken from the xz reader")
	}
}

// TestXZWithFiltersIsOpened: EICAR in an xz with a BCJ filter is found
// inside; the clean twin is clean, not broken.
func TestXZWithFiltersIsOpened(t *testing.T) {
	match := func(b []byte, found func(string) bool) {
		if bytes.Contains(b, []byte(eicar.String)) {
			found("Eicar")
		}
	}
	for _, f := range []string{"--x86", "--arm64", "--ia64", "--delta"} {
		bad := xzWith(t, append([]byte("MZ a program "), eicar.String...), f)
		if d := Scan(bad, Options{Archives: true}, Limits{}, match); len(d) != 1 || d[0].Name != "Eicar" || d[0].Path == "" {
			t.Errorf("%s with EICAR: %+v", f, d)
		}
		good := xzWith(t, []byte("MZ a harmless program"), f)
		if d := Scan(good, Options{Archives: true}, Limits{}, match); len(d) != 0 {
			t.Errorf("%s clean: %+v", f, d)
		}
	}
}

// FuzzXZFiltered feeds the filtered-stream reader xz streams as they
// come, within a limit.
func FuzzXZFiltered(f *testing.F) {
	f.Add([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 4})
	f.Add(xzWith(f, []byte("MZ a program, its calls e8 00 00 00 00"), "--x86", "--block-size=16"))
	f.Add(xzWith(f, []byte("a table of numbers 1 2 3 4"), "--delta"))
	f.Fuzz(func(t *testing.T, d []byte) {
		xzFiltered(d, 1<<20)
	})
}
