package engine

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/internal/bytesearch"
)

// A pattern is an .ndb body signature compiled into parts, matched left to
// right: literal bytes, bytes under a nibble mask, a gap of min..max any
// bytes, or a choice between byte strings of the same length.
type part struct {
	lit      []byte   // literal bytes (kFold: lower case)
	val, msk []byte   // nibble-masked bytes: data&msk == val
	gapMin   int      // a gap of any bytes...
	gapMax   int      // ...up to gapMax (-1: unbounded)
	alts     [][]byte // one of these
	kind     partKind
}

type partKind uint8

const (
	kLit partKind = iota
	kMask
	kGap
	kAlt
	kFold // literal bytes, ASCII letters in either case (a logical signature's ::i)
)

// width is how many bytes a fixed part covers.
func (p *part) width() int {
	switch p.kind {
	case kLit, kFold:
		return len(p.lit)
	case kMask:
		return len(p.val)
	case kAlt:
		return len(p.alts[0])
	}
	return 0
}

// matchAt tells whether the fixed part p matches data at i.
func (p *part) matchAt(data []byte, i int) bool {
	switch p.kind {
	case kLit:
		return i+len(p.lit) <= len(data) && string(data[i:i+len(p.lit)]) == string(p.lit)
	case kMask:
		if i+len(p.val) > len(data) {
			return false
		}
		for j := range p.val {
			if data[i+j]&p.msk[j] != p.val[j] {
				return false
			}
		}
		return true
	case kAlt:
		for _, a := range p.alts {
			if i+len(a) <= len(data) && string(data[i:i+len(a)]) == string(a) {
				return true
			}
		}
	case kFold:
		if i+len(p.lit) > len(data) {
			return false
		}
		for j, c := range p.lit {
			if lower(data[i+j]) != c {
				return false
			}
		}
		return true
	}
	return false
}

// lower is c in lower case, when an ASCII letter.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// caseless makes the literal parts match letters in either case.
func caseless(parts []part) {
	for i := range parts {
		p := &parts[i]
		if p.kind != kLit {
			continue
		}
		folded := bytes.ToLower(p.lit) // ASCII letters alone: the rest stays
		if !bytes.Equal(folded, bytes.ToUpper(p.lit)) {
			p.kind, p.lit = kFold, folded
		}
	}
}

// wide makes parts match their bytes as UTF-16LE text: each byte followed
// by a zero byte, gaps twice as long (ClamAV's ::w).
func wide(parts []part) []part {
	widen := func(b []byte, pad byte) []byte {
		out := make([]byte, 0, 2*len(b))
		for _, c := range b {
			out = append(out, c, pad)
		}
		return out
	}
	out := make([]part, len(parts))
	for i, p := range parts {
		switch p.kind {
		case kLit, kFold:
			p.lit = widen(p.lit, 0)
		case kMask:
			p.val, p.msk = widen(p.val, 0), widen(p.msk, 0xff)
		case kAlt:
			alts := make([][]byte, len(p.alts))
			for j, a := range p.alts {
				alts[j] = widen(a, 0)
			}
			p.alts = alts
		case kGap:
			p.gapMin *= 2
			if p.gapMax > 0 {
				p.gapMax *= 2
			}
		}
		out[i] = p
	}
	return out
}

// foldVariants are the four-byte prefixes a caseless literal may start
// with in an object: every case of its letters.
func foldVariants(lit []byte) [][]byte {
	out := [][]byte{append([]byte(nil), lit[:4]...)}
	for j := range 4 {
		if c := lit[j]; 'a' <= c && c <= 'z' {
			for _, v := range out[:len(out):len(out)] {
				u := append([]byte(nil), v...)
				u[j] = c - 'a' + 'A'
				out = append(out, u)
			}
		}
	}
	return out
}

// maxPatternLen bounds a signature's hex text.
const maxPatternLen = 64 << 10

