package unpack

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"html"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/fsigkd/fsigkd/internal/bytesearch"
	"github.com/fsigkd/fsigkd/internal/hexesc"
)

// data: addresses (RFC 2397, read as the WHATWG fetch standard reads
// them): a page, a style sheet, a picture's markup or a mail's HTML part
// may carry a whole file in an address, which a browser opens or saves
// (download="...") as it would a file fetched from a server: "HTML
// smuggling". Every data: address written in a text is decoded and walked
// as a member of that text, whatever the context:
//
//   - an attribute's value, quoted with " or ', or unquoted; a style
//     sheet's url(...); a script's string; plain text;
//   - the scheme in any case, white space around the address and inside
//     it (a browser removes tabs and line breaks from an address, and any
//     white space from base64);
//   - the body percent-encoded, base64 (read leniently, as mail readers
//     read it), or both;
//   - HTML character references anywhere in the address, the scheme's
//     letters and colon included (&#100;ata&colon;), as a browser decodes
//     them in an attribute: an address holding a reference is decoded both
//     as written and with its references resolved.
//
// An address a script assembles while it runs (joined strings, escape
// sequences) is not in the text to be read, here as in ClamAV (the long
// base64 strings a script decodes are read: base64str.go). The member is
// named by the download attribute of the tag that holds the address, as
// a browser names the file it saves, or data-uri-N.

// maxDataURIMediaType bounds the media type and parameters before the
// comma: longer, it is no data: address a browser would take.
const maxDataURIMediaType = 512

// carried is one file a text carries: in a data: address, or as a long
// base64 (or hex) string.
type carried struct {
	name string // the download attribute's value, base64-string-N, hex-string-N; "": data-uri-N
	data []byte // the file, decoded
}

// carriedIn finds the files d carries (data: addresses, then long base64
// strings) and decodes them: at most limit of them, each once. a, when
// set, is what was searched of d ahead (its places are taken, and d is
// searched only from where they stop). A text in UTF-16 (told by its
// byte order mark, as a browser tells it) is read as the characters it
// holds.
func carriedIn(d []byte, limit int, a *Ahead) []carried {
	var known, b64Known []int
	from, b64From := 0, base64Piece-1
	if a != nil && a.Upto <= len(d) && !hasBOM16(d) {
		if !a.URIsCrowded {
			// Searched again from where a pair could not be seen whole.
			known, from = a.URIs, max(0, a.Upto-len("&colon;")+1)
		}
		if !a.B64Crowded {
			b64Known, b64From = a.B64, a.B64Next
		}
	}
	d = fromUTF16(d)
	var out []carried
	var seen map[uint64]bool // made at the first file: most texts carry none
	var seed maphash.Seed
	add := func(name string, body []byte) {
		if seen == nil {
			seen, seed = map[uint64]bool{}, maphash.MakeSeed()
		}
		h := maphash.Bytes(seed, body)
		if !seen[h] && len(out) < limit {
			seen[h] = true
			out = append(out, carried{name: name, data: body})
		}
	}
	last := 0
	schemeStarts(d, known, from, func(start, colonEnd int) bool {
		if start < last {
			return true // inside the address before
		}
		if bytes.IndexByte(d[colonEnd:min(len(d), colonEnd+2*maxDataURIMediaType)], ',') < 0 {
			return true // no address: its end is not looked for
		}
		end, ok := dataURIEnd(d, start, colonEnd)
		if !ok {
			return true
		}
		name := downloadName(d, start, end)
		span := d[colonEnd:end]
		bodies := decodeDataURI(span)
		if bytes.IndexByte(span, '&') >= 0 {
			// In an attribute a browser resolves the references first;
			// in a script it does not: both are read. Resolved, the
			// address may end sooner: at a quote written as a reference
			// (a page in an iframe's srcdoc: href=&quot;data:...&quot;).
			u := []byte(html.UnescapeString(string(span)))
			if q := quoteBefore(d, start); q != 0 {
				if k := bytes.IndexByte(u, q); k >= 0 {
					u = u[:k]
				}
			}
			bodies = append(bodies, decodeDataURI(u)...)
		}
		if len(bodies) > 0 {
			// What the address holds is searched as its member, not
			// again here (an address whose end is not found holds the
			// rest of the text).
			last = end
		}
		for _, b := range bodies {
			add(name, b)
		}
		// Done at the limit, or when an address holds the rest of the text.
		return len(out) < limit && last < len(d)
	})
	// And the long base64 strings (base64str.go); an address's base64
	// is one, and is not walked twice.
	n := 0
	// The places a list of numbers or a string of escapes may be in,
	// looked at in the same pass (scriptbytes.go): those found ahead,
	// then those of this pass.
	scriptAt := slices.Clone(b64Known)
	base64Runs(d, b64Known, b64From, &scriptAt, func(run []byte) bool {
		n++
		if b := decodeBase64Run(run); len(b) >= minBase64Run/4*3 { // not pads inside
			add("base64-string-"+strconv.Itoa(n), b)
		}
		// Hex digits are base64 characters too: a string of them alone
		// is also read as hex, as a script may decode it.
		if b, ok := decodeHexRun(run); ok {
			add("hex-string-"+strconv.Itoa(n), b)
		}
		return len(out) < limit
	})
	// And a script's lists of numbers and strings of escapes
	// (scriptbytes.go), looked for at the same places.
	counts := map[string]int{}
	scriptBytesRuns(d, scriptAt, func(kind string, b []byte) bool {
		counts[kind]++
		add(kind+"-"+strconv.Itoa(counts[kind]), b)
		return len(out) < limit
	})
	return out
}

