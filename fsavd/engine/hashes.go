package engine

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"sort"
)

// The hash signatures (.hdb, .hsb) of a real database are millions: ClamAV's
// daily and main sets hold several million MD5s and SHA-256s. They are
// kept here in flat arrays, with no Go object for each signature: a sorted
// run of hashes, the object size and the name's index beside each, and the
// names in one byte blob. About 16 to 32 bytes a hash, 8 of bookkeeping
// and the name's own bytes, found by binary search.

// anySize is the size of a signature that names none ("*").
const anySize = ^uint32(0)

// hashSet is one kind's hash signatures (md5, sha1 or sha256).
type hashSet struct {
	width int      // bytes a hash: 16, 20 or 32
	keys  []byte   // the hashes, width bytes each, sorted
	sizes []uint32 // each hash's object size (anySize: any)
	names []uint32 // each hash's name, an index into names
	// distinct are the sizes the signatures name, sorted: an object is
	// hashed only when one names its size (or any, any).
	distinct []uint32
	any      bool

	// While the set is loaded, the signatures as read: keys, sizes and
	// names in the order of the lines (a later line wins), sorted by
	// build. Flat arrays, not an entry per signature: ClamAV's database
	// has millions, and a load's peak was most of a reload's. Filled in
	// pieces, not grown by append: an array of millions grown by append
	// is copied whole again and again, and the collector, which cannot
	// stop a copy of many megabytes under way, spun waiting for it (a
	// third of a load's time, docs/benchmarks.md).
	loadKeys           pieces[byte]
	loadSizes, loadIDs pieces[uint32]
}

// newHashSet is an empty set of hashes of width bytes.
func newHashSet(width int) *hashSet {
	// A key never straddles two pieces.
	return &hashSet{width: width, loadKeys: pieces[byte]{per: width << 12}}
}

// add keeps a signature while the set is loaded.
func (s *hashSet) add(key []byte, size uint32, name uint32) {
	s.loadKeys.append(key...)
	s.loadSizes.append(size)
	s.loadIDs.append(name)
}

// build sorts what was loaded; of two signatures for the same hash and
// size, the one read later stays.
func (s *hashSet) build() {
	n, w := s.loadSizes.len(), s.width
	key := func(i uint32) []byte { return s.loadKeys.slice(int(i)*w, w) }
	size := func(i uint32) uint32 { return s.loadSizes.at(int(i)) }
	// Sorted as (first eight bytes, line, size) side by side: most
	// comparisons are settled by the hashes' first eight bytes, as one
	// integer, read where the entry is. Sorting line numbers by a
	// comparison that looked the bytes up elsewhere cost a cache miss a
	// comparison: the sort of millions was most of a load. The entries
	// go first to their bucket by the hashes' first two bytes, in place
	// (hashes are spread evenly: a bucket holds a few dozen of millions),
	// then each bucket is sorted where it lies, in the cache.
	entries := make([]hashEntry, n)
	for i := range entries {
		entries[i] = hashEntry{binary.BigEndian.Uint64(key(uint32(i))), uint32(i), size(uint32(i))}
	}
	byFirstBytes(entries, func(a, b hashEntry) int {
		if a.pre != b.pre {
			return cmp.Compare(a.pre, b.pre)
		}
		if c := bytes.Compare(key(a.i), key(b.i)); c != 0 {
			return c
		}
		if a.size != b.size {
			return cmp.Compare(a.size, b.size)
		}
		return cmp.Compare(a.i, b.i) // the order read
	})
	keys := make([]byte, 0, n*w)
	sizes, names := make([]uint32, 0, n), make([]uint32, 0, n)
	for j, e := range entries {
		if j+1 < n && entries[j+1].pre == e.pre && entries[j+1].size == e.size && bytes.Equal(key(entries[j+1].i), key(e.i)) {
			continue // a later one replaces it
		}
		keys = append(keys, key(e.i)...)
		sizes = append(sizes, e.size)
		names = append(names, s.loadIDs.at(int(e.i)))
	}
	entries = nil
	s.keys, s.sizes, s.names = keys, sizes, names
	s.loadKeys, s.loadSizes, s.loadIDs = pieces[byte]{}, pieces[uint32]{}, pieces[uint32]{}
	s.distinct = sortedDistinct(sizes)
	if k := len(s.distinct); k > 0 && s.distinct[k-1] == anySize {
		s.any, s.distinct = true, s.distinct[:k-1]
	}
	s.distinct = slices.Clip(s.distinct)
}

