package engine

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/bytesearch"
	"github.com/fsigkd/fsigkd/internal/cvd"
	"github.com/fsigkd/fsigkd/internal/sigfiles"
	"github.com/fsigkd/fsigkd/unpack"
)

// DB is one loaded signature set. It is never changed once built, so a
// reload builds a new one and swaps it in whole.
type DB struct {
	Version string // shown in the fsavd greeting
	Files   []string
	Skipped int // signatures with features this engine does not have
	// Unsupported counts, by extension, the signatures of the kinds this
	// engine does not read (ClamAV's .mdb, .cdb, .cbc...), in loose files
	// and inside containers: said at load, never silently dropped.
	Unsupported map[string]int
	// FileTypes counts the file types read from .ftm files (ftm.go),
	// FileTypesNotRead those of the kinds not read (a pattern's, a
	// partition's); types are those that type objects.
	FileTypes, FileTypesNotRead int
	types                       ftypes
	// layered: where an object lies can change what matches in it
	// (build); the scan tells the match then (matchIn), and only then.
	layered bool
	// hashFiles are the hash signatures, a set of each kind (md5, sha1,
	// sha256; see hashes.go) for each file that holds some: a reload
	// keeps those of a file unchanged (freshclam's main.cvd, while its
	// daily.cld changes) instead of reading millions of lines again and
	// holding two copies. As ClamAV does, an object is hashed only when
	// some signature names its size (or any size, "*"): hashing every
	// object would cost more than all the rest of a large object's scan.
	// Their allowed sets are the files known clean by their hash (.fp,
	// .sfp): such an object, or member, is no detection whatever matches
	// in it.
	hashFiles []*hashFile
	// ignored are the signature names not to use (.ign, .ign2). ClamAV's
	// own database fixes its false positives with these and .fp.
	ignored    map[string]bool
	body       []*bodySig
	bodyN      int
	logical    []*logicalSig  // .ldb; their parts are in body (logical.go)
	containers []containerSig // .cdb (containers.go)
	// index finds the body signatures in objects as they are; text and
	// html, those that can match in a text normalised and in an HTML
	// page's views (textview.go, htmlview.go), nil when none can.
	index
	text, html *index
}

// index is how a pass finds a set of body signatures.
type index struct {
	filter *[1 << filterBits / 64]uint64 // bit set of hashed 4-byte anchor prefixes
	table  map[uint32][]int32            // anchor prefix -> body signatures
	slow   []int32                       // body signatures with no 4-byte literal
	// keys are the anchor prefixes themselves when there are so few
	// (maxKeys or fewer) that the pass looks for each with bytesearch.Index
	// instead of hashing every position; nil: the hashed pass.
	keys [][]byte
}

type bodySig struct {
	name   string
	parts  []part
	anchor int // index of the literal part the prefilter finds
	// offKind: '*' anywhere, 'a' absolute, 'e' from the end; in a
	// Windows program (exe.go): 'E' from the entry point (EP+n, EP-n),
	// 'S' from section sec's start (Sx+n), 'L' from the last section's
	// start (SL+n), 'X' anywhere in section sec (SEx).
	offKind byte
	sec     int
	off     int
	offMax  int // the start may be off..off+offMax from where offKind says
	// lsig is 1 + the index of the logical signature this is a part of,
	// judged with the others at the end of a pass; 0: an .ndb signature.
	lsig int32
	// word: a whole word (::f), its match neither preceded nor followed
	// by a letter or digit: a character of one byte (1), or of two, as
	// UTF-16LE text (2, ::wf); 0: anywhere.
	word int
	// target: its target type, which says in which objects, and in
	// which of their views, it is looked for (targets.go, textview.go).
	target int8
}

