package unpack

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/bodgit/sevenzip"
	"github.com/fsigkd/fsigkd/internal/bytesearch"
	"github.com/nwaples/rardecode/v2"
)

// The formats opened besides zip, gzip and tar, each found by its magic
// bytes (never by a name): bzip2, xz and zstd streams (so .tar.bz2,
// .tar.xz, .tar.zst), 7z and RAR (4 and 5) also behind a self-extractor's
// stub, Microsoft cabinets (stored, MSZIP and LZX folders: cab.go,
// lzx.go), compiled HTML help (chm.go), LHA and ARJ (also behind a stub:
// lha.go, arj.go), and ar (so a .deb) and cpio (stored.go). What carries a
// format's magic but cannot be opened (encrypted, damaged, a method not
// implemented, a volume of a set) is SUSPECTED, never clean.

var (
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magic7z    = []byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c}
	magicRar   = []byte("Rar!\x1a\x07")
	magicCab   = []byte("MSCF\x00\x00\x00\x00")
)

// maxCandidates bounds the places a signature is checked at in one
// object, beyond one for each 64 KiB of it (a short signature's bytes
// stand in plain data by chance), and maxBehind the containers of one
// kind opened behind other data in it.
const (
	maxCandidates = 64
	maxBehind     = 16
)

// behindAt is a container found behind other data: where it starts, its
// opener, and its kind (an index into behindKinds).
type behindAt struct {
	at   int
	open func(s *scan, d []byte, where string, depth int)
	kind int
}

// typ is the container's type for Within: its kind's when it starts the
// object; none (a self-extractor's, which ClamAV types its own ways)
// when it lies behind other data.
func (b behindAt) typ() string {
	if b.at == 0 {
		return behindKinds[b.kind].typ
	}
	return ""
}

// embedded finds the containers that start behind other data, in the
// order of their kinds: every 7z, RAR, cabinet, LHA, ARJ and gzip member
// found (a second archive of a kind is opened as the first is: 7-Zip's
// "open inside" reaches it), the first tar (its later members' headers
// are its own), the first NSIS installer's data (nsis.go); and zips, the
// places after the first byte where a local header a zip tool could
// have written stands (zipHeaderAt: ClamAV finds an embedded zip so
// anywhere, and a zip in the middle of a format read as raw bytes, an
// ext4 image, data no reader here opens, is then opened wherever it
// lies). A short signature counts only where a whole header stands
// behind it, so that plain data holding its bytes is not taken for an
// archive. The signatures are looked for together, in one pass (a pass
// per kind cost a quarter more on plain data), through the whole object:
// 7-Zip looks in the first 8 MiB, ClamAV further (a 7z or a cabinet
// behind 10 MB of other data was opened by clamscan, not here). places
// are where a search ahead found them before from (Ahead.Behind).
func embedded(d []byte, places []int, from int) (out []behindAt, zips []int) {
	var tries, found [maxBehindKinds]int
	most := maxCandidates + len(d)>>16
	// look judges place at, where the strings of which start (bit k for
	// behindKinds[k], zipBit for a zip's local header).
	look := func(at int, which uint) {
		if which&zipBit != 0 && at > 0 && zipHeaderAt(d, at) {
			zips = append(zips, at)
		}
		for k, kind := range behindKinds {
			if which&(1<<k) == 0 || tries[k] >= most || found[k] >= kind.most {
				continue
			}
			tries[k]++
			if kind.valid(d, at) {
				found[k]++
				out = append(out, behindAt{at - kind.back, kind.open, k})
			}
		}
	}
	for _, at := range places {
		if at < from && at < len(d) {
			// What starts there (the search ahead kept the place only).
			if i, which := behindSigs.Index(d[at:min(len(d), at+maxBehindSig)]); i == 0 {
				look(at, which)
			}
		}
	}
	for off := from; off < len(d); {
		i, which := behindSigs.Index(d[off:])
		if i < 0 {
			break
		}
		look(off+i, which)
		off += i + 1
	}
	slices.SortStableFunc(out, func(a, b behindAt) int { return a.kind - b.kind })
	return out, zips
}

// behindKind is a container opened where it is found behind other data:
// its signature, what must hold where it is found, its opener, how far
// before its signature it starts, and how many are opened.
type behindKind struct {
	sig   []byte
	valid func(d []byte, i int) bool
	open  func(s *scan, d []byte, where string, depth int)
	back  int
	most  int
	typ   string // its type as ClamAV names it, when found at the start (Within)
}

// maxBehindKinds is the most kinds there can be (a bytesearch.Set finds
// 16 strings together: theirs, and a zip's local header's).
const maxBehindKinds = 8

