package unpack

import (
	"bytes"

	"github.com/fsigkd/fsigkd/internal/bytesearch"
)

// Ahead is what was searched of an object's own bytes before its scan,
// while the object was still being written (the bundled engine follows a
// large download as it is spooled: engine.Follow), so that the scan,
// once the object is whole, does not read them again. It holds only
// what a search of each byte in turn finds: the scan still opens every
// container, and verifies every signature, against the whole object.
// Only the object's own bytes take it, never a member's.
type Ahead struct {
	// Upto: the object's first Upto bytes were searched.
	Upto int
	// Begin is the first place of "begin" (a uuencoded block's start
	// line) in them; -1: none. Screnc, the first of "#@~^" (a block of
	// an encoded script); -1: none.
	Begin  int
	Screnc int
	// URIs are the places, in order, of the pairs a data: address is
	// found by (see schemeStarts) in them; with URIsCrowded, too many
	// were found to keep, and the scan searches the object itself.
	URIs        []int
	URIsCrowded bool
	// B64 are the places looked at for a long base64 string that may be
	// in one (see base64Runs), in order, and B64Next the next place to
	// look at; with B64Crowded, too many were found to keep.
	B64        []int
	B64Next    int
	B64Crowded bool
	// Behind are the places, in order, of the signatures of containers
	// found behind other data (embedded: a zip's local header among
	// them) in them, and BehindNext the
	// first place not looked at; with BehindCrowded, too many were found
	// to keep.
	Behind        []int
	BehindNext    int
	BehindCrowded bool
	// Match, when set, matches the object's own bytes in place of the
	// scan's match: the engine's, knowing what it searched.
	Match Match
}

// maxAheadPlaces bounds the places of each kind an Ahead keeps (an
// object crowded with them, a large text of links, is searched by the
// scan itself).
const maxAheadPlaces = 1 << 16

// NewAhead is an Ahead with nothing searched.
func NewAhead() *Ahead { return &Ahead{Begin: -1, Screnc: -1, B64Next: base64Piece - 1} }

// LookForBase64 looks at the places for long base64 strings in window,
// the object's bytes from base on, as far as they can be judged there
// (the eight bytes after a place in the window).
func (a *Ahead) LookForBase64(window []byte, base int) {
	if a.B64Crowded {
		return
	}
	for ; a.B64Next+8 <= base+len(window); a.B64Next += base64Piece {
		p := a.B64Next - base
		if p < 8 && base > 0 {
			break // its eight before are not in the window: the next one's, or the scan's
		}
		if mayBeInRun(window, p) || scriptFirst[window[p]] && scriptLooks(a.B64Next) && mayBeInScriptBytes(window, p) {
			if len(a.B64) == maxAheadPlaces {
				a.B64, a.B64Crowded = nil, true
				return
			}
			a.B64 = append(a.B64, a.B64Next)
		}
	}
}

// LookForBehind looks for the signatures of containers found behind
// other data in window, the object's bytes from base on, from the first
// place not looked at, as far as one can be seen whole there.
func (a *Ahead) LookForBehind(window []byte, base int) {
	if a.BehindCrowded {
		return
	}
	from := max(a.BehindNext, base)
	for off := from - base; ; {
		i, _ := behindSigs.Index(window[off:])
		if i < 0 {
			break
		}
		off += i
		switch {
		case len(a.Behind) > 0 && base+off <= a.Behind[len(a.Behind)-1]: // seen in the window before
		case len(a.Behind) == maxAheadPlaces:
			a.Behind, a.BehindCrowded = nil, true
			return
		default:
			a.Behind = append(a.Behind, base+off)
		}
		off++
	}
	// A signature cut by the window's end is seen from its start next.
	a.BehindNext = max(from, base+len(window)-maxBehindSig+1)
}

// beginLine is what a uuencoded block's first line starts with.
var beginLine = []byte("begin")

// Wanted are the strings the scan wants found ahead: "begin" and "#@~^"
// until each was, and the pairs of data: addresses until too many were. The
// searcher gives each place of one (Saw), and moves Upto.
func (a *Ahead) Wanted() [][]byte {
	w := make([][]byte, 0, a.WantedN())
	if a.Begin < 0 {
		w = append(w, beginLine)
	}
	if a.Screnc < 0 {
		w = append(w, screncMark)
	}
	if !a.URIsCrowded {
		w = append(w, uriAnchors...)
	}
	return w
}

// WantedN is how many strings Wanted gives, counted without making them
// (the searcher asks after every place it finds).
func (a *Ahead) WantedN() int {
	n := 0
	if a.Begin < 0 {
		n++
	}
	if a.Screnc < 0 {
		n++
	}
	if !a.URIsCrowded {
		n += len(uriAnchors)
	}
	return n
}

// WantedLen is the length of the longest string wanted: how far before
// Upto a search must start again to see one across the border.
func (a *Ahead) WantedLen() (n int) {
	for _, w := range a.Wanted() {
		n = max(n, len(w))
	}
	return n
}

// Saw records a place p of sep, one of Wanted, which the search found in
// window, the object's bytes from base on. The places of a data:
// address's pairs come in order; one that can start no scheme, as the
// window shows (mayBeScheme), is not kept: the scan, which would have
// found nothing there, reads none of them (a large download's scan
// read its mapped file at thousands of such places, a page fault each).
func (a *Ahead) Saw(window []byte, base, p int, sep []byte) {
	if bytes.Equal(sep, beginLine) {
		if a.Begin < 0 || p < a.Begin {
			a.Begin = p
		}
		return
	}
	if bytes.Equal(sep, screncMark) {
		if a.Screnc < 0 || p < a.Screnc {
			a.Screnc = p
		}
		return
	}
	if a.URIsCrowded || !mayBeScheme(window, p-base) {
		return
	}
	if len(a.URIs) == maxAheadPlaces {
		a.URIs, a.URIsCrowded = nil, true
		return
	}
	a.URIs = append(a.URIs, p)
}

// mayHoldBegin tells whether data, the object (depth 0) or a member, may
// hold a "begin": a search of what Ahead did not cover.
func (s *scan) mayHoldBegin(data []byte, depth int) bool {
	if a := s.opt.Ahead; depth == 0 && a != nil && a.Upto <= len(data) {
		return a.Begin >= 0 || bytesearch.Contains(data[max(0, a.Upto-len(beginLine)+1):], beginLine)
	}
	return bytesearch.Contains(data, beginLine)
}

// firstScrenc is the first place of an encoded script's mark in data,
// the object (depth 0) or a member: where Ahead found it, or a search of
// what it did not cover; -1: none.
func (s *scan) firstScrenc(data []byte, depth int) int {
	from := 0
	if a := s.opt.Ahead; depth == 0 && a != nil && a.Upto <= len(data) {
		if a.Screnc >= 0 {
			return a.Screnc
		}
		from = max(0, a.Upto-len(screncMark)+1)
	}
	if k := bytesearch.Index(data[from:], screncMark); k >= 0 {
		return from + k
	}
	return -1
}
