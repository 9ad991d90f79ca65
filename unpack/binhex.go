package unpack

import (
	"bytes"
	"encoding/binary"

	"github.com/fsigkd/fsigkd/internal/bytesearch"
)

// Two text encodings of files that mail and news readers still decode:
// BinHex 4.0 (the Mac's, "(This file must be converted with BinHex 4.0)"
// and a ':'-framed block, as a part or inline in a text body) and yEnc
// (Usenet's, "=ybegin" ... "=yend"). Each block found in a text is decoded
// as their readers decode it, and the file it holds scanned as a member.

// maxTextBlocks bounds the blocks of one kind decoded from one text.
const maxTextBlocks = 100

var (
	binhexMark = []byte("(This file must be converted")
	yencMark   = []byte("=ybegin ")
	textMarks  = bytesearch.NewSet(binhexMark, yencMark)
)

// binhexAlphabet is BinHex 4.0's 64 characters, in order.
const binhexAlphabet = "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"

var binhexValue = func() (v [256]int8) {
	for i := range v {
		v[i] = -1
	}
	for i := 0; i < len(binhexAlphabet); i++ {
		v[binhexAlphabet[i]] = int8(i)
	}
	return v
}()

// binhexBlocks finds the BinHex blocks of d: after each mark line, the
// text between the next ':' and the ':' that ends it, decoded (6 bits a
// character, the run-length marker 0x90 undone), and the data fork of the
// file it holds (the resource fork too, when it has one: a reader writes
// both). A block cut short gives what it holds.
func binhexBlocks(d []byte) (files []uuBlock, broken bool) {
	for off := 0; off < len(d) && len(files) < maxTextBlocks; {
		i := bytesearch.Index(d[off:], binhexMark)
		if i < 0 {
			break
		}
		at := off + i + len(binhexMark)
		start := bytes.IndexByte(d[at:], ':')
		if start < 0 {
			break
		}
		start += at + 1
		end := bytes.IndexByte(d[start:], ':')
		if end < 0 {
			end = len(d) - start
			broken = true
		}
		raw := unbinhex(d[start : start+end])
		name, forks, ok := binhexFile(raw)
		if !ok {
			broken = true
		}
		for k, f := range forks {
			n := name
			if k == 1 {
				n += ".rsrc"
			}
			files = append(files, uuBlock{name: n, data: f})
		}
		off = start + end + 1
	}
	return files, broken
}

// unbinhex decodes BinHex text (whitespace passed over) and undoes its
// run-length coding.
func unbinhex(t []byte) []byte {
	var packed []byte
	var acc uint32
	bits := 0
	for _, c := range t {
		v := binhexValue[c]
		if v < 0 {
			continue // line ends and blanks
		}
		acc = acc<<6 | uint32(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			packed = append(packed, byte(acc>>bits))
		}
	}
	out := make([]byte, 0, len(packed))
	for i := 0; i < len(packed); i++ {
		c := packed[i]
		if c != 0x90 {
			out = append(out, c)
			continue
		}
		if i+1 >= len(packed) {
			break
		}
		n := int(packed[i+1])
		i++
		switch {
		case n == 0:
			out = append(out, 0x90) // the marker itself
		case len(out) > 0:
			last := out[len(out)-1]
			for range n - 1 {
				out = append(out, last)
			}
		}
	}
	return out
}

// binhexFile reads the decoded stream: the header (name, type, creator,
// flags, the forks' lengths, a CRC), the data fork, its CRC, the resource
// fork, its CRC. ok is false when the stream is shorter than it says;
// what it holds is given all the same.
func binhexFile(b []byte) (name string, forks [][]byte, ok bool) {
	if len(b) < 1 {
		return "", nil, false
	}
	n := int(b[0])
	h := 1 + n + 1 + 4 + 4 + 2 + 4 + 4 + 2
	if len(b) < h {
		return "", nil, false
	}
	name = string(b[1 : 1+n])
	dataLen := int64(binary.BigEndian.Uint32(b[1+n+11:]))
	rsrcLen := int64(binary.BigEndian.Uint32(b[1+n+15:]))
	rest := b[h:]
	take := func(l int64) []byte {
		if int64(len(rest)) < l {
			f := rest
			rest = nil
			ok = false
			return f
		}
		f := rest[:l]
		rest = rest[l:]
		if len(rest) >= 2 {
			rest = rest[2:] // the fork's CRC
		}
		return f
	}
	ok = true
	forks = append(forks, take(dataLen))
	if rsrcLen > 0 {
		forks = append(forks, take(rsrcLen))
	}
	if name == "" {
		name = "binhex"
	}
	return name, forks, ok
}

// yencBlocks finds "=ybegin" ... "=yend" blocks at the start of lines of
// d and decodes them as news readers do (a block without its "=yend" to
// where it stops); the parts of one file given in one text are joined in
// the order they come.
func yencBlocks(d []byte) []uuBlock {
	var out []uuBlock
	for off := 0; off < len(d) && len(out) < maxTextBlocks; {
		i := bytesearch.Index(d[off:], yencMark)
		if i < 0 {
			break
		}
		at := off + i
		off = at + len(yencMark)
		if at > 0 && d[at-1] != '\n' {
			continue
		}
		line, rest := cutLine(d[at:])
		name := "yenc"
		if j := bytes.Index(line, []byte(" name=")); j >= 0 {
			name = string(bytes.TrimRight(line[j+6:], "\r"))
		}
		var data []byte
		used := 0
		for len(rest) > 0 {
			l, next := cutLine(rest)
			used += len(l) + 1
			rest = next
			l = bytes.TrimRight(l, "\r")
			if bytes.HasPrefix(l, []byte("=yend")) {
				break
			}
			if bytes.HasPrefix(l, []byte("=ypart ")) {
				continue
			}
			for k := 0; k < len(l); k++ {
				c := l[k]
				if c == '=' && k+1 < len(l) {
					k++
					c = l[k] - 64
				}
				data = append(data, c-42)
			}
		}
		if n := len(out); n > 0 && out[n-1].name == name && bytes.Contains(line, []byte(" part=")) && !bytes.Contains(line, []byte(" part=1 ")) {
			out[n-1].data = append(out[n-1].data, data...) // the next part of the same file
		} else {
			out = append(out, uuBlock{name: name, data: data})
		}
		off = at + len(line) + 1 + used
	}
	return out
}

// macAndNews scans the BinHex and yEnc blocks of a text as members; a
// BinHex block cut short or damaged is Broken.Archive besides.
func (s *scan) macAndNews(data []byte, where string, depth int) {
	// Both are text: an object with a NUL in its first 4 KiB (a
	// program, an archive, media) holds neither as a reader decodes it,
	// and is not searched (a pass over every large download cost 7% of
	// its scan). In a text, one pass for both marks.
	if bytes.IndexByte(data[:min(len(data), 4096)], 0) >= 0 {
		return
	}
	at, which := textMarks.Index(data)
	if at < 0 {
		return
	}
	var blocks []uuBlock
	if which&1 != 0 || bytesearch.Contains(data[at:], binhexMark) {
		var broken bool
		blocks, broken = binhexBlocks(data[at:])
		if broken {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth})
		}
	}
	if which&2 != 0 || bytesearch.Contains(data[at:], yencMark) {
		blocks = append(blocks, yencBlocks(data[max(0, at-1):])...)
	}
	for _, b := range blocks {
		if s.stop {
			return
		}
		s.nested(depth, where, func() {
			s.memberData(b.data, int64(len(b.data)), join(where, b.name), depth+1)
		})
	}
}
