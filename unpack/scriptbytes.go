package unpack

import (
	"bytes"
	"strconv"
)

// A script may carry a file as its bytes written one by one, not in
// base64 (HTML smuggling's other forms): a list of numbers
// (`new Uint8Array([77,90,144,...])`, `0x4d,0x5a`, the arguments of
// `String.fromCharCode`, or a string the script splits: `"4d 5a 90"`,
// `"77|90|144"`), or a string of escapes (`"\x4d\x5a..."`, `\u004d`,
// `\u{4d}`, octal `\115`, and `%4D%5A` or `%u004D` for `unescape`). A
// list of at least minScriptBytes numbers, each a byte, whatever
// separates them (white space, commas, semicolons, bars, colons,
// slashes), read as decimal and, where its numbers are at most two hex
// digits, as hex too; and a run of at least minScriptBytes escapes
// between two quotes are decoded and walked (numbers-N, escapes-N). They are found as base64 strings are:
// a look every other base64Piece bytes (scriptLooks; ahead, while a
// download is spooled, for a followed object: Ahead.B64), a run grown
// from there.

const minScriptBytes = 64

// numberSep marks what may separate the numbers of a list.
var numberSep = func() (t [256]bool) {
	for _, c := range []byte(", \t\r\n;|:/") {
		t[c] = true
	}
	return t
}()

// numberChar marks the characters of a list of numbers: digits, hex
// digits and their prefix, and separators.
var numberChar = func() (t [256]bool) {
	for _, c := range []byte("0123456789abcdefABCDEFxX") {
		t[c] = true
	}
	for c := range t {
		t[c] = t[c] || numberSep[c]
	}
	return t
}()

// escapeAfter marks what may follow a backslash or a percent sign in an
// escape of a byte: x, u, a digit, a hex digit.
var escapeAfter = func() (t [256]bool) {
	for _, c := range []byte("0123456789abcdefABCDEFxuU") {
		t[c] = true
	}
	return t
}()

// scriptLooks: a list or string of escapes is looked for at every other
// place base64 strings are (runs of at least minScriptBytes are longer
// than two of its steps): half the looks in data that holds none.
func scriptLooks(p int) bool { return (p/base64Piece)&1 == 0 }

// scriptFirst marks the characters a place in a list of numbers or a
// string of escapes may hold: the first look, a byte's.
var scriptFirst = func() (t [256]bool) {
	for c := range t {
		t[c] = numberChar[c] || escapeChar[c]
	}
	return t
}()

// escapeChar marks the characters of a string of escapes of bytes: the
// escapes' own, and the hex digits.
var escapeChar = func() (t [256]bool) {
	for _, c := range []byte("\\%xuU0123456789abcdefABCDEF") {
		t[c] = true
	}
	return t
}()

// mayBeInScriptBytes is the look at place p: the eight bytes from p, or
// the eight before it, a piece of a list of numbers (a comma among
// them); or, at one of an escape's characters, two escapes or more among
// the sixteen around it.
func mayBeInScriptBytes(d []byte, p int) bool {
	if numberChar[d[p]] && (numberPiece(d[p:min(len(d), p+8)]) || numberPiece(d[max(0, p-8):p])) {
		return true
	}
	if !escapeChar[d[p]] {
		return false // (in other data a look costs a byte or two)
	}
	n := 0
	for i := max(0, p-8); i < min(len(d)-1, p+8); i++ {
		if (d[i] == '\\' || d[i] == '%') && escapeAfter[d[i+1]] {
			n++
		}
	}
	return n >= 2
}

func numberPiece(b []byte) bool {
	sep, digit := false, false
	for _, c := range b {
		if !numberChar[c] {
			return false
		}
		sep = sep || numberSep[c]
		digit = digit || c >= '0' && c <= '9'
	}
	return len(b) == 8 && sep && digit
}

// scriptBytesRuns gives yield the files d's lists of numbers and runs of
// escapes carry (each its name's kind, "numbers" or "escapes"), looked
// for at the places at (in order: found ahead, and by base64Runs' pass),
// until it says no more.
func scriptBytesRuns(d []byte, at []int, yield func(kind string, b []byte) bool) {
	lastNum, lastEsc := 0, 0 // the ends of the last runs
	try := func(p int) bool {
		if p >= lastNum && numberChar[d[p]] {
			start, end := p, p+1
			for start > 0 && numberChar[d[start-1]] {
				start--
			}
			for end < len(d) && numberChar[d[end]] {
				end++
			}
			lastNum = end
			for _, b := range numberLists(d[start:end]) {
				if !yield("numbers", b) {
					return false
				}
			}
		}
		if p >= lastEsc {
			start, end := stringAround(d, p, lastEsc)
			lastEsc = end
			if b, n := unescapeRun(d[start:end]); n >= minScriptBytes && !yield("escapes", b) {
				return false
			}
		}
		return true
	}
	for _, p := range at {
		if !try(p) {
			return
		}
	}
}

