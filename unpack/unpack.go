// Package unpack opens what an object holds, nested: archives and
// compressed streams (zip, also behind prepended data; gzip, bzip2, xz,
// zstd; tar; 7z and RAR; cabinets; ISO 9660 images; 7z, RAR, gzip,
// cabinets and tar also behind other data, as far in as 7-Zip looks) and
// MIME mail read as leniently as mail readers read it (base64,
// quoted-printable and uuencode), the files a page or any text carries
// in data: addresses and script strings (datauri.go, base64str.go),
// within limits on depth, size, file
// count and expansion ratio. It is the one walk of the bundled engine's
// scan (which matches signatures on every object it gives) and of the
// gateway's type and name rules and archive passwords (which look at
// them): what one opens, the others see.
//
// What cannot be looked into fully (a limit, an encrypted or damaged
// member, a method not implemented) is a Suspected detection
// (Heuristics.Limits.Exceeded.<which>, Heuristics.Encrypted.*,
// Heuristics.Broken.Archive...), never nothing.
package unpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Limits bound what one scan may unpack. Zero means the default.
type Limits struct {
	MaxDepth    int   // archive and MIME nesting (default 8)
	MaxFileSize int64 // one unpacked member (default 64 MiB)
	MaxTotal    int64 // everything unpacked from one object (default 256 MiB)
	MaxFiles    int   // members of one object (default 10000)
	MaxRatio    int64 // unpacked/packed of a member over 1 MiB (default DefaultMaxRatio)
}

// defaultMaxTotal is MaxTotal's default.
const defaultMaxTotal = 256 << 20

// DefaultMaxRatio is how much larger than its packed form an unpacked
// member over 1 MiB may be before it is taken for a bomb: ordinary data
// compresses a few times, a bomb thousands of times.
const DefaultMaxRatio = 200

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = 8
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = 64 << 20
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = defaultMaxTotal
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = 10000
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l
}

// Options say what one scan looks into.
type Options struct {
	Archives    bool // look inside zip, gzip, tar
	MIME        bool // look inside mail
	StopOnFirst bool
	// Riskware: report potentially unwanted programs (the detections
	// named PUA.*, as ClamAV names those of its .hdu, .ndu... files); off,
	// they are not detections at all.
	Riskware bool
	// Ahead, when set, is what was searched of the object's own bytes
	// before the scan (see Ahead).
	Ahead *Ahead
	// Members, when set, looks at each member of a container as the
	// container describes it (see Member).
	Members MemberMatch
	// MatchIn, when set, is the scan's match, told where each object
	// lies (Layer).
	MatchIn func(data []byte, at Layer, found func(name string) (stop bool))
}

// Layer is where an object lies, as ClamAV sees it.
type Layer struct {
	// Within are the containers the object lies in, as ClamAV types
	// them, outermost first ("" for one ClamAV types otherwise than as
	// what it is opened as, or whose layers are not these): what a
	// logical signature's Container and Intermediates conditions judge.
	Within []string
	// Macro: the object is a macro's source (a VBA module's,
	// decompressed), which ClamAV types as the compound file it came
	// from (CL_TYPE_MSOLE2) and does not read as a text.
	Macro bool
}

// Kind of a detection.
type Kind int

const (
	Infected  Kind = iota // a signature matched
	Suspected             // the object could not be looked into fully
	Riskware              // a potentially unwanted program's signature matched
)

// puaPrefix names the signatures of potentially unwanted programs:
// ClamAV gives every signature of its PUA files (.hdu, .hsu, .mdu, .msu,
// .ndu, .ldu) a name under it.
const puaPrefix = "PUA."

// counts tells whether a match under name is a detection of this scan:
// a potentially unwanted program's only when riskware is asked for.
func (o Options) counts(name string) bool {
	return o.Riskware || !strings.HasPrefix(name, puaPrefix)
}

// Detection is one finding.
type Detection struct {
	Name  string
	Path  string // where inside the object: "a.zip/b.tar/eicar.com"; "" for the object itself
	Kind  Kind
	Depth int // 0 for the object itself
}

