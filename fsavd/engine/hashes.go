package engine

import (
	"bytes"
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

	loading []hashEntry // while the set is loaded; nil once built
}

type hashEntry struct {
	key  string // the hash's bytes
	size uint32
	name uint32
	seq  int // the order it was read: a later line wins
}

// add keeps a signature while the set is loaded.
func (s *hashSet) add(key []byte, size uint32, name uint32) {
	s.loading = append(s.loading, hashEntry{string(key), size, name, len(s.loading)})
}

// build sorts what was loaded into the flat arrays; of two signatures for
// the same hash and size, the one read later stays.
func (s *hashSet) build() {
	e := s.loading
	s.loading = nil
	sort.Slice(e, func(i, j int) bool {
		if e[i].key != e[j].key {
			return e[i].key < e[j].key
		}
		if e[i].size != e[j].size {
			return e[i].size < e[j].size
		}
		return e[i].seq < e[j].seq
	})
	s.keys = make([]byte, 0, len(e)*s.width)
	s.sizes, s.names = make([]uint32, 0, len(e)), make([]uint32, 0, len(e))
	seen := map[uint32]bool{}
	for i, x := range e {
		if i+1 < len(e) && e[i+1].key == x.key && e[i+1].size == x.size {
			continue // a later one replaces it
		}
		s.keys = append(s.keys, x.key...)
		s.sizes = append(s.sizes, x.size)
		s.names = append(s.names, x.name)
		if x.size == anySize {
			s.any = true
		} else if !seen[x.size] {
			seen[x.size] = true
			s.distinct = append(s.distinct, x.size)
		}
	}
	slices.Sort(s.distinct)
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

// nameBlob holds the hash signatures' names in one blob, each once.
type nameBlob struct {
	blob []byte
	off  []uint32 // where each begins; it ends where the next does

	index map[string]uint32 // while loading; nil once built
}

// intern gives name's index, adding it the first time.
func (n *nameBlob) intern(name string) uint32 {
	if i, ok := n.index[name]; ok {
		return i
	}
	if n.index == nil {
		n.index = map[string]uint32{}
	}
	i := uint32(len(n.off))
	n.off = append(n.off, uint32(len(n.blob)))
	n.blob = append(n.blob, name...)
	n.index[name] = i
	return i
}

// done drops what only loading needs.
func (n *nameBlob) done() { n.index = nil }

// get is the name at index i.
func (n *nameBlob) get(i uint32) string {
	end := uint32(len(n.blob))
	if int(i)+1 < len(n.off) {
		end = n.off[i+1]
	}
	return string(n.blob[n.off[i]:end])
}
