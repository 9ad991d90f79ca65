package engine

import (
	"bufio"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestHashSetPrecedence: for one hash, the signature naming the object's
// size wins over one for any size; of two for the same hash and size, the
// line read later.
func TestHashSetPrecedence(t *testing.T) {
	data := []byte("one object")
	sum := md5.Sum(data)
	h := hex.EncodeToString(sum[:])
	db, err := Load(writeSigs(t, map[string]string{"a.hdb": fmt.Sprintf("%s:*:Any\n%s:%d:First\n%s:%d:Second\n%s:99:Other\n", h, h, len(data), h, len(data), h)}))
	if err != nil {
		t.Fatal(err)
	}
	if got := db.matchHash(data, new(digests)); len(got) != 1 || got[0] != "Second" {
		t.Fatalf("%v", got)
	}
	if got := db.matchHash(append(data, '!'), new(digests)); len(got) != 0 {
		t.Fatalf("another object: %v", got)
	}
	if db.Signatures() != 4 { // 3 hash signatures and EICAR
		t.Fatalf("%d signatures", db.Signatures())
	}
}

// BenchmarkLoadHashes loads 500,000 MD5 signatures of ClamAV's shape and
// reports the heap they hold (B/sig; 465 when each was a map entry, 65
// in the flat arrays).
func BenchmarkLoadHashes(b *testing.B) {
	dir := b.TempDir()
	f, _ := os.Create(filepath.Join(dir, "big.hdb"))
	w := bufio.NewWriter(f)
	r := rand.New(rand.NewSource(1))
	const n = 500000
	for i := range n {
		var h [16]byte
		r.Read(h[:])
		fmt.Fprintf(w, "%x:%d:Win.Trojan.Agent-%d-0\n", h, 1000+r.Intn(5000000), 1000000+i)
	}
	w.Flush()
	f.Close()
	var perSig float64
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		db, err := Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		perSig = float64(m1.HeapAlloc-m0.HeapAlloc) / n
		runtime.KeepAlive(db)
	}
	b.ReportMetric(perSig, "B/sig")
}
