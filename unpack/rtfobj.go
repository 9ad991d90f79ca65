package unpack

import (
	"bytes"
	"encoding/binary"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/internal/hexesc"
)

// Objects embedded in RTF documents: each \objdata destination holds an
// OLE1 object written in hex (MS-OLEDS 2.2.4: its version, format, class
// name, topic and item, then its native data), the way RTF documents
// carry packaged files (class "Package": a program, a script, with its
// name) and the compound files that exploit the programs that open them
// (an equation, a document). Word reads the hex past what ClamAV reads:
// a control word ends at any character that is not a letter or digit,
// not only at a space (ClamAV looks for "objdata " alone); white space
// and control words among the digits are ignored; \binN gives N bytes
// as they are. A group nested in the destination is read two ways, its
// digits taken and left out (an ignorable {\*...} one always left out),
// each reading an object of its own when they differ.

// isRTF tells whether d is an RTF document: "{\rt" first, all Word asks.
func isRTF(d []byte) bool { return bytes.HasPrefix(d, []byte(`{\rt`)) }

// rtf walks the objects of an RTF document.
func (s *scan) rtf(data []byte, where string, depth int) {
	n := 0
	for i := 0; !s.stop; {
		k := bytes.Index(data[i:], []byte(`\objdata`))
		if k < 0 {
			return
		}
		p := i + k + len(`\objdata`)
		i = p
		if p < len(data) && isLetter(data[p]) {
			continue // another control word (\objdatax)
		}
		var readings [][]byte
		for _, nested := range []bool{false, true} {
			obj, end := rtfHexData(data, p, nested)
			i = max(i, end)
			if len(obj) > 0 && !slices.ContainsFunc(readings, func(r []byte) bool { return bytes.Equal(r, obj) }) {
				readings = append(readings, obj)
			}
		}
		for _, obj := range readings {
			n++ // each counts against the files limit as a member
			s.ole1Object(obj, join(where, "rtf-object-"+strconv.Itoa(n)), depth)
		}
	}
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// rtfHexData reads the destination whose control word ends at p: its hex
// digits as bytes, a \binN's bytes as they are, up to the brace that
// closes its group (or the document's end); nested, the digits of groups
// nested in it too (not of an ignorable {\*...} one). end is where the
// reading stopped.
func rtfHexData(d []byte, p int, nested bool) (out []byte, end int) {
	i := skipControlWordRest(d, p)
	depth := 0    // of groups nested in the destination
	skipping := 0 // the depth at which a group left out began; 0: none
	half, odd := byte(0), false
	for i < len(d) {
		c := d[i]
		switch {
		case c == '{':
			depth++
			if skipping == 0 && (!nested || bytes.HasPrefix(d[i+1:], []byte(`\*`))) {
				skipping = depth
			}
			i++
		case c == '}':
			if depth == 0 {
				return out, i + 1
			}
			if skipping == depth {
				skipping = 0
			}
			depth--
			i++
		case c == '\\':
			i++
			if i >= len(d) {
				return out, i
			}
			if !isLetter(d[i]) {
				i++ // a control symbol: \*, \\, \{, \'
				if d[i-1] == '\'' {
					i += min(2, len(d)-i) // \'hh: a character of text, no data
				}
				continue
			}
			w := i
			for i < len(d) && isLetter(d[i]) {
				i++
			}
			word := string(d[w:i])
			param := i
			if i < len(d) && d[i] == '-' {
				i++
			}
			for i < len(d) && d[i] >= '0' && d[i] <= '9' {
				i++
			}
			n, _ := strconv.Atoi(string(d[param:i]))
			if i < len(d) && d[i] == ' ' {
				i++
			}
			if word == "bin" && n > 0 {
				b := d[i : i+min(n, len(d)-i)] // a length past the end: to the end
				if skipping == 0 {
					out = append(out, b...)
				}
				i += len(b)
			}
		default:
			i++
			v := hexesc.Digit(c)
			if v < 0 || skipping != 0 {
				continue
			}
			if odd {
				out = append(out, half<<4|byte(v))
			} else {
				half = byte(v)
			}
			odd = !odd
		}
	}
	return out, i
}

// skipControlWordRest passes a control word's parameter and the space
// that may end it, from p, just after its letters.
func skipControlWordRest(d []byte, p int) int {
	if p < len(d) && d[p] == '-' {
		p++
	}
	for p < len(d) && d[p] >= '0' && d[p] <= '9' {
		p++
	}
	if p < len(d) && d[p] == ' ' {
		p++
	}
	return p
}

// ole1Object walks an OLE1 object (an RTF's \objdata): its native data,
// and a package's file under its own name; what cannot be read as one is
// walked as it is.
func (s *scan) ole1Object(obj []byte, where string, depth int) {
	class, native, ok := ole1Native(obj)
	if !ok {
		s.memberData(obj, int64(len(obj)), where, depth)
		return
	}
	if class == "Package" {
		if name, file, ok := packageFile(native); ok {
			s.nested(depth, where, func() {
				s.memberData(file, int64(len(file)), join(where, name), depth+1)
			})
			return
		}
	}
	s.memberData(native, int64(len(native)), where, depth)
}

// ole1Native reads an OLE1 object's header (MS-OLEDS 2.2.4
// ObjectHeader: OLEVersion, FormatID, ClassName, TopicName, ItemName,
// each name a length and its bytes) and gives its class and native data
// (as far as it goes, when its size runs past the end).
func ole1Native(obj []byte) (class string, native []byte, ok bool) {
	if len(obj) < 8 || binary.LittleEndian.Uint32(obj[4:]) != 2 { // embedded
		return "", nil, false
	}
	rest := obj[8:]
	for k := range 3 {
		if len(rest) < 4 {
			return "", nil, false
		}
		n := binary.LittleEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return "", nil, false
		}
		if k == 0 {
			class = string(bytes.TrimRight(rest[4:4+n], "\x00"))
		}
		rest = rest[4+n:]
	}
	if len(rest) < 4 {
		return "", nil, false
	}
	size := binary.LittleEndian.Uint32(rest)
	rest = rest[4:]
	return class, rest[:min(uint64(len(rest)), uint64(size))], true
}

