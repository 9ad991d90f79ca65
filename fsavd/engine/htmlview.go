package engine

import (
	"bytes"
	"html"
	"strconv"
	"strings"
)

// An HTML page's normalised views. ClamAV looks for the signatures of
// target 3 (HTML), and those of target 0, in two texts it makes of a
// page: the page without its comments, tags and their attributes kept
// (lower case, white space between and inside them made one space or
// none, quotes made double, character references decoded), and the
// page's text alone (without the tags; a link's address and a picture's
// source kept). This engine makes both as ClamAV does, for the cases
// clamscan was held to (TestHTMLViewsAsClamscanReadsThem), and says
// where the page's scripts are, for their normalised view (jsnorm; an
// encoded script, JScript.Encode, is decoded and walked as the page's
// member: see unpack); it keeps a data: address's text in the views where
// ClamAV leaves "data" alone (the file it carries is a member of the
// page in both: see unpack), and reads a page as one piece
// where ClamAV reads it in pieces of about 8 KiB (at whose edges it drops
// leading white space).

// htmlMarkers are the tags whose presence makes a text HTML, as ClamAV
// types it: each in lower case, upper case, or capitalised, followed by
// one of htmlAfter (<html> and <head> closed at once).
var htmlMarkers = []string{"iframe", "img", "object", "script", "table"}

const htmlAfter = "> \t\n\v\f\r/"

// isHTML tells whether ClamAV takes data, which no format claims, for
// HTML: one of the markers in its first 1,024 bytes, or anywhere in a
// text of one byte a character (not UTF-16).
func isHTML(data []byte) bool {
	if len(data) > typeHead && !asciiHead(data) {
		data = data[:typeHead]
	}
	// An href looked for after one "<a " and not found is in no later
	// place either: looked for once (a text of "<a " alone would
	// otherwise be searched to its end from each).
	hrefs := [2]bool{true, true}
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '<')
		if j < 0 {
			return false
		}
		i += j + 1
		if htmlTagAt(data[i:], &hrefs) {
			return true
		}
	}
}

// asciiHead tells whether the object's first bytes are text of one byte
// a character (not UTF-16).
func asciiHead(data []byte) bool {
	for _, c := range data[:min(len(data), typeHead)] {
		if !textChar[c] {
			return false
		}
	}
	return true
}

// htmlTagForms are the markers as ClamAV looks for them, each in lower
// case, upper case, and capitalised; closed: followed at once by '>' in
// the marker itself, else by one of htmlAfter.
var htmlTagForms = func() (forms []struct {
	word   string
	closed bool
}) {
	for _, w := range append([]string{"html>", "head>"}, htmlMarkers...) {
		for _, f := range []string{w, strings.ToUpper(w), strings.ToUpper(w[:1]) + w[1:]} {
			forms = append(forms, struct {
				word   string
				closed bool
			}{f, strings.HasSuffix(w, ">")})
		}
	}
	return forms
}()

// htmlHrefs are the spellings of href ClamAV looks for after "<a " (lower
// case a) and after "<A " (upper case).
var htmlHrefs = [2][]string{{"href", "Href", "hRef", "HRef"}, {"HREF", "hREF", "HrEF", "hrEF"}}

// htmlTagAt tells whether b, after a '<', starts a marker; hrefs says,
// for "<a " and "<A ", whether an href may still follow (false once one
// was looked for in vain).
func htmlTagAt(b []byte, hrefs *[2]bool) bool {
	for _, f := range htmlTagForms {
		if len(b) > len(f.word) || f.closed && len(b) == len(f.word) {
			if string(b[:len(f.word)]) == f.word && (f.closed || strings.IndexByte(htmlAfter, b[len(f.word)]) >= 0) {
				return true
			}
		}
	}
	// <a ... href, in the forms ClamAV looks for.
	if len(b) > 1 && (b[0] == 'a' || b[0] == 'A') && b[1] == ' ' {
		upper := 0
		if b[0] == 'A' {
			upper = 1
		}
		if !hrefs[upper] {
			return false
		}
		for _, h := range htmlHrefs[upper] {
			if bytes.Contains(b[2:], []byte(h)) {
				return true
			}
		}
		hrefs[upper] = false
	}
	return false
}

