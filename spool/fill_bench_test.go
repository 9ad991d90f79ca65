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
