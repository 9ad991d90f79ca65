// Package spool is where every body, mail and transfer waits while it is
// scanned: streamed into a file in temp_dir (never held whole in memory,
// but for an object of at most InlineSize, 16 KiB, which stays in memory
// until something asks for its file: see Create), handed to the scanner
// as a file or, small, as its bytes, sent on with sendfile under a
// no-progress timeout (M07), and emptied whatever happens. Files are named
// fsigkd-<service>-<pid>-*, so that the master removes what a worker left
// when it ends (RemoveOf), and whatever a crash of its own left at start
// and at stop (ClearStale).
//
// A closed file is not removed but emptied and kept for the next object
// (up to Keep files a directory, each of at most KeepSize bytes):
// creating and removing an inode per object was, by the profile of small
// objects, most of the gateway's kernel time (the directory's lock
// spins). On ext4, emptying a 10 KiB file costs 9.5 µs against 23.5 µs
// to create and remove one; at 1 MiB they cost the same, and at 100 MiB
// emptying is 2.7 times the dearer, so larger files are removed. A kept
// file that is no longer under its name (another program removed or
// renamed it, or replaced the directory) is dropped, never reused; one
// moved while in use is M14 (Check) for an engine that opens it by name,
// once. Drain removes the kept files, at a worker's stop.
package spool

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsigkd/fsigkd/catalog"
)

// Prefix starts the name of every spool file.
const Prefix = "fsigkd-"

// Dir is a spool directory.
type Dir struct {
	Path string
	// Hash: each file keeps the sum of what was written to it (Sum, for
	// the verdict cache): of its first 64 KiB as they are written, of
	// the rest when it is asked for, or as it comes when SumAhead says so.
	Hash bool
	// SumAhead, when set, is asked with the hash of an object's first
	// 64 KiB as they are written: true has the rest hashed as it arrives
	// (the verdict cache met an object that starts so, and will want the
	// sum).
	SumAhead func(head [32]byte) bool
}

// Failure is a spool that cannot take a file: the disk or its quota is
// full (ENOSPC, EDQUOT), no descriptor is left, or another error of the
// file system. Its text names no path, so that it can reach no client.
type Failure struct {
	Op  string // create, write or check
	Err error
}

func (f *Failure) Error() string {
	if en, ok := catalog.Errno(f.Err); ok {
		return "spool " + f.Op + ": " + catalog.Strerror(en)
	}
	return "spool " + f.Op + " failed"
}

func (f *Failure) Unwrap() error { return f.Err }

// Full tells whether the spool's file system (or quota) is full.
func (f *Failure) Full() bool {
	en, _ := catalog.Errno(f.Err)
	return en == syscall.ENOSPC || en == syscall.EDQUOT
}