// parsePattern compiles ClamAV's hex signature syntax: hex bytes, ?? (any
// byte), a? and ?a (nibble wildcards), * (any number of bytes), {n},
// {n-m}, {-m}, {n-} (gaps) and (aa|bb) (alternatives of equal length).
func parsePattern(hex string) ([]part, error) {
	if len(hex) == 0 || len(hex) > maxPatternLen {
		return nil, fmt.Errorf("empty or too long pattern")
	}
	var parts []part
	var lit []byte
	var val, msk []byte
	flushLit := func() {
		if len(lit) > 0 {
			parts = append(parts, part{kind: kLit, lit: lit})
			lit = nil
		}
	}
	flushMask := func() {
		if len(val) > 0 {
			parts = append(parts, part{kind: kMask, val: val, msk: msk})
			val, msk = nil, nil
		}
	}
	flush := func() { flushLit(); flushMask() }
	gap := func(min, max int) {
		flush()
		if n := len(parts); n > 0 && parts[n-1].kind == kGap {
			g := &parts[n-1]
			g.gapMin += min
			if g.gapMax < 0 || max < 0 {
				g.gapMax = -1
			} else {
				g.gapMax += max
			}
			return
		}
		parts = append(parts, part{kind: kGap, gapMin: min, gapMax: max})
	}
	for i := 0; i < len(hex); {
		c := hex[i]
		switch {
		case c == '*':
			gap(0, -1)
			i++
		case c == '{':
			end := strings.IndexByte(hex[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed { at %d", i)
			}
			min, max, err := parseRange(hex[i+1 : i+end])
			if err != nil {
				return nil, err
			}
			gap(min, max)
			i += end + 1
		case c == '(':
			end := strings.IndexByte(hex[i:], ')')
			if end < 0 {
				return nil, fmt.Errorf("unclosed ( at %d", i)
			}
			var alts [][]byte
			for _, a := range strings.Split(hex[i+1:i+end], "|") {
				b, err := hexBytes(a)
				if err != nil || len(b) == 0 {
					return nil, fmt.Errorf("bad alternative %q", a)
				}
				if len(alts) > 0 && len(b) != len(alts[0]) {
					return nil, fmt.Errorf("alternatives of different lengths in %q", hex[i:i+end+1])
				}
				alts = append(alts, b)
			}
			flush()
			parts = append(parts, part{kind: kAlt, alts: alts})
			i += end + 1
		default:
			if i+1 >= len(hex) {
				return nil, fmt.Errorf("odd number of hex digits")
			}
			hi, lo := hex[i], hex[i+1]
			i += 2
			if hi == '?' && lo == '?' {
				gap(1, 1)
				continue
			}
			if hi == '?' || lo == '?' {
				var v, m byte
				if hi != '?' {
					h, ok := unhex(hi)
					if !ok {
						return nil, fmt.Errorf("bad hex %q", hex[i-2:i])
					}
					v, m = h<<4, 0xf0
				}
				if lo != '?' {
					l, ok := unhex(lo)
					if !ok {
						return nil, fmt.Errorf("bad hex %q", hex[i-2:i])
					}
					v, m = v|l, m|0x0f
				}
				flushLit()
				val, msk = append(val, v), append(msk, m)
				continue
			}
			h, ok1 := unhex(hi)
			l, ok2 := unhex(lo)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("bad hex %q", hex[i-2:i])
			}
			flushMask()
			lit = append(lit, h<<4|l)
		}
	}
	flush()
	if parts[0].kind == kGap || parts[len(parts)-1].kind == kGap {
		return nil, fmt.Errorf("pattern starts or ends with a wildcard")
	}
	return parts, nil
}

func parseRange(s string) (int, int, error) {
	const limit = 1 << 20
	lo, hi, dash := strings.Cut(s, "-")
	parse := func(x string, def int) (int, error) {
		if x == "" {
			return def, nil
		}
		n, err := strconv.Atoi(x)
		if err != nil || n < 0 || n > limit {
			return 0, fmt.Errorf("bad range {%s}", s)
		}
		return n, nil
	}
	min, err := parse(lo, 0)
	if err != nil {
		return 0, 0, err
	}
	if !dash {
		return min, min, nil
	}
	max, err := parse(hi, -1)
	if err != nil {
		return 0, 0, err
	}
	if max >= 0 && max < min {
		return 0, 0, fmt.Errorf("bad range {%s}", s)
	}
	return min, max, nil
}

func hexBytes(s string) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("odd hex")
	}
	out := make([]byte, len(s)/2)
	for i := range out {
		h, ok1 := unhex(s[2*i])
		l, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("bad hex %q", s)
		}
		out[i] = h<<4 | l
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// verifier checks signatures against one object, for one pass over it.
// Its steps bound one verification; its work bounds them all together
// with the bytes their gaps search and walk, so that an object crowded
// with an anchor's places cannot make each of them cost a search of the
// rest of the object (a pass quadratic in the object). The places found
// of each literal searched for after or before a gap are kept (seen):
// the pass meets an object's places in order, so each literal's
// searches read the object about once, whatever the places tried
// (TestGapSearchesReadTheObjectOnce).
type verifier struct {
	data  []byte
	steps int // left for the verification under way
	// work is left for the pass: a step each, a step per 64 bytes
	// searched and per 8 places a gap's walk passes.
	work int
	seen map[*part]*places
	// layout is the object's as a Windows program, read at the first
	// executable offset asked (exe); read says it was.
	layout *exeLayout
	read   bool
	// typ is the object's target type (targetOf, and 3 for an HTML
	// page) plus one, once read; types, the database's own file types.
	typ   int8
	types ftypes
	// view: data is an object as it is (viewRaw) or one of its
	// normalised views (textview.go).
	view byte
}

