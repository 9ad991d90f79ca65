package scanner

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/enginetest"
)

// growing writes data to a new file in steps, telling fw after each.
func growing(t *testing.T, data []byte, step int, fw func(*os.File) *Following) (*os.File, *Following) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "download"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	follow := fw(f)
	for off := 0; off < len(data); off += step {
		f.Write(data[off:min(off+step, len(data))])
		follow.Grew(int64(min(off+step, len(data))))
	}
	return f, follow
}

// TestFollowingWithTheBundledEngine: the bundled fsavd follows a file as
// it is written (through the verdict cache, which passes the follow
// on), and the object's scan is made on the follow's connection, which
// then serves other scans; the test file past the first steps is found.
// A follow whose connection broke (the engine restarted) leaves the
// object to a scan afresh, with the same verdict; one given up (Close)
// does the same.
func TestFollowingWithTheBundledEngine(t *testing.T) {
	eps, _ := ParseEndpoints(enginetest.FsavdSocket(t), "")
	inner := NewFsavd(&Pool{Endpoints: eps}, true)
	cache := NewCache(inner, 100)
	data := append(bytes.Repeat([]byte("clean text "), (13<<20)/11), eicar.String...)
	for _, c := range []struct {
		name   string
		breaks func(*Following)
	}{
		{"followed", func(*Following) {}},
		{"connection broken", func(fw *Following) { fw.c.Conn.Close() }},
		{"given up", func(fw *Following) { fw.Close() }},
	} {
		f, fw := growing(t, data, 3<<20, func(f *os.File) *Following { return cache.Follow(ctx(t), f) })
		if fw == nil || fw.told == 0 {
			t.Fatalf("%s: not followed (%+v)", c.name, fw)
		}
		conn := fw.c
		c.breaks(fw)
		v, err := cache.Scan(ctx(t), &Object{File: f, Path: f.Name(), Size: int64(len(data)), Follow: fw})
		if err != nil || v.Status != Infected {
			t.Fatalf("%s: %+v %v", c.name, v, err)
		}
		if fw.c != nil {
			t.Fatalf("%s: the follow's connection is still held", c.name)
		}
		// Scanned on the follow's own connection, now idle in the pool,
		// only when it was whole.
		inner.Pool.mu.Lock()
		pooled := slices.Contains(inner.Pool.eps[0].idle, conn)
		inner.Pool.mu.Unlock()
		if pooled != (c.name == "followed") {
			t.Fatalf("%s: the follow's connection pooled: %v", c.name, pooled)
		}
		fw.Close()
	}
	// The follow's connection went back to the pool: it scans the next.
	obj := object(t, []byte("plain"))
	if v, err := inner.Scan(ctx(t), obj); err != nil || v.Status != Clean {
		t.Fatalf("after: %+v %v", v, err)
	}
}