// htmlViews writes the page's two views, ClamAV's nocomment.html and
// notags.html, into tags and text, and returns where its scripts are:
// for each, from the end of its <script ...> tag to the end of its
// </script> tag and the white space after it (or the page's end), as
// ClamAV hands them to its JavaScript normaliser.
func htmlViews(data []byte, tags, text []byte) ([]byte, []byte, [][2]int) {
	n := htmlNorm{tags: tags, text: text, state: hNorm, data: data, script: -1}
	i := 0
	for i < len(data) && (isSpace(data[i]) || data[i] == 0) {
		i++
	}
	for ; i < len(data); i++ {
		c := data[i]
		switch c {
		case 0, '\r':
			continue
		case '\n':
			c = ' '
		}
		n.at = i
		for !n.take(c) {
		}
	}
	if n.script >= 0 {
		n.scripts = append(n.scripts, [2]int{n.script, len(data)})
	}
	return n.tags, n.text, n.scripts // a character cut by the end is not written, as in ClamAV
}

// isSpace is C's isspace in the C locale.
func isSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// The normaliser's states.
const (
	hNorm = iota
	hSkipWS
	hTrimWS
	hTag
	hTagArg
	hTagArgEqual
	hTagArgVal
	hComment
	hCharRef
	hEntity
	hCharRefDecode
	hTagArgEnd // a tag inside a script once its name ended: read no further
)

// htmlNorm is the state of a page's normalisation.
type htmlNorm struct {
	tags, text   []byte
	state, next  int
	inTag        byte // 1 between <script> and </script>, 2 <style> and </style>
	tag          []byte
	arg          []byte
	val          []byte
	args         [][2]string // the tag's arguments: name, value
	quote        byte        // the value's quote, 0: none
	spaceWritten bool        // text ends with a space
	mb           []byte      // a multi-byte character under way
	entity       []byte
	ref          int64
	refHex       bool
	data         []byte   // the page
	at           int      // where in it the byte taken is
	script       int      // where the script under way began, -1: none
	scripts      [][2]int // the scripts read
}

const maxHTMLName = 1024

// take consumes c; false: c is to be taken again in the new state.
func (n *htmlNorm) take(c byte) bool {
	switch n.state {
	case hSkipWS, hTrimWS:
		if isSpace(c) {
			return true
		}
		if n.state == hTrimWS && n.inTag == 0 {
			n.tags = append(n.tags, ' ')
		}
		n.state = n.next
		return false
	case hNorm:
		if len(n.mb) == 1 && n.mb[0] == 0xa1 && (c == 'C' || c == 'D' || c == 'O') {
			// A stop in another encoding (ClamAV's bug 4097).
			n.tags, n.text, n.mb = append(n.tags, '.'), append(n.text, '.'), n.mb[:0]
			return true
		}
		if len(n.mb) > 0 && c < 0x80 {
			n.flushMB()
		}
		switch {
		case c == '<':
			n.tags = append(n.tags, '<')
			n.textSpace()
			n.tag = n.tag[:0]
			n.state, n.next = hSkipWS, hTag
		case isSpace(c):
			n.textSpace()
			n.state, n.next = hTrimWS, hNorm
		case c == '&':
			n.textSpace()
			n.state, n.next = hCharRef, hNorm
		case c >= 0x80:
			n.mb = append(n.mb, c)
			if len(n.mb) == 3 {
				n.flushMB()
			}
		default:
			l := lower(c)
			if n.inTag != 0 && l == '\'' {
				l = '"'
			}
			n.tags = append(n.tags, l)
			if n.inTag == 0 {
				if c < 0x20 {
					n.textSpace()
				} else {
					n.text = append(n.text, l)
					n.spaceWritten = false
				}
			}
		}
		return true
	case hTag:
		switch {
		case len(n.tag) == 0 && c == '!':
			if n.inTag != 0 {
				n.tags = append(n.tags, '!')
			} else if len(n.tags) > 0 {
				n.tags = n.tags[:len(n.tags)-1] // the '<'
			}
			n.state = hComment
		case c == '>':
			n.tags = append(n.tags, '>')
			n.processTag(n.at + 1)
		case !isSpace(c):
			n.tags = append(n.tags, lower(c))
			if n.inTag != 0 && len(n.tag) == 0 && c != '/' {
				n.state = hNorm
			}
			if len(n.tag) < maxHTMLName {
				n.tag = append(n.tag, lower(c))
			}
		default:
			n.arg = n.arg[:0]
			n.state, n.next = hSkipWS, hTagArg
			if n.inTag != 0 {
				n.next = hTagArgEnd
			}
		}
		return true
	case hTagArgEnd:
		// In a script, a tag's arguments are not read: the tag is done.
		n.processTag(n.at)
		return false
	case hTagArg:
		switch {
		case c == '=':
			n.tags = append(n.tags, '=')
			n.val, n.quote = n.val[:0], 0
			n.state, n.next = hSkipWS, hTagArgVal
		case isSpace(c):
			n.state, n.next = hSkipWS, hTagArgEqual
		case c == '>':
			n.tags = append(n.tags, '>')
			if len(n.arg) > 0 {
				n.addArg("")
			}
			n.processTag(n.at + 1)
		default:
			if len(n.arg) == 0 {
				n.tags = append(n.tags, ' ')
			}
			n.tags = append(n.tags, lower(c))
			if len(n.arg) < maxHTMLName {
				n.arg = append(n.arg, lower(c))
			}
		}
		return true
	case hTagArgEqual:
		if c == '=' {
			n.tags = append(n.tags, '=')
			n.val, n.quote = n.val[:0], 0
			n.state, n.next = hSkipWS, hTagArgVal
			return true
		}
		if len(n.arg) > 0 {
			n.addArg("")
		}
		n.arg = n.arg[:0]
		n.state = hTagArg
		return false
	case hTagArgVal:
		return n.takeVal(c)
	case hComment:
		if n.inTag != 0 && !isSpace(c) {
			l := lower(c)
			if l == '\'' {
				l = '"'
			}
			n.tags = append(n.tags, l)
		}
		if c == '>' {
			n.state, n.next = hSkipWS, hNorm
		}
		return true
	case hCharRef:
		if c == '#' {
			n.ref, n.refHex = 0, false
			n.state = hCharRefDecode
			return true
		}
		n.entity = n.entity[:0]
		n.state = hEntity
		return false
	case hEntity:
		switch {
		case c == ';':
			n.entityDone(true)
			n.state = n.next
			return true
		case (isAlnum(c) || c == '_' || c == ':' || c == '-') && len(n.entity) < maxHTMLName:
			n.entity = append(n.entity, c)
			return true
		default:
			n.entityDone(false)
			n.state = n.next
			return false
		}
	case hCharRefDecode:
		switch {
		case n.ref == 0 && (c == 'x' || c == 'X'):
			n.refHex = true
			return true
		case c == ';':
			n.valByte(byte(n.ref))
			if n.ref < 0x80 {
				n.tags = append(n.tags, lower(byte(n.ref)))
			} else {
				n.tags = appendCodePoint(n.tags, uint16(n.ref))
			}
			n.state = n.next
			return true
		case c >= '0' && c <= '9' || n.refHex && isHex(c):
			d := int64(c - '0')
			if c > '9' {
				d = int64(lower(c)-'a') + 10
			}
			base := int64(10)
			if n.refHex {
				base = 16
			}
			if n.ref > (1<<62)/base {
				n.tags = append(n.tags, byte(n.ref))
				n.state = n.next
				return true
			}
			n.ref = n.ref*base + d
			return true
		default:
			n.tags = append(n.tags, byte(n.ref))
			n.state = n.next
			return false
		}
	}
	return true
}