// numberLists reads s, a stretch of number characters, as lists of
// numbers each a byte, separated by separators: read as decimal (0x hex
// taken too), and as hex (one or two digits, or 0x); the runs of at
// least minScriptBytes numbers of either, as bytes.
func numberLists(s []byte) [][]byte {
	var out [][]byte
	for _, base := range []int{10, 16} {
		var cur []byte
		end := func() {
			if len(cur) >= minScriptBytes {
				out = append(out, cur)
			}
			cur = nil
		}
		for i := 0; i < len(s); {
			for i < len(s) && numberSep[s[i]] {
				i++
			}
			j := i
			for j < len(s) && !numberSep[s[j]] {
				j++
			}
			if j == i {
				break
			}
			if v, ok := byteNumber(s[i:j], base); ok {
				cur = append(cur, v)
			} else {
				end()
			}
			i = j
		}
		end()
	}
	return out
}

// byteNumber reads a number of a list in base (10, or 16: one or two
// digits), or 0x hex in either: at most 255.
func byteNumber(t []byte, base int) (byte, bool) {
	switch {
	case len(t) > 2 && t[0] == '0' && t[1]|0x20 == 'x':
		t, base = t[2:], 16
	case base == 16 && len(t) > 2:
		return 0, false
	}
	if len(t) == 0 || len(t) > 3 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(t), base, 8)
	return byte(v), err == nil
}

// stringAround is the string literal that holds place p, as far as it
// can be told: back to the quote before p (not one escaped), no further
// than floor (where the last one read ended: each byte is read back over
// once, however the quotes are escaped), and on to the quote after,
// neither past a line's end; its inside.
func stringAround(d []byte, p, floor int) (int, int) {
	isQuote := func(c byte) bool { return c == '"' || c == '\'' || c == '`' }
	start := p
	for start > floor && d[start-1] != '\n' && !(isQuote(d[start-1]) && (start < 2 || d[start-2] != '\\')) {
		start--
	}
	end := p
	for end < len(d) && d[end] != '\n' && !isQuote(d[end]) {
		if d[end] == '\\' {
			end++
		}
		end++
	}
	return start, min(end, len(d))
}

// charEscapes are the escapes of a script's string that stand for a
// control character.
var charEscapes = [256]byte{'n': '\n', 'r': '\r', 't': '\t', 'b': '\b', 'f': '\f', 'v': '\v'}

// unescapeRun decodes s as a script's string of escapes and as
// unescape() reads %-escapes: what it gives, and how many escapes it
// held.
func unescapeRun(s []byte) ([]byte, int) {
	out := make([]byte, 0, len(s)/2)
	n := 0
	hexAt := func(i, w int) (uint64, bool) {
		if i+w > len(s) {
			return 0, false
		}
		v, err := strconv.ParseUint(string(s[i:i+w]), 16, 32)
		return v, err == nil
	}
	put := func(v uint64) {
		if v < 0x100 {
			out = append(out, byte(v))
		} else {
			out = append(out, string(rune(v))...)
		}
		n++
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+2 < len(s) && s[i+1] == 'u' && s[i+2] == '{':
			if k := bytes.IndexByte(s[i+3:min(len(s), i+10)], '}'); k > 0 {
				if v, ok := hexAt(i+3, k); ok && v <= 0x10ffff {
					put(v)
					i += 3 + k
					continue
				}
			}
		case (c == '\\' || c == '%') && i+1 < len(s) && s[i+1]|0x20 == 'u':
			if v, ok := hexAt(i+2, 4); ok {
				put(v)
				i += 5
				continue
			}
		case c == '\\' && i+1 < len(s) && s[i+1] == 'x':
			if v, ok := hexAt(i+2, 2); ok {
				put(v)
				i += 3
				continue
			}
		case c == '%':
			if v, ok := hexAt(i+1, 2); ok {
				put(v)
				i += 2
				continue
			}
		case c == '\\' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7':
			v, j := uint64(0), i+1
			for ; j < len(s) && j < i+4 && s[j] >= '0' && s[j] <= '7' && v*8+uint64(s[j]-'0') < 0x100; j++ {
				v = v*8 + uint64(s[j]-'0')
			}
			put(v)
			i = j - 1
			continue
		case c == '\\' && i+1 < len(s):
			i++
			e := charEscapes[s[i]]
			if e == 0 {
				e = s[i]
			}
			out = append(out, e)
			continue
		}
		out = append(out, c)
	}
	return out, n
}
