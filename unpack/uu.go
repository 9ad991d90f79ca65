package unpack

import (
	"bytes"
	"strings"

	"github.com/fsigkd/fsigkd/internal/bytesearch"
)

// uuBlock is one uuencoded file found in a text.
type uuBlock struct {
	name string
	data []byte
}

// maxUUBlocks bounds the blocks decoded from one text.
const maxUUBlocks = 100

// uuBlocks finds "begin <mode> <name>" ... "end" blocks (and the
// "begin-base64" form) at the start of any line of d, and decodes them as
// mail readers do: a block without its "end" is decoded to where it stops.
func uuBlocks(d []byte) []uuBlock {
	var out []uuBlock
	for off := 0; off < len(d) && len(out) < maxUUBlocks; {
		i := bytesearch.Index(d[off:], []byte("begin"))
		if i < 0 {
			break
		}
		at := off + i
		off = at + 5
		if at > 0 && d[at-1] != '\n' {
			continue
		}
		line, rest := cutLine(d[at:])
		b64, name, ok := uuBegin(string(bytes.TrimRight(line, "\r")))
		if !ok {
			continue
		}
		var data []byte
		var used int
		if b64 {
			data, used = base64Lines(rest)
		} else {
			data, used = uudecodeBlock(rest)
		}
		out = append(out, uuBlock{name: name, data: data})
		off = at + len(line) + 1 + used
	}
	return out
}

// uuBegin reads a begin line: "begin 644 name" or "begin-base64 644 name",
// the mode three or four octal digits.
func uuBegin(line string) (b64 bool, name string, ok bool) {
	word, rest, _ := strings.Cut(line, " ")
	switch word {
	case "begin":
	case "begin-base64":
		b64 = true
	default:
		return false, "", false
	}
	mode, name, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
	if len(mode) < 3 || len(mode) > 4 || strings.Trim(mode, "01234567") != "" {
		return false, "", false
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = "uudecoded"
	}
	return b64, name, true
}

// uudecodeBlock decodes uuencoded lines up to "end" (or the end of d), and
// says how many bytes of d it used.
func uudecodeBlock(d []byte) ([]byte, int) {
	var out []byte
	used := 0
	for used < len(d) {
		line, _ := cutLine(d[used:])
		used += len(line) + 1
		t := bytes.TrimRight(line, "\r \t")
		if string(t) == "end" {
			break
		}
		out = append(out, uudecodeLine(t)...)
	}
	return out, min(used, len(d))
}

// uudecodeLines decodes a whole body as uuencoded lines (an x-uuencode
// part without its begin line).
func uudecodeLines(d []byte) []byte {
	out, _ := uudecodeBlock(d)
	return out
}

// uudecodeLine decodes one line: a length character, then groups of four
// characters of six bits each (space or backquote for zero). A short line
// is padded, as lenient decoders do.
func uudecodeLine(t []byte) []byte {
	if len(t) == 0 {
		return nil
	}
	n := int((t[0] - ' ') & 0x3f)
	if n == 0 {
		return nil
	}
	six := func(i int) byte {
		if i < len(t) {
			return (t[i] - ' ') & 0x3f
		}
		return 0
	}
	out := make([]byte, 0, n+2)
	for i := 1; len(out) < n; i += 4 {
		a, b, c, d := six(i), six(i+1), six(i+2), six(i+3)
		out = append(out, a<<2|b>>4, b<<4|c>>2, c<<6|d)
	}
	return out[:n]
}

// base64Lines decodes begin-base64 lines up to "====", and says how many
// bytes of d it used.
func base64Lines(d []byte) ([]byte, int) {
	body, used := d, len(d)
	if end := bytes.Index(d, []byte("\n====")); end >= 0 {
		body, used = d[:end], end+5
	}
	return lenientBase64(body), used
}

// uuencoded scans every uuencoded block of a text as a member.
func (s *scan) uuencoded(data []byte, where string, depth int) {
	if !s.mayHoldBegin(data, depth) {
		return
	}
	for _, b := range uuBlocks(data) {
		if s.stop {
			return
		}
		s.nested(depth, where, func() {
			s.memberData(b.data, int64(len(b.data)), join(where, b.name), depth+1)
		})
	}
}