// schemeStarts gives yield, in the order of the pairs it found them by,
// where each "data:" of d starts and where its colon ends, its characters
// written as they are or as references, until yield says no more.
// One pass over d, from the place from, for the pairs every way of
// writing the scheme holds (its "a:", or a reference: "&#", "&colon;"),
// with vector instructions where the processor has them: in binary data
// a place is looked at about once in 16 KiB. The places of those pairs
// before from were found ahead: known.
func schemeStarts(d []byte, known []int, from int, yield func(start, colonEnd int) bool) {
	i := from
	next := func() int {
		if len(known) > 0 {
			r := known[0]
			known = known[1:]
			return r
		}
		if i >= len(d) {
			return -1
		}
		k, _ := schemeAnchors.Index(d[i:])
		if k < 0 {
			i = len(d)
			return -1
		}
		r := i + k
		i = r + 1
		return r
	}
	for r := next(); r >= 0; r = next() {
		if d[r] != '&' { // "a:", "A:", a tab or line break and ":": a colon as it is
			if s, ok := schemeBefore(d, r+1); ok && !yield(s, r+2) {
				return
			}
			continue
		}
		c, w := reference(d[r:])
		switch {
		case w == 0:
		case c == ':':
			// The colon a reference: the scheme's letters before it.
			for s := max(0, r-maxSchemeWritten); s < r; s++ {
				if d[s] != '&' && d[s]|0x20 != 'd' {
					continue
				}
				if e, ok := lettersAt(d, s, "data"); ok && skipURLSpace(d, e) == r {
					if !yield(s, r+w) {
						return
					}
					break
				}
			}
		case c < 0x80 && isURLSpace(byte(c)):
			// A tab or line break as a reference, before a colon.
			if e := skipURLSpace(d, r); e < len(d) && d[e] == ':' {
				if s, ok := schemeBefore(d, e); ok && !yield(s, e+1) {
					return
				}
			}
		case c < 0x80 && (byte(c)|0x20 == 'd' || byte(c)|0x20 == 'a' || byte(c)|0x20 == 't'):
			// A letter a reference: the scheme starts at most three
			// characters before it, and its colon follows its letters.
			for s := max(0, r-3); s <= r; s++ {
				e, ok := lettersAt(d, s, "data")
				if !ok || e <= r {
					continue
				}
				end := 0
				if e = skipURLSpace(d, e); e < len(d) && d[e] == ':' {
					end = e + 1
				} else if c, w := reference(d[e:]); c == ':' {
					end = e + w
				}
				if end > 0 && !yield(s, end) {
					return
				}
			}
		}
	}
}

