// Package jsnorm writes a page's script as ClamAV's JavaScript
// normaliser writes it (the "javascript" view, where ClamAV looks for
// the signatures of HTML pages and of text): tokens without comments,
// white space only between two words, letters lowered; names a script
// declares (var, function, parameters) renamed n000, n001, ... in the
// order declared; strings joined by + made one; unescape("...") of a
// string decoded; the string eval'd, the script a Dean Edwards packer
// (function(p,a,c,k,e,r)) or scriptasylum's encoder (dF('...')) holds,
// decoded and read in place.
//
// It does what ClamAV 1.4's does, quirks included, because a signature
// written against that view finds what it names only in the same text:
// a line comment ends at a space (the page's line feeds are spaces by
// then); a number is decimal digits with one point (0x1F is 0 and a name
// x1f), an integer cut to 32 bits, one with a point written as %g; a
// name inside a function's body is renamed only where ClamAV's state
// machine declares it; a token cut by the end of the script goes on in
// the text the first eval decodes. Held to clamscan's own view of the
// same pages (the tests). Unlike ClamAV, the decoders' work is bounded
// (a script of many evals or packers is otherwise quadratic): past the
// bound the rest is written as read, undecoded.
package jsnorm

import (
	"bytes"
	"slices"
	"strconv"
	"sync"
)

// decodeWork bounds the decoders' steps over tokens, beyond a share per
// token of the script.
const (
	decodeWork     = 1 << 22
	decodeWorkEach = 16
)

// AppendScript appends the normalised view of script to dst, as ClamAV
// writes it to its javascript file: "<script>", the tokens, and
// "</script>" unless they end so; after a line feed when dst holds a
// script already. script is the text between the end of the page's
// <script ...> tag and the end of its </script> tag, with its zero bytes
// dropped and its line feeds made spaces.
func AppendScript(dst, script []byte) []byte {
	p := parsers.Get().(*parser)
	defer p.release()
	p.reset(len(script))
	p.lex(script)
	p.done()
	start := len(dst)
	if start > 0 {
		dst = append(dst, '\n')
	}
	dst = append(dst, "<script>"...)
	dst, quoteLast := p.output(dst)
	// ClamAV writes through a buffer of 64 KiB and looks for the end in
	// what the buffer holds: fewer than nine bytes there, it is added.
	// A string's closing quote is written into a full buffer before it
	// is flushed; text, flushed once it fills the buffer.
	held := (len(dst) - start) % (64 << 10)
	if quoteLast {
		held = (len(dst)-start-1)%(64<<10) + 1
	}
	if held < 9 || !bytes.HasSuffix(dst, []byte("</script>")) {
		dst = append(dst, "</script>"...)
	}
	return dst
}

// The states of a scope's reading of declarations.
const (
	fBase = iota
	fInsideVar
	fInsideInitializer
	fWaitFunctionName
	fWaitParameterList
	fInsideFunctionDecl
)

// A scope: a function's (or the script's). The names used and declared
// in it are in the parser's ids.
type scope struct {
	parent   int32
	fsm      int
	last     kind
	brackets uint32
	blocks   uint32
}

type parser struct {
	lx      lexer
	arena   []byte // the tokens' texts
	tokens  []token
	scopes  []scope
	names   map[string]int32 // each name read, numbered
	ids     map[uint64]int32 // by scope and name: the number declared, -1 for used
	current int32
	uniq    int32
	work    int
}

// parsers keep their buffers and scopes' maps from one script to the
// next: a page's scripts are read one after another, and pages by the
// thousand.
var parsers = sync.Pool{New: func() any { return new(parser) }}

// keepParser is the most token room a parser is put back with.
const keepParser = 1 << 16

// reset readies p for a script of n bytes.
func (p *parser) reset(n int) {
	p.lx = lexer{buf: p.lx.buf[:0]}
	p.tokens, p.arena = p.tokens[:0], p.arena[:0]
	p.tokens = slices.Grow(p.tokens, n/4+16)
	p.arena = slices.Grow(p.arena, n+64)
	p.scopes = p.scopes[:0]
	if p.names == nil {
		p.names, p.ids = map[string]int32{}, map[uint64]int32{}
	}
	clear(p.names)
	clear(p.ids)
	p.current, p.uniq = -1, 0
	p.newScope(-1, fBase)
}