// wordAt tells whether a match of s from start to end (not included) in
// data is a whole word, as its ::f asks (always true without).
func (s *bodySig) wordAt(data []byte, start, end int) bool {
	if s.word == 0 {
		return true
	}
	alnum := func(i int) bool {
		if i < 0 || i+s.word > len(data) {
			return false // the object's edge bounds a word
		}
		c := data[i]
		if s.word == 2 && data[i+1] != 0 {
			return false
		}
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	return !alnum(start-s.word) && !alnum(end)
}

// LoadError is a signature file that could not be read, with its line.
type LoadError struct {
	File string
	Line int
	Msg  string
}

func (e *LoadError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// maxSigLine bounds one signature line.
const maxSigLine = 256 << 10

// Load reads the signatures dir names (see package sigfiles: .hdb, .hsb
// and .ndb files, and ClamAV's containers, .cvd, .cld and .cud, read as
// they are, without unpacking; "" for none) and adds the built-in EICAR
// signature; a path that holds no signature file is an error, not an
// empty set. Any bad line fails the whole load with its file and line
// (a container's member named within it), and so does a container that
// fails its checks, so that a running engine keeps its old set.
func Load(dir string) (*DB, error) { return Reload(dir, nil) }

// Reload is Load, keeping prev's hash signatures of the files unchanged
// since (same name, size and time): only the changed files' are read.
func Reload(dir string, prev *DB) (*DB, error) {
	db := newDB()
	// The first load has the processors to itself; a reload shares them
	// with the scans under way, which are not to wait on it.
	par := 1
	if prev == nil {
		par = runtime.GOMAXPROCS(0)
	}
	db.addBody("Eicar-Test-Signature", hex.EncodeToString([]byte(eicar.String)), "*", 0)
	if dir != "" {
		files, err := sigfiles.List(dir)
		if err != nil {
			return nil, err
		}
		// At the first load, a loose file of hash signatures (a
		// database's bulk: millions of MD5s in one file) is read and
		// sorted on a goroutine of its own, beside the others; nothing it reads goes anywhere but its
		// hashFile. The rest are read in turn. The files' order, and the
		// first error in it, are kept as they were.
		hfs, errs := make([]*hashFile, len(files)), make([]error, len(files))
		var wg sync.WaitGroup
		for i, f := range files {
			if par > 1 && !sigfiles.IsContainer(f) && holdsHashes(f) {
				wg.Go(func() { hfs[i], errs[i] = db.loadFile(f, prev, par) })
			}
		}
		for i, f := range files {
			if par == 1 || sigfiles.IsContainer(f) || !holdsHashes(f) {
				hfs[i], errs[i] = db.loadFile(f, prev, par)
			}
		}
		wg.Wait()
		for i, f := range files {
			if errs[i] != nil {
				return nil, errs[i]
			}
			if hfs[i].len() > 0 {
				db.hashFiles = append(db.hashFiles, hfs[i])
			}
			db.Files = append(db.Files, f)
		}
	}
	db.build()
	return db, nil
}

func newDB() *DB {
	return &DB{ignored: map[string]bool{}, index: index{table: map[uint32][]int32{}}, Unsupported: map[string]int{}}
}

// loadFile reads a signature file or a container's members, and gives
// the hash signatures they hold (read and sorted on par goroutines);
// those of a file prev read as it is now are prev's. A loose file of hash
// signatures changes nothing in db.
func (db *DB) loadFile(path string, prev *DB, par int) (*hashFile, error) {
	id, kept := fileID(path), (*hashFile)(nil)
	if prev != nil && id != "" {
		for _, hf := range prev.hashFiles {
			if hf.id == id {
				kept = hf
			}
		}
	}
	hf := kept
	if hf == nil {
		hf = newHashFile(id, par)
	}
	read := func(name string, r io.Reader) error {
		if kept != nil && holdsHashes(name) {
			return nil // kept
		}
		return db.load(name, r, hf)
	}
	var err error
	if sigfiles.IsContainer(path) {
		_, err = cvd.Each(path, func(name string, r io.Reader) error { return read(path+"/"+name, r) })
	} else {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			err = read(path, f)
			f.Close()
		}
	}
	if err != nil {
		return nil, err
	}
	if kept == nil {
		hf.build()
	}
	return hf, nil
}

// holdsHashes tells whether a file of this name holds hash signatures
// (or the allow lists' hashes): what a kept hashFile already has.
func holdsHashes(name string) bool {
	switch plainExt(name) {
	case ".hdb", ".hsb", ".mdb", ".msb", ".imp", ".fp", ".sfp":
		return true
	}
	return false
}

// plainExt is the extension of a signature file, a PUA file's (.hdu,
// .hsu, .mdu, .msu, .ndu, .ldu) as its plain kind's: the same forms,
// whose names (PUA.*) make their detections riskware (see unpack).
func plainExt(name string) string {
	ext := filepath.Ext(name)
	switch ext {
	case ".hdu", ".hsu", ".mdu", ".msu", ".ndu", ".ldu":
		return ext[:3] + "b"
	}
	return ext
}

// fileID is what tells a file unchanged: its name, size and time; "" when
// it cannot be looked at.
func fileID(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s\x00%d\x00%d", path, st.Size(), st.ModTime().UnixNano())
}

// load reads the signatures of the file called name from r, by its kind;
// its hash signatures into hf.
func (db *DB) load(name string, r io.Reader, hf *hashFile) error {
	ext := plainExt(name)
	switch sigfiles.Kind(name) {
	case "unsupported":
		n, err := sigfiles.Lines(r)
		db.Unsupported[ext] += n
		return err
	case "hash", "body", "logical", "container", "allow", "types":
	default:
		return nil
	}
	if holdsHashes(name) {
		return hf.readHashLines(name, ext, r)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxSigLine)
	n := 0
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 || raw[0] == '#' {
			continue
		}
		var err error
		line := string(raw)
		switch ext {
		case ".ign2":
			// SignatureName, or SignatureName:MD5 of its definition.
			name, _, _ := strings.Cut(line, ":")
			db.ignored[name] = true
		case ".ign":
			// Database:Line:SignatureName (the old form).
			f := strings.Split(line, ":")
			db.ignored[f[len(f)-1]] = true
		case ".ndb":
			err = db.addBodyLine(line)
		case ".ldb":
			err = db.addLogical(line)
		case ".cdb":
			err = db.addContainerLine(line)
		case ".ftm":
			var read bool
			if read, err = db.addFileTypeLine(line); err == nil && read {
				db.FileTypes++
			} else if err == nil {
				db.FileTypesNotRead++
			}
		}
		if err != nil {
			return &LoadError{File: name, Line: n, Msg: err.Error()}
		}
	}
	if err := sc.Err(); err != nil {
		return &LoadError{File: name, Line: n + 1, Msg: err.Error()}
	}
	return nil
}

