package engine

import (
	"slices"
	"sync"

	"github.com/fsigkd/fsigkd/internal/jsnorm"
)

// A text's normalised views. ClamAV looks for the signatures of target
// 7 (text) only in a text normalised, and for those of target 0 there
// too: letters lowered, each run of white space (tab, line feed,
// vertical tab, form feed, carriage return, space) made one space, the
// other control characters and every byte from 0x80 dropped. So a
// signature written in lower case finds "EVAL(UNESCAPE(" in a script,
// and one with a single space finds words split by tabs and line ends.
// The objects so viewed are those ClamAV types as text (no format's
// first bytes, and the first 1,024 bytes ASCII or extended ASCII without
// control characters, or UTF-16) up to 20 MiB, as clamscan reads them
// (TestNormalisedTextAsClamscanReadsIt). A text ClamAV takes for HTML
// (htmlview.go) has its own two views instead, where the signatures of
// targets 3 (HTML) and 0 are looked for; target 3 is looked for in such
// a page as it is too, and in no other object.

// The views of an object.
const (
	viewRaw   = iota // the object as it is
	viewText         // a text normalised
	viewHTML         // an HTML page's views
	viewMacro        // a macro's source as it is (engine.go: matchIn)
)

// maxTarget is the highest target type ClamAV knows.
const maxTarget = 14

// maxNormalise is the largest object whose text is normalised (ClamAV's
// MaxScriptNormalize as shipped); maxHTML, the largest page whose views
// are made (MaxHTMLNormalize), and maxNoTags the largest whose text view
// is searched (MaxHTMLNoTags).
const (
	maxNormalise = 20 << 20
	maxHTML      = 40 << 20
	maxNoTags    = 8 << 20
)

// looks tells whether a signature of target t is looked for in an
// object of target type typ (targetOf; 3 for an HTML page) in view.
func looks(t, typ int8, view byte) bool {
	switch view {
	case viewText:
		return t == 0 || t == 7
	case viewHTML:
		return t == 0 || t == 3
	case viewMacro:
		return t == 0 || t == 2
	}
	if t == 7 || t == 3 && typ != 3 {
		return false
	}
	return !typedTargets[t] || t == typ
}

// normalisable tells whether s can match in view: none of its bytes
// matched as written is an upper-case letter, nor, in a text normalised,
// a control character or from 0x80 (two spaces in a row, which
// normalised text never holds either, are not looked for).
func (s *bodySig) normalisable(view byte) bool {
	for _, p := range s.parts {
		if p.kind != kLit {
			continue
		}
		for _, c := range p.lit {
			if c >= 'A' && c <= 'Z' || view == viewText && (c < 0x20 || c >= 0x80) {
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
func isText(data []byte, types ftypes) bool {
	if len(data) == 0 {
		return false
	}
	if _, claimed := types.typeOf(data); claimed {
		return false
	}
	head := data[:min(len(data), typeHead)]
	return asciiText(head) || isUTF16(head)
}

// asciiText tells whether ClamAV types head, an object's first bytes, as
// ASCII text (which takes every byte from 0x80 as extended ASCII).
func asciiText(head []byte) bool {
	for _, c := range head {
		if !textChar[c] {
			return false
		}
	}
	return true
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

// matchViews looks for the signatures of an object's normalised views
// in them: an HTML page's two, or a text's, when data is such an object
// and not too large (and some signature can match there).
func (db *DB) matchViews(data []byte, within []string, found func(name string) bool) {
	if db.text == nil && db.html == nil || len(data) > maxHTML || len(data) == 0 {
		return
	}
	if _, claimed := db.types.typeOf(data); claimed {
		return
	}
	if isHTML(data) {
		db.matchHTML(data, within, found)
		return
	}
	if db.text == nil || len(data) > maxNormalise || !isText(data, db.types) {
		return
	}
	bp := normBufs.Get().(*[]byte)
	defer normBufs.Put(bp)
	*bp = normalise((*bp)[:0], data)
	db.passOver(*bp, db.text, viewText, within, found)
	if cap(*bp) > keepNormBuf {
		*bp = nil // a large one is not kept
	}
}

// matchHTML looks for the signatures of the HTML views in an HTML page's:
// the page without comments, then (found nothing, and not too large) its
// text, then (found nothing) its scripts normalised, as HTML and as text
// (those of targets 0 and 7; one of target 7 with a control character or
// a byte from 0x80, which only a script's strings could match there, is
// not looked for in them).
func (db *DB) matchHTML(data []byte, within []string, found func(name string) bool) {
	if db.html == nil {
		return
	}
	tags, text, js := normBufs.Get().(*[]byte), normBufs.Get().(*[]byte), normBufs.Get().(*[]byte)
	defer func() {
		for _, bp := range []*[]byte{tags, text, js} {
			if cap(*bp) > keepNormBuf {
				*bp = nil
			}
			normBufs.Put(bp)
		}
	}()
	var scripts [][2]int
	*tags, *text, scripts = htmlViews(data, (*tags)[:0], (*text)[:0])
	stopped := false
	f := stopWith(found, &stopped)
	any := false
	g := func(name string) bool { any = true; return f(name) }
	db.passOver(*tags, db.html, viewHTML, within, g)
	if stopped || any {
		return
	}
	if len(data) < maxNoTags {
		db.passOver(*text, db.html, viewHTML, within, g)
		if stopped || any {
			return
		}
	}
	if len(scripts) == 0 {
		return
	}
	*js = scriptView((*js)[:0], data, scripts)
	db.passOver(*js, db.html, viewHTML, within, g)
	if stopped || any || db.text == nil {
		return
	}
	db.passOver(*js, db.text, viewText, within, f)
}

// maxScripts is the most of a page's scripts normalised: ClamAV reads
// all of a page up to MaxHTMLNormalize; the normaliser keeps every token
// of a script (about 16 bytes a byte of script at worst) and so is
// bounded here; what is past it is not in this view (the page's other
// views and the page itself are searched whole).
const maxScripts = 2 << 20

// scriptView is ClamAV's javascript view of a page whose scripts are
// where scripts says: each, its zero bytes dropped and its line feeds
// made spaces (as ClamAV reads a page), normalised (jsnorm).
func scriptView(dst, data []byte, scripts [][2]int) []byte {
	left := maxScripts
	var s []byte
	for _, r := range scripts {
		if left <= 0 {
			break
		}
		s = s[:0]
		for _, c := range data[r[0]:min(r[1], r[0]+left)] {
			switch c {
			case 0:
				continue
			case '\n':
				c = ' '
			}
			s = append(s, c)
		}
		left -= r[1] - r[0]
		dst = jsnorm.AppendScript(dst, s)
	}
	return dst
}
