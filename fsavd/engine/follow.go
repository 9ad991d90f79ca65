package engine

import (
	"os"
	"slices"
	"sync"

	"github.com/fsigkd/fsigkd/internal/bytesearch"
	"github.com/fsigkd/fsigkd/unpack"
)

// Follow is the search of an object still being written (a large
// download as the gateway spools it), ahead of its scan: the places where
// the signatures' anchors start and the places unpack looks for
// (unpack.Ahead) are found as the bytes arrive, so that the scan of the
// whole object (ScanFollowed) verifies the places found and searches only
// what came since. Verification, hashes and containers all wait for the
// whole object: what a search of each byte finds is all that goes ahead,
// so a followed object is judged exactly as one scanned at once (FuzzFollow).
//
// Only a set of few anchor prefixes (the shipped one: see maxKeys) is
// followed; with a large set, or past maxFollowAnchors places, the scan
// does it all.
type Follow struct {
	db      *DB
	anchors []int // places where an anchor prefix starts, in order, in the first ahead.Upto bytes
	ahead   *unpack.Ahead
	void    bool // nothing to go on: the scan searches everything
}

// maxFollowAnchors bounds the places a Follow keeps (an object crowded
// with anchors, which the scan then searches itself).
const maxFollowAnchors = 1 << 16

// Follow starts the search of an object still being written, with the
// signatures in use now.
func (e *Engine) Follow() *Follow {
	db := e.DB()
	return &Follow{db: db, ahead: unpack.NewAhead(), void: db.keys == nil}
}

// Grow searches what was written to fd since the last call, up to size
// bytes. A failure leaves everything to the scan.
//
// It reads the file in pieces into a pooled buffer rather than mapping
// it: no memory fault to guard against when another program cuts the
// file, and by BenchmarkFollowGrow no slower. 100 MiB in 4 MiB steps,
// with a test set of four anchor prefixes and a search per string:
// mapped and populated 37 ms, faulted in 44, read 41; read, with one pass
// for all strings, 40. With the shipped set (one prefix), read with one
// pass: 30 ms.
func (f *Follow) Grow(fd *os.File, size int64) error {
	if f.void {
		return nil
	}
	// Only a regular file, and only as far as it goes: a size said past
	// its end, or a device that never ends (/dev/zero), is not read on.
	st, err := fd.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.void = true
		return err
	}
	size = min(size, st.Size())
	bp := followBufs.Get().(*[]byte)
	defer followBufs.Put(bp)
	for int64(f.ahead.Upto) < size {
		// From before the last bytes searched, so that a string across
		// the border is seen whole (search starts each at its own).
		base := max(0, f.ahead.Upto-16-f.ahead.WantedLen())
		window := (*bp)[:min(int64(len(*bp)), size-int64(base))]
		if _, err := fd.ReadAt(window, int64(base)); err != nil {
			f.void = true
			return err
		}
		f.search(window, base)
		if f.void {
			return nil
		}
	}
	return nil
}

// followBufs hold Grow's pieces: small enough to stay in a core's cache
// while both searches read them.
var followBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// search goes on over window, the object's bytes from base on: the
// anchor prefixes and what unpack wants found (Ahead.Wanted), in one pass
// (bytesearch.Set), from the first place each could not be seen whole.
func (f *Follow) search(window []byte, base int) {
	upto := f.ahead.Upto
	wanted := f.ahead.Wanted()
	set := bytesearch.NewSet(append(slices.Clip(f.db.keys), wanted...)...)
	keyFrom := max(0, upto-3)
	from := keyFrom
	for _, w := range wanted {
		from = min(from, max(0, upto-len(w)+1))
	}
	keys := uint(1)<<len(f.db.keys) - 1
	n := len(f.anchors)
	for i := from - base; set != nil; {
		k, which := set.Index(window[i:])
		if k < 0 {
			break
		}
		p := base + i + k
		i += k + 1
		if which&keys != 0 && p >= keyFrom {
			if len(f.anchors) == maxFollowAnchors {
				f.void, f.anchors = true, nil
				return
			}
			f.anchors = append(f.anchors, p)
		}
		if which&^keys == 0 {
			continue
		}
		for j, w := range wanted {
			if which&(1<<(len(f.db.keys)+j)) != 0 && p >= upto-len(w)+1 {
				f.ahead.Saw(window, base, p, w)
			}
		}
		if f.ahead.WantedN() != len(wanted) {
			// One found ("begin"), or too many (a data: address's
			// pairs): looked for no more.
			wanted = f.ahead.Wanted()
			set = bytesearch.NewSet(append(slices.Clip(f.db.keys), wanted...)...)
		}
	}
	slices.Sort(f.anchors[n:])
	f.ahead.LookForBase64(window, base)
	f.ahead.LookForBehind(window, base)
	f.ahead.Upto = base + len(window)
}

// ScanFollowed scans the open file fd, whole, as ScanOpen does, taking
// what fl found ahead. A follow made void, or made with signatures since
// replaced, counts for nothing.
func (e *Engine) ScanFollowed(fd *os.File, fl *Follow, opt Options, visit unpack.Visit) ([]Detection, error) {
	db := e.DB()
	if fl == nil || fl.void || fl.db != db {
		return e.ScanOpen(fd, opt, visit)
	}
	ahead := *fl.ahead
	ahead.Match = func(data []byte, found func(string) bool) { db.matchFollowed(data, fl, found) }
	opt.Ahead = &ahead
	return unpack.ScanOpen(fd, db.options(opt), e.Limits, db.match, visit)
}

// matchFollowed is match for the object fl followed: the anchors found
// ahead verified in order, then the search from where it stopped.
func (db *DB) matchFollowed(data []byte, fl *Follow, found func(name string) bool) {
	if fl.ahead.Upto > len(data) {
		db.match(data, found) // the file was cut since
		return
	}
	found, done := db.byHash(data, found)
	if done {
		return
	}
	stopped := false
	found = stopWith(found, &stopped)
	defer func() {
		if !stopped {
			db.matchViews(data, nil, found)
		}
	}()
	p := pass{db: db, ix: &db.index, data: data, found: found}
	p.v.init(data, db.types)
	for _, i := range fl.anchors {
		if p.at(i) {
			return
		}
	}
	if p.run(max(0, fl.ahead.Upto-3), len(data)) {
		return
	}
	db.matchUnanchored(data, &db.index, viewRaw, p.exhausted, p.hit, nil, found) // the object itself: in no container
}