// addLine reads a hash signature line of a file of extension ext: a
// whole object's HASH:Size:Name (.hdb, .hsb; .fp, .sfp known clean), or
// a PE section's Size:HASH:Name (.mdb, .msb).
func (hf *hashFile) addLine(ext string, line []byte) error {
	a, rest, ok1 := bytes.Cut(line, []byte{':'})
	b, name, ok2 := bytes.Cut(rest, []byte{':'})
	if i := bytes.IndexByte(name, ':'); i >= 0 {
		name = name[:i] // an engine level after the name
	}
	section := ext == ".mdb" || ext == ".msb"
	switch {
	case (!ok1 || !ok2) && section:
		return errors.New("want Size:HASH:Name")
	case !ok1 || !ok2:
		return errors.New("want HASH:Size:Name")
	case section:
		return hf.addHash(hf.sections, b, a, name)
	case ext == ".fp" || ext == ".sfp":
		return hf.addHash(hf.allowed, a, b, name)
	case ext == ".imp":
		return hf.addHash(hf.imports, a, b, name)
	}
	return hf.addHash(hf.hashes, a, b, name)
}

// addHash keeps hash h (MD5, SHA1 or SHA256 by length) of size sz (* for
// any) named name in sets, by hash kind.
func (hf *hashFile) addHash(sets map[string]*hashSet, h, sz, name []byte) error {
	var key [32]byte
	if len(h)%2 != 0 || len(h) > 64 {
		return fmt.Errorf("bad hash %q", h)
	}
	if _, err := hex.Decode(key[:len(h)/2], h); err != nil {
		return fmt.Errorf("bad hash %q", h)
	}
	var kind string
	switch len(h) {
	case 32:
		kind = "md5"
	case 40:
		kind = "sha1"
	case 64:
		kind = "sha256"
	default:
		return fmt.Errorf("hash of %d hex digits is not MD5, SHA1 or SHA256", len(h))
	}
	size := anySize
	if string(sz) != "*" {
		n, err := strconv.ParseUint(string(sz), 10, 32)
		if err != nil || uint32(n) == anySize {
			return fmt.Errorf("bad size %q", sz)
		}
		size = uint32(n)
	}
	if len(name) == 0 {
		return fmt.Errorf("no name")
	}
	set := sets[kind]
	if set == nil {
		set = newHashSet(len(h) / 2)
		sets[kind] = set
	}
	set.add(key[:len(h)/2], size, hf.names.intern(name))
	return nil
}

// addBodyLine reads Name:TargetType:Offset:HexSig[:MinFL[:MaxFL]].
func (db *DB) addBodyLine(line string) error {
	f := strings.Split(line, ":")
	if len(f) < 4 {
		return fmt.Errorf("want Name:TargetType:Offset:HexSig")
	}
	if f[0] == "" {
		return fmt.Errorf("no name")
	}
	target, err := strconv.Atoi(f[1])
	if err != nil || target < 0 || target > maxTarget {
		return fmt.Errorf("bad target type %q", f[1])
	}
	if isExecOffset(f[2]) && f[1] != "1" {
		// Entry points and sections of ELF or Mach-O programs are not
		// read: such a signature is counted and skipped.
		if _, err := parsePattern(f[3]); err != nil {
			return err
		}
		db.Skipped++
		return nil
	}
	return db.addBody(f[0], f[3], f[2], target)
}

