package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// ClamAV's executable offsets place a body signature in a Windows
// program (PE) by its structure: EP+n and EP-n from the entry point,
// Sx+n from the start of section x (counted from 0), SL+n from the last
// section's, SEx anywhere in section x; each but SEx with an optional
// ,m: the start may be up to m bytes later. They are read for the
// signatures whose target type is 1 (PE), which is what ClamAV's
// database uses them with; in another object they match nothing. The
// version-information offset (VI) is not read.

// isExecOffset tells an executable offset from the other forms.
func isExecOffset(offset string) bool {
	return strings.HasPrefix(offset, "EP") || strings.HasPrefix(offset, "S") || offset == "VI"
}

// execOffset reads an executable offset: its kind (see bodySig.offKind),
// the section it names, the distance and the span.
func execOffset(offset string) (kind byte, sec, off, span int, err error) {
	bad := fmt.Errorf("bad offset %q", offset)
	base, rest := offset, ""
	if i := strings.IndexAny(offset, "+-"); i >= 0 {
		base, rest = offset[:i], offset[i:]
	}
	if o, m, ok := strings.Cut(rest, ","); ok {
		rest = o
		if span, err = strconv.Atoi(m); err != nil || span < 0 {
			return 0, 0, 0, 0, bad
		}
	}
	if rest != "" {
		if off, err = strconv.Atoi(rest); err != nil {
			return 0, 0, 0, 0, bad
		}
	}
	switch {
	case base == "EP" && rest != "":
		return 'E', 0, off, span, nil
	case base == "SL" && rest != "" && off >= 0:
		return 'L', 0, off, span, nil
	case strings.HasPrefix(base, "SE") && rest == "" && span == 0:
		if sec, err = strconv.Atoi(base[2:]); err != nil || sec < 0 {
			return 0, 0, 0, 0, bad
		}
		return 'X', sec, 0, 0, nil
	case strings.HasPrefix(base, "S") && rest != "" && off >= 0:
		if sec, err = strconv.Atoi(base[1:]); err != nil || sec < 0 {
			return 0, 0, 0, 0, bad
		}
		return 'S', sec, off, span, nil
	case base == "VI":
		return 0, 0, 0, 0, errUnsupported
	}
	return 0, 0, 0, 0, bad
}

// place is where an executable offset's base lies in the program: the
// entry point ('E', its size 0), or a section's raw data; ok false when
// the object is no Windows program or has no such part.
func (l *exeLayout) place(kind byte, sec int) (exeSection, bool) {
	if l == nil {
		return exeSection{}, false
	}
	switch kind {
	case 'E':
		return exeSection{at: l.entry}, l.entry >= 0
	case 'L':
		if len(l.sections) == 0 {
			return exeSection{}, false
		}
		return l.sections[len(l.sections)-1], true
	}
	if sec >= len(l.sections) || l.sections[sec].size == 0 {
		return exeSection{}, false
	}
	return l.sections[sec], true
}
