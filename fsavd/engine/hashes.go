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
	// has millions, and a load's peak was most of a reload's.
}

// add keeps a signature while the set is loaded.
func (s *hashSet) add(key []byte, size uint32, name uint32) {
	s.keys = append(s.keys, key...)
	s.sizes = append(s.sizes, size)
	s.names = append(s.names, name)
}

// build sorts what was loaded; of two signatures for the same hash and
// size, the one read later stays.
func (s *hashSet) build() {
	n, w := len(s.sizes), s.width
	key := func(i uint32) []byte { return s.keys[int(i)*w : int(i+1)*w] }
	// Sorted as (first eight bytes, line) pairs side by side: most
	// comparisons are settled by the hashes' first eight bytes, as one
	// integer, read where the pair is. Sorting line numbers by a
	// comparison that looked the bytes up elsewhere cost a cache miss a
	// comparison: the sort of millions was most of a load.
	type entry struct {
		pre uint64
		i   uint32
	}
	entries := make([]entry, n)
	for i := range entries {
		entries[i] = entry{binary.BigEndian.Uint64(s.keys[i*w:]), uint32(i)}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if a.pre != b.pre {
			return cmp.Compare(a.pre, b.pre)
		}
		if c := bytes.Compare(key(a.i), key(b.i)); c != 0 {
			return c
		}
		if s.sizes[a.i] != s.sizes[b.i] {
			return cmp.Compare(s.sizes[a.i], s.sizes[b.i])
		}
		return cmp.Compare(a.i, b.i) // the order read
	})
	order := make([]uint32, n)
	for j, e := range entries {
		order[j] = e.i
	}
	entries = nil
	keys := make([]byte, 0, n*w)
	sizes, names := make([]uint32, 0, n), make([]uint32, 0, n)
	for j, i := range order {
		if j+1 < n && bytes.Equal(key(order[j+1]), key(i)) && s.sizes[order[j+1]] == s.sizes[i] {
			continue // a later one replaces it
		}
		keys = append(keys, key(i)...)
		sizes = append(sizes, s.sizes[i])
		names = append(names, s.names[i])
	}
	s.keys, s.sizes, s.names = keys, sizes, names
	s.distinct = append([]uint32(nil), sizes...)
	slices.Sort(s.distinct)
	s.distinct = slices.Compact(s.distinct)
	if k := len(s.distinct); k > 0 && s.distinct[k-1] == anySize {
		s.any, s.distinct = true, s.distinct[:k-1]
	}
	s.distinct = slices.Clip(s.distinct)
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

// nameBlob holds the hash signatures' names in one blob, each once.
type nameBlob struct {
	blob []byte
	off  []uint32 // where each begins; it ends where the next does
}

// intern gives name's index. A name like the one before is kept once
// (families of hashes under one name come together); the others are
// kept as read: a map of millions of names to find repeats cost more at
// load than the repeats it saved.
func (n *nameBlob) intern(name []byte) uint32 {
	if k := len(n.off); k > 0 && string(n.blob[n.off[k-1]:]) == string(name) {
		return uint32(k - 1)
	}
	i := uint32(len(n.off))
	n.off = append(n.off, uint32(len(n.blob)))
	n.blob = append(n.blob, name...)
	return i
}

// done trims what loading left over.
func (n *nameBlob) done() { n.blob, n.off = slices.Clip(n.blob), slices.Clip(n.off) }

// get is the name at index i.
func (n *nameBlob) get(i uint32) string {
	end := uint32(len(n.blob))
	if int(i)+1 < len(n.off) {
		end = n.off[i+1]
	}
	return string(n.blob[n.off[i]:end])
}