// Free is how many bytes the directory's file system has free for this
// (unprivileged) user: the start-up check (M09) and the spool's own
// failures read it.
func (d Dir) Free() (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.Path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Keep is how many emptied files a directory keeps for reuse, per
// service; KeepSize the largest file kept.
const (
	Keep     = 256
	KeepSize = 1 << 20
)

// kept are the emptied files, by directory and service.
var kept = struct {
	sync.Mutex
	m map[string][]*File
}{m: map[string][]*File{}}

// Create gives an empty spool file for service. Nothing is written to
// disk while the object is at most InlineSize bytes and nothing asks for
// its file (OS, Path, SendTo): it is kept in memory, and an engine that
// takes bytes scans it there (Memory). Past that, the object goes to a
// file, a kept one when there is one still in place, a new one
// otherwise; a file kept for reuse and given to a small object is not
// touched. By strace of 1 KiB objects, writing each to a reused file cost
// three system calls (its stat, the write, the truncation at its end).
// The error is always nil: a file that cannot be made fails the write
// that needs it (a *Failure).
func (d Dir) Create(service string) (*File, error) {
	key := d.Path + "\x00" + service
	kept.Lock()
	free := kept.m[key]
	var f *File
	if len(free) > 0 {
		f = free[len(free)-1]
		kept.m[key] = free[:len(free)-1]
	}
	kept.Unlock()
	if f == nil {
		f = &File{key: key}
	}
	f.size, f.onDisk = 0, false
	f.startHash(d.Hash, d.SumAhead)
	return f, nil
}

// spill puts the object in its file, from where every later byte goes:
// a file kept for reuse when it is still under its name (one removed,
// renamed or whose directory was replaced while kept, by a temp cleaner
// or an on-access scanner, is dropped: engines that scan by name would
// not find it), a new one otherwise.
func (f *File) spill() error {
	if f.onDisk {
		return nil
	}
	if f.f != nil && !f.inPlace() {
		f.drop()
		f.f, f.rd = nil, nil
	}
	if f.f == nil {
		dir, service, _ := strings.Cut(f.key, "\x00")
		w, err := os.CreateTemp(dir, Prefix+service+"-"+strconv.Itoa(os.Getpid())+"-*")
		if err != nil {
			return &Failure{Op: "create", Err: err}
		}
		st, err := w.Stat()
		var rd *os.File
		if err == nil {
			rd, err = os.Open(w.Name())
		}
		if err != nil {
			w.Close()
			os.Remove(w.Name())
			return &Failure{Op: "create", Err: err}
		}
		f.f, f.rd, f.path, f.ino = w, rd, w.Name(), st.Sys().(*syscall.Stat_t).Ino
	}
	if f.size > 0 {
		if _, err := f.f.WriteAt(*f.small, 0); err != nil {
			return &Failure{Op: "write", Err: err}
		}
	}
	f.onDisk = true
	return nil
}

// Memory is the object, when it is held in memory alone (not written to
// its file: at most InlineSize bytes, and its file never asked for).
func (f *File) Memory() ([]byte, bool) {
	if f.onDisk {
		return nil, false
	}
	if f.small == nil {
		return []byte{}, true
	}
	return *f.small, true
}

// ReadAt reads the object at off (io.ReaderAt): from memory while it is
// held there, from its file otherwise. Readers of the object take f
// itself rather than OS(), so that a small one stays in memory.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if f.onDisk {
		return f.rd.ReadAt(p, off)
	}
	data, _ := f.Memory()
	if off < 0 {
		return 0, os.ErrInvalid
	}
	if off >= int64(len(data)) {
		return 0, io.EOF
	}
	n := copy(p, data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Spill writes an object held in memory to its file; a *Failure when it
// cannot be.
func (f *File) Spill() error { return f.spill() }

// ClearStale removes the spool files left by an earlier run that ended
// without cleaning up (a crash, a kill). Only the master calls it, at
// start, before any worker runs.
func (d Dir) ClearStale() (int, error) {
	ents, err := os.ReadDir(d.Path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), Prefix) && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(d.Path, e.Name())); err == nil {
				n++
			}
		}
	}
	return n, nil
}

// RemoveOf removes the spool files of the process pid (named
// fsigkd-<service>-<pid>-*): the master calls it when a worker has ended,
// so that what a killed worker left does not wait for the next start.
func (d Dir) RemoveOf(pid int) (int, error) {
	ents, err := os.ReadDir(d.Path)
	if err != nil {
		return 0, err
	}
	want := strconv.Itoa(pid)
	n := 0
	for _, e := range ents {
		parts := strings.SplitN(e.Name(), "-", 4)
		if len(parts) == 4 && parts[0]+"-" == Prefix && parts[2] == want && e.Type().IsRegular() {
			if os.Remove(filepath.Join(d.Path, e.Name())) == nil {
				n++
			}
		}
	}
	return n, nil
}

