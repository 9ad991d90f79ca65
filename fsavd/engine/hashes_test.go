package engine

import (
	"bufio"
	"cmp"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
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

// TestBucketSortIsTheSort: byFirstBytes gives what a plain sort by the
// same comparison gives: on random entries, on entries all in one bucket
// (hashes sharing their first bytes), and with repeats of one hash.
func TestBucketSortIsTheSort(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	compare := func(a, b hashEntry) int {
		switch {
		case a.pre != b.pre:
			return cmp.Compare(a.pre, b.pre)
		case a.size != b.size:
			return cmp.Compare(a.size, b.size)
		}
		return cmp.Compare(a.i, b.i)
	}
	for name, pre := range map[string]func() uint64{
		"random":          func() uint64 { return r.Uint64() },
		"one bucket":      func() uint64 { return 0xabcd<<48 | r.Uint64()>>16 },
		"a few repeated":  func() uint64 { return uint64(r.Intn(5)) << 40 },
		"first and last":  func() uint64 { return []uint64{0, ^uint64(0)}[r.Intn(2)] },
		"a bucket or two": func() uint64 { return uint64(r.Intn(2)) << 63 },
	} {
		for _, n := range []int{0, 1, 2, 1000, 70000} {
			entries := make([]hashEntry, n)
			for i := range entries {
				entries[i] = hashEntry{pre: pre(), i: uint32(i), size: uint32(r.Intn(3))}
			}
			want := slices.Clone(entries)
			slices.SortFunc(want, compare)
			byFirstBytes(entries, compare)
			if !slices.Equal(entries, want) {
				t.Fatalf("%s, %d entries: not the sort's order", name, n)
			}
		}
	}
}

// TestSortedDistinct: the values once each, sorted, the input untouched,
// whatever their bits.
func TestSortedDistinct(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for _, v := range [][]uint32{nil, {7}, {anySize, 0, anySize, 1 << 16, 1<<16 - 1, 0}} {
		check := func(v []uint32) {
			in := slices.Clone(v)
			want := slices.Compact(slices.Sorted(slices.Values(v)))
			if got := sortedDistinct(v); !slices.Equal(got, want) {
				t.Fatalf("%v: got %v, want %v", in, got, want)
			}
			if !slices.Equal(v, in) {
				t.Fatal("the input was changed")
			}
		}
		check(v)
		for range 50000 {
			v = append(v, []uint32{r.Uint32(), uint32(r.Intn(100)), uint32(r.Intn(1<<20)) << 12}[r.Intn(3)])
		}
		check(v)
	}
}

// TestPiecesAcrossTheirEdges: what pieces hold reads back element by
// element, key by key and flat, across many pieces.
func TestPiecesAcrossTheirEdges(t *testing.T) {
	const w = 20 // a SHA1's width: not a power of two
	p := pieces[byte]{per: w << 4}
	var all []byte
	for i := range 1000 {
		key := make([]byte, w)
		for j := range key {
			key[j] = byte(i*7 + j)
		}
		p.append(key...)
		all = append(all, key...)
	}
	if p.len() != len(all) {
		t.Fatalf("len %d, want %d", p.len(), len(all))
	}
	for i := range 1000 {
		if got := p.slice(i*w, w); !slices.Equal(got, all[i*w:(i+1)*w]) {
			t.Fatalf("key %d: %x", i, got)
		}
	}
	for _, i := range []int{0, w<<4 - 1, w << 4, len(all) - 1} {
		if p.at(i) != all[i] {
			t.Fatalf("at %d", i)
		}
	}
	if !slices.Equal(p.flat(), all) || p.len() != 0 {
		t.Fatal("flat is not what was appended, or the pieces were kept")
	}
}

// TestNamesAcrossBlobs: hash signatures' names more than one blob holds
// are each found whole, the last of a blob too, and a name repeated
// on the next line is kept once.
func TestNamesAcrossBlobs(t *testing.T) {
	var n nameBlob
	var want []string
	for i := 0; len(n.blobs) < 4; i++ {
		name := fmt.Sprintf("Win.Test.Name-%d-%s", i, strings.Repeat("x", i%300))
		if got := n.intern([]byte(name)); int(got) != len(want) {
			t.Fatalf("name %d got index %d", len(want), got)
		}
		if got := n.intern([]byte(name)); int(got) != len(want) {
			t.Fatalf("a repeat of name %d got index %d", len(want), got)
		}
		want = append(want, name)
	}
	n.done()
	for i, name := range want {
		if got := n.get(uint32(i)); got != name {
			t.Fatalf("name %d: %.40q, want %.40q", i, got, name)
		}
	}
}