func (p *parser) release() {
	if cap(p.tokens) > keepParser || cap(p.arena) > 16*keepParser || len(p.names) > keepParser/16 {
		return
	}
	parsers.Put(p)
}

// newScope opens a scope inside parent (-1: the script's).
func (p *parser) newScope(parent int32, fsm int) {
	p.scopes = append(p.scopes, scope{parent: parent, fsm: fsm})
	p.current = int32(len(p.scopes) - 1)
}

// name is the number of a name, given it when first read.
func (p *parser) name(s []byte) int32 {
	n, ok := p.names[string(s)]
	if !ok {
		n = int32(len(p.names))
		p.names[string(s)] = n
	}
	return n
}

func idKey(scope, name int32) uint64 { return uint64(uint32(scope))<<32 | uint64(uint32(name)) }

// text is a token's text.
func (p *parser) text(t token) []byte { return p.arena[t.off : t.off+t.n] }

// add appends a token of kind k with text s.
func (p *parser) add(k kind, s []byte) {
	t := token{k: k, off: uint32(len(p.arena)), n: uint32(len(s))}
	p.arena = append(p.arena, s...)
	p.tokens = append(p.tokens, t)
}

// declare gives a name declared in the current scope the next number
// (again if declared again).
func (p *parser) declare(name int32) {
	p.ids[idKey(p.current, name)] = p.uniq
	p.uniq++
}

// use marks a name used in the current scope.
func (p *parser) use(name int32) {
	if _, ok := p.ids[idKey(p.current, name)]; !ok {
		p.ids[idKey(p.current, name)] = -1
	}
}

// lex reads a piece of text into tokens, declaring and using names in
// the scopes as ClamAV's state machine does.
func (p *parser) lex(in []byte) {
	p.lx.in, p.lx.pos = in, 0
	for {
		k, s := p.lx.next()
		if k == 0 {
			return
		}
		cur := &p.scopes[p.current]
		switch k {
		case kVar:
			cur.fsm = fInsideVar
		case kIdent:
			if cur.last == kDot {
				k = kMember
				break
			}
			name := p.name(s)
			switch cur.fsm {
			case fBase, fInsideInitializer, fWaitParameterList:
				p.use(name)
			case fInsideVar, fInsideFunctionDecl:
				p.declare(name)
				cur.fsm, cur.brackets = fInsideInitializer, 0
			case fWaitFunctionName:
				p.declare(name)
				cur.fsm = fWaitParameterList
			}
			p.add(k, s)
			p.tokens[len(p.tokens)-1].aux = name
			cur.last = k
			continue
		case kParOpen:
			if cur.fsm == fWaitFunctionName || cur.fsm == fWaitParameterList {
				cur.fsm = fInsideFunctionDecl
			}
		case kParClose:
			if cur.fsm == fWaitParameterList {
				cur.fsm = fBase
			}
		case kCurlyOpen:
			switch cur.fsm {
			case fWaitFunctionName, fWaitParameterList, fInsideFunctionDecl:
				cur.fsm = fBase
			}
			cur.blocks++
		case kCurlyClose:
			if cur.blocks > 0 {
				cur.blocks--
			}
			if cur.blocks == 0 && cur.parent >= 0 {
				// The function's scope ends: a mark after the brace.
				p.add(kCurlyClose, s)
				k, s = kFunctionEnd, nil
				p.current = cur.parent
				cur = &p.scopes[p.current]
				p.add(k, s)
				cur.last = kCurlyClose
				continue
			}
		case kBracketOpen:
			cur.brackets++
		case kBracketClose:
			if cur.brackets > 0 {
				cur.brackets--
			}
		case kComma:
			if cur.fsm == fInsideInitializer && cur.brackets == 0 && cur.blocks == 0 {
				cur.fsm = fInsideVar
			}
		case kSemicolon:
			if cur.brackets == 0 && cur.blocks == 0 {
				cur.fsm = fBase
			}
		case kFunction:
			p.newScope(p.current, fWaitFunctionName)
			p.add(k, s)
			p.tokens[len(p.tokens)-1].aux = p.current
			p.scopes[p.current].last = kFunction
			continue
		case kString:
			if n := len(p.tokens); n > 1 && p.tokens[n-1].k == kPlus && p.tokens[n-2].k == kString {
				// "a" + "b" is "ab"; the + goes, and the last token
				// is still the + (as ClamAV keeps it).
				p.tokens = p.tokens[:n-1]
				prev := &p.tokens[n-2]
				if int(prev.off+prev.n) != len(p.arena) {
					off := len(p.arena)
					p.arena = append(p.arena, p.text(*prev)...)
					prev.off = uint32(off)
				}
				p.arena = append(p.arena, s...)
				prev.n += uint32(len(s))
				continue
			}
		}
		p.add(k, s)
		cur.last = k
	}
}

