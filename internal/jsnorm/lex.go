package jsnorm

import (
	"bytes"
	"math"
	"strconv"

	"github.com/fsigkd/fsigkd/internal/hexesc"
)

// The token kinds. Operators and keywords but var and function keep
// their text; the others are the ones the normaliser acts on.
type kind uint8

const (
	kString      kind = iota + 1 // a string literal: its text, escapes decoded
	kNumber                      // an integer: its text as written out
	kFloat                       // a number with a point: its text as written out
	kIdent                       // an identifier, renamed when declared
	kMember                      // a name after a dot: never renamed
	kFunction                    // "function", opening its scope
	kFunctionEnd                 // no text: the end of a function's scope
	kVar
	kPlus
	kParOpen
	kParClose
	kBracketOpen
	kBracketClose
	kCurlyOpen
	kCurlyClose
	kComma
	kSemicolon
	kDot
	kOther // another operator, or a keyword
)

// A token: its kind, its text in the normaliser's arena, and for a
// function the scope it opens, for a name its number. Kept small: a
// script of a megabyte can be a million tokens.
type token struct {
	k   kind
	aux int32
	off uint32
	n   uint32
}

// The lexer's states between two pieces of text: a token may go on
// from one piece (a script, then each string eval'd) to the next.
const (
	sInitial = iota
	sBlockComment
	sLineComment
	sNumber
	sDQString
	sSQString
	sIdent
)

// The classes of a byte where a token begins.
const (
	cNone = iota // skipped: control characters, '#', '@', '`', bytes from 0x80
	cSpace
	cSlash
	cOp
	cDQuote
	cSQuote
	cDigit
	cIdent
	cPunct // a byte that is a token of its own
)

var class = func() (t [256]uint8) {
	for _, c := range "\t\n\v\r " {
		t[c] = cSpace
	}
	for _, c := range "!%&*+-:<=>?^|~" {
		t[c] = cOp
	}
	for _, c := range "[](){},.;" {
		t[c] = cPunct
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = cIdent, cIdent
	}
	t['$'], t['_'], t['\\'] = cIdent, cIdent, cIdent
	t['/'], t['"'], t['\''] = cSlash, cDQuote, cSQuote
	return t
}()

// inName: the bytes an identifier goes on with (a backslash is looked
// at on its own).
var inName = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = c < 0x80 && class[c] == cIdent || class[c] == cDigit
	}
	t['\\'] = false
	return t
}()

var punct = map[byte]kind{
	'[': kBracketOpen, ']': kBracketClose, '(': kParOpen, ')': kParClose,
	'{': kCurlyOpen, '}': kCurlyClose, ',': kComma, '.': kDot, ';': kSemicolon,
}

// operators are ECMAScript 3's, by their first byte (each of which is
// an operator of its own).
var operators = func() (t [256][]string) {
	for _, op := range []string{
		"===", ">>>", "!==", "<<", "<=", "==", ">=", ">>", "||", "--", "!=", "&&", "++",
		"*=", "/=", "%=", "+=", "-=", "<<=", ">>=", ">>>=", "&=", "^=", "|=",
	} {
		t[op[0]] = append(t[op[0]], op)
	}
	return t
}()

// isKeyword tells whether a name is one of ECMAScript 3's keywords or
// future reserved words, or null, true, false; as written (Var is a
// name).
func isKeyword(s string) bool {
	switch s {
	case "break", "case", "catch", "continue", "default", "delete", "do", "else",
		"finally", "for", "function", "if", "in", "instanceof", "new", "return",
		"switch", "this", "throw", "try", "typeof", "var", "void", "while", "with",
		"abstract", "boolean", "byte", "char", "class", "const", "debugger",
		"double", "enum", "export", "extends", "final", "float", "goto",
		"implements", "import", "int", "interface", "long", "native", "package",
		"private", "protected", "public", "short", "static", "super",
		"synchronized", "throws", "transient", "volatile", "null", "true", "false":
		return true
	}
	return false
}

// lexer reads the text of tokens, keeping what a token cut by the end
// of one piece of text needs to go on in the next.
type lexer struct {
	in    []byte
	pos   int
	state int
	buf   []byte // the token under way
}