// File is one spooled object.
type File struct {
	f  *os.File // written at its offset; nil: no file yet
	rd *os.File // read: by the engines (at explicit offsets) and by SendTo
	// onDisk: the object is in f (else in small alone: see Create).
	onDisk bool
	path   string
	ino    uint64
	size   int64
	key    string // where it is kept when closed
	// closed: given back; the kept copy of the file is another File, so
	// that a second Close of this one cannot give it back twice.
	closed bool
	sum    *digest // the running sum of what was written; nil: none kept
	// small holds a copy of what was written while that is at most
	// InlineSize bytes (nil past it), so that SendAfter sends a small
	// object without reading it back: a pread an object, by strace of
	// 1 KiB objects.
	small *[]byte
}

// smallBufs holds the copies of small objects.
var smallBufs = sync.Pool{New: func() any { b := make([]byte, 0, InlineSize); return &b }}

// keepSmall copies p, just written, while the object stays small.
func (f *File) keepSmall(p []byte) {
	switch {
	case f.size > InlineSize:
		f.dropSmall()
	case f.small == nil:
		f.small = smallBufs.Get().(*[]byte)
		*f.small = append((*f.small)[:0], p...)
	default:
		*f.small = append(*f.small, p...)
	}
}

// dropSmall gives the copy of a small object back.
func (f *File) dropSmall() {
	if f.small != nil {
		smallBufs.Put(f.small)
		f.small = nil
	}
}

// startHash begins (or, for a reused file, restarts) the running sum;
// ahead is the directory's SumAhead.
func (f *File) startHash(on bool, ahead func([32]byte) bool) {
	switch {
	case !on:
		f.sum = nil
	case f.sum == nil:
		f.sum = &digest{}
		f.sum.reset(ahead)
	default:
		f.sum.reset(ahead)
	}
}

// Sum is the sum of the bytes written so far (see digest: BLAKE3, of
// the object or of its 4 MiB segments' BLAKE3); ok is false when the
// directory keeps no sum, or when the file could not be read back. Up
// to 64 KiB it was computed as the bytes were written; past that, unless
// SumAhead had the rest hashed as it came, the first call reads the rest
// of the file back (SumReadsBack). BLAKE3
// rather than SHA-256: as collision resistant for a cache key an
// attacker may aim at, and on the 2-core bench machine about twice as
// fast (2.4 against 1.1 GB/s a core, SHA-NI and all).
func (f *File) Sum() (sum [32]byte, ok bool) {
	if f.sum == nil {
		return sum, false
	}
	return f.sum.sum(f)
}

// SumReadsBack tells whether Sum has to read the file back: the object is
// past its first 64 KiB, was not hashed as it came, and its sum was not
// taken yet.
func (f *File) SumReadsBack() bool { return f.sum != nil && f.sum.readsBack() }

// HashedAhead tells whether the object past its first 64 KiB is hashed
// as it arrives (the directory's SumAhead said so).
func (f *File) HashedAhead() bool { return f.sum != nil && f.sum.eager }

// HeadSum is the BLAKE3 of the first 64 KiB of an object longer than
// that (ok is false for a shorter one, or when the directory keeps no
// sums), kept as they were written: what a repeat of the object shares
// with it, at no cost. It is not the object's sum and never a cache key.
func (f *File) HeadSum() (sum [32]byte, ok bool) {
	if f.sum == nil || f.sum.n <= headSize {
		return sum, false
	}
	return f.sum.headSum, true
}

// Path is the file's name, for engines that open it themselves (an
// object held in memory is written to it first; "" when it cannot be).
func (f *File) Path() string {
	if f.spill() != nil {
		return ""
	}
	return f.path
}

// Size is how many bytes were written.
func (f *File) Size() int64 { return f.size }

// OS is the file opened for reading, for engines that take its descriptor
// (clamd FILDES) and for reading it back with ReadAt. Its offset is moved
// by SendTo; the writer's is not, so a file may be sent while it grows.
func (f *File) OS() *os.File {
	if f.spill() != nil {
		return nil // reads fail with os.ErrInvalid
	}
	return f.rd
}