// done ends the script: a string left open is closed, parentheses left
// open are closed, then unescape is folded and the decoders run.
func (p *parser) done() {
	switch p.lx.state {
	case sDQString:
		p.lex([]byte{'"'})
	case sSQString:
		p.lex([]byte{'\''})
	}
	open := 0
	for _, t := range p.tokens {
		switch {
		case t.k == kParOpen:
			open++
		case t.k == kParClose && open > 0:
			open--
		}
	}
	for ; open > 0; open-- {
		p.add(kParClose, []byte(")"))
	}
	p.work = decodeWork + decodeWorkEach*len(p.tokens)
	p.foldUnescape()
	p.decode()
}

// isName tells whether token i is the name (not a member) s.
func (p *parser) isName(i int, s string) bool {
	return i < len(p.tokens) && p.tokens[i].k == kIdent && string(p.text(p.tokens[i])) == s
}

// hasText tells whether a token has a text ClamAV's decoders read as
// one (numbers and functions have none).
func hasText(t token) bool {
	return t.k != kNumber && t.k != kFloat && t.k != kFunction && t.k != kFunctionEnd
}

// isStringValue tells whether ClamAV keeps a token's text as a string
// of its own (a literal, a member's name): what eval, dF and a packer's
// word list read.
func isStringValue(t token) bool { return t.k == kString || t.k == kMember }

// foldUnescape makes unescape("...") the string it decodes.
func (p *parser) foldUnescape() {
	for i := 0; i+2 < len(p.tokens); i++ {
		if !p.isName(i, "unescape") || p.tokens[i+1].k != kParOpen || p.tokens[i+2].k != kString {
			continue
		}
		if i+4 > len(p.tokens) {
			continue
		}
		s := unescapeURL(p.text(p.tokens[i+2]))
		t := token{k: kString, off: uint32(len(p.arena)), n: uint32(len(s))}
		p.arena = append(p.arena, s...)
		if !p.replace(i, i+4, []token{t}) {
			return
		}
	}
}

// replace puts with in the place of tokens [from, to), charging the
// work; false when the work is spent (nothing replaced).
func (p *parser) replace(from, to int, with []token) bool {
	p.work -= len(p.tokens) - to + len(with) + 1
	if p.work < 0 {
		return false
	}
	p.tokens = slices.Replace(p.tokens, from, to, with...)
	return true
}

// A decoded text, and the tokens it takes the place of.
type decoded struct {
	text       []byte
	begin, end int
	atEnd      bool // the tokens are dropped and the text's put last
}

// decode runs the decoders over the tokens in order: each text decoded
// is read into tokens in the place of the call, where the loop then goes
// on (so a decoded eval is decoded in turn).
func (p *parser) decode() {
	for i := 0; i < len(p.tokens); i++ {
		if p.work--; p.work < 0 {
			return
		}
		var d decoded
		t := p.tokens[i]
		switch {
		case (t.k == kFunction || t.k == kFunctionEnd) && i+13 < len(p.tokens):
			i++
			name := ""
			if p.tokens[i].k == kIdent {
				name = string(p.text(p.tokens[i]))
				i++
			}
			if p.packerParameters(i) {
				d = p.unpack(i, name)
			}
		case i+2 < len(p.tokens) && p.isName(i, "dF") && p.tokens[i+1].k == kParOpen:
			d = p.scriptasylum(i + 2)
		case i+2 < len(p.tokens) && p.isName(i, "eval") && p.tokens[i+1].k == kParOpen:
			d = p.eval(i + 2)
		}
		if d.end > d.begin {
			if d.end < len(p.tokens) && p.tokens[d.end].k == kSemicolon {
				d.end++
			}
			if !p.readDecoded(d) {
				return
			}
		}
		if i < len(p.tokens) {
			p.enter(p.tokens[i])
		}
	}
}