// behindKinds is a table, not made per object: its closures were an
// allocation for every object scanned. (Set in init: the openers reach
// embedded.) behindSigs finds their signatures together.
var (
	behindKinds  []behindKind
	behindSigs   *bytesearch.Set
	maxBehindSig int // the longest signature
)

func init() {
	behindKinds = []behindKind{
		{magic7z, anywhere, (*scan).sevenZip, 0, maxBehind, TypeSevenZip},
		{magicRar, anywhere, (*scan).rar, 0, maxBehind, TypeRAR},
		{magicCab, anywhere, (*scan).cabBehind, 0, maxBehind, ""},
		{[]byte{0x1f, 0x8b, 8}, func(d []byte, i int) bool { return gzipHeader(d[i:]) }, (*scan).gzipBehind, 0, maxBehind, ""},
		{[]byte("-lh"), lhaBehind, (*scan).lha, 2, maxBehind, ""},
		{[]byte{0x60, 0xea}, arjBehind, (*scan).arj, 0, maxBehind, ""},
		{[]byte("ustar"), tarBehind, (*scan).tar, 257, 1, ""},
		{nsisMagic, func(d []byte, i int) bool { return i >= 4 && len(d)-(i-4) >= nsisHeader }, (*scan).nsis, 4, 1, ""},
	}
	var sigs [][]byte
	for _, k := range behindKinds {
		sigs = append(sigs, k.sig)
		maxBehindSig = max(maxBehindSig, len(k.sig))
	}
	sigs = append(sigs, zipLocalMagic) // zipBit: looked for in the same pass
	behindSigs = bytesearch.NewSet(sigs...)
}

func anywhere([]byte, int) bool { return true }

// tarBehind: a whole ustar header ends where "ustar" is found at i.
func tarBehind(d []byte, i int) bool { return i >= 257 && tarHeader(d[i-257:]) }

// gzipHeader tells whether d starts with a gzip member's header: deflate,
// no reserved flag, an extra-flags byte and an OS a compressor writes,
// and the optional fields whole (gzip.NewReader reads them).
func gzipHeader(d []byte) bool {
	if len(d) < 18 || d[3]&0xe0 != 0 || (d[8] != 0 && d[8] != 2 && d[8] != 4) || (d[9] > 13 && d[9] != 255) {
		return false
	}
	_, err := gzip.NewReader(bytes.NewReader(d))
	return err == nil
}

// tarHeader tells whether d starts with a ustar header whose checksum
// holds.
func tarHeader(d []byte) bool {
	if len(d) < 512 {
		return false
	}
	want, err := strconv.ParseUint(strings.TrimRight(strings.TrimSpace(string(d[148:156])), "\x00"), 8, 32)
	if err != nil {
		return false
	}
	var sum uint64
	for i, c := range d[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += uint64(c)
	}
	return sum == want
}

func isBzip2(d []byte) bool {
	return len(d) >= 10 && bytes.HasPrefix(d, magicBzip2) && d[3] >= '1' && d[3] <= '9' &&
		(bytes.Equal(d[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}) || bytes.Equal(d[4:10], []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90}))
}

// zipFromEnd tells whether d holds a zip that does not start at its
// first byte (self-extractors, polyglots, data prepended or appended),
// and where it starts (0 when a zip64 record stands before its end
// record: not worked out): an end-of-central-directory record in the
// last 64 KiB whose comment fits in what follows it, and whose central
// directory, where the record says it ends, starts with its own
// signature (or a zip64 record stands before it). archive/zip reads such
// a zip from the record; 7-Zip and the desktops open it too.
func zipFromEnd(d []byte) (start int, ok bool) {
	const eocd = 22
	from := max(0, len(d)-eocd-0xffff-1024) // a comment, and some bytes after it
	// Every end record's signature in the window is a candidate: found
	// with bytes.Index (a vector search) rather than byte by byte.
	for i := from; i <= len(d)-eocd; i++ {
		j := bytes.Index(d[i:len(d)-eocd+4], []byte("PK\x05\x06"))
		if j < 0 {
			return 0, false
		}
		i += j
		if i+eocd+int(binary.LittleEndian.Uint16(d[i+20:])) > len(d) {
			continue
		}
		size := int64(binary.LittleEndian.Uint32(d[i+12:]))
		switch {
		case size == 0xffffffff:
			if i >= 20 && bytes.HasPrefix(d[i-20:], []byte("PK\x06\x07")) {
				return 0, true
			}
		case size > 0 && size <= int64(i) && bytes.HasPrefix(d[i-int(size):], []byte("PK\x01\x02")):
			return max(0, i-int(size)-int(binary.LittleEndian.Uint32(d[i+16:]))), true
		}
	}
	return 0, false
}