// smallFile is the size up to which a file is read instead of mapped.
const smallFile = 256 << 10

var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallFile); return &b }}

// withOpen gives f the first size bytes of the open file fd: mapped, or
// read into a pooled buffer when small (mapping and unmapping a small file
// costs more than reading it: the unmap flushes TLBs). Nothing is given
// for an empty file.
func withOpen(fd *os.File, size int64, f func(data []byte)) error {
	if size == 0 {
		return nil
	}
	if size <= smallFile {
		bp := smallBufs.Get().(*[]byte)
		defer smallBufs.Put(bp)
		data := (*bp)[:size]
		if _, err := fd.ReadAt(data, 0); err != nil {
			return err
		}
		f(data)
		return nil
	}
	data, err := syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return err
	}
	defer syscall.Munmap(data)
	return readMapped(data, f)
}

// ErrShortened is a mapped file that another process shortened while it
// was read: the pages past its new end are gone.
var ErrShortened = errors.New("the file was shortened while it was read")

// readMapped runs f on a file's mapping. Another process may shorten the
// file meanwhile (a spool file emptied for reuse after its scan was
// given up): touching the lost pages is a memory fault, which here
// becomes ErrShortened instead of the end of the process (for fsavd, of
// every scan under way).
func readMapped(data []byte, f func([]byte)) error {
	if Guard(func() { f(data) }) != nil {
		return ErrShortened
	}
	return nil
}

// Guard runs f with its memory faults made panics and recovered: it gives
// the fault, nil when none. A goroutine that reads a mapping readMapped
// gave runs under Guard, and the goroutine that waits for it raises the
// fault again (panic(fault)), for readMapped to make it ErrShortened.
// Other panics go on.
func Guard(f func()) (fault any) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			fault = r
		}
	}()
	f()
	return nil
}

// Visit is called by Walk for an object and for every member unpacked
// from it: its bytes (nil for a member listed but not readable, such as an
// encrypted one: its name is still known) and its path inside the object
// ("" for the object itself; "a.zip/b/c.exe"). It returns true to stop the
// walk.
type Visit func(data []byte, where string) (stop bool)

// Walk opens data as a scan does (the same containers, MIME readings and
// limits; nothing matched) and visits the object and everything in it,
// for the gateway's type and name rules. Past a limit the walk stops: the
// scan reports the limit.
func Walk(data []byte, opt Options, lim Limits, visit Visit) {
	ScanData(data, opt, lim, nil, visit)
}

// walkRead is the size up to which WalkFile reads a file into a pooled
// buffer rather than mapping it: the gateway's own walk of a 1 MiB object
// cost, mapped, twice what it cost read (page faults, the unmap's TLB
// flush on every thread of the worker).
const walkRead = 4 << 20

var walkBufs = sync.Pool{New: func() any { b := make([]byte, 0, walkRead); return &b }}

// WalkFile walks the first size bytes of the open file fd (see Walk).
func WalkFile(fd *os.File, size int64, opt Options, lim Limits, visit Visit) error {
	if size <= smallFile || size > walkRead {
		return withOpen(fd, size, func(data []byte) { Walk(data, opt, lim, visit) })
	}
	bp := walkBufs.Get().(*[]byte)
	defer walkBufs.Put(bp)
	data := (*bp)[:size]
	if _, err := fd.ReadAt(data, 0); err != nil {
		return err
	}
	Walk(data, opt, lim, visit)
	return nil
}

// Match is a scan's look at one object's bytes: found reports a
// detection there, and says whether to stop (Options.StopOnFirst). A
// name under Heuristics.Limits.Exceeded. is a limit the match itself met
// (its verification ran out of steps): Suspected, as the walk's own.
type Match func(data []byte, found func(name string) (stop bool))

// Scan walks data and has match look at the object and at everything in
// it; it gives what match found and what the walk met (limits, encrypted
// and damaged members).
func Scan(data []byte, opt Options, lim Limits, match Match) []Detection {
	return ScanData(data, opt, lim, match, nil)
}