// takeVal takes c in a tag argument's value.
func (n *htmlNorm) takeVal(c byte) bool {
	switch {
	case c == '&':
		n.state, n.next = hCharRef, hTagArgVal
	case c == '\'' || c == '"':
		q := byte(1)
		if c == '"' {
			q = 2
		}
		n.tags = append(n.tags, '"')
		n.valByte('"')
		switch {
		case len(n.val) == 1:
			n.quote = q
		case n.quote == q: // a backslash before it escapes nothing, as in ClamAV
			n.addArg(string(n.val))
			n.arg = n.arg[:0]
			n.state, n.next = hSkipWS, hTagArg
		}
	case isSpace(c) || c == '>':
		if n.quote == 0 {
			n.addArg(string(n.val))
			n.arg = n.arg[:0]
			n.state, n.next = hSkipWS, hTagArg
			return false
		}
		n.tags = append(n.tags, c)
		if isSpace(c) {
			n.valByte(' ')
		} else {
			n.valByte('>')
		}
		n.quote = 0
		n.state, n.next = hSkipWS, hTagArgVal
		return true
	case c >= 0x80:
		n.tags = append(n.tags, c)
		n.valByte(c)
	default:
		n.tags = append(n.tags, lower(c))
		n.valByte(c)
	}
	return true
}

func (n *htmlNorm) valByte(c byte) {
	if n.next == hTagArgVal || n.state == hTagArgVal {
		if len(n.val) < maxHTMLName {
			n.val = append(n.val, c)
		}
	}
}

// addArg keeps the tag argument just read, with its value (a quoted one
// without its first and last bytes, as ClamAV keeps it).
func (n *htmlNorm) addArg(val string) {
	if strings.HasPrefix(val, `"`) {
		val = val[1:]
		if val != "" {
			val = val[:len(val)-1]
		}
	}
	n.args = append(n.args, [2]string{string(n.arg), val})
}