// target is the object's target type (targets.go), read once.
func (v *verifier) target() int8 {
	if v.typ == 0 && v.view == viewMacro {
		v.typ = 2 + 1 // as the compound file it came from
	}
	if v.typ == 0 {
		t, claimed := v.types.typeOf(v.data)
		if !claimed && v.view == viewRaw && isHTML(v.data) {
			t = 3
		}
		v.typ = t + 1
	}
	return v.typ - 1
}

// exe is the object's layout as a Windows program (nil: it is none),
// read once.
func (v *verifier) exe() *exeLayout {
	if !v.read {
		v.layout, v.read = peLayout(v.data), true
	}
	return v.layout
}

// places are the places of a literal part in the object that a pass has
// found: every one that starts in [start, end) is in at, in order. At
// most maxPlaces are kept, the last found: a search behind them reads
// its window afresh.
type places struct {
	start, end int
	at         []int
}

const maxPlaces = 4096

func (m *places) add(i int) {
	if len(m.at) == maxPlaces {
		m.at = append(m.at[:0], m.at[maxPlaces/2:]...)
		m.start = m.at[0]
	}
	m.at = append(m.at, i)
}

// workFor is the work a pass over n bytes may do: 4 steps a byte beyond
// a floor. An object not made against a signature needs a few steps for
// each place of an anchor, and those are rare; at about 50 ns a step at
// most, a 4 MiB object made against one is judged Suspected within a
// second (TestGapWalksAreBoundedPerObject).
func workFor(n int) int { return 10*verifyBudget + 4*n }

// init readies v for a pass over data.
func (v *verifier) init(data []byte, types ftypes) {
	*v = verifier{data: data, work: workFor(len(data)), types: types}
}

// out: the verification under way, or the pass, has run out of steps.
func (v *verifier) out() bool { return v.steps <= 0 || v.work <= 0 }

func (v *verifier) searched(n int) { v.work -= 1 + n/64 }

// walked charges the walk over a gap a step of work every eighth place
// whose next part failed its cheap test (g counts the places).
func (v *verifier) walked(g int) {
	if g&7 == 0 {
		v.work--
	}
}

// placesOf is what is known of literal part p's places (from lo on,
// when nothing is yet).
func (v *verifier) placesOf(p *part, lo int) *places {
	m := v.seen[p]
	if m == nil {
		if v.seen == nil {
			v.seen = map[*part]*places{}
		}
		m = &places{start: lo, end: lo}
		v.seen[p] = m
	}
	return m
}

// next finds the next place of p from m.end on; false when there is none.
func (v *verifier) next(m *places, p *part) bool {
	if m.end > len(v.data)-len(p.lit) {
		return false
	}
	j := bytesearch.Index(v.data[m.end:], p.lit)
	if j < 0 {
		v.searched(len(v.data) - m.end)
		m.end = len(v.data)
		return false
	}
	v.searched(j + len(p.lit))
	m.add(m.end + j)
	m.end += j + 1
	return true
}

// window searches data[lo:hi] for p with find (bytesearch.Index or
// bytes.LastIndex), afresh: for places behind those kept.
func (v *verifier) window(p *part, lo, hi int, find func(s, sep []byte) int) int {
	if hi-lo < len(p.lit) {
		return -1
	}
	v.searched(hi - lo)
	if k := find(v.data[lo:hi], p.lit); k >= 0 {
		return lo + k
	}
	return -1
}

// index is the first place of literal part p in data[from:to], -1 if
// none.
func (v *verifier) index(p *part, from, to int) int {
	m := v.placesOf(p, from)
	if to-from < len(p.lit) {
		return -1
	}
	if from < m.start {
		// Places before the kept ones are searched for there alone;
		// past them the kept ones answer, as for lastIndex.
		if k := v.window(p, from, min(to, m.start+len(p.lit)-1), bytesearch.Index); k >= 0 {
			return k
		}
		if from = m.start; to-from < len(p.lit) {
			return -1
		}
	}
	for {
		if k, _ := slices.BinarySearch(m.at, from); k < len(m.at) {
			if m.at[k]+len(p.lit) <= to {
				return m.at[k]
			}
			return -1
		}
		if !v.next(m, p) {
			return -1
		}
	}
}

