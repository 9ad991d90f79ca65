package bytesearch

import (
	"bytes"
	"math/bits"
)

// maxSet is the most strings a Set holds.
const maxSet = 16

// Set finds the places of several strings in one pass: the engine's
// follow of a download looks for its anchors and for what unpack wants
// found ahead together, reading each stretch once.
type Set struct {
	seps [][]byte
	// table holds, for each string, its first byte and its second, each
	// 32 times over (the vectors setVector compares with).
	table   [2 * maxSet][32]byte
	shorter int       // the length of the shortest string
	first   [256]bool // the strings' first bytes
	// classes, for classesFrom strings or more whose second bytes are
	// at most eight: their
	// first two bytes as nibble tables (classVector), a bit for each
	// second byte: the search then costs the same whatever the number
	// of strings (the data: scheme's pairs, six of them on ':', cost a
	// follow a third of its time compared pair by pair).
	classes *[4][32]byte
}

// NewSet makes a Set of seps: at most maxSet strings, each at least 2
// bytes long (nil otherwise).
func NewSet(seps ...[]byte) *Set {
	if len(seps) == 0 || len(seps) > maxSet {
		return nil
	}
	t := &Set{seps: seps, shorter: len(seps[0])}
	for k, sep := range seps {
		if len(sep) < 2 {
			return nil
		}
		t.shorter = min(t.shorter, len(sep))
		t.first[sep[0]] = true
		for j := range 32 {
			t.table[2*k][j], t.table[2*k+1][j] = sep[0], sep[1]
		}
	}
	if len(seps) >= classesFrom {
		t.classes = nibbleClasses(seps)
	}
	return t
}

// classesFrom is the fewest strings a Set looks for by their nibbles'
// classes: for fewer, comparing each pair costs less (two strings: 0.58
// ms for 16 MiB against 0.8; the ten of a download's follow: 1.4 ms
// against 2.1).
const classesFrom = 5

// nibbleClasses are the tables classVector looks a place's byte and the
// next up in: each second byte of seps a bit; a first byte has the bits
// of the second bytes it comes before, by its low nibble in table 0 and
// its high in 1; a second byte its own bit, in 2 and 3. Each table's 16
// entries twice (VPSHUFB looks up within each 16-byte lane). nil for
// more than eight second bytes.
func nibbleClasses(seps [][]byte) *[4][32]byte {
	bit := map[byte]byte{}
	for _, sep := range seps {
		if _, ok := bit[sep[1]]; !ok {
			if len(bit) == 8 {
				return nil
			}
			bit[sep[1]] = 1 << len(bit)
		}
	}
	var t [4][32]byte
	for _, sep := range seps {
		b := bit[sep[1]]
		for lane := 0; lane < 32; lane += 16 {
			t[0][lane+int(sep[0]&15)] |= b
			t[1][lane+int(sep[0]>>4)] |= b
			t[2][lane+int(sep[1]&15)] |= b
			t[3][lane+int(sep[1]>>4)] |= b
		}
	}
	return &t
}

// Index is the first place in s where one of the strings starts, and
// which do there (bit k for string k); -1 and 0 when none does.
func (t *Set) Index(s []byte) (int, uint) {
	last := len(s) - t.shorter // the last place any fits
	if !vector || last+2 < minVector {
		return t.plain(s)
	}
	u := s[:last+2] // the places, each with the byte after it
	i, fails := 0, 0
	for len(u)-i >= minVector {
		var base int
		var mask uint64
		if t.classes != nil {
			base, mask = classVector(u[i:], t.classes)
		} else {
			base, mask = setVector(u[i:], &t.table, len(t.seps))
		}
		i += base
		if mask == 0 {
			break
		}
		for ; mask != 0; mask &= mask - 1 {
			k := i + bits.TrailingZeros64(mask)
			if which := t.at(s, k); which != 0 {
				return k, which
			}
			fails++
		}
		i += setTurn
		if fails > 16+i>>3 {
			// Crowded with places that start like one of the strings
			// (see Index): each place is looked at from here, up to the
			// first found. (Looking for each string on its own to the
			// end, as plain does, costs a caller that asks again after
			// each place found the rest of s each time: an absent string
			// made that quadratic.)
			break
		}
	}
	for ; i <= last; i++ {
		if t.first[s[i]] {
			if which := t.at(s, i); which != 0 {
				return i, which
			}
		}
	}
	return -1, 0
}

// at is which strings start at s[k].
func (t *Set) at(s []byte, k int) (which uint) {
	for j, sep := range t.seps {
		if bytes.HasPrefix(s[k:], sep) {
			which |= 1 << j
		}
	}
	return which
}

// plain is Index with bytes.Index for each string.
func (t *Set) plain(s []byte) (int, uint) {
	first := -1
	for _, sep := range t.seps {
		if k := Index(s, sep); k >= 0 && (first < 0 || k < first) {
			first = k
		}
	}
	if first < 0 {
		return -1, 0
	}
	return first, t.at(s, first)
}
