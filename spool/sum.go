package spool

import (
	"io"
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

// headSize is how much of every object is hashed as it is spooled: its
// head, what a repeat of it shares with it.
const headSize = 64 << 10

// digest is a spool file's sum, for the verdict cache and the
// quarantine's once-per-worker memory: BLAKE3 of the object when it is
// at most one segment long; past it, BLAKE3 of sumDomain and of the
// BLAKE3 of each segment in turn (the last may be short). As collision
// resistant as BLAKE3 itself (a collision of the whole is one of a
// segment or of the outer hash), the same for the same bytes however
// they were written, and its segments can be hashed on several cores.
//
// Only the first 64 KiB (the head) are always hashed as they are
// written: an object that small (most pages, most mails) has its sum
// when it is spooled, at no cost but the hash of bytes in hand. Past
// the head, the object is hashed as it arrives (the first segment in
// line, the segments past it on other goroutines: ahead) only when the
// directory's SumAhead, asked with the head's hash, says it may be a
// repeat (the verdict cache met one that starts alike); otherwise it is
// hashed when the sum is asked for, from the file (readBack: the
// segments past the first on every core). By perf of a 100 MiB
// download, hashing every one as it arrived cost 35-40 ms of its 95 ms
// of spooling on two cores, and hashing the first 4 MiB of every object
// a fifth of the HTTP worker's time under 1 MiB objects, for a key the
// cache uses only for an object it has met.
type digest struct {
	first *blake3.Hasher // the first segment's bytes, the fed first
	fed   int64          // bytes of the first segment hashed into first
	n     int64          // bytes written
	// headSum is the hash of the first headSize bytes, once n passed
	// them; eager whether the rest is hashed as it comes (else written
	// unhashed: lazy, read back by sum).
	headSum [32]byte
	eager   bool
	// askAhead is the directory's SumAhead.
	askAhead func(head [32]byte) bool
	// ahead hashes the segments past the first as they come; nil: they
	// are read back.
	ahead *aside
	// whole is the sum once known: always, for one segment, once taken;
	// past it, once read back or composed.
	whole [32]byte
	known bool
}

// aside hashes the segments past the first while the file is written.
type aside struct {
	segs []*segment
	// work sends the pieces of segments to hashers of their own, one a
	// core; nil once waited for (writes are then hashed in line).
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
// a 100 MiB object has 25 segments).
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

// reset starts the digest of a new object, keeping the hasher; ask is
// the directory's SumAhead.
func (d *digest) reset(ask func([32]byte) bool) {
	if d.first == nil {
		d.first = blake3.New()
	} else {
		d.first.Reset()
	}
	d.fed, d.n, d.known, d.ahead = 0, 0, false, nil
	d.eager, d.askAhead = false, ask
}

// write adds p, the bytes written after the d.n first; past the first
// segment, to the segments hashed ahead when they are (p then lies in
// ref's buffer when it comes from Fill, nil from Write).
func (d *digest) write(p []byte, ref *chunkRef) {
	if d.n < segmentSize {
		k := min(int64(len(p)), segmentSize-d.n)
		d.feed(p[:k])
		d.n += k
		p = p[k:]
	}
	d.known = false
	if d.ahead != nil {
		d.ahead.write(p, ref)
	}
	d.n += int64(len(p))
}

// feed hashes q, the first segment's bytes from d.n, while the first is
// hashed as it comes: always up to the head's end, where SumAhead is
// asked whether to go on.
func (d *digest) feed(q []byte) {
	if d.fed != d.n {
		return // lazy: read back by sum
	}
	if d.n <= headSize && d.n+int64(len(q)) > headSize {
		k := headSize - d.n
		d.first.Write(q[:k])
		d.fed += k
		q = q[k:]
		d.first.Sum(d.headSum[:0])
		d.eager = d.askAhead != nil && d.askAhead(d.headSum)
		if !d.eager {
			return
		}
	}
	d.first.Write(q)
	d.fed += int64(len(q))
}

// readsBack tells whether sum has to read bytes back.
func (d *digest) readsBack() bool {
	return !d.known && (d.fed < min(d.n, segmentSize) || d.n > segmentSize && d.ahead == nil)
}

// goAhead has the segments past the first hashed as they come, one
// hasher a core (at most four); d is at the end of its first segment.
func (d *digest) goAhead() {
	a := &aside{work: make([]chan piece, min(runtime.GOMAXPROCS(0), 4))}
	for i := range a.work {
		ch := make(chan piece, 8)
		a.work[i] = ch
		a.wg.Go(func() {
			for pc := range ch {
				pc.seg.h.Write(pc.p)
				if pc.last {
					pc.seg.seal()
				}
				pc.ref.release()
			}
		})
	}
	d.ahead = a
}

// write adds p to the segments: aside when it lies in a buffer of Fill's
// (ref) and the hashers run, in line otherwise.
func (a *aside) write(p []byte, ref *chunkRef) {
	for len(p) > 0 {
		if len(a.segs) == 0 || a.segs[len(a.segs)-1].full {
			a.segs = append(a.segs, &segment{h: blake3.New()})
		}
		s := a.segs[len(a.segs)-1]
		take := min(segmentSize-s.n, len(p))
		q := p[:take]
		p = p[take:]
		s.n += take
		last := s.n == segmentSize
		if a.work != nil && ref != nil {
			ref.refs.Add(1)
			a.work[(len(a.segs)-1)%len(a.work)] <- piece{seg: s, p: q, ref: ref, last: last}
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

// wait returns once every piece sent aside is hashed; later writes are
// hashed in line.
func (a *aside) wait() {
	if a == nil || a.work == nil {
		return
	}
	for _, ch := range a.work {
		close(ch)
	}
	a.wg.Wait()
	a.work = nil
}

// sums are the segments' sums (the last one's as far as it goes).
func (a *aside) sums() [][32]byte {
	out := make([][32]byte, len(a.segs))
	for i, s := range a.segs {
		if s.full {
			out[i] = s.sum
		} else {
			s.h.Sum(out[i][:0])
		}
	}
	return out
}

// sum is the digest of the d.n bytes written, what was not hashed as
// it came read back from r.
func (d *digest) sum(r io.ReaderAt) (out [32]byte, ok bool) {
	if d.known {
		return d.whole, true
	}
	if end := min(d.n, segmentSize); d.fed < end {
		if !readInto(d.first, r, d.fed, end) {
			return out, false
		}
		d.fed = end
	}
	var first [32]byte
	d.first.Sum(first[:0])
	if d.n <= segmentSize {
		d.whole, d.known = first, true
		return first, true
	}
	var sums [][32]byte
	if d.ahead != nil {
		d.ahead.wait()
		sums = d.ahead.sums()
	} else if sums, ok = readBack(r, d.n); !ok {
		return out, false
	}
	outer := blake3.New()
	outer.WriteString(sumDomain)
	outer.Write(first[:])
	for _, s := range sums {
		outer.Write(s[:])
	}
	outer.Sum(d.whole[:0])
	d.known = true
	return d.whole, true
}

// readInto hashes bytes off to end of r into h, in Fill's chunks; false
// when a read fails or comes short (the file was cut by another program).
func readInto(h *blake3.Hasher, r io.ReaderAt, off, end int64) bool {
	bp := fillBufs.Get().(*[]byte)
	defer fillBufs.Put(bp)
	for off < end {
		n, err := r.ReadAt((*bp)[:min(int64(len(*bp)), end-off)], off)
		h.Write((*bp)[:n])
		off += int64(n)
		if err != nil && off < end {
			return false
		}
	}
	return true
}

// readBack hashes the segments past the first of the size bytes of r,
// on one goroutine a core (at most four), each reading its segments in
// Fill's chunks. ok is false when a read fails or comes short (the file
// was cut by another program): no sum then.
func readBack(r io.ReaderAt, size int64) (sums [][32]byte, ok bool) {
	segs := int((size + segmentSize - 1) / segmentSize)
	sums = make([][32]byte, segs-1)
	var next atomic.Int32 // the next segment to take, past the first
	next.Store(1)
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), 4, segs-1) {
		wg.Go(func() {
			h := blake3.New()
			for !failed.Load() {
				s := int(next.Add(1) - 1)
				if s >= segs {
					return
				}
				h.Reset()
				if !readInto(h, r, int64(s)*segmentSize, min(int64(s+1)*segmentSize, size)) {
					failed.Store(true)
					return
				}
				h.Sum(sums[s-1][:0])
			}
		})
	}
	wg.Wait()
	return sums, !failed.Load()
}
