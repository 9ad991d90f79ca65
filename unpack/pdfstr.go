package unpack

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// A PDF's JavaScript given as a string, not a stream (/JS (...) or
// /JS <...>, or an indirect string object): a reader runs it decoded,
// and in the file it is escaped (octal \ddd, line continuations) or in
// hex, where no signature sees it (ClamAV reads the hex form, not the
// octal one). Each is decoded as PDF defines a string (ISO 32000 7.3.4:
// balanced parentheses, the escapes, EOL made LF; hex digits, white
// space between them, an odd last digit followed by 0), a text string
// with a UTF-16BE byte order mark made UTF-8, the key's name read with
// its #xx escapes undone (/J#53), and walked as pdf-js-N. The scan goes
// on after each string, so that strings nested in strings cost one read.

// pdfJavaScript walks the JavaScript strings of the PDF data: those
// written after the key, then those of the indirect objects named there
// (found in one pass after).
func (s *scan) pdfJavaScript(data []byte, where string, depth int) {
	n := 0
	walk := func(str []byte) {
		n++
		s.memberData(pdfText(str), -1, join(where, "pdf-js-"+strconv.Itoa(n)), depth)
	}
	wanted := map[[2]int]bool{} // the objects named by reference
	for i := 0; i < len(data) && !s.stop; {
		k := bytes.IndexByte(data[i:], '/')
		if k < 0 {
			break
		}
		i += k + 1
		end := i
		for end < len(data) && !pdfDelimiter(data[end]) {
			end++
		}
		if end-i > 32 || !bytes.Equal(pdfUnescape(data[i:end]), []byte("JS")) {
			continue
		}
		v := pdfSkipSpace(data, end)
		if str, after, ok := pdfString(data, v); ok {
			i = after
			walk(str)
		} else if ref, ok := pdfReference(data, v); ok && len(wanted) < maxParts {
			wanted[ref] = true
		}
	}
	if len(wanted) == 0 || s.stop {
		return
	}
	for from := 0; !s.stop; {
		k := bytes.Index(data[from:], []byte("obj"))
		if k < 0 {
			return
		}
		at := from + k
		from = at + 3
		f := bytes.Fields(data[max(0, at-24):at])
		if len(f) < 2 {
			continue
		}
		num, err1 := strconv.Atoi(string(f[len(f)-2]))
		gen, err2 := strconv.Atoi(string(f[len(f)-1]))
		if err1 != nil || err2 != nil || !wanted[[2]int{num, gen}] {
			continue
		}
		if str, after, ok := pdfString(data, pdfSkipSpace(data, at+3)); ok {
			from = after
			walk(str)
		}
	}
}

// pdfReference reads a reference "N G R" at d[i].
func pdfReference(d []byte, i int) ([2]int, bool) {
	f := bytes.Fields(d[i:min(len(d), i+40)])
	if len(f) < 3 || !bytes.HasPrefix(f[2], []byte("R")) {
		return [2]int{}, false
	}
	num, err1 := strconv.Atoi(string(f[0]))
	gen, err2 := strconv.Atoi(string(f[1]))
	return [2]int{num, gen}, err1 == nil && err2 == nil
}

// pdfDelimiter tells whether c ends a PDF name: white space or one of
// the delimiters.
func pdfDelimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '\f', 0, '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

// pdfSkipSpace passes white space and comments from i.
func pdfSkipSpace(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\r', '\n', '\f', 0:
			i++
		case '%':
			for i < len(d) && d[i] != '\n' && d[i] != '\r' {
				i++
			}
		default:
			return i
		}
	}
	return i
}

// pdfString reads the string at d[i], literal or hex: its bytes and
// where it ends.
func pdfString(d []byte, i int) (str []byte, end int, ok bool) {
	switch {
	case i < len(d) && d[i] == '(':
		return pdfLiteral(d, i+1)
	case i+1 < len(d) && d[i] == '<' && d[i+1] != '<':
		j := bytes.IndexByte(d[i+1:], '>')
		if j < 0 {
			j = len(d) - i - 1
		}
		b, _ := pdfASCIIHex(d[i+1 : i+1+j])
		return b, i + 1 + j + 1, true
	}
	return nil, i, false
}

// pdfLiteral reads a literal string from d[i], just after its "(".
func pdfLiteral(d []byte, i int) (out []byte, end int, ok bool) {
	depth := 0
	for i < len(d) {
		c := d[i]
		i++
		switch c {
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return out, i, true
			}
			depth--
		case '\r':
			if i < len(d) && d[i] == '\n' {
				i++
			}
			c = '\n'
		case '\\':
			if i >= len(d) {
				return out, i, true
			}
			e := d[i]
			i++
			switch e {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case '\r', '\n': // a line continued
				if e == '\r' && i < len(d) && d[i] == '\n' {
					i++
				}
				continue
			default:
				if e >= '0' && e <= '7' {
					v := int(e - '0')
					for k := 0; k < 2 && i < len(d) && d[i] >= '0' && d[i] <= '7'; k++ {
						v = v*8 + int(d[i]-'0')
						i++
					}
					c = byte(v)
				} else {
					c = e // \( \) \\, and an unknown escape's character
				}
			}
		}
		out = append(out, c)
	}
	return out, i, true // cut short: what there is
}

// pdfText is a text string as a reader shows it: UTF-16BE with its byte
// order mark made UTF-8; any other as it is.
func pdfText(b []byte) []byte {
	if len(b) < 2 || b[0] != 0xfe || b[1] != 0xff {
		return b
	}
	return []byte(utf16Text(b[2:], binary.BigEndian))
}