// addBody adds a body signature of the given target type.
func (db *DB) addBody(name, hexsig, offset string, target int) error {
	s, err := newBodySig(name, hexsig, offset, "")
	if errors.Is(err, errUnsupported) {
		db.Skipped++
		return nil
	}
	if err != nil {
		return err
	}
	s.target = int8(target)
	db.body = append(db.body, s)
	return nil
}

// newBodySig reads a body pattern and its offset, with a logical
// signature's modifiers (i: letters in either case; w: as UTF-16LE
// text); errUnsupported for an offset this engine cannot place (see
// addBody).
func newBodySig(name, hexsig, offset, mods string) (*bodySig, error) {
	s := &bodySig{name: name}
	switch {
	case offset == "*":
		s.offKind = '*'
	case strings.HasPrefix(offset, "EOF-"):
		o, span, _ := strings.Cut(offset[4:], ",")
		n, err := strconv.Atoi(o)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad offset %q", offset)
		}
		s.offKind, s.off = 'e', n
		if span != "" {
			m, err := strconv.Atoi(span)
			if err != nil || m < 0 {
				return nil, fmt.Errorf("bad offset %q", offset)
			}
			s.offMax = m
		}
	case offset != "" && offset[0] >= '0' && offset[0] <= '9':
		o, span, _ := strings.Cut(offset, ",")
		n, err := strconv.Atoi(o)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad offset %q", offset)
		}
		s.offKind, s.off = 'a', n
		if span != "" {
			m, err := strconv.Atoi(span)
			if err != nil || m < 0 {
				return nil, fmt.Errorf("bad offset %q", offset)
			}
			s.offMax = m
		}
	case isExecOffset(offset):
		var err error
		if s.offKind, s.sec, s.off, s.offMax, err = execOffset(offset); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("bad offset %q", offset)
	}
	parts, err := parsePattern(hexsig)
	if err != nil {
		return nil, err
	}
	if strings.Contains(mods, "i") {
		caseless(parts)
	}
	if strings.Contains(mods, "w") {
		parts = wide(parts)
	}
	if strings.Contains(mods, "f") {
		s.word = 1
		if strings.Contains(mods, "w") {
			s.word = 2
		}
	}
	s.parts = parts
	s.anchor = -1
	for i, p := range parts {
		// The longest literal is the anchor; of a caseless one, each case
		// of its first four bytes is an anchor prefix (at most 16).
		if (p.kind == kLit || p.kind == kFold) && len(p.lit) >= 4 && (s.anchor < 0 || len(p.lit) > len(parts[s.anchor].lit)) {
			s.anchor = i
		}
	}
	return s, nil
}

const filterBits = 20

func filterIndex(k uint32) uint32 { return (k * 0x9E3779B1) >> (32 - filterBits) }

// build indexes the body signatures for the one-pass scan: of the
// objects as they are (all but those of text normalised, target 7), of
// texts normalised and of HTML pages' views (those that can match
// there).
func (db *DB) build() {
	db.index = newIndex(db.body, false, func(s *bodySig) bool { return db.targetOf(s) != 7 })
	for _, v := range []struct {
		ix   **index
		view byte
	}{{&db.text, viewText}, {&db.html, viewHTML}} {
		ix := newIndex(db.body, true, func(s *bodySig) bool { return looks(db.targetOf(s), 0, v.view) && s.normalisable(v.view) })
		if len(ix.table)+len(ix.slow) > 0 {
			*v.ix = &ix
		}
	}
	db.bodyN = len(db.body)
	// Where an object lies changes what matches in it only with a
	// Container or Intermediates condition, a signature of target 2 (a
	// macro's source is typed so), or a normalised view (a macro's
	// source has none).
	db.layered = db.text != nil || db.html != nil
	for _, s := range db.body {
		db.layered = db.layered || db.targetOf(s) == 2
	}
	for _, ls := range db.logical {
		db.layered = db.layered || ls.container != "" || len(ls.intermediates) > 0
	}
	sum := sha256.New()
	for _, f := range db.Files {
		st, err := os.Stat(f)
		if err == nil {
			fmt.Fprintf(sum, "%s %d %d\n", f, st.Size(), st.ModTime().UnixNano())
		}
	}
	db.Version = fmt.Sprintf("fsigkd-%d-%x", db.Signatures(), sum.Sum(nil)[:4])
}

