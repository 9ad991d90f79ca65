package scanner

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// The clamd benchmarks: the same object scanned by passing its descriptor
// (FILDES) and by streaming it (INSTREAM), against the real clamd.
func benchClamd(b *testing.B, size int, instream bool) {
	clamd := enginetest.Clamd(b, "200M")
	data := make([]byte, size)
	rand.Read(data)
	obj := object(b, data)
	eps, _ := ParseEndpoints(clamd.Sock, "")
	cl := NewClamd(&Pool{Endpoints: eps}, instream)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := cl.Scan(context.Background(), obj); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClamdFildes1M(b *testing.B)     { benchClamd(b, 1<<20, false) }
func BenchmarkClamdInstream1M(b *testing.B)   { benchClamd(b, 1<<20, true) }
func BenchmarkClamdFildes100M(b *testing.B)   { benchClamd(b, 100<<20, false) }
func BenchmarkClamdInstream100M(b *testing.B) { benchClamd(b, 100<<20, true) }

// BenchmarkFsavdSmallWarm: 1 KiB objects to the bundled fsavd over a warm
// pooled connection (scans per second = 1e9 / ns/op).
func BenchmarkFsavdSmallWarm(b *testing.B) {
	dir := testenv.ShortDir(b)
	enginetest.FsavdAt(b, filepath.Join(dir, "s"), nil)
	data := make([]byte, 1024)
	rand.Read(data)
	obj := object(b, data)
	eps, _ := ParseEndpoints(filepath.Join(dir, "s"), "")
	f := NewFsavd(&Pool{Endpoints: eps}, false)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Scan(context.Background(), obj); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClamdSmallWarm: 1 KiB objects to clamd (FILDES; clamd takes one
// command per connection, so "warm" is a warm engine, not a kept socket).
func BenchmarkClamdSmallWarm(b *testing.B) { benchClamd(b, 1024, false) }