// next returns the next token's kind and text (in l.buf or a constant),
// or 0 at the end of the piece.
func (l *lexer) next() (kind, []byte) {
	for l.pos < len(l.in) {
		switch l.state {
		case sInitial:
			l.buf = l.buf[:0]
			c := l.in[l.pos]
			l.pos++
			switch class[c] {
			case cSpace, cNone:
				continue
			case cSlash:
				if l.pos < len(l.in) && (l.in[l.pos] == '*' || l.in[l.pos] == '/') {
					l.state = sBlockComment
					if l.in[l.pos] == '/' {
						l.state = sLineComment
					}
					l.pos++
					continue
				}
				l.pos--
				return l.operator()
			case cOp:
				l.pos--
				return l.operator()
			case cDQuote:
				l.state = sDQString
				return l.str('"')
			case cSQuote:
				l.state = sSQString
				return l.str('\'')
			case cDigit:
				l.pos--
				l.state = sNumber
				return l.number()
			case cIdent:
				l.pos--
				l.state = sIdent
				return l.ident()
			case cPunct:
				return punct[c], l.in[l.pos-1 : l.pos]
			}
		case sDQString:
			return l.str('"')
		case sSQString:
			return l.str('\'')
		case sIdent:
			return l.ident()
		case sNumber:
			return l.number()
		case sBlockComment:
			for l.pos+1 < len(l.in) {
				if l.in[l.pos] == '*' && l.in[l.pos+1] == '/' {
					l.state = sInitial
					l.pos++
					break
				}
				l.pos++
			}
			l.pos++
		case sLineComment:
			// The page's line feeds are spaces by now: a space ends it.
			for l.pos < len(l.in) && l.in[l.pos] != '\n' && l.in[l.pos] != ' ' {
				l.pos++
			}
			l.state = sInitial
		}
	}
	return 0, nil
}

// operator reads the longest operator there.
func (l *lexer) operator() (kind, []byte) {
	n := 1
	for _, op := range operators[l.in[l.pos]] {
		if len(op) > n && len(op) <= len(l.in)-l.pos && string(l.in[l.pos:l.pos+len(op)]) == op {
			n = len(op)
		}
	}
	op := l.in[l.pos : l.pos+n]
	l.pos += n
	if n == 1 && op[0] == '+' {
		return kPlus, op
	}
	return kOther, op
}

// str reads a string literal up to its quote q: a quote after a
// backslash does not end it (whatever comes before the backslash).
// A string cut by the end of the piece goes on in the next.
func (l *lexer) str(q byte) (kind, []byte) {
	start, end := l.pos, -1
	for i := l.pos; i < len(l.in); i++ {
		if l.in[i] == q && (i == start || l.in[i-1] != '\\') {
			end = i
			break
		}
	}
	if end < 0 {
		l.buf = unescapeJS(l.buf, l.in[start:])
		l.pos = len(l.in)
		return 0, nil
	}
	l.buf = unescapeJS(l.buf, l.in[start:end])
	l.pos = end + 1
	l.state = sInitial
	return kString, l.buf
}

// number reads a number: digits, one point, and after the point an
// exponent. A number cut by the end of the piece is lost (but for its
// digits, which the next piece goes on with).
func (l *lexer) number() (kind, []byte) {
	float := false // as in ClamAV: a number going on in a new piece starts again as an integer
	for l.pos < len(l.in) {
		c := l.in[l.pos]
		l.pos++
		switch {
		case c >= '0' && c <= '9':
			l.buf = append(l.buf, c)
			continue
		case c == '.' && !float:
			float = true
			l.buf = append(l.buf, c)
			continue
		case (c == 'e' || c == 'E') && float:
			l.buf = append(l.buf, c)
			if l.pos < len(l.in) {
				c = l.in[l.pos]
				l.pos++
				if c == '+' || c == '-' || c >= '0' && c <= '9' {
					l.buf = append(l.buf, c)
					continue
				}
			}
		}
		l.pos--
		l.state = sInitial
		if float {
			return kFloat, numberText(l.buf, float)
		}
		return kNumber, numberText(l.buf, float)
	}
	return 0, nil
}

// numberText writes a number as C's printf does: an integer as the int
// atoi makes of it (saturated to 64 bits, then cut to 32), a number
// with a point as %g of its double.
func numberText(text []byte, float bool) []byte {
	if !float {
		return strconv.AppendInt(nil, int64(atoi(text)), 10)
	}
	return cG(atof(text))
}

// atoi is C's atoi: the leading digits, saturated at 64 bits (strtol),
// then cut to 32.
func atoi(text []byte) int32 {
	var v uint64
	for _, c := range text {
		if c < '0' || c > '9' {
			break
		}
		if v > (1<<63-1-uint64(c-'0'))/10 {
			v = 1<<63 - 1
			continue
		}
		v = v*10 + uint64(c-'0')
	}
	return int32(v)
}

// atof reads the longest prefix of text strtod takes.
func atof(text []byte) float64 {
	for n := len(text); n > 0; n-- {
		if f, err := strconv.ParseFloat(string(text[:n]), 64); err == nil || isRange(err) {
			return f
		}
	}
	return 0
}

