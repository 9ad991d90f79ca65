package unpack

import (
	"bytes"
	"errors"
)

// Unix compress (.Z, .taz): LZW, codes of 9 bits growing to the width
// its header names (9 to 16), least significant bit first, with a CLEAR
// code (256) in block mode (the header's top bit). compress writes its
// codes in groups of eight, and when the width grows or the table is
// cleared the rest of a group is padding: the reader skips to the next
// group, as gzip and 7-Zip, which open these, skip. ClamAV does not.

var magicCompress = []byte{0x1f, 0x9d}

// isCompress tells whether d is a .Z stream: its magic, and a width of 9
// to 16 bits.
func isCompress(d []byte) bool {
	return len(d) >= 3 && bytes.HasPrefix(d, magicCompress) && d[2]&0x1f >= 9 && d[2]&0x1f <= 16
}

var errCompress = errors.New("compress: a damaged stream")

// unlzw decodes a .Z stream, at most limit+1 bytes (one more says the
// limit was passed): what came out, and errCompress when it is damaged.
func unlzw(d []byte, limit int64) ([]byte, error) {
	maxBits := int(d[2] & 0x1f)
	blockMode := d[2]&0x80 != 0
	data := d[3:]
	const clear = 256
	first := 256
	if blockMode {
		first = 257
	}
	var prefix [1 << 16]uint16
	var suffix [1 << 16]byte
	nBits, maxCode, free := 9, 1<<9-1, first
	maxMax := 1 << maxBits
	pos, inGroup := 0, 0 // the bit read next; codes read since the width was set
	skipGroup := func() {
		if inGroup%8 != 0 {
			pos += (8 - inGroup%8) * nBits
		}
		inGroup = 0
	}
	var out []byte
	stack := make([]byte, 0, 1<<16)
	old, fin := -1, 0
	for {
		if free > maxCode && nBits < maxBits {
			skipGroup()
			nBits++
			if nBits == maxBits {
				maxCode = maxMax
			} else {
				maxCode = 1<<nBits - 1
			}
		}
		if pos+nBits > len(data)*8 {
			return out, nil // the end (the last group's padding)
		}
		code := 0
		for k := range nBits {
			code |= int(data[(pos+k)>>3]>>((pos+k)&7)&1) << k
		}
		pos += nBits
		inGroup++
		if old == -1 {
			if code >= 256 {
				return out, errCompress
			}
			old, fin = code, code
			out = append(out, byte(code))
			continue
		}
		if code == clear && blockMode {
			skipGroup()
			nBits, maxCode, free = 9, 1<<9-1, first-1
			continue
		}
		in := code
		stack = stack[:0]
		if code >= free {
			if code > free {
				return out, errCompress
			}
			stack = append(stack, byte(fin))
			code = old
		}
		for code >= 256 {
			if len(stack) >= 1<<16 {
				// A string longer than the table: a chain that loops
				// (an entry made after a CLEAR naming one made before).
				return out, errCompress
			}
			stack = append(stack, suffix[code])
			code = int(prefix[code])
		}
		fin = code
		stack = append(stack, byte(code))
		for i := len(stack) - 1; i >= 0; i-- {
			out = append(out, stack[i])
		}
		if int64(len(out)) > limit {
			return out[:limit+1], nil
		}
		if free < maxMax {
			prefix[free], suffix[free] = uint16(old), byte(fin)
			free++
		}
		old = in
	}
}

// compressZ walks the stream a .Z holds.
func (s *scan) compressZ(data []byte, where string, depth int) {
	out, err := unlzw(data, min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked))
	s.stream(&erring{r: bytes.NewReader(out), err: err}, nil, data, where, ".Z", depth)
}