// ScanFile scans the file at name (see Scan): mapped into memory, not
// read into it; a small one is read into a pooled buffer. visit, if set,
// is called on every object the scan opens, before match (see Walk): the
// engine's pass serves the type and name rules too.
func ScanFile(name string, opt Options, lim Limits, match Match, visit Visit) ([]Detection, error) {
	fd, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	return ScanOpen(fd, opt, lim, match, visit)
}

// ScanData is ScanOpen for an object in memory: Scan, with visit called
// on every object as Walk calls it (either may be nil).
func ScanData(data []byte, opt Options, lim Limits, match Match, visit Visit) []Detection {
	s := newScan(opt, lim, match, visit)
	s.object(data, "", 0)
	s.end()
	return s.found
}

// newScan begins a scan within lim (a 7z coder may take as much memory
// as one object may unpack: coders.go).
func newScan(opt Options, lim Limits, match Match, visit Visit) *scan {
	lim = lim.withDefaults()
	raiseCoderMemory(lim.MaxTotal)
	return &scan{lim: lim, opt: opt, match: match, visit: visit}
}

// ScanOpen is ScanFile for a file already open, such as one whose
// descriptor was passed over a socket: the whole of it, as it is now.
func ScanOpen(fd *os.File, opt Options, lim Limits, match Match, visit Visit) ([]Detection, error) {
	st, err := fd.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", fd.Name())
	}
	var found []Detection
	err = withOpen(fd, st.Size(), func(data []byte) {
		s := newScan(opt, lim, match, visit)
		s.object(data, "", 0)
		s.end()
		found = s.found
	})
	return found, err
}

type scan struct {
	match     Match
	lim       Limits
	opt       Options
	found     []Detection
	unpacked  int64
	files     int
	parts     int // MIME entities walked (maxParts)
	stop      bool
	visit     Visit               // set: a walk (see Walk), nothing matched
	partials  map[string]*partial // message/partial fragments, by id
	mails     [][]byte            // the mails being read, innermost last
	described int                 // members described (describe)
	within    []string            // the containers being read, as ClamAV types them, innermost last ("": another type)
	macro     bool                // the next object is a macro's source (Layer.Macro)
}

func (s *scan) add(d Detection) {
	for _, f := range s.found {
		if f.Name == d.Name && (f.Path == d.Path || d.Path == "" || strings.HasPrefix(f.Path, d.Path+"/")) {
			return // already found there, or inside
		}
	}
	s.found = append(s.found, d)
	if s.opt.StopOnFirst {
		s.stop = true
	}
}

// limitPrefix names the detections of limits.
const limitPrefix = "Heuristics.Limits.Exceeded."

func (s *scan) exceeded(which, where string, depth int) {
	s.add(Detection{Name: limitPrefix + which, Path: where, Kind: Suspected, Depth: depth})
	s.stop = true
}