func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// cG is C's %g: six significant digits, trailing zeros dropped, an
// exponent of at least two digits when below -4 or from 6.
func cG(f float64) []byte {
	switch {
	case f == 0:
		return []byte("0")
	case math.IsInf(f, 1):
		return []byte("inf")
	}
	e := strconv.AppendFloat(nil, f, 'e', 5, 64)
	mant, exp := e, 0
	for i := range e {
		if e[i] == 'e' {
			mant = e[:i]
			exp, _ = strconv.Atoi(string(e[i+1:]))
			break
		}
	}
	if exp < -4 || exp >= 6 {
		out := trimZeros(append([]byte(nil), mant...))
		out = append(out, 'e')
		if exp < 0 {
			out, exp = append(out, '-'), -exp
		} else {
			out = append(out, '+')
		}
		if exp < 10 {
			out = append(out, '0')
		}
		return strconv.AppendInt(out, int64(exp), 10)
	}
	return trimZeros(strconv.AppendFloat(nil, f, 'f', 5-exp, 64))
}

func trimZeros(b []byte) []byte {
	if bytes.IndexByte(b, '.') < 0 {
		return b
	}
	for b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	if b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	return b
}

// ident reads a name. A backslash followed by 'u' stays (without the
// 'u'); any other ends the name, and is dropped. A name cut by the end
// of the piece goes on in the next (and is lost if none comes).
func (l *lexer) ident() (kind, []byte) {
	for l.pos < len(l.in) {
		c := l.in[l.pos]
		l.pos++
		if inName[c] {
			l.buf = append(l.buf, c)
			continue
		}
		if c == '\\' {
			if l.pos < len(l.in) {
				l.pos++
				if l.in[l.pos-1] == 'u' {
					l.buf = append(l.buf, c)
					continue
				}
			}
			if l.pos == len(l.in) {
				l.pos++ // the byte after it, the piece's last, goes too
			}
		}
		l.pos--
		l.state = sInitial
		if isKeyword(string(l.buf)) {
			switch string(l.buf) {
			case "var":
				return kVar, l.buf
			case "function":
				return kFunction, l.buf
			}
			return kOther, l.buf
		}
		return kIdent, l.buf
	}
	return 0, nil
}

// unescapeJS appends s, a string literal's text, with the escapes
// decoded as ClamAV decodes them (\0 \b \t \n \v \f \r, \xHH, \uHHHH as
// UTF-8, any other character as itself); a zero byte becomes 1.
func unescapeJS(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case '0':
				c = 0
			case 'b':
				c = 8
			case 't':
				c = 9
			case 'n':
				c = 10
			case 'v':
				c = 11
			case 'f':
				c = 12
			case 'r':
				c = 13
			case 'x':
				if i+2 < len(s) {
					c = hexPair(s[i+1], s[i+2])
				}
				i += 2
			case 'u':
				if i+4 < len(s) {
					dst = appendUTF8(dst, hexQuad(s[i+1:i+5]))
					i += 4
					continue
				}
			default:
				c = s[i]
			}
		}
		if c == 0 {
			c = 1
		}
		dst = append(dst, c)
	}
	return dst
}

// hexPair is ClamAV's reading of two hex digits: a first that is none
// counts as 0; a last that is none makes every bit one.
func hexPair(a, b byte) byte {
	return byte(max(hexesc.Digit(a), 0)<<4 | hexesc.Digit(b))
}

func hexQuad(s []byte) uint16 {
	return uint16(max(hexesc.Digit(s[0]), 0)<<12 | max(hexesc.Digit(s[1]), 0)<<8 | max(hexesc.Digit(s[2]), 0)<<4 | hexesc.Digit(s[3]))
}

// appendUTF8 writes a UTF-16 unit as UTF-8 (a surrogate too), 0 as 1.
func appendUTF8(dst []byte, u uint16) []byte {
	switch {
	case u == 0:
		return append(dst, 1)
	case u < 0x80:
		return append(dst, byte(u))
	case u < 0x800:
		return append(dst, 0xc0|byte(u>>6), 0x80|byte(u&0x3f))
	}
	return append(dst, 0xe0|byte(u>>12), 0x80|byte(u>>6&0x3f), 0x80|byte(u&0x3f))
}

// unescapeURL is JavaScript's unescape as ClamAV reads it: %XX and
// %uXXXX (as UTF-8); a zero byte becomes 1.
func unescapeURL(s []byte) []byte {
	out := make([]byte, 0, len(s))
	for k := 0; k < len(s); k++ {
		c := s[k]
		if c == '%' {
			if k+5 < len(s) && s[k+1] == 'u' && hexesc.Digit(s[k+2]) >= 0 && hexesc.Digit(s[k+3]) >= 0 && hexesc.Digit(s[k+4]) >= 0 && hexesc.Digit(s[k+5]) >= 0 {
				out = appendUTF8(out, hexQuad(s[k+2:k+6]))
				k += 5
				continue
			}
			if k+2 < len(s) && hexesc.Digit(s[k+1]) >= 0 && hexesc.Digit(s[k+2]) >= 0 {
				c = hexPair(s[k+1], s[k+2])
				k += 2
			}
		}
		if c == 0 {
			c = 1
		}
		out = append(out, c)
	}
	return out
}
