package spool

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/zeebo/blake3"
)

// segmentSize is the length of the segments of an object hashed apart.
const segmentSize = 4 << 20

// sumDomain begins the hash of the segments' sums, so that it is never
// the plain hash of some other object.
const sumDomain = "fsigkd spool: BLAKE3 of the BLAKE3 of each 4 MiB segment\x00"

// digest is a spool file's sum, for the verdict cache and the
// quarantine's once-per-worker memory: BLAKE3 of the object when it is
// at most one segment long; past it, BLAKE3 of sumDomain and of the
// BLAKE3 of each segment in turn (the last may be short). As collision
// resistant as BLAKE3 itself (a collision of the whole is one of a
// segment or of the outer hash), the same for the same bytes however
// they were written, and it lets the segments of a large object be
// hashed on several cores: in line, BLAKE3 (about 2.7 GB/s on the bench
// machine) cost a 100 MiB download more than the rest of its spooling.
type digest struct {
	segs []*segment // the last one is open unless full
	// work sends the pieces of segments past the first to hashers of
	// their own (hashAside); nil: hashed in line.
	work []chan piece
	wg   sync.WaitGroup
}

type segment struct {
	h    *blake3.Hasher
	n    int
	sum  [32]byte // once full
	full bool
}

// piece is part of a segment, in a buffer of Fill's (ref).
type piece struct {
	seg  *segment
	p    []byte
	ref  *chunkRef
	last bool // the segment's last piece
}

// seal takes a full segment's sum and lets its hasher go (about 10 KB:
// a 100 MiB object has 25 segments). full is the writer's to set: a
// hasher aside seals while the writer goes on.
func (s *segment) seal() {
	s.h.Sum(s.sum[:0])
	s.h = nil
}

// chunkRef counts the pieces of one of Fill's buffers still to be
// hashed, and gives the buffer back to fillBufs after the last one.
type chunkRef struct {
	bp   *[]byte
	refs atomic.Int32
}

func (r *chunkRef) release() {
	if r.refs.Add(-1) == 0 {
		fillBufs.Put(r.bp)
	}
}

// reset starts the digest of a new object, keeping the first hasher.
func (d *digest) reset() {
	if len(d.segs) == 0 {
		d.segs = []*segment{{h: blake3.New()}}
		return
	}
	first := d.segs[0]
	if first.h == nil {
		first.h = blake3.New()
	} else {
		first.h.Reset()
	}
	*first = segment{h: first.h}
	clear(d.segs[1:])
	d.segs = d.segs[:1]
}

// write adds p, which lies in ref's buffer when hashing aside (nil
// otherwise). The first segment is always hashed in line: an object of
// one segment costs no goroutine.
func (d *digest) write(p []byte, ref *chunkRef) {
	for len(p) > 0 {
		s := d.segs[len(d.segs)-1]
		if s.full {
			s = &segment{h: blake3.New()}
			d.segs = append(d.segs, s)
		}
		take := min(segmentSize-s.n, len(p))
		q := p[:take]
		p = p[take:]
		s.n += take
		last := s.n == segmentSize
		if d.work != nil && ref != nil && len(d.segs) > 1 {
			ref.refs.Add(1)
			d.work[(len(d.segs)-2)%len(d.work)] <- piece{seg: s, p: q, ref: ref, last: last}
			s.full = last
			continue
		}
		s.h.Write(q)
		if last {
			s.seal()
			s.full = true
		}
	}
}

// hashAside starts the hashers that take the segments past the first,
// one per core (at most four): pieces of one segment all go to one, in
// order.
func (d *digest) hashAside() {
	n := min(runtime.GOMAXPROCS(0), 4)
	d.work = make([]chan piece, n)
	for i := range d.work {
		ch := make(chan piece, 8)
		d.work[i] = ch
		d.wg.Go(func() {
			for pc := range ch {
				pc.seg.h.Write(pc.p)
				if pc.last {
					pc.seg.seal()
				}
				pc.ref.release()
			}
		})
	}
}

// wait returns once every piece sent aside is hashed; later writes are
// hashed in line.
func (d *digest) wait() {
	if d.work == nil {
		return
	}
	for _, ch := range d.work {
		close(ch)
	}
	d.wg.Wait()
	d.work = nil
}

// sum is the digest of what was written.
func (d *digest) sum() (out [32]byte) {
	if first := d.segs[0]; len(d.segs) == 1 {
		if first.full {
			return first.sum // exactly one segment long
		}
		first.h.Sum(out[:0])
		return out
	}
	outer := blake3.New()
	outer.WriteString(sumDomain)
	var part [32]byte
	for _, s := range d.segs {
		if s.full {
			outer.Write(s.sum[:])
		} else {
			s.h.Sum(part[:0])
			outer.Write(part[:])
		}
	}
	outer.Sum(out[:0])
	return out
}