// Write appends p; a failure is a *Failure.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.write(p)
	if f.sum != nil {
		f.sum.write(p[:n], nil)
	}
	return n, err
}

// write appends p to the file alone (the caller hashes it).
func (f *File) write(p []byte) (int, error) {
	if !f.onDisk && f.size+int64(len(p)) <= InlineSize {
		f.size += int64(len(p))
		f.keepSmall(p)
		return len(p), nil
	}
	if err := f.spill(); err != nil {
		return 0, err
	}
	// At the file's size, not its offset: an emptied file needs no seek
	// back to its start (a system call per object, by strace of 1 KiB
	// objects).
	n, err := f.f.WriteAt(p, f.size)
	f.size += int64(n)
	f.keepSmall(p[:n])
	if err != nil {
		return n, &Failure{Op: "write", Err: err}
	}
	return n, nil
}

// fillChunk is how much Fill reads at a time.
const fillChunk = 256 << 10

// fillBufs holds Fill's buffers: one allocated and zeroed per object was,
// by the profile of 1 KiB objects, a share of the gateway's CPU and of its
// garbage (262,192 bytes an object).
var fillBufs = sync.Pool{New: func() any { b := make([]byte, fillChunk); return &b }}

// Fill streams r into the file until r ends, or until the file holds more
// than max bytes (max 0: no limit); over then says that r had more. What
// was read stays in the file (at most one chunk past max), the rest is
// still r's: a caller that passes oversize objects sends both. progress,
// if set, is called after each write.
//
// Past the first segment (4 MiB), when the directory's SumAhead says so,
// the segments are hashed on other goroutines while the next chunks are
// read; Fill returns once the sum holds all it wrote.
func (f *File) Fill(r io.Reader, max int64, progress func()) (over bool, err error) {
	bp := fillBufs.Get().(*[]byte)
	defer func() {
		fillBufs.Put(bp)
		if f.sum != nil {
			f.sum.ahead.wait()
		}
	}()
	for {
		n, rerr := r.Read(*bp)
		if n > 0 {
			chunk := (*bp)[:n]
			if _, err := f.write(chunk); err != nil {
				return false, err
			}
			if f.sum != nil {
				f.hashChunk(chunk, &bp)
			}
			if progress != nil {
				progress()
			}
			if max > 0 && f.size > max {
				return true, nil
			}
		}
		if errors.Is(rerr, io.EOF) {
			return false, nil
		}
		if rerr != nil {
			return false, rerr
		}
	}
}

// hashChunk adds a chunk Fill wrote, from the buffer *bp. Past the first
// segment, when SumAhead said so at the head's end, the chunk's pieces
// go to the hashers aside, and Fill reads into another buffer.
func (f *File) hashChunk(chunk []byte, bp **[]byte) {
	d := f.sum
	if d.n <= segmentSize && d.n+int64(len(chunk)) > segmentSize {
		// The chunk crosses the first segment's end (once: n only grows).
		k := segmentSize - d.n
		d.write(chunk[:k], nil) // the first segment's end
		chunk = chunk[k:]
		if d.eager { // SumAhead said so at the head's end
			d.goAhead()
		}
	}
	if d.ahead == nil || d.ahead.work == nil {
		d.write(chunk, nil)
		return
	}
	ref := &chunkRef{bp: *bp}
	ref.refs.Store(1)
	d.write(chunk, ref)
	ref.release()
	*bp = fillBufs.Get().(*[]byte)
}

// Vanished is the error for a spool file that another program removed.
type Vanished struct {
	Path string
	Err  error
}

func (v *Vanished) Error() string { return fmt.Sprintf("spool file %s vanished: %v", v.Path, v.Err) }
func (v *Vanished) Unwrap() error { return v.Err }

// CatalogMessage is M14, as a warning: the session fails, the service goes on.
func (v *Vanished) CatalogMessage() catalog.Message { return catalog.M14(v.Err, v.Path, false) }