// readDecoded reads a decoded text into tokens and puts them in place.
func (p *parser) readDecoded(d decoded) bool {
	outer := p.tokens
	p.tokens = nil
	p.lex(d.text)
	inner := p.tokens
	p.tokens = outer
	if p.work -= len(inner); p.work < 0 {
		return false
	}
	if !d.atEnd {
		if d.begin >= len(p.tokens) || d.end > len(p.tokens) {
			return true
		}
		return p.replace(d.begin, d.end, inner)
	}
	if d.begin < len(p.tokens) && d.end <= len(p.tokens) && !p.replace(d.begin, d.end, nil) {
		return false
	}
	p.tokens = append(p.tokens, inner...)
	return true
}

// enter follows the scopes as the tokens open and close functions.
func (p *parser) enter(t token) {
	switch t.k {
	case kFunction:
		p.current = t.aux
	case kFunctionEnd:
		if parent := p.scopes[p.current].parent; parent >= 0 {
			p.current = parent
		}
	}
}

// packerParameters tells whether the tokens at i begin a packer's
// parameter list as ClamAV recognises one: "(p,a,c," (it means to
// match the six names, and stops at the third).
func (p *parser) packerParameters(i int) bool {
	if i >= len(p.tokens) || p.tokens[i].k != kParOpen {
		return false
	}
	for j, name := range []string{"p", "a", "c"} {
		n, comma := i+1+2*j, i+2+2*j
		if comma >= len(p.tokens) || !hasText(p.tokens[n]) || !p.isName(n, name) || p.tokens[comma].k != kComma {
			return false
		}
	}
	return true
}

// unpack decodes a packer's payload: the arguments of the calls of the
// function (by its name, or the call right after it): p, the payload,
// its words numbers in base a standing for the words of k, split at '|'.
func (p *parser) unpack(start int, name string) (d decoded) {
	i, nesting := start, 1
	for ; i < len(p.tokens); i++ {
		p.work--
		switch p.tokens[i].k {
		case kFunction:
			nesting++
		case kFunctionEnd:
			nesting--
		}
		if nesting == 0 {
			break
		}
	}
	if nesting != 0 || p.work < 0 {
		return d
	}
	first, last := -1, -1
	call := func() {
		var params [6]int
		j := 0
		for ; j < 6 && i < len(p.tokens); j++ {
			params[j] = i
			i++
			stop := kComma
			if j == 5 {
				stop = kParClose
			}
			for i < len(p.tokens) && p.tokens[i].k != stop {
				i++
				p.work--
			}
			i++
		}
		if j == 6 {
			if first < 0 {
				first = params[0]
			}
			last = params[5]
			d.text = p.unpackArgs(d.text, params)
		}
	}
	if name != "" {
		for ; i+2 < len(p.tokens) && p.work >= 0; i++ {
			p.work--
			if p.isName(i, name) && p.tokens[i+1].k == kParOpen {
				i += 2
				call()
			}
		}
	} else {
		for i < len(p.tokens) && p.tokens[i].k != kParOpen {
			i++
		}
		if i++; i >= len(p.tokens) {
			return d
		}
		call()
	}
	if first < 0 || p.work < 0 {
		return decoded{} // unbounded, ClamAV would write it all
	}
	d.begin, d.end = first, last+1
	switch {
	case d.end+2 < len(p.tokens) && p.tokens[d.end].k == kCurlyOpen && p.tokens[d.end+1].k == kCurlyClose && p.tokens[d.end+2].k == kParClose:
		d.end += 3 // {})
	case d.end < len(p.tokens):
		d.end++ // )
	}
	return d
}

