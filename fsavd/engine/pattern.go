package engine

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// A pattern is an .ndb body signature compiled into parts, matched left to
// right: literal bytes, bytes under a nibble mask, a gap of min..max any
// bytes, or a choice between byte strings of the same length.
type part struct {
	lit      []byte   // literal bytes
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
)

// width is how many bytes a fixed part covers.
func (p *part) width() int {
	switch p.kind {
	case kLit:
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
	}
	return false
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

// matchFrom tells whether parts match data starting exactly at i, calling
// end with the position after the match (it may be called for several
// ends when gaps allow; end returning true stops the search).
func matchFrom(parts []part, data []byte, i int, budget *int, end func(int) bool) bool {
	if *budget <= 0 {
		return false
	}
	*budget--
	if len(parts) == 0 {
		return end(i)
	}
	p := &parts[0]
	if p.kind != kGap {
		if !p.matchAt(data, i) {
			return false
		}
		return matchFrom(parts[1:], data, i+p.width(), budget, end)
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
		lit := parts[1].lit
		from, to := i+p.gapMin, min(i+widest+len(lit), len(data))
		for from <= to-len(lit) && *budget > 0 {
			j := bytes.Index(data[from:to], lit)
			if j < 0 {
				return false
			}
			if matchFrom(parts[1:], data, from+j, budget, end) {
				return true
			}
			from += j + 1
		}
		return false
	}
	for g := p.gapMin; g <= widest; g++ {
		if matchFrom(parts[1:], data, i+g, budget, end) {
			return true
		}
	}
	return false
}

// matchBack tells whether parts match data ending exactly at i (the byte
// before i is the last one matched), calling start with where the match
// begins.
func matchBack(parts []part, data []byte, i int, budget *int, start func(int) bool) bool {
	if *budget <= 0 {
		return false
	}
	*budget--
	if len(parts) == 0 {
		return start(i)
	}
	p := &parts[len(parts)-1]
	if p.kind != kGap {
		w := p.width()
		if i-w < 0 || !p.matchAt(data, i-w) {
			return false
		}
		return matchBack(parts[:len(parts)-1], data, i-w, budget, start)
	}
	widest := i
	if p.gapMax >= 0 && p.gapMax < widest {
		widest = p.gapMax
	}
	if len(parts) > 1 && parts[len(parts)-2].kind == kLit {
		// As in matchFrom: the literal before the gap is searched for,
		// nearest first (the match's end moving back from i-gapMin).
		lit := parts[len(parts)-2].lit
		lo, hi := max(i-widest-len(lit), 0), i-p.gapMin
		for hi-lo >= len(lit) && *budget > 0 {
			k := bytes.LastIndex(data[lo:hi], lit)
			if k < 0 {
				return false
			}
			e := lo + k + len(lit)
			if matchBack(parts[:len(parts)-1], data, e, budget, start) {
				return true
			}
			hi = e - 1
		}
		return false
	}
	for g := p.gapMin; g <= widest; g++ {
		if matchBack(parts[:len(parts)-1], data, i-g, budget, start) {
			return true
		}
	}
	return false
}