// packageFile reads the file a package holds (its native data, as an
// OLE1 object's or after the size a compound file's \x01Ole10Native
// stream begins with): a type, its label and its path, each ended by a
// NUL, two words, the temporary path's length and the path, then the
// file's size and its bytes (as far as they go). name is the path's last
// element (else the label), made safe for a member's name.
func packageFile(native []byte) (name string, file []byte, ok bool) {
	if len(native) < 2 {
		return "", nil, false
	}
	rest := native[2:]
	var label, full string
	for _, s := range []*string{&label, &full} {
		k := bytes.IndexByte(rest, 0)
		if k < 0 {
			return "", nil, false
		}
		*s = string(rest[:k])
		rest = rest[k+1:]
	}
	if len(rest) < 8 {
		return "", nil, false
	}
	tmp := binary.LittleEndian.Uint32(rest[4:])
	rest = rest[8:]
	if uint64(tmp) > uint64(len(rest)) || len(rest)-int(tmp) < 4 {
		return "", nil, false
	}
	rest = rest[tmp:]
	size := binary.LittleEndian.Uint32(rest)
	rest = rest[4:]
	name = path.Base(strings.ReplaceAll(full, `\`, "/"))
	if name == "." || name == "/" || name == "" {
		name = label
	}
	name = strings.Map(func(r rune) rune {
		if r < ' ' || r == '/' {
			return '_'
		}
		return r
	}, name)
	if name == "" {
		name = "package"
	}
	return name, rest[:min(uint64(len(rest)), uint64(size))], true
}

// ole10Native walks the file a compound file's \x01Ole10Native stream
// packs (an object embedded in a document: its size, then a package).
func (s *scan) ole10Native(stream []byte, where string, depth int) {
	if len(stream) < 4 {
		return
	}
	if name, file, ok := packageFile(stream[4:]); ok {
		s.nested(depth, where, func() {
			s.memberData(file, int64(len(file)), join(where, name), depth+1)
		})
	}
}
