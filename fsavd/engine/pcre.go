package engine

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A logical signature's PCRE part (ClamAV 0.99 and later):
//
//	[Offset:]Trigger/Regex/[Flags]
//
// The regular expression is tried only on an object where Trigger, a
// logical expression over the signature's other parts, holds; it counts
// as those parts do, once, or every match with the flag g. It runs on Go's
// regexp (RE2): what RE2 cannot express (back-references, look-around,
// possessive and atomic groups) fails to compile and the signature is
// skipped, counted. RE2 reads the object as UTF-8, so a pattern's . and
// classes take a valid multi-byte character as one where PCRE takes its
// bytes; ClamAV's patterns are ASCII and rarely meet the difference.
//
// Flags: i, s, m (as in PCRE), G (ungreedy), A (anchored at the offset),
// g (count every match), r and E (nothing to do here: every object is
// whole, and $ ends the object); e (the match within the offset's range)
// with an absolute offset. x (extended) and the other offsets are
// skipped, counted.
type pcrePart struct {
	trigger *lexpr
	re      *regexp.Regexp
	global  bool
	// The match must start at off..off+span (span -1: anywhere from
	// off on); with encompass, it must end within it too.
	off, span int
	encompass bool
}

// maxPCRE bounds a regular expression's text.
const maxPCRE = 8 << 10

// isPCRE tells whether a part is a PCRE one: a trigger, a slash, a pattern
// and a slash (a hex pattern never holds a slash).
func isPCRE(s string) bool { return strings.Count(s, "/") >= 2 }

// parsePCRE reads a PCRE part of a logical signature of n parts.
func parsePCRE(s string, n int) (*pcrePart, error) {
	first, last := strings.IndexByte(s, '/'), strings.LastIndexByte(s, '/')
	head, pattern, flags := s[:first], s[first+1:last], s[last+1:]
	if len(pattern) > maxPCRE {
		return nil, fmt.Errorf("regular expression longer than %d", maxPCRE)
	}
	p := &pcrePart{span: -1}
	trigger := head
	if o, t, ok := strings.Cut(head, ":"); ok {
		trigger = t
		switch {
		case o == "*":
		case o != "" && o[0] >= '0' && o[0] <= '9':
			at, span, _ := strings.Cut(o, ",")
			v, err := strconv.Atoi(at)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("bad offset %q", o)
			}
			p.off, p.span = v, 0
			if span != "" {
				if p.span, err = strconv.Atoi(span); err != nil || p.span < 0 {
					return nil, fmt.Errorf("bad offset %q", o)
				}
			}
		default:
			return nil, errUnsupported // EOF-n, EP+n, Sx+n...
		}
	}
	var err error
	if p.trigger, err = parseLogical(trigger, n); err != nil {
		return nil, err
	}
	prefix, anchored := "", false
	for _, f := range flags {
		switch f {
		case 'i', 's', 'm':
			prefix += string(f)
		case 'G':
			prefix += "U"
		case 'A':
			anchored = true
		case 'g':
			p.global = true
		case 'e':
			p.encompass = true
		case 'r', 'E':
		case 'x':
			return nil, errUnsupported
		default:
			return nil, fmt.Errorf("unknown flag %q", f)
		}
	}
	if anchored {
		if p.span < 0 {
			p.span = 0
		}
	}
	if prefix != "" {
		pattern = "(?" + prefix + ")" + pattern
	}
	if p.re, err = regexp.Compile(pattern); err != nil {
		return nil, errUnsupported // beyond RE2
	}
	return p, nil
}

// triggers lists the parts a trigger names.
func (e *lexpr) triggers(out []int) []int {
	if e.op == 0 {
		return append(out, e.part)
	}
	for _, a := range e.args {
		out = a.triggers(out)
	}
	return out
}

// count is how many times p matches in data (at most maxCount; once
// without g).
func (p *pcrePart) count(data []byte) int {
	lo := min(p.off, len(data))
	hi := len(data)
	if p.span >= 0 {
		hi = min(p.off+p.span, len(data))
	}
	n := 0
	for from := lo; from <= hi && n < maxCount; {
		m := p.re.FindIndex(data[from:])
		if m == nil {
			break
		}
		start, end := from+m[0], from+m[1]
		if start > hi {
			break
		}
		if p.span >= 0 && p.encompass && end > p.off+p.span {
			break
		}
		n++
		if !p.global {
			break
		}
		from = max(end, start+1)
	}
	return n
}