// targetOf is the target type of body signature s, or of the logical
// signature it is a part of.
func (db *DB) targetOf(s *bodySig) int8 {
	if s.lsig != 0 {
		return db.logical[s.lsig-1].target
	}
	return s.target
}

// newIndex indexes the signatures of body that in admits; lower: for
// texts normalised, which hold no upper-case letter, so that a caseless
// anchor is looked for in lower case alone (all its cases, up to 16
// prefixes, made the normalised pass of a text verify its every
// lower-case word that began as one).
func newIndex(body []*bodySig, lower bool, in func(*bodySig) bool) index {
	ix := index{filter: new([1 << filterBits / 64]uint64), table: map[uint32][]int32{}}
	for i, s := range body {
		if !in(s) {
			continue
		}
		if s.anchor < 0 {
			ix.slow = append(ix.slow, int32(i))
			continue
		}
		prefixes := [][]byte{s.parts[s.anchor].lit}
		if s.parts[s.anchor].kind == kFold && !lower {
			prefixes = foldVariants(s.parts[s.anchor].lit)
		}
		for _, pre := range prefixes {
			k := binary.LittleEndian.Uint32(pre)
			ix.table[k] = append(ix.table[k], int32(i))
			fi := filterIndex(k)
			ix.filter[fi/64] |= 1 << (fi % 64)
		}
	}
	if len(ix.table) <= maxKeys {
		for k := range ix.table {
			ix.keys = append(ix.keys, binary.LittleEndian.AppendUint32(nil, k))
		}
		slices.SortFunc(ix.keys, bytes.Compare) // the same order at each load
	}
	return ix
}

// Signatures is how many signatures are in use.
func (db *DB) Signatures() int {
	n := 0
	for _, k := range db.Kinds() {
		n += k
	}
	return n
}

// Kinds is how many signatures of each kind are in use: hash (.hdb,
// .hsb, the PE section hashes of .mdb, .msb and the import hashes of
// .imp), body (.ndb, and the built-in EICAR), logical (.ldb) and
// container (.cdb).
func (db *DB) Kinds() map[string]int {
	n, parts := 0, 0
	for _, hf := range db.hashFiles {
		for _, sets := range []map[string]*hashSet{hf.hashes, hf.sections, hf.imports} {
			for _, set := range sets {
				n += set.len()
			}
		}
	}
	for _, ls := range db.logical {
		for _, forms := range ls.parts {
			parts += len(forms)
		}
	}
	k := map[string]int{"hash": n, "body": db.bodyN - parts}
	if len(db.logical) > 0 {
		k["logical"] = len(db.logical)
	}
	if len(db.containers) > 0 {
		k["container"] = len(db.containers)
	}
	return k
}

// parallelFrom is the size from which one object's positions are shared
// out among the cores (the verifications still see all of it, so a
// signature that spans two shares is found): a 100 MiB download is
// judged in about half the time on two idle cores. Smaller objects are
// more of them, which keep the cores busy by themselves.
const parallelFrom = 8 << 20

// matchBody finds the body signatures in data, in one pass: every
// position's four bytes are hashed into a bit set of the signatures'
// anchors, and only a hit looks further (or, with maxKeys anchor
// prefixes or fewer, each is looked for with bytesearch.Index). Detections
// are reported in the order of their first anchor in data, whether or
// not the pass was shared out. A verification that ran out of steps is
// reported as Exhausted, after them.
func (db *DB) matchBody(data []byte, found func(name string) bool) {
	db.passOver(data, &db.index, viewRaw, nil, found)
}

// passOver is matchBody for the signatures of ix, in an object's bytes
// (or a macro's source) or one of its normalised views (textview.go),
// for an object inside the containers within.
func (db *DB) passOver(data []byte, ix *index, view byte, within []string, found func(name string) bool) {
	exhausted := false
	var hit map[int32]bool // the signatures found, logical parts among them
	if n := min(runtime.GOMAXPROCS(0), len(data)/parallelFrom); n > 1 {
		// Each share keeps its own hits, in order; they are reported
		// share by share, each signature once.
		shares := make([]*pass, n)
		var wg sync.WaitGroup
		for c := range n {
			from, to := c*(len(data)/n), (c+1)*(len(data)/n)
			if c == n-1 {
				to = len(data)
			}
			p := &pass{db: db, ix: ix, data: data, share: true}
			p.v.init(data, db.types)
			p.v.view = view
			shares[c] = p
			wg.Go(func() { p.fault = unpack.Guard(func() { p.run(from, to) }) })
		}
		wg.Wait()
		for _, p := range shares {
			if p.fault != nil {
				panic(p.fault) // a mapped file shortened: see unpack.Guard
			}
		}
		seen := map[int32]bool{}
		for _, p := range shares {
			for _, si := range p.hits {
				if !seen[si] {
					seen[si] = true
					if db.body[si].lsig == 0 && found(db.body[si].name) {
						return
					}
				}
			}
			exhausted = exhausted || p.exhausted
		}
		hit = seen
	} else {
		p := pass{db: db, ix: ix, data: data, found: found}
		p.v.init(data, db.types)
		p.v.view = view
		if p.run(0, len(data)) {
			return
		}
		exhausted, hit = p.exhausted, p.hit
	}
	db.matchUnanchored(data, ix, view, exhausted, hit, within, found)
}