// unpackArgs appends the payload of one call to the packer.
func (p *parser) unpackArgs(dst []byte, params [6]int) []byte {
	pt, at, kt := p.tokens[params[0]], p.tokens[params[1]], p.tokens[params[3]]
	if !hasText(pt) || !isStringValue(kt) {
		return dst
	}
	payload := p.text(pt)
	base := int64(-1) // ClamAV's value for a radix that is not a number
	if at.k == kNumber {
		if v, err := strconv.ParseInt(string(p.text(at)), 10, 64); err == nil {
			base = v
		}
	}
	words := bytes.Split(p.text(kt), []byte("|"))
	for j := 0; j < len(payload); {
		for j < len(payload) && !isAlnum(payload[j]) {
			if payload[j] == '\\' && j+1 < len(payload) && (payload[j+1] == '\'' || payload[j+1] == '"') {
				j++
				continue
			}
			dst = append(dst, payload[j])
			j++
		}
		if j == len(payload) {
			break
		}
		from := j
		var v uint32
		for ; j < len(payload) && isAlnum(payload[j]); j++ {
			c := payload[j]
			var x int64
			switch {
			case c >= 'a':
				x = 10 + int64(c-'a')
			case c >= 'A':
				x = 36 + int64(c-'A')
			default:
				x = int64(c - '0')
			}
			v = uint32(int64(v)*base + x)
		}
		before := len(dst)
		if uint64(v) >= uint64(len(words)) || len(words[v]) == 0 {
			dst = append(dst, payload[from:j]...)
		} else {
			dst = append(dst, words[v]...)
		}
		// A word may stand many times for a long one: what is written
		// is work too.
		if p.work -= len(dst) - before; p.work < 0 {
			return dst
		}
	}
	return dst
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// scriptasylum decodes dF('...'): the string but its last character,
// unescaped, each byte less that character's distance from '0', then
// unescaped again; the call goes and the script it holds goes last.
func (p *parser) scriptasylum(start int) (d decoded) {
	t := p.tokens[start]
	if t.k != kString || t.n == 0 {
		return d
	}
	s := p.text(t)
	shift := s[len(s)-1] - '0'
	s1 := unescapeURL(s[:len(s)-1])
	for j := range s1 {
		s1[j] -= shift
	}
	if z := bytes.IndexByte(s1, 0); z >= 0 {
		s1 = s1[:z] // a C string ends there
	}
	return decoded{text: unescapeURL(s1), begin: start - 2, end: start + 2, atEnd: true}
}

// eval decodes eval("..."): the string is read in the call's place.
func (p *parser) eval(start int) (d decoded) {
	t := p.tokens[start]
	if !isStringValue(t) || start+1 >= len(p.tokens) || p.tokens[start+1].k != kParClose {
		return d
	}
	return decoded{text: p.text(t), begin: start - 2, end: start + 2}
}

// output writes the tokens, renaming each declared name by the scope it
// is read in; quoteLast: the last byte written closed a string.
func (p *parser) output(dst []byte) (_ []byte, quoteLast bool) {
	p.current = 0
	last := byte(0)
	for _, t := range p.tokens {
		before := len(dst)
		if p.enter(t); t.k == kFunctionEnd {
			continue
		}
		dst, last = p.outToken(dst, t, last)
		if len(dst) > before {
			quoteLast = t.k == kString
		}
	}
	return dst, quoteLast
}

// outToken writes a token after last (a space between two words).
func (p *parser) outToken(dst []byte, t token, last byte) ([]byte, byte) {
	s := p.text(t)
	space := func(c byte) {
		if isAlnum(last) && isAlnum(c) {
			dst = append(dst, ' ')
		}
	}
	switch t.k {
	case kString:
		space('"')
		dst = append(dst, '"')
		dst = appendLower(dst, s)
		return append(dst, '"'), '"'
	case kNumber, kFloat:
		space('0')
		return appendLower(dst, s), '0'
	case kIdent:
		space('a')
		if id := p.lookup(p.current, t.aux); id >= 0 {
			dst = append(dst, 'n')
			if id < 100 {
				dst = append(dst, '0')
			}
			if id < 10 {
				dst = append(dst, '0')
			}
			return strconv.AppendInt(dst, int64(id), 10), 'a'
		}
		return appendLower(dst, s), 'a'
	case kFunction:
		space('a')
		return append(dst, "function"...), 'a'
	}
	if len(s) == 0 {
		return dst, 0
	}
	space(s[0])
	return appendLower(dst, s), s[len(s)-1]
}

// lookup finds the number a name is declared with, from scope s out.
func (p *parser) lookup(s, name int32) int32 {
	for ; s >= 0; s = p.scopes[s].parent {
		if id, ok := p.ids[idKey(s, name)]; ok && id >= 0 {
			return id
		}
	}
	return -1
}

// appendLower writes s with its letters lowered and white space made
// spaces.
func appendLower(dst, s []byte) []byte {
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}