// maxZipsBehind bounds the zips opened inside one object by their local
// headers; one more is Heuristics.Limits.Exceeded.Files.
const maxZipsBehind = 64

// zipLocalMagic starts a zip's local header; zipBit is its bit among
// behindSigs' (after behindKinds').
var zipLocalMagic = []byte("PK\x03\x04")

const zipBit = uint(1) << maxBehindKinds

// zipMethods are the compression methods of zip entries the tools
// write (APPNOTE 4.4.5): stored, deflated, Deflate64, bzip2, LZMA, zstd,
// xz, PPMd, and AES's marker. A zip inside other data is taken for one
// whatever its first entry's method: one this walk cannot read is
// reported (Heuristics.Unsupported.Zip, or Broken.Archive where no
// central directory gives its end), never passed as plain bytes.
var zipMethods = map[uint16]bool{0: true, 8: true, 9: true, 12: true, 14: true, 93: true, 95: true, 98: true, 99: true}

// zipHeaderAt tells whether a zip local header a zip tool could have
// written stands at i.
func zipHeaderAt(d []byte, i int) bool {
	if len(d)-i < 30 {
		return false
	}
	h := d[i:]
	version, flags, method := binary.LittleEndian.Uint16(h[4:]), binary.LittleEndian.Uint16(h[6:]), binary.LittleEndian.Uint16(h[8:])
	nameLen, extraLen := int(binary.LittleEndian.Uint16(h[26:])), int(binary.LittleEndian.Uint16(h[28:]))
	if version&0xff > 63 || !zipMethods[method] || nameLen == 0 || nameLen > 1024 || 30+nameLen+extraLen > len(h) {
		return false
	}
	for _, c := range h[30 : 30+nameLen] {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	size := int64(binary.LittleEndian.Uint32(h[18:]))
	return method != 0 || flags&8 != 0 || size <= int64(len(h)-30-nameLen-extraLen)
}

// zipEnd is where a zip that starts d ends, by the first end record
// after it whose central directory stands right before it where the
// record says (0: none such; a zip64's is not looked for).
func zipEnd(d []byte) int {
	for i := 30; i+22 <= len(d); i++ {
		j := bytes.Index(d[i:], []byte("PK\x05\x06"))
		if j < 0 || i+j+22 > len(d) {
			return 0
		}
		i += j
		size, off := int(binary.LittleEndian.Uint32(d[i+12:])), int(binary.LittleEndian.Uint32(d[i+16:]))
		comment := int(binary.LittleEndian.Uint16(d[i+20:]))
		if off+size == i && i+22+comment <= len(d) && (size == 0 || bytes.HasPrefix(d[off:], []byte("PK\x01\x02"))) {
			return i + 22 + comment
		}
	}
	return 0
}

// zipBehind opens a zip that starts d, inside another object: by its
// central directory where its end record follows, else by its local
// headers; and says where it ended.
func (s *scan) zipBehind(d []byte, where string, depth int) int {
	if end := zipEnd(d); end > 0 {
		s.zip(d[:end], where, depth)
		return end
	}
	return s.zipLocal(d, nil, where, depth)
}

// stream unpacks a single compressed stream (bzip2, xz, zstd) as one
// member named after the object.
func (s *scan) stream(r io.Reader, err error, data []byte, where, ext string, depth int) {
	if err != nil {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	name := "unpacked"
	if base := path.Base(where); strings.HasSuffix(base, ext) && len(base) > len(ext) {
		name = strings.TrimSuffix(base, ext)
	}
	s.member(r, int64(len(data)), join(where, name), depth)
}

func (s *scan) bzip2(data []byte, where string, depth int) {
	s.stream(bzip2.NewReader(bytes.NewReader(data)), nil, data, where, ".bz2", depth)
}

func (s *scan) xz(data []byte, where string, depth int) {
	// Filters before LZMA2, and dictionaries larger than a scan may take
	// (xzfilter.go): decoded here, within the limits; a filter not undone
	// here leaves the stream unopened.
	r, err := xzOpen(data, min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked))
	if s.xzUnopened(err, where, depth-1) {
		return
	}
	s.stream(r, err, data, where, ".xz", depth)
}

// xzUnopened says a stream xzOpen did not open, and tells whether it did.
func (s *scan) xzUnopened(err error, where string, depth int) bool {
	switch {
	case errors.Is(err, errXZLimit):
		s.exceeded("FileSize", where, depth+1)
	case errors.Is(err, errXZFilter):
		s.add(Detection{Name: "Heuristics.Unsupported.XZ", Path: where, Kind: Suspected, Depth: depth})
	case errors.Is(err, errXZMemory):
		s.add(Detection{Name: "Heuristics.Limits.Exceeded.Memory", Path: where, Kind: Suspected, Depth: depth})
	default:
		return false
	}
	return true
}

// erring reads r, then gives err (nil: io.EOF) at its end: a decoding
// that stopped on an error is scanned as far as it went, and said so.
type erring struct {
	r   io.Reader
	err error
}

func (e *erring) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && e.err != nil {
		err = e.err
	}
	return n, err
}