// schemeBefore tells whether "data" ends just before the colon at
// colon, its letters as they are with any tabs and line breaks among
// them (a browser's URL parser removes them), or written as references
// (read forward from at most maxSchemeWritten bytes before, where one
// stands): where it starts.
func schemeBefore(d []byte, colon int) (int, bool) {
	i := colon
	for k := 3; k >= 0; k-- {
		for i > 0 && isURLSpace(d[i-1]) {
			i--
		}
		if i == 0 || d[i-1]|0x20 != "data"[k] {
			break
		}
		if i--; k == 0 {
			return i, true
		}
	}
	lo := max(0, colon-maxSchemeWritten)
	if bytes.IndexByte(d[lo:colon], '&') < 0 {
		return 0, false
	}
	for s := lo; s < colon; s++ {
		if d[s] != '&' && d[s]|0x20 != 'd' {
			continue
		}
		if e, ok := lettersAt(d, s, "data"); ok && skipURLSpace(d, e) == colon {
			return s, true
		}
	}
	return 0, false
}

// isURLSpace tells whether c is one a URL parser removes wherever it
// stands: a tab or a line break.
func isURLSpace(c byte) bool { return c == '\t' || c == '\n' || c == '\r' }

// skipURLSpace passes tabs and line breaks from i, as they are or as
// references.
func skipURLSpace(d []byte, i int) int {
	for i < len(d) {
		if isURLSpace(d[i]) {
			i++
			continue
		}
		if d[i] != '&' {
			break
		}
		c, w := reference(d[i:])
		if w == 0 || c > 0x7f || !isURLSpace(byte(c)) {
			break
		}
		i += w
	}
	return i
}

// mayBeScheme tells whether the place i of window, one of uriAnchors'
// pairs, is one where schemeStarts may find a scheme: "data" before a
// colon (tabs and line breaks among its letters, or a reference among
// the maxSchemeWritten bytes before it), a reference that is a colon or
// one of the scheme's letters at an ampersand; also where window, a
// stretch of the object, ends before it can tell.
func mayBeScheme(window []byte, i int) bool {
	if window[i] != '&' {
		if _, ok := schemeBefore(window, i+1); ok {
			return true
		}
		// What lies before the window: the scan's to judge.
		j := i
		for j > 0 && isURLSpace(window[j-1]) {
			j--
		}
		return j < 4+maxSchemeWritten
	}
	if len(window)-i < 32 {
		return true
	}
	c, w := reference(window[i:])
	switch {
	case i+w == len(window):
		return true // its digits run to the window's end
	case w == 0:
		return false
	}
	return c == ':' || c < 0x80 && (isURLSpace(byte(c)) || byte(c)|0x20 == 'd' || byte(c)|0x20 == 'a' || byte(c)|0x20 == 't')
}

// uriAnchors are the pairs one of which every way of writing "data:"
// holds (see schemeStarts): also found ahead (Ahead.Wanted).
var uriAnchors = [][]byte{[]byte("a:"), []byte("A:"), []byte("\t:"), []byte("\n:"), []byte("\r:"), []byte(";:"), []byte("&#"), []byte("&colon;")}

var schemeAnchors = bytesearch.NewSet(uriAnchors...)

// maxSchemeWritten bounds how long "data" may be when each of its
// letters is written as a reference (&#x0000000064; and the like).
const maxSchemeWritten = 64

// lettersAt tells whether the characters of d from s spell word (any
// case), each as it is or as a reference, tabs and line breaks between
// them, and where they end.
func lettersAt(d []byte, s int, word string) (int, bool) {
	for k := 0; k < len(word); k++ {
		if k > 0 {
			s = skipURLSpace(d, s)
		}
		if s >= len(d) {
			return 0, false
		}
		c, w := rune(d[s]), 1
		if d[s] == '&' {
			if c, w = reference(d[s:]); w == 0 {
				return 0, false
			}
		}
		if c < 0x80 && byte(c)|0x20 != word[k] {
			return 0, false
		}
		if c >= 0x80 {
			return 0, false
		}
		s += w
	}
	return s, true
}

