package unpack

import (
	"sync"

	"github.com/fsigkd/fsigkd/internal/hexesc"
)

// Files a page's script carries as a base64 (or hex) string: the common
// form of HTML smuggling has a script decode one long string (atob, or a
// decoder of its own) into a Blob and have the browser save it. Whatever
// the script, the string is in the text: every run of base64 (standard
// or URL-safe alphabet) of at least minBase64Run characters is decoded
// and walked as a member of the text (a run of hex digits alone as hex
// too), its pieces joined where the script joins string literals
// ('...' + "..." across lines, or an array's '...', '...'), and its
// lines joined where they are whole lines of base64 of 40 characters or
// more (minBase64Line: a certificate's, an encoder's, a here-string's),
// from whichever piece is seen first. A place is looked at every base64Piece
// bytes, so that a piece of base64Piece+8 characters or more is always
// seen (one string, or the lines of 76 encoders write); a string cut
// into pieces all shorter, or into lines shorter than 40, may be missed
// where each look falls between them. Not read: a string the script builds another way, reversed or
// XORed (nor does ClamAV read any of these); a shorter run (hashes,
// keys, tokens); a run of fewer than 16 different characters, 4 for hex
// (a line of dashes, a letter repeated), which no file's encoding is.

// minBase64Run is the shortest (joined) run decoded: 256 characters, 192
// bytes.
const minBase64Run = 256

// base64Piece is how far apart runs are looked for: at every
// base64Piece-th byte, grown both ways from there. (32 cost 16 MiB of
// random data 2.7 ms, 64 half that.)
const base64Piece = 64

// b64Run marks the characters of base64's standard and URL-safe
// alphabets, and its pad.
var b64Run = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=") {
		t[c] = true
	}
	return t
}()

// base64Runs gives yield the runs of at least minBase64Run characters
// in d, pieces joined, in order, until it says no more. The places
// before from were looked at ahead (Ahead.B64): known holds those that
// may be in a run. The places it looks at from from on, not inside a
// run, that may be in a list of numbers or a string of escapes are added
// to scriptAt (nil: not looked for), so that one pass over d serves both
// searches (scriptBytesRuns).
func base64Runs(d []byte, known []int, from int, scriptAt *[]int, yield func(run []byte) bool) {
	last := 0 // the end of the last run
	r := b64runs.Get().(*b64run)
	defer func() { r.d = nil; b64runs.Put(r) }()
	try := func(p int) bool {
		if p < last {
			return true
		}
		last = r.at(d, p)
		if r.n < minBase64Run {
			return true
		}
		// (Hex digits are sixteen: a file's hex holds at least four.)
		if r.hexDigits() {
			return !r.varied(4) || yield(r.join())
		}
		// Only a run that may be a file's is copied whole: a mail's
		// lines of one letter (smtp-source writes 79 a line) are not.
		return !r.varied(16) || yield(r.join())
	}
	for _, p := range known {
		if !try(p) {
			return
		}
	}
	for p := from; p < len(d); p += base64Piece {
		if p < last {
			// On past the run: the next look is at its end or after.
			p += (last - p + base64Piece - 1) / base64Piece * base64Piece
			if p >= len(d) {
				break
			}
		}
		if scriptAt != nil && scriptFirst[d[p]] && scriptLooks(p) && mayBeInScriptBytes(d, p) {
			*scriptAt = append(*scriptAt, p)
		}
		if mayBeInRun(d, p) && !try(p) {
			return
		}
	}
}

// mayBeInRun is the look at place p: a piece of 16 characters or more
// holds the eight before p or the eight from p. In other data a look
// costs a byte or two.
func mayBeInRun(d []byte, p int) bool {
	return b64Run[d[p]] && (allBase64(d[p:min(len(d), p+8)]) || allBase64(d[max(0, p-8):p]))
}

// b64run is a run of base64 characters: its pieces in d, in order, and
// their characters' count. Its slices are kept from one run to the next.
type b64run struct {
	d      []byte
	pieces [][2]int
	before [][2]int
	n      int
}

// b64runs keeps runs' slices of pieces between scans: a mail's body of
// short lines is a run of thousands.
var b64runs = sync.Pool{New: func() any { return new(b64run) }}

