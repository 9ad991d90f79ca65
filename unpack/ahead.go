package unpack

import "github.com/fsigkd/fsigkd/internal/bytesearch"

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
	// line) in them; -1: none.
	Begin int
	// Match, when set, matches the object's own bytes in place of the
	// scan's match: the engine's, knowing what it searched.
	Match Match
}

// NewAhead is an Ahead with nothing searched.
func NewAhead() *Ahead { return &Ahead{Begin: -1} }

// beginLine is what a uuencoded block's first line starts with.
var beginLine = []byte("begin")

// Wanted is the string the scan wants found ahead: nil once it was.
// The searcher gives its first place (Saw), and moves Upto.
func (a *Ahead) Wanted() []byte {
	if a.Begin >= 0 {
		return nil
	}
	return beginLine
}

// Saw records a place of Wanted, which the search found.
func (a *Ahead) Saw(p int) {
	if a.Begin < 0 || p < a.Begin {
		a.Begin = p
	}
}

// mayHoldBegin tells whether data, the object (depth 0) or a member, may
// hold a "begin": a search of what Ahead did not cover.
func (s *scan) mayHoldBegin(data []byte, depth int) bool {
	if a := s.opt.Ahead; depth == 0 && a != nil && a.Upto <= len(data) {
		return a.Begin >= 0 || bytesearch.Contains(data[max(0, a.Upto-len(beginLine)+1):], beginLine)
	}
	return bytesearch.Contains(data, beginLine)
}
