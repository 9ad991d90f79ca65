package unpack

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"runtime"
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

// zstdFrame is a zstd frame whose header asks for a window of 1<<log
// bytes, holding three RLE blocks of 128 KiB of 'A'.
func zstdFrame(log byte) []byte {
	f := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, (log - 10) << 3}
	for i := range 3 {
		h := uint32(1<<1 | (128<<10)<<3) // an RLE block
		if i == 2 {
			h |= 1 // the last
		}
		f = append(f, byte(h), byte(h>>8), byte(h>>16), 'A')
	}
	return f
}

// TestSevenZipZstdWindowBounded: 7z's zstd coder (7-Zip's zstd builds)
// took the window its frame's header names: a frame of 22 bytes asking
// for 512 MiB had the library's decoder allocate 512 MiB. Registered in
// its place, the decoder of a .zst: a frame asking for more than 64 MiB
// is refused (the member is said unopened), a few MiB allocated; one
// asking for 8 MiB is decoded.
func TestSevenZipZstdWindowBounded(t *testing.T) {
	read := func(frame []byte) (n int64, mib uint64, err error) {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r, err := sevenZipZstd(nil, 384<<10, []io.ReadCloser{io.NopCloser(bytes.NewReader(frame))})
		if err != nil {
			return 0, 0, err
		}
		defer r.Close()
		n, err = io.Copy(io.Discard, r)
		runtime.ReadMemStats(&after)
		return n, (after.TotalAlloc - before.TotalAlloc) >> 20, err
	}
	if n, mib, err := read(zstdFrame(29)); err == nil || mib > 16 {
		t.Errorf("a 512 MiB window: %d bytes, %v, %d MiB allocated", n, err, mib)
	}
	if n, _, err := read(zstdFrame(23)); err != nil || n != 384<<10 {
		t.Errorf("an 8 MiB window: %d bytes, %v", n, err)
	}
}