// Check makes sure the file is still in place under its name, for an
// engine that scans by path and opens it there (one given the descriptor
// is not asked): a *Vanished error when it was removed or replaced. It looks by stat, never by opening: on ext4 the last close of
// an opened file that was emptied to length 0 (as kept files are) starts
// its writeback, and an open and close here cost, by the profile of 1 KiB
// objects, a disk write per object and a quarter of the gateway's rate.
func (f *File) Check() error {
	if !f.onDisk {
		return nil // in memory: nothing to lose
	}
	var st syscall.Stat_t
	err := syscall.Stat(f.path, &st)
	if err != nil {
		return &Vanished{Path: f.path, Err: &os.PathError{Op: "stat", Path: f.path, Err: err}}
	}
	if st.Ino != f.ino {
		return &Vanished{Path: f.path, Err: &os.PathError{Op: "open", Path: f.path, Err: syscall.ENOENT}}
	}
	return nil
}

// Stalled is the error for a receiver that took nothing for the timeout.
type Stalled struct {
	Timeout   time.Duration
	URL       string
	N         int64 // bytes the stalled call sent
	Written   int64 // bytes sent in all
	FileLen   int64
	WriteSize int64 // bytes the stalled call was to send
}

func (s *Stalled) Error() string {
	return fmt.Sprintf("send stalled for %s after %d of %d bytes", s.Timeout, s.Written, s.FileLen)
}

// CatalogMessage is M07.
func (s *Stalled) CatalogMessage() catalog.Message {
	return catalog.M07(int(s.Timeout/time.Second), s.URL, s.N, s.Written, s.FileLen, s.WriteSize)
}

// sendChunk is how much one sendfile call is asked to move.
const sendChunk = 1 << 20

// InlineSize is the largest file SendAfter sends in the same write as
// what goes before it, read from the spool, rather than by sendfile
// after it: by perf on 1 KiB objects, the head's write, the seek and the
// sendfile were three system calls and two segments where one does.
const InlineSize = 16 << 10

// inlineBufs holds the buffers SendAfter writes a small file from.
var inlineBufs = sync.Pool{New: func() any { b := make([]byte, 0, InlineSize+4<<10); return &b }}

// SendAfter sends head (a response's head) and then the whole file to w:
// a file of at most InlineSize in the same write, a larger one by SendTo
// after it. A receiver that takes nothing for timeout is a *Stalled
// (M07), however the file goes. The count is of the file's bytes sent.
func (f *File) SendAfter(w net.Conn, head []byte, timeout time.Duration, url string) (int64, error) {
	if f.size > InlineSize {
		w.SetWriteDeadline(time.Now().Add(timeout))
		_, err := w.Write(head)
		w.SetWriteDeadline(time.Time{})
		if err != nil {
			return 0, err
		}
		return f.SendTo(w, 0, f.size, timeout, url)
	}
	bp := inlineBufs.Get().(*[]byte)
	defer inlineBufs.Put(bp)
	b := append((*bp)[:0], head...)
	if data, ok := f.held(); ok {
		b = append(b, data...)
	} else {
		b = slices.Grow(b, int(f.size))[:len(head)+int(f.size)]
		if _, err := f.rd.ReadAt(b[len(head):], 0); err != nil {
			*bp = b
			return 0, err
		}
	}
	*bp = b
	return f.writeOnce(w, b, len(head), timeout, url)
}

// writeOnce writes b, whose first skip bytes are not the file's, in one
// write under timeout; a receiver that takes nothing for it is a
// *Stalled. The count is of the file's bytes sent.
func (f *File) writeOnce(w net.Conn, b []byte, skip int, timeout time.Duration, url string) (int64, error) {
	w.SetWriteDeadline(time.Now().Add(timeout))
	defer w.SetWriteDeadline(time.Time{})
	n, err := w.Write(b)
	sent := max(0, int64(n-skip))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return sent, &Stalled{Timeout: timeout, URL: url, N: sent, Written: sent, FileLen: f.size, WriteSize: int64(len(b) - skip)}
	}
	return sent, err
}

