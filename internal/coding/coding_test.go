package coding

import (
	"bytes"
	"errors"
	"github.com/fsigkd/fsigkd/internal/packtest"
	"io"
	"testing"
)

func TestListReadsEveryField(t *testing.T) {
	got := List([]string{"deflate, GZIP", " identity ", "br"})
	if want := []string{"deflate", "gzip", "br"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("%q", got)
	}
}

func TestUnknownAndTooManyCodingsAreRefused(t *testing.T) {
	var u *Unsupported
	for _, c := range [][]string{{"compress"}, {"gzip", "x-foo"}, {"gzip", "gzip", "gzip", "gzip", "gzip"}} {
		if _, err := Reader(bytes.NewReader(nil), c); !errors.As(err, &u) {
			t.Errorf("%q: %v", c, err)
		}
	}
}

func TestNestedGzipUndoneInOrder(t *testing.T) {
	r, err := Reader(bytes.NewReader(packtest.Gzip(packtest.Gzip([]byte("inner")))), []string{"gzip", "x-gzip"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, err := io.ReadAll(r); err != nil || string(b) != "inner" {
		t.Fatalf("%q %v", b, err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add(packtest.Gzip([]byte("hello")), "gzip")
	f.Add([]byte{0x78, 0x9c, 0x03, 0x00}, "deflate")
	f.Add([]byte{0x0b, 0x02, 0x80, 'h', 'i', 0x03}, "br")
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd")
	f.Fuzz(func(t *testing.T, data []byte, codings string) {
		r, err := Reader(bytes.NewReader(data), List([]string{codings}))
		if err != nil {
			return
		}
		defer r.Close()
		io.Copy(io.Discard, io.LimitReader(r, 1<<20))
	})
}