// at makes r the run through place p and gives where it ends.
func (r *b64run) at(d []byte, p int) int {
	r.d, r.pieces, r.before = d, r.pieces[:0], r.before[:0]
	start := p
	for start > 0 && b64Run[d[start-1]] {
		start--
	}
	end := p + 1
	for end < len(d) && b64Run[d[end]] {
		end++
	}
	// The pieces before, nearest first; then all in order.
	for at := start; ; {
		prev, ok := pieceBefore(d, at)
		if !ok {
			prev, ok = lineBefore(d, at)
		}
		if !ok {
			break
		}
		r.before = append(r.before, [2]int{prev, at - pieceGap(d, prev, at)})
		at = prev
	}
	total := 0 // the characters of the run so far, with the pieces after
	for i := len(r.before) - 1; i >= 0; i-- {
		r.pieces = append(r.pieces, r.before[i])
		total += r.before[i][1] - r.before[i][0]
	}
	r.pieces = append(r.pieces, [2]int{start, end})
	total += end - start
	for pieceStart := start; ; {
		next, ok := joinedPiece(d, end)
		byLine := false
		if !ok {
			next, ok = lineAfter(d, pieceStart, end)
			byLine = ok
		}
		if !ok {
			break
		}
		e := next
		for e < len(d) && b64Run[d[e]] {
			e++
		}
		if byLine && !lineJoins(d, e, e-next, end-pieceStart, total) {
			break
		}
		pieceStart = next
		total += e - next
		r.pieces = append(r.pieces, [2]int{next, e})
		end = e
	}
	r.n = total
	return end
}

// join is the run's characters, its pieces joined (a slice of d when it
// is one piece).
func (r *b64run) join() []byte {
	if len(r.pieces) == 1 {
		return r.d[r.pieces[0][0]:r.pieces[0][1]]
	}
	b := make([]byte, 0, r.n)
	for _, p := range r.pieces {
		b = append(b, r.d[p[0]:p[1]]...)
	}
	return b
}

// hexDigits tells whether the run is hex digits alone.
func (r *b64run) hexDigits() bool {
	for _, p := range r.pieces {
		if !hexDigits(r.d[p[0]:p[1]]) {
			return false
		}
	}
	return true
}

// varied tells whether the run holds at least n different characters:
// 16 in base64, what the base64 of any file holds (a program's header
// alone, its DOS stub's text), and a rule of dashes or equals signs, or a
// padding of one letter ending in a few others, does not.
func (r *b64run) varied(n int) bool {
	var seen [256]bool
	for _, p := range r.pieces {
		for _, c := range r.d[p[0]:p[1]] {
			if !seen[c] {
				seen[c] = true
				if n--; n == 0 {
					return true
				}
			}
		}
	}
	return false
}

func allBase64(b []byte) bool {
	for _, c := range b {
		if !b64Run[c] {
			return false
		}
	}
	return len(b) == 8
}

// joinedPiece tells whether a string literal ending at end (its quote) is
// joined to another (+ or , and white space between, then a quote), and
// where that one's characters start.
func joinedPiece(d []byte, end int) (int, bool) {
	if end >= len(d) || !isQuote(d[end]) {
		return 0, false
	}
	i, ok := overJoiner(d, end+1, 1)
	if !ok || i+1 >= len(d) || !isQuote(d[i]) || !b64Run[d[i+1]] {
		return 0, false
	}
	return i + 1, true
}

// minBase64Line is the shortest line of base64 joined to the next: the
// lines encoders write hold 64 (PEM) or 76 characters (MIME, .NET's
// InsertLineBreaks), and a script's here-string keeps them so, for a
// decoder that passes over white space (.NET's FromBase64String, atob,
// base64 -d, Python's b64decode) to read as one.
const minBase64Line = 40

// lineAfter tells whether the piece d[start:end] is a whole line of
// base64 (only white space before it on its line, its line ending at
// end) of minBase64Line characters or more, followed by a line that
// starts with base64 (after its indentation): where that one's
// characters start.
func lineAfter(d []byte, start, end int) (int, bool) {
	if end-start < minBase64Line || !wholeLineStart(d, start) {
		return 0, false
	}
	i := end
	if i < len(d) && d[i] == '\r' {
		i++
	}
	if i >= len(d) || d[i] != '\n' {
		return 0, false
	}
	i = skipIndent(d, i+1)
	if i < len(d) && b64Run[d[i]] {
		return i, true
	}
	return 0, false
}