// held is the whole object when a copy of it is in memory (an object held
// there, or a small one also in its file).
func (f *File) held() ([]byte, bool) {
	if data, ok := f.Memory(); ok {
		return data, true
	}
	if f.small != nil && int64(len(*f.small)) == f.size {
		return *f.small, true
	}
	return nil, false
}

// SendTo sends length bytes from offset off of the file to w (sendfile,
// when w is a TCP connection). The send may take as long as it needs while
// the receiver keeps taking bytes; a stretch of timeout with no progress
// ends it with a *Stalled error. url names the object in M07.
func (f *File) SendTo(w net.Conn, off, length int64, timeout time.Duration, url string) (int64, error) {
	if data, ok := f.held(); ok {
		// A copy in memory: written from there, in one write.
		if off < 0 || length < 0 || off+length > int64(len(data)) {
			return 0, io.ErrUnexpectedEOF
		}
		return f.writeOnce(w, data[off:off+length], 0, timeout, url)
	}
	if _, err := f.rd.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	defer w.SetWriteDeadline(time.Time{})
	var written int64
	for written < length {
		size := min(int64(sendChunk), length-written)
		if err := w.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return written, err
		}
		lr := &io.LimitedReader{R: f.rd, N: size}
		var n int64
		var err error
		if rf, ok := w.(io.ReaderFrom); ok {
			n, err = rf.ReadFrom(lr)
		} else {
			n, err = io.Copy(w, lr)
		}
		written += n
		var ne net.Error
		switch {
		case err == nil && n == 0:
			return written, io.ErrUnexpectedEOF // the file is shorter than said
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout() && n > 0:
			// Progress was made: a slow receiver, not a stalled one.
		case errors.As(err, &ne) && ne.Timeout():
			return written, &Stalled{Timeout: timeout, URL: url, N: n, Written: written, FileLen: f.size, WriteSize: size}
		default:
			return written, err
		}
	}
	return written, nil
}

// Close empties the file and keeps it for the next object (or, with
// Keep files kept already, or when it cannot be emptied, closes and
// removes it). The caller must not use f afterwards; safe to call twice.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	f.dropSmall()
	// A file the object never reached is as empty as it was kept.
	if f.f == nil || !f.onDisk || f.size <= KeepSize && f.f.Truncate(0) == nil {
		kept.Lock()
		if len(kept.m[f.key]) < Keep {
			g := &File{f: f.f, rd: f.rd, path: f.path, ino: f.ino, key: f.key, sum: f.sum}
			kept.m[f.key] = append(kept.m[f.key], g)
			kept.Unlock()
			return nil
		}
		kept.Unlock()
	}
	if f.f == nil {
		return nil
	}
	return f.drop()
}

// inPlace tells whether the file's name still names it: one stat, as
// the fstat it replaces cost (a link count alone misses a rename).
func (f *File) inPlace() bool {
	var st syscall.Stat_t
	return syscall.Stat(f.path, &st) == nil && st.Ino == f.ino
}

// drop closes the file and removes it from its name, unless the name
// now holds another file (it was renamed away, and something else put
// in its place).
func (f *File) drop() error {
	err := f.f.Close()
	f.rd.Close()
	if !f.inPlace() {
		return err
	}
	if rerr := os.Remove(f.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// Drain removes the files the directory keeps for reuse, for a worker's
// stop and for tests; what is in use is not touched.
func (d Dir) Drain() int {
	kept.Lock()
	var all []*File
	for key, free := range kept.m {
		if strings.HasPrefix(key, d.Path+"\x00") {
			all = append(all, free...)
			delete(kept.m, key)
		}
	}
	kept.Unlock()
	n := 0
	for _, f := range all {
		if f.f != nil {
			f.drop()
			n++
		}
	}
	return n
}
