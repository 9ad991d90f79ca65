package engine

import (
	"bufio"
	"bytes"
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

// TestBuildIsTheSort: a set built (its signatures read in parts, taken
// in one after the other, in one bucket or bucketed, sorted on several
// goroutines)
// holds what a plain sort by hash and size of the signatures in the
// order read gives, the later of two for one hash and size kept: on
// random hashes, hashes all in one bucket, hashes repeated, and the
// first and last buckets.
func TestBuildIsTheSort(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	type sig struct {
		key  string
		size uint32
		name uint32
	}
	for name, key := range map[string]func() []byte{
		"random":         func() []byte { k := make([]byte, 16); r.Read(k); return k },
		"one bucket":     func() []byte { k := make([]byte, 16); r.Read(k); k[0], k[1] = 0xab, 0xcd; return k },
		"a few repeated": func() []byte { k := make([]byte, 16); k[5] = byte(r.Intn(5)); return k },
		"first and last": func() []byte { return bytes.Repeat([]byte{[]byte{0, 0xff}[r.Intn(2)]}, 16) },
	} {
		for _, n := range []int{0, 1, 2, 1000, 3*recsPer + 17, bucketedFrom + 17} {
			s := newHashSet(16)
			var read []sig
			part := newHashSet(16)
			for i := range n {
				k, size := key(), uint32(r.Intn(3))
				part.add(k, size, uint32(i))
				read = append(read, sig{string(k), size, uint32(i)})
				if r.Intn(1000) == 0 || i == n-1 { // a part ends here
					s.loadKeys.absorb(&part.loadKeys)
					s.loadSizes.absorb(&part.loadSizes)
					s.loadIDs.absorb(&part.loadIDs)
				}
			}
			s.build(1 + n%3) // one goroutine, or two, or three
			want := slices.Clone(read)
			slices.SortStableFunc(want, func(a, b sig) int {
				return cmp.Or(strings.Compare(a.key, b.key), cmp.Compare(a.size, b.size))
			})
			var kept []sig
			for j, x := range want {
				if j+1 < len(want) && want[j+1].key == x.key && want[j+1].size == x.size {
					continue
				}
				kept = append(kept, x)
			}
			var got []sig
			for j := range s.sizes {
				got = append(got, sig{string(s.keys[j*16 : (j+1)*16]), s.sizes[j], s.names[j]})
			}
			if !slices.Equal(got, kept) {
				t.Fatalf("%s, %d signatures: %d kept, want %d, or not in the sort's order", name, n, len(got), len(kept))
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

// TestPiecesAcrossTheirEdges: what pieces hold, appended and taken in
// from others, comes back whole and in order, each piece at most per
// long, the last one appended last.
func TestPiecesAcrossTheirEdges(t *testing.T) {
	const w = 20 // a SHA1's width: not a power of two
	var p pieces[byte]
	var all []byte
	for part := range 3 {
		q := pieces[byte]{per: w << 4}
		for i := range 100 + part*37 {
			key := make([]byte, w)
			for j := range key {
				key[j] = byte(i*7 + j + part)
			}
			q.append(key...)
			all = append(all, key...)
			if q.last() != key[w-1] {
				t.Fatal("last is not the one appended last")
			}
		}
		p.absorb(&q)
		if q.len() != 0 {
			t.Fatal("absorb left the other's pieces")
		}
		if q.append(0); cap(q.list[0]) != w<<4 {
			t.Fatalf("filled again after absorb, a piece of %d, not %d", cap(q.list[0]), w<<4)
		}
	}
	if p.len() != len(all) {
		t.Fatalf("len %d, want %d", p.len(), len(all))
	}
	for _, piece := range p.list {
		if len(piece) > w<<4 || len(piece)%w != 0 {
			t.Fatalf("a piece of %d", len(piece))
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