// entity is the character a named reference stands for, as ClamAV knows
// the names: Go's HTML table, but for HTML 5's upper-case spellings of
// names ClamAV knows in lower case alone (&LT; for &lt;), which it leaves
// as they are. ok is false for a name not known, or one standing for
// more than one character.
func entity(name string) (r rune, ok bool) {
	ref := "&" + name + ";"
	s := html.UnescapeString(ref)
	if s == ref {
		return 0, false
	}
	rs := []rune(s)
	if len(rs) != 1 {
		return 0, false
	}
	if low := strings.ToLower(name); low != name && strings.ToUpper(name) == name && html.UnescapeString("&"+low+";") == s {
		return 0, false
	}
	return rs[0], true
}

// entityDone ends a named reference: decoded (ended by ';' and known),
// or given as it was, lowered.
func (n *htmlNorm) entityDone(semicolon bool) {
	if semicolon {
		if r, ok := entity(string(n.entity)); ok && r < 0x10000 {
			before := len(n.tags)
			n.tags = appendCodePoint(n.tags, uint16(r))
			for _, b := range n.tags[before:] {
				n.valByte(b)
			}
			return
		}
	}
	n.tags = append(n.tags, '&')
	n.valByte('&')
	for _, b := range n.entity {
		n.tags = append(n.tags, lower(b))
		n.valByte(lower(b))
	}
	if semicolon {
		n.tags = append(n.tags, ';')
		n.valByte(';')
	}
}

// appendCodePoint is ClamAV's writing of a decoded character: below 255
// as its byte, an ideographic or full-width stop as '.', else &#xNNNN;.
func appendCodePoint(b []byte, u uint16) []byte {
	switch {
	case u == 0:
		return b
	case u < 0xff:
		return append(b, byte(u))
	case u == 0x3002 || u == 0xff0e || u == 0xfe52:
		return append(b, '.')
	}
	return append(append(b, "&#x"...), []byte(leftPad(strconv.FormatUint(uint64(u), 16)))...)
}

func leftPad(h string) string { return strings.Repeat("0", 4-len(h)) + h + ";" }

// flushMB writes a multi-byte character under way: the stops ClamAV
// makes '.', else its bytes; the text view gets them as ClamAV writes
// them there, its last byte replaced by the one before (a zero byte for
// a character of one byte).
func (n *htmlNorm) flushMB() {
	switch string(n.mb) {
	case "":
		return
	case "\xe3\x80\x82", "\xef\xbc\x8e", "\xef\xb9\x92":
		n.tags, n.text = append(n.tags, '.'), append(n.text, '.')
	default:
		n.tags = append(n.tags, n.mb...)
		last := byte(0)
		if len(n.mb) > 1 {
			last = n.mb[len(n.mb)-2]
		}
		n.text = append(append(n.text, n.mb[:len(n.mb)-1]...), last)
	}
	n.mb = n.mb[:0]
}

// textSpace ends a word of the text view.
func (n *htmlNorm) textSpace() {
	if n.inTag == 0 && !n.spaceWritten {
		n.text = append(n.text, ' ')
		n.spaceWritten = true
	}
}

// processTag acts on a tag just ended (the page goes on at end):
// scripts and style sheets begin and end (inside them, white space is
// dropped, quotes made double, no text kept, and a tag but the closing
// one read as text); a link's address and a picture's source go to the
// text view.
func (n *htmlNorm) processTag(end int) {
	n.state, n.next = hSkipWS, hNorm
	tag := string(n.tag)
	// ClamAV acts on a tag once the white space after it is skipped.
	for end < len(n.data) && (isSpace(n.data[end]) || n.data[end] == 0) {
		end++
	}
	switch tag {
	case "/script":
		n.inTag = 0
		if n.script >= 0 {
			n.scripts = append(n.scripts, [2]int{n.script, end})
			n.script = -1
		}
	case "/style":
		if n.inTag == 2 {
			n.inTag = 0
		}
	case "script":
		n.inTag = 1
		n.script = end
	case "style":
		n.inTag = 2
	case "a", "img":
		want := "href"
		if tag == "img" {
			want = "src"
		}
		for _, a := range n.args {
			if a[0] == want && a[1] != "" {
				n.text = append(append(n.text, a[1]...), ' ')
				n.spaceWritten = true
				break
			}
		}
	}
	n.args = n.args[:0]
	n.tag = n.tag[:0]
}

func isAlnum(c byte) bool { return c >= '0' && c <= '9' || lower(c) >= 'a' && lower(c) <= 'z' }

func isHex(c byte) bool { return c >= '0' && c <= '9' || lower(c) >= 'a' && lower(c) <= 'f' }