// hashEntry is a signature being sorted: its hash's first eight bytes,
// its line and its size.
type hashEntry struct {
	pre     uint64
	i, size uint32
}

// byFirstBytes sorts entries by compare, which orders by pre first: to
// their buckets of pre's first two bytes in place (each entry moved once
// as in an American flag sort), then each bucket by compare.
func byFirstBytes(entries []hashEntry, compare func(a, b hashEntry) int) {
	const buckets = 1 << 16
	bucket := func(e hashEntry) int { return int(e.pre >> 48) }
	var start, next [buckets + 1]int
	for _, e := range entries {
		start[bucket(e)+1]++
	}
	for b := 1; b <= buckets; b++ {
		start[b] += start[b-1]
	}
	next = start
	for b := range buckets {
		for next[b] < start[b+1] {
			e := entries[next[b]]
			d := bucket(e)
			if d == b {
				next[b]++
				continue
			}
			// e belongs further on: swapped to its bucket's next place,
			// whose entry is looked at now.
			entries[next[b]], entries[next[d]] = entries[next[d]], e
			next[d]++
		}
	}
	for b := range buckets {
		slices.SortFunc(entries[start[b]:start[b+1]], compare)
	}
}

// sortedDistinct is the values of v once each, sorted (v is left as it
// is): by their low and high sixteen bits in turn, a pass over the
// millions of sizes each, not a sort by comparisons.
func sortedDistinct(v []uint32) []uint32 {
	a, tmp := slices.Clone(v), make([]uint32, len(v))
	for shift := 0; shift < 32; shift += 16 {
		var at [1<<16 + 1]int
		for _, x := range a {
			at[(x>>shift)&0xffff+1]++
		}
		for d := 1; d <= 1<<16; d++ {
			at[d] += at[d-1]
		}
		for _, x := range a {
			d := (x >> shift) & 0xffff
			tmp[at[d]] = x
			at[d]++
		}
		a, tmp = tmp, a
	}
	return slices.Clip(slices.Compact(a))
}

// len is how many signatures the set holds.
func (s *hashSet) len() int { return len(s.sizes) }

// wants tells whether an object of size n has to be hashed.
func (s *hashSet) wants(n int64) bool {
	if s.any {
		return true
	}
	if n < 0 || n >= int64(anySize) {
		return false
	}
	_, found := slices.BinarySearch(s.distinct, uint32(n))
	return found
}

// find is the name index of the signature for hash h and an object of
// size n (one for that size first, else one for any size).
func (s *hashSet) find(h []byte, n int64) (uint32, bool) {
	count := len(s.sizes)
	i := sort.Search(count, func(i int) bool { return bytes.Compare(s.keys[i*s.width:(i+1)*s.width], h) >= 0 })
	anyName, anyFound := uint32(0), false
	for ; i < count && bytes.Equal(s.keys[i*s.width:(i+1)*s.width], h); i++ {
		switch {
		case int64(s.sizes[i]) == n && s.sizes[i] != anySize:
			return s.names[i], true
		case s.sizes[i] == anySize:
			anyName, anyFound = s.names[i], true
		}
	}
	return anyName, anyFound
}

// hashFile is the hash signatures one file holds (a container's
// members together), as read at a time: never changed once built, so
// that a reload may keep it while the file is the same.
type hashFile struct {
	id              string              // the file's name, size and time
	hashes, allowed map[string]*hashSet // by kind
	// sections are the PE section hashes (.mdb, .msb), by kind: the
	// size a signature names is the section's.
	sections map[string]*hashSet
	// imports are the import hashes (.imp), by kind: the size a
	// signature names is the length of the text hashed (imports.go).
	imports map[string]*hashSet
	names   nameBlob
}

// sets are the file's sets of every use.
func (hf *hashFile) sets() []map[string]*hashSet {
	return []map[string]*hashSet{hf.hashes, hf.allowed, hf.sections, hf.imports}
}