// matchUnanchored ends a pass of ix (in view) whose
// finds were hit: the signatures without an anchor, then the logical
// signatures (of an object inside the containers within), then
// Exhausted when a verification ran out of steps.
func (db *DB) matchUnanchored(data []byte, ix *index, view byte, exhausted bool, hit map[int32]bool, within []string, found func(name string) bool) {
	for _, si := range ix.slow {
		matched, out := db.body[si].matchAnywhere(data, view, db.types)
		exhausted = exhausted || out
		if !matched {
			continue
		}
		if db.body[si].lsig != 0 {
			if hit == nil {
				hit = map[int32]bool{}
			}
			hit[si] = true
		} else if found(db.body[si].name) {
			return
		}
	}
	if db.matchLogical(data, view, hit, within, found) {
		return
	}
	if exhausted {
		found(Exhausted)
	}
}

// pass is a look for anchors over the positions of data, or of one
// share of them.
type pass struct {
	db    *DB
	ix    *index // the signatures looked for
	data  []byte
	v     verifier       // the verifications' bounds and what their searches found
	hit   map[int32]bool // signatures found already: not verified again (made at the first)
	found func(name string) bool
	// share: a share of a pass shared out, which keeps its finds (hits,
	// in order) for matchBody to report.
	share bool
	hits  []int32
	// exhausted: a verification ran out of steps (an object crafted
	// against a signature).
	exhausted bool
	fault     any // a share's memory fault (unpack.Guard)
}

// report takes signature si as found; true: stop.
func (p *pass) report(si int32) bool {
	if p.hit == nil {
		p.hit = map[int32]bool{}
	}
	p.hit[si] = true
	if p.share {
		p.hits = append(p.hits, si)
		return false
	}
	if p.db.body[si].lsig != 0 {
		return false // a logical signature's part: judged at the end
	}
	return p.found(p.db.body[si].name)
}

// maxKeys is the most anchor prefixes the pass looks for one by one.
// bytesearch.Index finds a 4-byte literal at 10 GB/s and more on amd64
// (vector compares of its first two bytes), the hashed pass goes at about 0.8 GB/s a
// core whatever the number of signatures: the shipped set (EICAR alone)
// and a handful of local signatures are found ten times as fast, a
// large set is hashed (BenchmarkScanBuiltin, BenchmarkScan10kNdb,
// BenchmarkScanFewKeys).
const maxKeys = 4

// run looks for anchors starting at the positions from..to-1 (their
// signatures verified against the whole of data); true when report says
// to stop.
func (p *pass) run(from, to int) bool {
	if p.ix.keys != nil {
		return p.runKeys(from, to)
	}
	data, filter := p.data, p.ix.filter
	// Four positions at a time from one load, tested together: most
	// blocks of data hold no anchor's start, and cost one branch (a
	// quarter to a third faster than a test per position, by
	// BenchmarkScan10kNdb and BenchmarkScanBuiltin).
	i := from
	for ; i+8 <= len(data) && i+4 <= to; i += 4 {
		w := binary.LittleEndian.Uint64(data[i:])
		f0, f1, f2, f3 := filterIndex(uint32(w)), filterIndex(uint32(w>>8)), filterIndex(uint32(w>>16)), filterIndex(uint32(w>>24))
		if (filter[f0>>6]>>(f0&63)|filter[f1>>6]>>(f1&63)|filter[f2>>6]>>(f2&63)|filter[f3>>6]>>(f3&63))&1 == 0 {
			continue
		}
		for j := i; j < i+4; j++ {
			if p.at(j) {
				return true
			}
		}
	}
	for ; i < to && i+4 <= len(data); i++ {
		if p.at(i) {
			return true
		}
	}
	return false
}