// object scans one object and whatever it contains.
func (s *scan) object(data []byte, where string, depth int) {
	if s.stop {
		return
	}
	if s.visit != nil && s.visit(data, where) {
		s.stop = true
		return
	}
	match := s.match
	macro := s.macro
	s.macro = false // the object's members are no macros
	if in := s.opt.MatchIn; in != nil && match != nil {
		at := Layer{Within: slices.Clone(s.within), Macro: macro} // the match may run aside while the walk goes on
		match = func(data []byte, found func(string) bool) { in(data, at, found) }
	}
	if a := s.opt.Ahead; depth == 0 && a != nil && a.Match != nil && match != nil {
		match = a.Match
	}
	var aside *matchAside
	if match != nil && len(data) >= matchAsideFrom && (s.opt.Archives || s.opt.MIME) {
		aside = s.startMatchAside(data, match)
		// Waited for on every way out, a panic too: the caller unmaps
		// data once the scan returns.
		defer func() { <-aside.done }()
	}
	// container: data is an archive or a mail, whose members are
	// walked; its own bytes are searched for no file a text carries.
	container := false
	if s.opt.Archives {
		container = s.archive(data, where, depth)
	}
	if s.opt.MIME {
		if isMail(data) && !s.readingMail(data) {
			container = true
			s.nested(depth, where, func() { s.mail(data, where, depth+1) })
		} else if boundary, ok := multipartBody(data); ok {
			// A multipart body without its header (an HTTP upload,
			// multipart/form-data): its parts walked as a mail's, their
			// transfer codings undone.
			container = true
			s.nested(depth, where, func() { s.multipart(data, boundary, where, depth+1, 0) })
		} else {
			// A text with uuencoded, BinHex or yEnc blocks (a mail's
			// leaves come here).
			s.uuencoded(data, where, depth)
			s.macAndNews(data, where, depth)
		}
	}
	if !container && (s.opt.Archives || s.opt.MIME) {
		s.carried(data, where, depth)
		s.scriptsEncoded(data, where, depth)
	}
	// The object's own bytes, after its members: a stored (tar, zip
	// "stored") member's detection is reported once, where it is. A limit
	// hit inside does not spare the object's own bytes.
	var names []string
	if aside != nil {
		names = aside.wait()
	}
	if s.opt.StopOnFirst && len(s.found) > 0 || s.match == nil {
		return
	}
	own := func(name string) bool { return s.report(name, where, depth) }
	if aside == nil {
		match(data, own)
		return
	}
	for _, name := range names {
		if own(name) {
			return
		}
	}
}

// matchAsideFrom is the size from which an object's own bytes are
// matched on a goroutine of their own while its members are looked for:
// by perf on 100 MiB objects, the search for uuencoded blocks and for
// archives behind other data took a core for about 20 ms while the other
// waited, before the match used both.
const matchAsideFrom = 8 << 20

// matchAside is a match running over data on another goroutine.
type matchAside struct {
	done    chan struct{}
	names   []string
	failure any
}

// startMatchAside starts match over data on another goroutine. A memory
// fault there (the mapped file shortened, see Guard) or a panic is
// raised again by wait, in the caller's goroutine, where the scan's own
// guards take it.
func (s *scan) startMatchAside(data []byte, match Match) *matchAside {
	a := &matchAside{done: make(chan struct{})}
	go func() {
		defer close(a.done)
		defer func() {
			if r := recover(); r != nil {
				a.failure = r
			}
		}()
		a.failure = Guard(func() {
			match(data, func(name string) bool {
				a.names = append(a.names, name)
				return s.opt.StopOnFirst && s.opt.counts(name)
			})
		})
	}()
	return a
}

// wait gives what match found, in order.
func (a *matchAside) wait() []string {
	<-a.done
	if a.failure != nil {
		panic(a.failure)
	}
	return a.names
}