// isZstdSkippable tells whether d starts with a zstd skippable frame
// (magic 0x184D2A50 to 0x184D2A5F, little-endian): the zstd tool passes
// over it to the frames that follow, so a stream may start so.
func isZstdSkippable(d []byte) bool {
	return len(d) >= 8 && d[0]&0xf0 == 0x50 && d[1] == 0x2a && d[2] == 0x4d && d[3] == 0x18
}

func (s *scan) zstd(data []byte, where string, depth int) {
	d, err := newZstd(bytes.NewReader(data))
	if err == nil {
		defer d.Close()
	}
	s.stream(d, err, data, where, ".zst", depth)
}

func (s *scan) sevenZip(data []byte, where string, depth int) {
	zr, err := sevenzip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		s.unopened(err, "7Zip", where, depth-1)
		return
	}
	// ClamAV describes a member once it tried to unpack it, its place
	// the index of its record (directories counted, from zero), and
	// takes every member after an encrypted one for encrypted too.
	encrypted := false
	describe := func(f *sevenzip.File, i int) {
		s.describe(Member{Container: TypeSevenZip, ContainerSize: int64(len(data)), Name: f.Name,
			Size: int64(f.UncompressedSize), Encrypted: encrypted, Pos: i}, where, depth)
	}
	for i, f := range zr.File {
		if s.stop {
			return
		}
		if f.FileInfo().IsDir() {
			continue
		}
		at := join(where, f.Name)
		rc, err := f.Open()
		if err != nil {
			encrypted = encrypted || s.unopened(err, "7Zip", at, depth)
			describe(f, i)
			continue
		}
		named := &errorsNamed{r: rc, fmt: "7Zip", s: s, at: at, depth: depth}
		got := newSummed(named)
		s.member(got, -1, at, depth)
		rc.Close()
		encrypted = encrypted || named.encrypted
		// The reader checks neither a member's length nor its CRC: an
		// encrypted member read without its password (garbage, which a
		// stored member always gives and a compressed one now and then
		// without a decoder error) and a damaged stored one came out
		// as if whole, and were judged clean.
		if got.eof && !named.failed && !got.is(f.UncompressedSize, f.CRC32) {
			name := sevenZipMismatch(data, i, got)
			encrypted = encrypted || name == "Heuristics.Encrypted.7Zip"
			s.add(Detection{Name: name, Path: at, Kind: Suspected, Depth: depth})
		}
		describe(f, i)
	}
}

// summed counts and checksums what is read through it.
type summed struct {
	r   io.Reader
	n   uint64
	h   hash.Hash32
	eof bool // read to its end
}

func newSummed(r io.Reader) *summed { return &summed{r: r, h: crc32.NewIEEE()} }

func (c *summed) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	c.h.Write(p[:n])
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// is: the bytes read were size long, with that CRC (0: none recorded).
func (c *summed) is(size uint64, crc uint32) bool {
	return c.n == size && (crc == 0 || c.h.Sum32() == crc)
}

// sevenZipMismatch names a 7z member that came out with another length
// or CRC than recorded: read again with a password that is surely
// wrong, an encrypted member comes out otherwise (the key changed the
// garbage), a damaged one the same.
func sevenZipMismatch(data []byte, i int, first *summed) string {
	zr, err := sevenzip.NewReaderWithPassword(bytes.NewReader(data), int64(len(data)), "fsigkd: surely not the password")
	if err != nil || i >= len(zr.File) {
		return "Heuristics.Broken.Archive"
	}
	rc, err := zr.File[i].Open()
	if err != nil {
		return "Heuristics.Encrypted.7Zip"
	}
	defer rc.Close()
	again := newSummed(rc)
	_, err = io.Copy(io.Discard, io.LimitReader(again, int64(first.n)+1))
	var re *sevenzip.ReadError
	if errors.As(err, &re) && re.Encrypted || again.n != first.n || again.h.Sum32() != first.h.Sum32() {
		return "Heuristics.Encrypted.7Zip"
	}
	return "Heuristics.Broken.Archive"
}