// runKeys is run for a set of few anchor prefixes: each is looked for
// with bytesearch.Index, and the places found are taken in the order of the
// object, so detections are reported as the hashed pass reports them. A
// prefix whose signatures are all found is looked for no more.
func (p *pass) runKeys(from, to int) bool {
	end := min(len(p.data), to+3) // an anchor starting before to
	var next [maxKeys]int
	find := func(j, i int) {
		next[j] = -1
		if i >= end {
			return
		}
		if o := bytesearch.Index(p.data[i:end], p.ix.keys[j]); o >= 0 {
			next[j] = i + o
		}
	}
	for j := range p.ix.keys {
		find(j, from)
	}
	for {
		j := -1
		for c := range p.ix.keys {
			if next[c] >= 0 && (j < 0 || next[c] < next[j]) {
				j = c
			}
		}
		if j < 0 {
			return false
		}
		i := next[j]
		if p.at(i) {
			return true
		}
		if p.allFound(binary.LittleEndian.Uint32(p.ix.keys[j])) {
			next[j] = -1
		} else {
			find(j, i+1)
		}
	}
}

// allFound: every signature of anchor prefix k has been found.
func (p *pass) allFound(k uint32) bool {
	for _, si := range p.ix.table[k] {
		if !p.hit[si] {
			return false
		}
	}
	return true
}

// at looks for the signatures whose anchor may start at data[i]; true
// when report says to stop.
func (p *pass) at(i int) bool {
	k := binary.LittleEndian.Uint32(p.data[i:])
	fi := filterIndex(k)
	if p.ix.filter[fi>>6]&(1<<(fi&63)) == 0 {
		return false
	}
	for _, si := range p.ix.table[k] {
		if p.hit[si] {
			continue
		}
		matched, out := p.db.body[si].matchAnchored(&p.v, i)
		if matched && p.report(si) {
			return true
		}
		p.exhausted = p.exhausted || out
	}
	return false
}

// verifyBudget bounds the backtracking of one verification: a step is a
// part tried at a place. A gap before or after a literal part costs a
// step per place the literal is found, not per byte, so padding between
// a signature's parts does not outrun it (TestWildcardGapsHoldOverDistance);
// only a gap next to a masked or alternative part is walked byte by byte.
const verifyBudget = 100000

// window is where in v's object the signature may start: lo to hi, both
// included; ok false: nowhere (an executable offset in an object that is
// no Windows program, or names a part it does not have).
func (s *bodySig) window(v *verifier) (lo, hi int, ok bool) {
	n := len(v.data)
	switch s.offKind {
	case '*':
		return 0, n, true
	case 'a':
		return s.off, s.off + s.offMax, true
	case 'e':
		return n - s.off, n - s.off + s.offMax, true
	}
	at, ok := v.exe().place(s.offKind, s.sec)
	if !ok {
		return 0, 0, false
	}
	if s.offKind == 'X' {
		return int(at.at), int(at.at + at.size - 1), true
	}
	return int(at.at) + s.off, int(at.at) + s.off + s.offMax, true
}

func (s *bodySig) startOK(v *verifier, start int) bool {
	lo, hi, ok := s.window(v)
	return ok && start >= lo && start <= hi
}

// matchAnchored verifies the signature with its anchor part at data[i].
// exhausted says it, or the pass, ran out of steps before it could tell.
func (s *bodySig) matchAnchored(v *verifier, i int) (matched, exhausted bool) {
	if s.target != 0 && !looks(s.target, v.target(), v.view) {
		return false, false
	}
	v.steps = verifyBudget
	matched = v.matchFrom(s.parts[s.anchor:], i, func(end int) bool {
		return v.matchBack(s.parts[:s.anchor], i, func(start int) bool {
			return s.startOK(v, start) && s.wordAt(v.data, start, end)
		})
	})
	return matched, !matched && v.out()
}

// matchAnywhere tries every start: for the rare signature without a
// four-byte literal. A literal first part is searched for (bytesearch.Index),
// not tried at every byte. The steps allowed grow with the object
// (workFor), so that no size of object runs them out: a fixed budget
// found such a signature only in an object's first megabyte or so. exhausted says the steps ran out before every start was tried (an
// object crafted against the signature): the caller reports it, never
// clean.
func (s *bodySig) matchAnywhere(data []byte, view byte, types ftypes) (matched, exhausted bool) {
	var v verifier
	v.init(data, types)
	v.view = view
	if s.target != 0 && !looks(s.target, v.target(), v.view) {
		return false, false
	}
	v.steps = v.work // the pass's bound alone
	s.starts(&v, func() bool {
		if v.out() {
			exhausted = true
			return false
		}
		return true
	}, func(int) bool {
		matched = true
		return false
	})
	return matched, exhausted
}