// archive opens data when its magic bytes say it is an archive or a
// compressed stream (see archives.go for the formats): typed, when they
// do; otherwise the containers found behind other data are opened.
func (s *scan) archive(data []byte, where string, depth int) (typed bool) {
	// typ is the container's type as ClamAV names it, for the scan's
	// Within; "" where ClamAV would type it otherwise than as what it is
	// opened as, or its layers are not these.
	open := func(typ string, f func(d []byte, where string, depth int), d []byte) {
		s.within = append(s.within, typ)
		defer func() { s.within = s.within[:len(s.within)-1] }()
		s.nested(depth, where, func() {
			// A decoder that panics on a crafted archive (ours or a
			// library's) costs that archive a verdict, not the engine.
			defer func() {
				if r := recover(); r != nil {
					s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth})
				}
			}()
			f(d, where, depth+1)
		})
	}
	typed = true
	switch {
	case isZip(data):
		open(TypeZip, s.zip, data)
	case len(data) > 2 && data[0] == 0x1f && data[1] == 0x8b:
		open(TypeGzip, s.gzip, data)
	case isBzip2(data):
		open(TypeBzip2, s.bzip2, data)
	case bytes.HasPrefix(data, magicXz):
		open(TypeXz, s.xz, data)
	case bytes.HasPrefix(data, magicZstd) || isZstdSkippable(data):
		open("", s.zstd, data)
	case bytes.HasPrefix(data, magicCab):
		open(TypeCab, s.cab, data)
	case isTar(data):
		open(tarType(data), s.tar, data)
	case isAr(data):
		open("", s.ar, data)
	case isRPM(data):
		open("", s.rpm, data)
	case bytes.HasPrefix(data, oleMagic):
		open(TypeOLE2, s.ole, data)
	case isPDF(data):
		open(TypePDF, s.pdf, data)
	case len(data) >= 6 && bytes.HasPrefix(data, tnefMagic):
		open("", s.tnef, data)
	case isCpio(data):
		h, _ := cpioHeader(data)
		open(h.typ, s.cpio, data)
	case isISO(data):
		open(TypeISO, s.iso, data)
	case isUDF(data):
		open(TypeUDF, func(d []byte, where string, depth int) { s.udf(d, where, depth, nil, nil) }, data)
	case isDMG(data):
		open("", s.dmg, data)
	case isDiskImage(data):
		open("", s.diskImage, data)
	case isLHA(data):
		open("", s.lha, data)
	case isARJ(data):
		open(TypeARJ, s.arj, data)
	case isCHM(data):
		open(TypeCHM, s.chm, data)
	case isXar(data):
		open(TypeXar, s.xar, data)
	case bytes.HasPrefix(data, oneNoteMagic):
		open(TypeOneNote, s.oneNote, data)
	case isRTF(data):
		open("", s.rtf, data)
	case isCompress(data):
		open("", s.compressZ, data)
	default:
		// Behind a stub or other data: self-extractors, polyglots. Every
		// container found is opened: each is what some reader opens.
		typed = false
		var places []int
		from := 0
		if a := s.opt.Ahead; depth == 0 && a != nil && a.Upto <= len(data) && !a.BehindCrowded {
			places, from = a.Behind, a.BehindNext
		}
		found, zips := embedded(data, places, from)
		for _, c := range found {
			if s.stop {
				break
			}
			open(c.typ(), func(d []byte, where string, depth int) { c.open(s, d, where, depth) }, data[c.at:])
		}
		before := len(data)
		if start, ok := zipFromEnd(data); ok && !s.stop {
			open("", s.zip, data)
			before = start // its own headers are not looked at again
		}
		next, opened := 0, 0
		for _, at := range zips {
			if s.stop || at < next || at >= before {
				continue
			}
			if opened++; opened > maxZipsBehind {
				s.exceeded("Files", where, depth)
				break
			}
			end := 0
			open("", func(d []byte, where string, depth int) { end = s.zipBehind(d, where, depth) }, data[at:])
			next = at + max(end, 1)
		}
	}
	return typed
}

func (s *scan) nested(depth int, where string, f func()) {
	if depth+1 > s.lim.MaxDepth {
		s.exceeded("Depth", where, depth)
		return
	}
	f()
}

func join(where, name string) string {
	name = strings.TrimLeft(path.Clean("/"+name), "/")
	if where == "" {
		return name
	}
	return where + "/" + name
}

// counted counts one more member: false when the scan has stopped or
// the member is one past MaxFiles.
func (s *scan) counted(where string, depth int) bool {
	if s.stop {
		return false
	}
	s.files++
	if s.files > s.lim.MaxFiles {
		s.exceeded("Files", where, depth)
		return false
	}
	return true
}

// member reads one unpacked member within the limits and scans it.
// packed is its compressed size, when known (-1 otherwise).
func (s *scan) member(r io.Reader, packed int64, where string, depth int) {
	if !s.counted(where, depth) {
		return
	}
	room := min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked)
	data, err := io.ReadAll(io.LimitReader(r, room+1))
	s.took(data, err, room, packed, where, depth)
}

