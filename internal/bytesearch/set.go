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
	return t
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
		base, mask := setVector(u[i:], &t.table, len(t.seps))
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