// starts tries s at every place its offset allows in v's data, a literal
// first part searched for rather than tried at each byte: more (nil: always)
// says whether to go on, and each place s matches from is given to hit,
// which says whether to look further.
func (s *bodySig) starts(v *verifier, more func() bool, hit func(start int) bool) {
	data := v.data
	lo, last, ok := s.window(v)
	if !ok {
		return
	}
	hi := min(last+1, len(data))
	first := &s.parts[0]
	for start := max(lo, 0); start < hi; start++ {
		if first.kind == kLit {
			j := bytesearch.Index(data[start:min(hi-1+len(first.lit), len(data))], first.lit)
			if j < 0 {
				return
			}
			start += j
		}
		if more != nil && !more() {
			return
		}
		if v.matchFrom(s.parts, start, func(end int) bool { return s.wordAt(data, start, end) }) && !hit(start) {
			return
		}
	}
}

// Exhausted is the detection of an object whose verification against a
// signature ran out of steps: Suspected, as every other limit (package
// unpack tells it by its name).
const Exhausted = "Heuristics.Limits.Exceeded.Verify"

// matchHash looks the object's hashes up, computing only those in use
// for its size.
func (db *DB) matchHash(data []byte, sums *digests) []string {
	var out []string
	for _, hf := range db.hashFiles {
		out = append(out, hf.lookUp(hf.hashes, data, sums)...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// matchImports looks a PE object's import hash up in the .imp
// signatures: only an object that is a PE, and only when some signature
// names the length of its import text.
func (db *DB) matchImports(data []byte) []string {
	return db.matchPieces(func(hf *hashFile) map[string]*hashSet { return hf.imports }, func() [][]byte {
		if text, ok := peImportHash(data); ok {
			return [][]byte{[]byte(text)}
		}
		return nil
	})
}

// matchSections looks the sections of a PE object up in the section
// hash signatures (.mdb, .msb): only an object that is a PE, and only
// when some signature names the section's size.
func (db *DB) matchSections(data []byte) []string {
	return db.matchPieces(func(hf *hashFile) map[string]*hashSet { return hf.sections }, func() [][]byte { return peSections(data) })
}

// matchPieces looks each piece of an object (its sections, its import
// text: read only when some file holds signatures of that use) up in the
// sets of that use, and gives the names found, once each, sorted.
func (db *DB) matchPieces(sets func(*hashFile) map[string]*hashSet, pieces func() [][]byte) []string {
	some := false
	for _, hf := range db.hashFiles {
		some = some || len(sets(hf)) > 0
	}
	if !some {
		return nil
	}
	var out []string
	for _, p := range pieces() {
		var sums digests
		for _, hf := range db.hashFiles {
			out = append(out, hf.lookUp(sets(hf), p, &sums)...)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// allowedFile tells whether data is a file known clean (.fp, .sfp).
func (db *DB) allowedFile(data []byte, sums *digests) bool {
	for _, hf := range db.hashFiles {
		if len(hf.allowed) > 0 && len(hf.lookUp(hf.allowed, data, sums)) > 0 {
			return true
		}
	}
	return false
}

// digests are an object's hashes, each made once, when first asked for.
type digests map[string][]byte

func (d *digests) of(kind string, data []byte) []byte {
	if sum, ok := (*d)[kind]; ok {
		return sum
	}
	var h hash.Hash
	switch kind {
	case "md5":
		h = md5.New()
	case "sha1":
		h = sha1.New()
	default:
		h = sha256.New()
	}
	h.Write(data)
	if *d == nil {
		*d = digests{}
	}
	(*d)[kind] = h.Sum(nil)
	return (*d)[kind]
}

// lookUp gives the names of the signatures of sets that data's hashes
// match, hashing only for the sets that name its size.
func (hf *hashFile) lookUp(sets map[string]*hashSet, data []byte, sums *digests) []string {
	var out []string
	for kind, set := range sets {
		if !set.wants(int64(len(data))) {
			continue
		}
		if name, ok := set.find(sums.of(kind, data), int64(len(data))); ok {
			out = append(out, hf.names.get(name))
		}
	}
	return out
}

// unignored is found without the signatures the ignore lists name.
func (db *DB) unignored(found func(name string) bool) func(name string) bool {
	if len(db.ignored) == 0 {
		return found
	}
	return func(name string) bool { return !db.ignored[name] && found(name) }
}
