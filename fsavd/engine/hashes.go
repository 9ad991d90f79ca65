package engine

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
	"sort"
	"sync"
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

// bucketedFrom is the size of a set from which its signatures are sorted
// by bucket (bucketed).
const bucketedFrom = 1 << 14

// A signature being loaded is found by its place: its pieces' index
// times recsPer plus its place in them, the same in the keys', sizes'
// and names' pieces, which are filled together; places grow in the
// order read.
const (
	recsShift = 12
	recsPer   = 1 << recsShift
)

// newHashSet is an empty set of hashes of width bytes.
func newHashSet(width int) *hashSet {
	return &hashSet{width: width, loadKeys: pieces[byte]{per: width * recsPer},
		loadSizes: pieces[uint32]{per: recsPer}, loadIDs: pieces[uint32]{per: recsPer}}
}

// add keeps a signature while the set is loaded.
func (s *hashSet) add(key []byte, size uint32, name uint32) {
	s.loadKeys.append(key...)
	s.loadSizes.append(size)
	s.loadIDs.append(name)
}

// build sorts what was loaded; of two signatures for the same hash and
// size, the one read later stays.
func (s *hashSet) build(par int) {
	n, w := s.loadSizes.len(), s.width
	key := func(at uint32) []byte {
		o := int(at%recsPer) * w
		return s.loadKeys.list[at>>recsShift][o : o+w]
	}
	// Sorted as (first eight bytes, place, size) side by side: most
	// comparisons are settled by the hashes' first eight bytes, as one
	// integer, read where the entry is. Sorting line numbers by a
	// comparison that looked the bytes up elsewhere cost a cache miss a
	// comparison: the sort of millions was most of a load. Each entry is
	// written straight to its bucket of the hashes' first two bytes
	// (hashes are spread evenly: a bucket holds a few dozen of
	// millions), then each bucket is sorted where it lies, in the cache;
	// every step on as many goroutines as there are processors.
	compare := func(a, b hashEntry) int {
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
	}
	entries, bucketStart := s.bucketed(key, par)
	bounds := splitBuckets(bucketStart, par)
	inParts(len(bounds)-1, func(p int) {
		for b := bounds[p]; b < bounds[p+1]; b++ {
			slices.SortFunc(entries[bucketStart[b]:bucketStart[b+1]], compare)
		}
	})
	// Of two signatures for one hash and size, the later (next in the
	// order) stays. Each part counts what it keeps, then writes it
	// where the parts before it end.
	dropped := func(j int) bool {
		e, next := entries[j], j+1
		return next < n && entries[next].pre == e.pre && entries[next].size == e.size && bytes.Equal(key(entries[next].i), key(e.i))
	}
	parts := par
	from := func(p int) int { return n * p / parts }
	out := make([]int, parts+1)
	inParts(parts, func(p int) {
		for j := from(p); j < from(p+1); j++ {
			if !dropped(j) {
				out[p+1]++
			}
		}
	})
	for p := range parts {
		out[p+1] += out[p]
	}
	kept := out[parts]
	keys := make([]byte, kept*w)
	sizes, names := make([]uint32, kept), make([]uint32, kept)
	inParts(parts, func(p int) {
		o := out[p]
		for j := from(p); j < from(p+1); j++ {
			if dropped(j) {
				continue
			}
			e := entries[j]
			copy(keys[o*w:], key(e.i))
			sizes[o], names[o] = e.size, s.loadIDs.list[e.i>>recsShift][e.i%recsPer]
			o++
		}
	})
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
// its place (in the order read) and its size.
type hashEntry struct {
	pre     uint64
	i, size uint32
}

// bucketed is the set's signatures as entries, each bucket of the first
// two bytes of their hashes together, in the buckets' order; bucketStart
// is where each bucket begins, and ends at the next one's start. Each
// part of the pieces counts its buckets, then writes its entries to its
// own places in each bucket. A set of fewer than bucketedFrom is one
// bucket, in the order read: 65,536 buckets for a few signatures (most
// of a database's files) cost more than they save.
func (s *hashSet) bucketed(key func(at uint32) []byte, par int) (entries []hashEntry, bucketStart []int) {
	if n := s.loadSizes.len(); n < bucketedFrom {
		entries = make([]hashEntry, 0, n)
		for k, sizes := range s.loadSizes.list {
			for o, size := range sizes {
				place := uint32(k<<recsShift | o)
				entries = append(entries, hashEntry{binary.BigEndian.Uint64(key(place)), place, size})
			}
		}
		return entries, []int{0, n}
	}
	const buckets = 1 << 16
	pieceCount := len(s.loadSizes.list)
	parts := min(par, max(pieceCount, 1))
	from := func(p int) int { return pieceCount * p / parts }
	counts := make([][]int, parts)
	inParts(parts, func(p int) {
		c := make([]int, buckets)
		for k := from(p); k < from(p+1); k++ {
			keys := s.loadKeys.list[k]
			for o := 0; o < len(keys); o += s.width {
				c[int(keys[o])<<8|int(keys[o+1])]++
			}
		}
		counts[p] = c
	})
	bucketStart = make([]int, buckets+1)
	at := 0
	for b := range buckets {
		bucketStart[b] = at
		for p := range parts {
			c := counts[p][b]
			counts[p][b] = at // where part p writes in bucket b
			at += c
		}
	}
	bucketStart[buckets] = at
	entries = make([]hashEntry, at)
	inParts(parts, func(p int) {
		next := counts[p]
		for k := from(p); k < from(p+1); k++ {
			for o, size := range s.loadSizes.list[k] {
				place := uint32(k<<recsShift | o)
				h := key(place)
				b := int(h[0])<<8 | int(h[1])
				entries[next[b]] = hashEntry{binary.BigEndian.Uint64(h), place, size}
				next[b]++
			}
		}
	})
	return entries, bucketStart
}

// splitBuckets is where parts parts of the buckets begin, each holding
// about as many entries, and where the last ends.
func splitBuckets(bucketStart []int, parts int) []int {
	buckets, n := len(bucketStart)-1, bucketStart[len(bucketStart)-1]
	bounds := []int{0}
	for p := 1; p < parts; p++ {
		b, _ := slices.BinarySearch(bucketStart, n*p/parts)
		bounds = append(bounds, min(max(b, bounds[p-1]), buckets))
	}
	return append(bounds, buckets)
}

// inParts runs f(p) for each p below parts, on goroutines of their own,
// and waits for them.
func inParts(parts int, f func(p int)) {
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() { f(p) })
	}
	wg.Wait()
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
	par     int // goroutines its reading and sorting are shared by
}