func (s *scan) rar(data []byte, where string, depth int) {
	// A dictionary of at most 256 MiB: a header asking for more (RAR 7
	// allows gigabytes) is refused rather than allocated.
	rr, err := rardecode.NewReader(bytes.NewReader(data), rardecode.MaxDictionarySize(256<<20))
	if err != nil {
		s.unopened(err, "RAR", where, depth-1)
		return
	}
	for !s.stop {
		h, err := rr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			s.unopened(err, "RAR", where, depth-1)
			return
		}
		if h.IsDir {
			continue
		}
		at := join(where, h.Name)
		if h.Encrypted {
			s.add(Detection{Name: "Heuristics.Encrypted.RAR", Path: at, Kind: Suspected, Depth: depth})
			continue
		}
		s.member(&errorsNamed{r: rr, fmt: "RAR", s: s, at: at, depth: depth}, h.PackedSize, at, depth)
	}
}

// unopened reports an archive (or member) that could not be opened:
// encrypted, or damaged or in a form not implemented.
func (s *scan) unopened(err error, format, where string, depth int) (encrypted bool) {
	var re *sevenzip.ReadError
	if errors.Is(err, rardecode.ErrArchiveEncrypted) || errors.Is(err, rardecode.ErrArchivedFileEncrypted) ||
		(errors.As(err, &re) && re.Encrypted) {
		s.add(Detection{Name: "Heuristics.Encrypted." + format, Path: where, Kind: Suspected, Depth: depth})
		return true
	}
	s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth})
	return false
}

// errorsNamed turns a member's read error into its archive's own
// encrypted or broken verdict; member sees a plain end.
type errorsNamed struct {
	r      io.Reader
	fmt    string
	s      *scan
	at     string
	depth  int
	failed bool // an error was reported
	// encrypted: the error said the member is encrypted.
	encrypted bool
}

func (e *errorsNamed) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.encrypted = e.s.unopened(err, e.fmt, e.at, e.depth)
		e.failed = true
		err = io.EOF
	}
	return n, err
}

// cab opens a Microsoft cabinet: uncompressed, MSZIP and LZX folders.
// Quantum folders, and cabinets that are part of a set, are not opened.
func (s *scan) cab(data []byte, where string, depth int) { s.cabinet(data, where, depth, false) }

// cabBehind opens a cabinet found behind other data. Its Quantum folders,
// which are not read, and LZX folders that do not decode, are left to the
// scan of the object it is in, as a gzip header by chance is: Microsoft's
// installers carry cabinets, and reporting a stretch of one that is no
// cabinet a reader opens would block every one.
func (s *scan) cabBehind(data []byte, where string, depth int) { s.cabinet(data, where, depth, true) }

// cabinet opens a Microsoft cabinet; behind: found behind other data.
func (s *scan) cabinet(data []byte, where string, depth int, behind bool) {
	c, err := readCab(data)
	if err != nil {
		s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
		return
	}
	for i, f := range c.files {
		if s.stop {
			return
		}
		// Its name as stored, its place counted from zero.
		s.describe(Member{Container: TypeCab, ContainerSize: int64(len(data)), Name: f.name, Size: int64(f.size), Pos: i}, where, depth)
		at := join(where, strings.ReplaceAll(f.name, `\`, "/"))
		if int(f.folder) >= len(c.folders) {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: at, Kind: Suspected, Depth: depth})
			continue
		}
		fo := &c.folders[f.folder]
		if fo.method != cabStored && fo.method != cabMSZIP && fo.method != cabLZX {
			if !behind {
				s.add(Detection{Name: "Heuristics.Unsupported.CAB", Path: at, Kind: Suspected, Depth: depth})
			}
			continue
		}
		if fo.data == nil && fo.err == nil {
			room := min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked)
			fo.data, fo.err = c.unpack(fo, room)
		}
		if errors.Is(fo.err, errCabTooBig) {
			s.exceeded("Total", at, depth)
			return
		}
		// A file that came out whole is scanned even when its folder
		// did not decode to its end.
		whole := int64(f.offset)+int64(f.size) <= int64(len(fo.data))
		if whole {
			s.memberData(fo.data[f.offset:f.offset+f.size], int64(f.size), at, depth)
		}
		if (fo.err != nil || !whole) && !(behind && fo.method == cabLZX) {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: at, Kind: Suspected, Depth: depth})
		}
	}
}