// lineJoins tells whether the next line's piece, n characters ending at
// e, is the block's: a whole line (ended by its line break or the text's
// end) as long as the line before (prev), or its last, shorter line,
// where the run ends on a whole quantum (a word after the block, "end",
// would not).
func lineJoins(d []byte, e, n, prev, total int) bool {
	if e < len(d) && d[e] != '\r' && d[e] != '\n' {
		return false
	}
	return n == prev || n < prev && (total+n)%4 == 0
}

// lineBefore tells whether the piece starting at start begins its line
// (after white space) and the line before is a whole line of base64 of
// minBase64Line characters or more: where that one's characters start.
func lineBefore(d []byte, start int) (int, bool) {
	if !wholeLineStart(d, start) {
		return 0, false
	}
	i := start
	for i > 0 && (d[i-1] == ' ' || d[i-1] == '\t') {
		i--
	}
	if i == 0 || d[i-1] != '\n' {
		return 0, false
	}
	i--
	if i > 0 && d[i-1] == '\r' {
		i--
	}
	j := i
	for j > 0 && b64Run[d[j-1]] {
		j--
	}
	// As long as this line or longer (this one the block's last).
	this := start
	for this < len(d) && b64Run[d[this]] {
		this++
	}
	if i-j < minBase64Line || i-j < this-start || !wholeLineStart(d, j) {
		return 0, false
	}
	return j, true
}

// wholeLineStart tells whether only spaces and tabs (32 at most) stand
// between start and the line's beginning.
func wholeLineStart(d []byte, start int) bool {
	i := start
	for k := 0; i > 0 && (d[i-1] == ' ' || d[i-1] == '\t') && k < 32; k++ {
		i--
	}
	return i == 0 || d[i-1] == '\n'
}

// skipIndent passes the spaces and tabs (32 at most) from i.
func skipIndent(d []byte, i int) int {
	for k := 0; i < len(d) && (d[i] == ' ' || d[i] == '\t') && k < 32; k++ {
		i++
	}
	return i
}

// pieceBefore tells whether the string literal starting at start (after
// its quote) is joined to one before it, and where that one's characters
// start.
func pieceBefore(d []byte, start int) (int, bool) {
	if start < 2 || !isQuote(d[start-1]) {
		return 0, false
	}
	i, ok := overJoiner(d, start-2, -1)
	if !ok || i < 1 || !isQuote(d[i]) || !b64Run[d[i-1]] {
		return 0, false
	}
	j := i - 1
	for j > 0 && b64Run[d[j-1]] {
		j--
	}
	return j, true
}

// overJoiner goes from i by step over white space holding one + or ,
// (within 64 bytes): where it stops, and whether it crossed the joiner.
func overJoiner(d []byte, i, step int) (int, bool) {
	from, joiner := i, false
	for ; i >= 0 && i < len(d) && (i-from)*step < 64; i += step {
		c := d[i]
		if c == '+' || c == ',' {
			if joiner {
				return i, false
			}
			joiner = true
			continue
		}
		if !isSpaceASCII(c) {
			break
		}
	}
	return i, joiner
}

// pieceGap is the length of what joins the piece starting at prev to the
// one starting at start: its closing quote, the joiner, the next opening
// quote.
func pieceGap(d []byte, prev, start int) int {
	end := prev
	for end < start && b64Run[d[end]] {
		end++
	}
	return start - end
}

func isQuote(c byte) bool { return c == '"' || c == '\'' || c == '`' }

// decodeBase64Run decodes a run, standard or URL-safe, leniently.
func decodeBase64Run(run []byte) []byte {
	if bytesHasAny(run, '-', '_') {
		r := make([]byte, len(run))
		for i, c := range run {
			switch c {
			case '-':
				c = '+'
			case '_':
				c = '/'
			}
			r[i] = c
		}
		run = r
	}
	return lenientBase64(run)
}

func hexDigits(run []byte) bool {
	for _, c := range run {
		if hexesc.Digit(c) < 0 {
			return false
		}
	}
	return true
}

// decodeHexRun decodes a run of hex digits alone (either case, an even
// number of them).
func decodeHexRun(run []byte) ([]byte, bool) {
	if len(run)%2 != 0 {
		return nil, false
	}
	out := make([]byte, len(run)/2)
	for i := range out {
		hi, lo := hexesc.Digit(run[2*i]), hexesc.Digit(run[2*i+1])
		if hi < 0 || lo < 0 {
			return nil, false
		}
		out[i] = byte(hi<<4 | lo)
	}
	return out, true
}

func bytesHasAny(b []byte, x, y byte) bool {
	for _, c := range b {
		if c == x || c == y {
			return true
		}
	}
	return false
}