func (hf *hashFile) build() {
	for _, sets := range hf.sets() {
		for _, set := range sets {
			set.build()
		}
	}
	hf.names.done()
}

// len is how many signatures the file holds, allowed ones with them.
func (hf *hashFile) len() int {
	n := 0
	for _, sets := range hf.sets() {
		for _, set := range sets {
			n += set.len()
		}
	}
	return n
}

// nameBlob holds the hash signatures' names in blobs of up to blobSize
// bytes, each name once and whole in one blob: no blob of tens of
// megabytes grown by copying.
type nameBlob struct {
	blobs [][]byte
	// off is where each name begins, its blob's index times blobSize
	// plus its place there; it ends where the next begins in the same
	// blob, or at the blob's end.
	off     []uint32
	loadOff pieces[uint32]
}

// blobSize is the most bytes in one of nameBlob's blobs (a name is at
// most a line, maxSigLine).
const blobSize = 1 << 20

// intern gives name's index. A name like the one before is kept once
// (families of hashes under one name come together); the others are
// kept as read: a map of millions of names to find repeats cost more at
// load than the repeats it saved.
func (n *nameBlob) intern(name []byte) uint32 {
	if k := n.loadOff.len(); k > 0 && string(n.bytes(n.loadOff.at(k-1), -1)) == string(name) {
		return uint32(k - 1)
	}
	last := len(n.blobs) - 1
	if last < 0 || len(n.blobs[last])+len(name) > blobSize {
		// Whole: the pages of its end are the system's until written.
		n.blobs = append(n.blobs, make([]byte, 0, blobSize))
		last++
	}
	n.loadOff.append(uint32(last*blobSize + len(n.blobs[last])))
	n.blobs[last] = append(n.blobs[last], name...)
	return uint32(n.loadOff.len() - 1)
}

// done ends loading.
func (n *nameBlob) done() { n.off = n.loadOff.flat() }

// bytes is the name beginning at at; next is where the next begins (-1:
// none).
func (n *nameBlob) bytes(at uint32, next int64) []byte {
	b := n.blobs[at/blobSize]
	end := uint32(len(b))
	if next >= 0 && uint32(next)/blobSize == at/blobSize {
		end = uint32(next) % blobSize
	}
	return b[at%blobSize : end]
}

// get is the name at index i.
func (n *nameBlob) get(i uint32) string {
	next := int64(-1)
	if int(i)+1 < len(n.off) {
		next = int64(n.off[i+1])
	}
	return string(n.bytes(n.off[i], next))
}

// pieces is an array filled by appending, held in pieces of per elements
// (pieceLen when not set).
type pieces[T any] struct {
	per  int
	done [][]T
	cur  []T
	n    int
}

// pieceLen is the elements in one of pieces' pieces unless per says.
const pieceLen = 1 << 16

func (p *pieces[T]) append(v ...T) {
	if p.per == 0 {
		p.per = pieceLen
	}
	for len(v) > 0 {
		if len(p.cur) == cap(p.cur) {
			if p.cur != nil {
				p.done = append(p.done, p.cur)
			}
			p.cur = make([]T, 0, p.per)
		}
		k := copy(p.cur[len(p.cur):cap(p.cur)], v)
		p.cur = p.cur[:len(p.cur)+k]
		v = v[k:]
		p.n += k
	}
}

func (p *pieces[T]) len() int { return p.n }

// piece is the piece of index k.
func (p *pieces[T]) piece(k int) []T {
	if k < len(p.done) {
		return p.done[k]
	}
	return p.cur
}

// at is the element at i.
func (p *pieces[T]) at(i int) T { return p.piece(i / p.per)[i%p.per] }

// slice is the n elements from i, which lie in one piece when per is a
// multiple of n and i of n.
func (p *pieces[T]) slice(i, n int) []T {
	o := i % p.per
	return p.piece(i / p.per)[o : o+n]
}

// flat is the elements in one array of their number, the pieces let go.
func (p *pieces[T]) flat() []T {
	out := make([]T, 0, p.n)
	for _, d := range p.done {
		out = append(out, d...)
	}
	out = append(out, p.cur...)
	*p = pieces[T]{}
	return out
}