// sets are the file's sets of every use.
func (hf *hashFile) sets() []map[string]*hashSet {
	return []map[string]*hashSet{hf.hashes, hf.allowed, hf.sections, hf.imports}
}

func (hf *hashFile) build() {
	for _, sets := range hf.sets() {
		for _, set := range sets {
			set.build(hf.par)
		}
	}
	hf.names.done()
}

// absorb takes the signatures o holds after hf's (o is emptied), as if
// read after them.
func (hf *hashFile) absorb(o *hashFile) {
	first := hf.names.absorb(&o.names)
	mine := hf.sets()
	for u, sets := range o.sets() {
		for kind, set := range sets {
			dst := mine[u][kind]
			if dst == nil {
				dst = newHashSet(set.width)
				mine[u][kind] = dst
			}
			addTo(&set.loadIDs, first)
			dst.loadKeys.absorb(&set.loadKeys)
			dst.loadSizes.absorb(&set.loadSizes)
			dst.loadIDs.absorb(&set.loadIDs)
		}
	}
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
	if k := n.loadOff.len(); k > 0 && string(n.bytes(n.loadOff.last(), -1)) == string(name) {
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

// clipLast gives back what the last blob has to spare, when that is
// much: a file read in parts leaves one blob begun in each.
func (n *nameBlob) clipLast() {
	if k := len(n.blobs) - 1; k >= 0 && cap(n.blobs[k])-len(n.blobs[k]) > 64<<10 {
		n.blobs[k] = slices.Clone(n.blobs[k])
	}
}

// absorb takes o's names after n's, and gives what o's indexes are to
// be added to.
func (n *nameBlob) absorb(o *nameBlob) uint32 {
	first := uint32(n.loadOff.len())
	addTo(&o.loadOff, uint32(len(n.blobs))*blobSize)
	n.loadOff.absorb(&o.loadOff)
	for _, b := range o.blobs {
		n.blobs = append(n.blobs, slices.Clip(b))
	}
	*o = nameBlob{}
	return first
}

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
// (pieceLen when not set), the last of them perhaps shorter; or, once
// another's pieces were taken in after them (absorb), each piece that
// ends a taken part perhaps shorter too.
type pieces[T any] struct {
	per  int
	list [][]T // the last is the one appended to
	n    int
}

// pieceLen is the elements in one of pieces' pieces unless per says.
const pieceLen = 1 << 16

func (p *pieces[T]) append(v ...T) {
	if p.per == 0 {
		p.per = pieceLen
	}
	for len(v) > 0 {
		k := len(p.list) - 1
		if k < 0 || len(p.list[k]) == cap(p.list[k]) {
			p.list = append(p.list, make([]T, 0, p.per))
			k++
		}
		last := p.list[k]
		c := copy(last[len(last):cap(last)], v)
		p.list[k] = last[:len(last)+c]
		v = v[c:]
		p.n += c
	}
}

// absorb takes o's pieces after p's, as they are (o is emptied, and may
// be filled again).
func (p *pieces[T]) absorb(o *pieces[T]) {
	for _, piece := range o.list {
		if len(piece) > 0 {
			p.list = append(p.list, slices.Clip(piece)) // appended to, a new piece
			p.n += len(piece)
		}
	}
	if p.per == 0 {
		p.per = o.per
	}
	// Emptied, o keeps its length of piece: a set filled again after
	// giving its pieces away keeps its keys, sizes and names in step.
	*o = pieces[T]{per: o.per}
}

func (p *pieces[T]) len() int { return p.n }

// last is the element appended last (p holds one at least).
func (p *pieces[T]) last() T {
	piece := p.list[len(p.list)-1]
	return piece[len(piece)-1]
}

// flat is the elements in one array of their number, the pieces let go.
func (p *pieces[T]) flat() []T {
	out := make([]T, 0, p.n)
	for _, piece := range p.list {
		out = append(out, piece...)
	}
	*p = pieces[T]{}
	return out
}

// addTo adds d to every element of p.
func addTo(p *pieces[uint32], d uint32) {
	for _, piece := range p.list {
		for j := range piece {
			piece[j] += d
		}
	}
}