// memberData is member for one already whole in memory (a mail's part,
// decoded; a member stored or inflated whole): it is scanned where it
// lies, not read into a copy. (A scan never writes into what it scans:
// a spooled file's is a read-only mapping.)
func (s *scan) memberData(data []byte, packed int64, where string, depth int) {
	if !s.counted(where, depth) {
		return
	}
	room := min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked)
	if int64(len(data)) > room+1 {
		data = data[:room+1]
	}
	s.took(data, nil, room, packed, where, depth)
}

// took judges a member read (data, at most room+1 bytes, and the error
// that ended its reading) against the limits, and scans it.
func (s *scan) took(data []byte, err error, room, packed int64, where string, depth int) {
	s.unpacked += int64(len(data))
	switch {
	case int64(len(data)) > room && room == s.lim.MaxFileSize:
		s.exceeded("FileSize", where, depth)
		return
	case int64(len(data)) > room:
		s.exceeded("Total", where, depth)
		return
	case packed > 0 && len(data) > 1<<20 && int64(len(data))/packed > s.lim.MaxRatio:
		s.exceeded("Ratio", where, depth)
		return
	case err != nil:
		// A damaged member, or one cut short (io.ErrUnexpectedEOF: a
		// truncated gzip, bzip2, xz or zstd stream, a zip or tar member
		// shorter than its header says): scan what came out, and say it
		// was damaged. What was cut off is what this reader could not
		// see and another might: a bzip2 block cut anywhere gives nothing
		// here, and a member shorter than declared is extracted by some
		// unarchivers as far as it goes. Nothing unread is judged clean.
		s.object(data, where, depth)
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth})
		return
	}
	s.object(data, where, depth)
}

// isTar tells whether d starts with a tar header: ustar's magic (POSIX,
// GNU, pax), or, for the old v7 format that has none, a header whose
// checksum holds and whose size and checksum fields read as octal.
func isTar(d []byte) bool {
	if len(d) < 512 {
		return false
	}
	if string(d[257:262]) == "ustar" {
		return true
	}
	return d[0] != 0 && octalField(d[124:136]) && octalField(d[148:156]) && tarHeader(d)
}

// octalField tells whether a tar header's numeric field is octal digits,
// padded with spaces or NULs.
func octalField(f []byte) bool {
	digits := 0
	for _, b := range f {
		switch {
		case b >= '0' && b <= '7':
			digits++
		case b == ' ' || b == 0:
		default:
			return false
		}
	}
	return digits > 0
}

// gzipBehind opens a gzip member found behind other data: that member
// alone, since what follows it is whatever the object holds after it.
// One that does not inflate is no gzip a reader would open (a header's
// bytes by chance, in a binary): it is left to the object's own scan, as
// 7-Zip leaves it, rather than suspected.
func (s *scan) gzipBehind(data []byte, where string, depth int) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return
	}
	zr.Multistream(false)
	room := min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked)
	out, err := io.ReadAll(io.LimitReader(zr, room+1))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return
	}
	name := zr.Name
	if name == "" {
		name = "gunzipped"
	}
	s.memberData(out, int64(len(data)), join(where, name), depth)
}

func (s *scan) gzip(data []byte, where string, depth int) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	name := zr.Name
	if name == "" {
		base := path.Base(where)
		switch {
		case strings.HasSuffix(base, ".tgz"):
			name = strings.TrimSuffix(base, ".tgz") + ".tar"
		case strings.HasSuffix(base, ".gz") && len(base) > 3:
			name = strings.TrimSuffix(base, ".gz")
		default:
			name = "gunzipped"
		}
	}
	s.member(zr, int64(len(data)), join(where, name), depth)
}

func (s *scan) tar(data []byte, where string, depth int) {
	tr := tar.NewReader(bytes.NewReader(data))
	typ := tarType(data)
	files := 0
	for !s.stop {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
			return
		}
		if h.Typeflag == tar.TypeReg {
			files++ // the files alone, counted from one
			s.describe(Member{Container: typ, ContainerSize: int64(len(data)), Name: h.Name, Packed: h.Size, Size: h.Size, Pos: files}, where, depth)
			// A tar member is stored, not packed: no ratio to check.
			s.member(tr, -1, join(where, h.Name), depth)
		}
	}
}