// reference reads the character reference at the start of b (&#NNN;,
// &#xHH;, any number of leading zeros, their semicolon left out as a
// browser allows, or &colon;): the character and its length, 0 when
// there is none.
func reference(b []byte) (rune, int) {
	if len(b) < 3 || b[0] != '&' {
		return 0, 0
	}
	for _, named := range []struct {
		name string
		c    rune
	}{{"&colon;", ':'}, {"&Tab;", '\t'}, {"&NewLine;", '\n'}} {
		if bytes.HasPrefix(b, []byte(named.name)) {
			return named.c, len(named.name)
		}
	}
	if b[1] != '#' {
		return 0, 0
	}
	i, base := 2, 10
	if b[2] == 'x' || b[2] == 'X' {
		i, base = 3, 16
	}
	start := i
	for i < len(b) && b[i] == '0' {
		i++ // leading zeros, as many as written: a browser reads them all
	}
	v := 0
	for ; i < len(b); i++ {
		d := hexesc.Digit(b[i])
		if d < 0 || d >= base {
			break
		}
		if v <= unicode.MaxRune {
			v = v*base + d
		}
	}
	if i == start {
		return 0, 0
	}
	if v > unicode.MaxRune {
		v = unicode.ReplacementChar // as a browser reads a number past Unicode
	}
	if i < len(b) && b[i] == ';' {
		i++
	}
	return rune(v), i
}

func hasBOM16(d []byte) bool {
	return bytes.HasPrefix(d, []byte{0xff, 0xfe}) || bytes.HasPrefix(d, []byte{0xfe, 0xff})
}

// fromUTF16 gives a text that starts with a UTF-16 byte order mark as
// UTF-8; any other as it is.
func fromUTF16(d []byte) []byte {
	if !hasBOM16(d) {
		return d
	}
	var order binary.ByteOrder = binary.BigEndian
	if d[0] == 0xff {
		order = binary.LittleEndian
	}
	return []byte(utf16Text(d[2:], order))
}

// dataURIEnd is where the address that starts at start ends: at the
// quote that opened it (a quote before it, white space between allowed),
// at the parenthesis that closes a style sheet's url(, else (unquoted) at
// white space, '>' or a quote. ok is false when what precedes the scheme
// is a letter or digit (the "data:" of another word, as "metadata:").
func dataURIEnd(d []byte, start, from int) (end int, ok bool) {
	if start > 0 && isAlnumASCII(d[start-1]) {
		return 0, false
	}
	before := byte(0)
	for k := start - 1; k >= 0; k-- {
		if !isSpaceASCII(d[k]) {
			before = d[k]
			break
		}
	}
	var stop func(c byte) bool
	switch before {
	case '"', '\'', '`':
		stop = func(c byte) bool { return c == before }
	case '(':
		stop = func(c byte) bool { return c == ')' || c == '"' || c == '\'' }
	default:
		stop = func(c byte) bool { return isSpaceASCII(c) || c == '>' || c == '"' || c == '\'' || c == '<' }
	}
	end = len(d)
	for k := from; k < len(d); k++ {
		if stop(d[k]) {
			end = k
			break
		}
	}
	return end, true
}

// quoteBefore is the quote written as a reference (&quot;, &#39;, ...)
// just before the address starting at start, or 0.
func quoteBefore(d []byte, start int) byte {
	k := start - 1
	for k >= 0 && isSpaceASCII(d[k]) {
		k--
	}
	if k < 0 || d[k] != ';' {
		return 0
	}
	amp := bytes.LastIndexByte(d[max(0, k-8):k], '&')
	if amp < 0 {
		return 0
	}
	r := html.UnescapeString(string(d[max(0, k-8)+amp : k+1]))
	if r == `"` || r == "'" {
		return r[0]
	}
	return 0
}

// decodeDataURI decodes what follows "data:": the media type up to the
// first comma (within maxDataURIMediaType bytes: else there is no
// address, and nothing further is read), the body after it,
// percent-decoded, then base64-decoded when the media type ends in
// ";base64". Tabs and line breaks are taken out first, as the URL
// standard's parser takes them out; Chromium keeps them in the media
// type, so that a ";bas\ne64" there is no base64 to it: when they change
// the reading, both bodies are given.
func decodeDataURI(rest []byte) [][]byte {
	comma := bytes.IndexByte(rest[:min(len(rest), 2*maxDataURIMediaType)], ',')
	if comma < 0 {
		return nil
	}
	meta, body := withoutTabsAndBreaks(rest[:comma]), percentDecode(withoutTabsAndBreaks(rest[comma+1:]))
	if len(meta) > maxDataURIMediaType {
		return nil
	}
	b64 := isBase64Meta(meta)
	if b64 != isBase64Meta(rest[:comma]) {
		return [][]byte{lenientBase64(body), body}
	}
	if b64 {
		return [][]byte{lenientBase64(body)}
	}
	return [][]byte{body}
}

