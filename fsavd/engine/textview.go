package engine

import (
	"slices"
	"sync"
)

// A text's normalised view. ClamAV looks for the signatures of target 7
// (text) only in a text normalised, and for those of target 0 there too:
// letters lowered, each run of white space (tab, line feed, vertical
// tab, form feed, carriage return, space) made one space, the other
// control characters and every byte from 0x80 dropped. So a signature
// written in lower case finds "EVAL(UNESCAPE(" in a script, and one with
// a single space finds words split by tabs and line ends. The objects so
// viewed are those ClamAV types as text (no format's first bytes, and
// the first 1,024 bytes ASCII or extended ASCII without control
// characters, or UTF-16) up to 20 MiB, as clamscan reads them
// (TestNormalisedTextAsClamscanReadsIt). ClamAV normalises HTML its own
// way (tags and comments, entities, scripts decoded); here an HTML page
// is normalised as text, and target 3 (HTML) is looked for in both views
// of every object, target 7 in the normalised view of HTML too.

// maxTarget is the highest target type ClamAV knows.
const maxTarget = 14

// maxNormalise is the largest object whose text is normalised (ClamAV's
// MaxScriptNormalize as shipped).
const maxNormalise = 20 << 20

// looks tells whether a signature of target t is looked for in an
// object of target type typ (targetOf), as it is or (norm) in its text
// normalised.
func looks(t, typ int8, norm bool) bool {
	if norm {
		return t == 0 || t == 3 || t == 7
	}
	if t == 7 {
		return false
	}
	return !typedTargets[int(t)] || t == typ
}

// normalisable tells whether s can match in a text normalised: none of
// its bytes matched as written is an upper-case letter, a control
// character or from 0x80 (two spaces in a row, which normalised text
// never holds either, are not looked for).
func (s *bodySig) normalisable() bool {
	for _, p := range s.parts {
		if p.kind != kLit {
			continue
		}
		for _, c := range p.lit {
			if c < 0x20 || c >= 0x80 || c >= 'A' && c <= 'Z' {
				return false
			}
		}
	}
	return true
}

// textChar says, for each byte, whether ClamAV counts it as text when
// typing an object: all but the control characters other than BEL, BS,
// tab, line feed, form feed, carriage return and escape, and DEL.
var textChar = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != 0x7f || c >= 7 && c <= 10 || c == 12 || c == 13 || c == 0x1b
	}
	return t
}()

// isText tells whether ClamAV types data as text: no format claims its
// first bytes, and they are text, one byte a character or UTF-16.
func isText(data []byte) bool {
	if len(data) == 0 {
		return false
	}
	if _, claimed := typeOf(data); claimed {
		return false
	}
	head := data[:min(len(data), typeHead)]
	ascii := true
	for _, c := range head {
		if !textChar[c] {
			ascii = false
			break
		}
	}
	return ascii || isUTF16(head)
}

// isUTF16 is ClamAV's test of UTF-16 text (td_isutf16): with a byte-order
// mark, fewer than half the characters below 128 control characters;
// without, none. The first character is not looked at.
func isUTF16(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	be, bom := true, true
	switch {
	case b[0] == 0xff && b[1] == 0xfe:
		be = false
	case b[0] == 0xfe && b[1] == 0xff:
	default:
		bom = false
	}
	bad := 0
	for i := 2; i+1 < len(b); i += 2 {
		c := int(b[i]) | int(b[i+1])<<8
		if be {
			c = int(b[i+1]) | int(b[i])<<8
		}
		if c == 0xfffe {
			return false
		}
		if c < 128 && !textChar[c] {
			if !bom {
				return false
			}
			bad++
		}
	}
	return !bom || bad < len(b)/2
}

// normBufs holds the buffers texts are normalised into (one of at most
// keepNormBuf bytes is kept).
var normBufs = sync.Pool{New: func() any { return new([]byte) }}

const keepNormBuf = 2 << 20

// normOut is what normalising makes of each byte: 0 for none (control
// characters, bytes from 0x80), a space for white space (one for a run),
// the byte itself with letters lowered.
var normOut = func() (o [256]byte) {
	for c := range o {
		switch {
		case c == ' ' || c >= '\t' && c <= '\r':
			o[c] = ' '
		case c < 0x20 || c >= 0x80:
		case c >= 'A' && c <= 'Z':
			o[c] = byte(c) + 'a' - 'A'
		default:
			o[c] = byte(c)
		}
	}
	return o
}()

// normalise appends data's text normalised to dst.
func normalise(dst, data []byte) []byte {
	n := len(dst)
	dst = slices.Grow(dst, len(data))[:n+len(data)] // never longer than data
	out, j, space := dst[n:], 0, false
	for _, c := range data {
		o := normOut[c]
		switch {
		case o == 0:
			continue
		case o == ' ':
			if space {
				continue
			}
			space = true
		default:
			space = false
		}
		out[j] = o
		j++
	}
	return dst[:n+j]
}

// matchNormalised looks for the signatures of the normalised view in
// data's text normalised, when data is a text of at most maxNormalise
// bytes (and some signature can match there).
func (db *DB) matchNormalised(data []byte, within []string, found func(name string) bool) {
	if db.norm == nil || len(data) > maxNormalise || !isText(data) {
		return
	}
	bp := normBufs.Get().(*[]byte)
	defer normBufs.Put(bp)
	*bp = normalise((*bp)[:0], data)
	db.passOver(*bp, db.norm, true, within, found)
	if cap(*bp) > keepNormBuf {
		*bp = nil // a large one is not kept
	}
}