// lastIndex is the last place of literal part p in data[lo:hi], -1 if
// none.
func (v *verifier) lastIndex(p *part, lo, hi int) int {
	n := len(p.lit)
	m := v.placesOf(p, lo)
	if hi-lo < n || hi-n < m.start {
		return v.window(p, lo, hi, bytes.LastIndex) // behind what is kept
	}
	for m.end <= hi-n && v.next(m, p) {
	}
	// The places are all kept from m.start on: the last one before hi,
	// if any, is the answer, even for a window that starts before them
	// (a crowd of the literal ahead of a crowd of anchors).
	if k, _ := slices.BinarySearch(m.at, hi-n+1); k > 0 {
		if m.at[k-1] >= lo {
			return m.at[k-1]
		}
		return -1
	}
	if lo >= m.start {
		return -1
	}
	return v.window(p, lo, m.start+n-1, bytes.LastIndex)
}

// matchFrom tells whether parts match data starting exactly at i, calling
// end with the position after the match (it may be called for several
// ends when gaps allow; end returning true stops the search).
func (v *verifier) matchFrom(parts []part, i int, end func(int) bool) bool {
	if v.out() {
		return false
	}
	v.steps--
	v.work--
	if len(parts) == 0 {
		return end(i)
	}
	data := v.data
	p := &parts[0]
	if p.kind != kGap {
		if !p.matchAt(data, i) {
			return false
		}
		return v.matchFrom(parts[1:], i+p.width(), end)
	}
	widest := len(data) - i
	if p.gapMax >= 0 && p.gapMax < widest {
		widest = p.gapMax
	}
	if len(parts) > 1 && parts[1].kind == kLit {
		// The part after the gap is literal: its places are searched
		// for, nearest first, so that the gap costs a step per place,
		// not per byte (a step per byte let padding between a
		// signature's parts outrun the budget).
		lit := &parts[1]
		from, to := i+p.gapMin, min(i+widest+len(lit.lit), len(data))
		for !v.out() {
			k := v.index(lit, from, to)
			if k < 0 {
				return false
			}
			if v.matchFrom(parts[1:], k, end) {
				return true
			}
			from = k + 1
		}
		return false
	}
	next := fixedAfter(parts)
	for g := p.gapMin; g <= widest && !v.out(); g++ {
		if next != nil && !next.matchAt(data, i+g) {
			v.walked(g)
			continue
		}
		if v.matchFrom(parts[1:], i+g, end) {
			return true
		}
	}
	return false
}

// fixedAfter is the part after a gap (parts[0]) when it is fixed, so a
// walk over the gap can test it cheaply at each place before it goes
// further; nil when there is none.
func fixedAfter(parts []part) *part {
	if len(parts) > 1 && parts[1].kind != kGap {
		return &parts[1]
	}
	return nil
}

// matchBack tells whether parts match data ending exactly at i (the byte
// before i is the last one matched), calling start with where the match
// begins.
func (v *verifier) matchBack(parts []part, i int, start func(int) bool) bool {
	if v.out() {
		return false
	}
	v.steps--
	v.work--
	if len(parts) == 0 {
		return start(i)
	}
	data := v.data
	p := &parts[len(parts)-1]
	if p.kind != kGap {
		w := p.width()
		if i-w < 0 || !p.matchAt(data, i-w) {
			return false
		}
		return v.matchBack(parts[:len(parts)-1], i-w, start)
	}
	widest := i
	if p.gapMax >= 0 && p.gapMax < widest {
		widest = p.gapMax
	}
	if len(parts) > 1 && parts[len(parts)-2].kind == kLit {
		// As in matchFrom: the literal before the gap is searched for,
		// nearest first (the match's end moving back from i-gapMin).
		lit := &parts[len(parts)-2]
		lo, hi := max(i-widest-len(lit.lit), 0), i-p.gapMin
		for !v.out() {
			k := v.lastIndex(lit, lo, hi)
			if k < 0 {
				return false
			}
			e := k + len(lit.lit)
			if v.matchBack(parts[:len(parts)-1], e, start) {
				return true
			}
			hi = e - 1
		}
		return false
	}
	var prev *part
	if len(parts) > 1 && parts[len(parts)-2].kind != kGap {
		prev = &parts[len(parts)-2]
	}
	for g := p.gapMin; g <= widest && !v.out(); g++ {
		if prev != nil && (i-g-prev.width() < 0 || !prev.matchAt(data, i-g-prev.width())) {
			v.walked(g)
			continue
		}
		if v.matchBack(parts[:len(parts)-1], i-g, start) {
			return true
		}
	}
	return false
}
