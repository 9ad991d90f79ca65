package engine

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/internal/hexesc"
)

// A byte-compare part of a logical signature,
// trigger(>>offset#options#comparisons): at each place its trigger part
// matches, the bytes offset after (>>) or before (<<) the start of that
// match are read as a number and compared; the part matches once for
// each place where every comparison holds. As clamscan reads them
// (TestByteComparesAsClamscanReadsThem):
//
//   - options: i, raw bytes (1, 2, 4 or 8, l little or b big endian); h,
//     d or a, the number as text of so many bytes, hex, decimal, or hex
//     after 0x and decimal otherwise (a); with e, exact: every byte a
//     digit; without, as C's strtol reads it: leading blanks skipped, a
//     sign, the digits taken as far as they go (none: 0); hex text little
//     endian (hl) only exact, its bytes then read the other way;
//   - comparisons: <, > or =, one or two (both must hold), decimal or 0x;
//   - a place at the object's very first byte, or past its end, never
//     compares (clamscan's reading too).
type byteCompare struct {
	trigger int
	offset  int // from the trigger's start, negative before it
	base    byte
	little  bool
	exact   bool
	n       int
	cmps    []byteCmp
}

type byteCmp struct {
	op byte
	v  int64
}

var byteCompareForm = regexp.MustCompile(`^(\d+)\((<<|>>)(0[xX][0-9a-fA-F]+|\d+)#([a-z]+?)(\d+)#([^)]*)\)$`)

// isByteCompare tells whether a part is written as a byte compare.
func isByteCompare(s string) bool { return strings.Contains(s, "#") && strings.HasSuffix(s, ")") }

// parseByteCompare reads a byte-compare part of a signature of n parts;
// a form this engine does not read is errUnsupported.
func parseByteCompare(s string, n int) (*byteCompare, error) {
	m := byteCompareForm.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("bad byte compare %q", s)
	}
	b := &byteCompare{}
	var err error
	if b.trigger, err = strconv.Atoi(m[1]); err != nil || b.trigger >= n {
		return nil, fmt.Errorf("byte compare %q: no part %s", s, m[1])
	}
	off, err := strconv.ParseUint(m[3], 0, 31)
	if err != nil {
		return nil, fmt.Errorf("byte compare %q: bad offset", s)
	}
	b.offset = int(off)
	if m[2] == "<<" {
		b.offset = -b.offset
	}
	opts := m[4]
	b.base, opts = opts[0], opts[1:]
	switch {
	case strings.HasPrefix(opts, "l"):
		b.little, opts = true, opts[1:]
	case strings.HasPrefix(opts, "b"):
		opts = opts[1:]
	}
	if opts == "e" {
		b.exact, opts = true, ""
	}
	if b.n, err = strconv.Atoi(m[5]); err != nil || opts != "" {
		return nil, errUnsupported
	}
	switch b.base {
	case 'i':
		if b.n != 1 && b.n != 2 && b.n != 4 && b.n != 8 {
			return nil, errUnsupported
		}
	case 'h', 'd', 'a':
		if b.n < 1 || b.n > 64 || b.little && (b.base != 'h' || !b.exact || b.n%2 != 0) {
			return nil, errUnsupported
		}
	default:
		return nil, errUnsupported
	}
	cmps := strings.Split(m[6], ",")
	if len(cmps) > 2 {
		return nil, errUnsupported
	}
	for _, c := range cmps {
		if len(c) < 2 || strings.IndexByte("<>=", c[0]) < 0 {
			return nil, fmt.Errorf("byte compare %q: bad comparison %q", s, c)
		}
		v, err := strconv.ParseInt(c[1:], 0, 64)
		if err != nil {
			return nil, fmt.Errorf("byte compare %q: bad value %q", s, c)
		}
		b.cmps = append(b.cmps, byteCmp{c[0], v})
	}
	return b, nil
}

// at tells whether the comparisons hold for the trigger's match that
// starts at start.
func (b *byteCompare) at(data []byte, start int) bool {
	pos := start + b.offset
	if pos <= 0 || pos+b.n > len(data) {
		return false
	}
	v, ok := b.read(data[pos : pos+b.n])
	if !ok {
		return false
	}
	for _, c := range b.cmps {
		switch {
		case c.op == '<' && !(v < c.v), c.op == '>' && !(v > c.v), c.op == '=' && v != c.v:
			return false
		}
	}
	return true
}

// read is the number the bytes say.
func (b *byteCompare) read(w []byte) (int64, bool) {
	if b.base == 'i' {
		var buf [8]byte
		if b.little {
			copy(buf[:], w)
			return int64(binary.LittleEndian.Uint64(buf[:])), true
		}
		copy(buf[8-len(w):], w)
		return int64(binary.BigEndian.Uint64(buf[:])), true
	}
	neg := false
	if !b.exact {
		// As C's strtol reads it: blanks, a sign, then digits as far as
		// they go.
		for len(w) > 0 && strings.IndexByte(" \t\n\v\f\r", w[0]) >= 0 {
			w = w[1:]
		}
		if len(w) > 0 && (w[0] == '-' || w[0] == '+') {
			neg, w = w[0] == '-', w[1:]
		}
	}
	base := 10
	switch {
	case b.base == 'h':
		base = 16
	case b.base == 'a' && len(w) > 2 && w[0] == '0' && (w[1] == 'x' || w[1] == 'X'):
		base, w = 16, w[2:]
	}
	var v int64
	for _, c := range w {
		d := hexesc.Digit(c)
		if d < 0 || d >= base {
			if b.exact {
				return 0, false
			}
			break
		}
		v = v*int64(base) + int64(d)
	}
	if neg {
		v = -v
	}
	if b.little { // exact hex text of b.n/2 bytes, read the other way
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(v))
		var r uint64
		for i := 7; i >= 8-min(b.n/2, 8); i-- {
			r = r<<8 | uint64(buf[i])
		}
		v = int64(r)
	}
	return v, true
}