func withoutTabsAndBreaks(b []byte) []byte {
	if !bytes.ContainsAny(b, "\t\n\r") {
		return b
	}
	kept := make([]byte, 0, len(b))
	for _, c := range b {
		if c != '\t' && c != '\n' && c != '\r' {
			kept = append(kept, c)
		}
	}
	return kept
}

// isBase64Meta tells whether a data: address's media type ends in
// ";base64" (any case, white space around it allowed, also percent-
// encoded, as the standard reads it after decoding).
func isBase64Meta(meta []byte) bool {
	m := strings.TrimRight(string(percentDecode(meta)), " \f")
	i := strings.LastIndexByte(m, ';')
	return i >= 0 && strings.EqualFold(strings.TrimLeft(m[i+1:], " \f"), "base64")
}

// percentDecode undoes %XX escapes; a '%' not followed by two hex digits
// stays as it is.
func percentDecode(b []byte) []byte {
	if bytes.IndexByte(b, '%') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) {
			if hi, lo := hexesc.Digit(b[i+1]), hexesc.Digit(b[i+2]); hi >= 0 && lo >= 0 {
				out = append(out, byte(hi<<4|lo))
				i += 2
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}

// maxTagReach bounds how far from an address its tag's start and end are
// looked for.
const maxTagReach = 4096

// downloadName is the download attribute of the tag that holds the
// address d[start:end], or "".
func downloadName(d []byte, start, end int) string {
	lt := bytes.LastIndexByte(d[max(0, start-maxTagReach):start], '<')
	if lt < 0 {
		return ""
	}
	lt += max(0, start-maxTagReach)
	if bytes.IndexByte(d[lt:start], '>') >= 0 {
		return "" // the address is not inside that tag
	}
	gt := bytes.IndexByte(d[end:min(len(d), end+maxTagReach)], '>')
	if gt < 0 {
		return ""
	}
	tag := string(d[lt : end+gt])
	for _, part := range []string{tag[:start-lt], tag[end-lt:]} {
		if v, ok := attrValue(part, "download"); ok {
			// Resolved, and without the quotes references may have
			// written (srcdoc: download=&quot;a.exe&quot;).
			return strings.Trim(html.UnescapeString(v), `"' `)
		}
	}
	return ""
}

// attrValue is the value of the attribute name in a part of a tag.
func attrValue(tag, name string) (string, bool) {
	low := strings.ToLower(tag)
	for from := 0; ; {
		i := strings.Index(low[from:], name)
		if i < 0 {
			return "", false
		}
		i += from
		from = i + len(name)
		if i > 0 && !isSpaceASCII(low[i-1]) {
			continue
		}
		rest := strings.TrimLeft(tag[from:], " \t\r\n\f")
		if !strings.HasPrefix(rest, "=") {
			continue
		}
		rest = strings.TrimLeft(rest[1:], " \t\r\n\f")
		if rest != "" && (rest[0] == '"' || rest[0] == '\'') {
			v, _, _ := strings.Cut(rest[1:], rest[:1])
			return v, true
		}
		v, _, _ := strings.Cut(rest, " ")
		return strings.TrimRight(v, "/"), true
	}
}

func isSpaceASCII(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

func isAlnumASCII(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z'
}

// carried walks the files data carries as a text (in data: addresses
// and long base64 strings) as its members.
func (s *scan) carried(data []byte, where string, depth int) {
	var ahead *Ahead
	if depth == 0 {
		ahead = s.opt.Ahead
	}
	// One past the files left, for the limit to be said.
	for n, u := range carriedIn(data, max(0, s.lim.MaxFiles-s.files)+1, ahead) {
		if s.stop {
			return
		}
		name := u.name
		if name == "" {
			name = "data-uri-" + strconv.Itoa(n+1)
		}
		s.nested(depth, where, func() {
			s.memberData(u.data, int64(len(u.data)), join(where, name), depth+1)
		})
	}
}
