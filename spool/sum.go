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

// digest is a spool file's sum, for the verdict cache and the
// quarantine's once-per-worker memory: BLAKE3 of the object when it is
// at most one segment long; past it, BLAKE3 of sumDomain and of the
// BLAKE3 of each segment in turn (the last may be short). As collision
// resistant as BLAKE3 itself (a collision of the whole is one of a
// segment or of the outer hash), the same for the same bytes however
// they were written, and its segments can be hashed on several cores.
//
// Only the first segment is hashed as it is written: an object of one
// segment (every page, most mails) has its sum when it is spooled, at no
// cost but the hash of bytes in hand. The segments past it are hashed
// when the sum is asked for (readBack), from the file, on every core. By
// perf of a 100 MiB download, hashing them as they arrived cost 35-40 ms
// of its 95 ms of spooling on two cores, and the verdict cache, which
// alone asks for the sum, needs it only for an object it may have seen:
// one with the same size and the same first segment (head, scanner.Cache).
type digest struct {
	first *blake3.Hasher // the first segment's bytes
	n     int64          // bytes written
	// whole is the sum once known: always, for one segment, once taken;
	// past it, once read back.
	whole [32]byte
	known bool
}

// reset starts the digest of a new object, keeping the hasher.
func (d *digest) reset() {
	if d.first == nil {
		d.first = blake3.New()
	} else {
		d.first.Reset()
	}
	d.n, d.known = 0, false
}

// write adds p, the bytes written after the d.n first.
func (d *digest) write(p []byte) {
	if d.n < segmentSize {
		d.first.Write(p[:min(int64(len(p)), segmentSize-d.n)])
	}
	d.n += int64(len(p))
	d.known = false
}

// head is the BLAKE3 of the first segment, or of all that was written
// when that is less.
func (d *digest) head() (out [32]byte) {
	d.first.Sum(out[:0])
	return out
}

// sum is the digest of the d.n bytes written, the segments past the
// first read back from r.
func (d *digest) sum(r io.ReaderAt) (out [32]byte, ok bool) {
	if d.known {
		return d.whole, true
	}
	first := d.head()
	if d.n <= segmentSize {
		d.whole, d.known = first, true
		return first, true
	}
	sums, ok := readBack(r, d.n)
	if !ok {
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
			bp := fillBufs.Get().(*[]byte)
			defer fillBufs.Put(bp)
			h := blake3.New()
			for !failed.Load() {
				s := int(next.Add(1) - 1)
				if s >= segs {
					return
				}
				h.Reset()
				for off, end := int64(s)*segmentSize, min(int64(s+1)*segmentSize, size); off < end; {
					n, err := r.ReadAt((*bp)[:min(int64(len(*bp)), end-off)], off)
					h.Write((*bp)[:n])
					off += int64(n)
					if err != nil && off < end {
						failed.Store(true)
						return
					}
				}
				h.Sum(sums[s-1][:0])
			}
		})
	}
	wg.Wait()
	return sums, !failed.Load()
}
