package spool

import (
	"bytes"
	"testing"
)

// BenchmarkFillSmall is what spooling a 1 KiB object costs in allocation
// and time (the file created once, rewritten each time).
func BenchmarkFillSmall(b *testing.B) {
	d := Dir{Path: b.TempDir()}
	f, err := d.Create("bench")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	obj := bytes.Repeat([]byte("x"), 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.f.Truncate(0)
		f.f.Seek(0, 0)
		f.size = 0
		f.Fill(bytes.NewReader(obj), 0, nil)
	}
}

// BenchmarkFill1MiB is spooling a 1 MiB object, without and with the
// running hash the verdict cache keys on.
func BenchmarkFill1MiB(b *testing.B) { benchFill(b, 1<<20) }

// BenchmarkFill64MiB is BenchmarkFill1MiB for a large download.
func BenchmarkFill64MiB(b *testing.B) { benchFill(b, 64<<20) }

func benchFill(b *testing.B, size int) {
	obj := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	for _, hash := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "blake3"}[hash], func(b *testing.B) {
			d := Dir{Path: b.TempDir(), Hash: hash}
			b.SetBytes(int64(len(obj)))
			for b.Loop() {
				f, err := d.Create("bench")
				if err != nil {
					b.Fatal(err)
				}
				f.Fill(bytes.NewReader(obj), 0, nil)
				f.Close()
			}
		})
	}
}
