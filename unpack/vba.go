package unpack

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// VBA macros in an OLE document: each module's source lies in its stream
// compressed (MS-OVBA 2.4.1), at an offset the project's "dir" stream
// (compressed too) gives. The source is decompressed and scanned, as
// engines scan macros; its text is what the type rules' office-macro
// check and a macro signature look at.

var errOVBA = errors.New("vba: a malformed compressed container")

// ovbaDecompress undoes MS-OVBA's compression of a container (its first
// byte the signature 0x01), at most limit bytes out.
func ovbaDecompress(c []byte, limit int) ([]byte, error) {
	if len(c) == 0 || c[0] != 1 {
		return nil, errOVBA
	}
	return lzChunks(c[1:], limit, false, errOVBA)
}

// lzChunks undoes the compression MS-OVBA and NTFS (LZNT1) share: chunks
// of at most 4,096 bytes, each stored or a run of flag bytes and their
// literals and copies (whose split of offset and length bits depends on
// where in the chunk they are). zeroEnds: a header of zero ends the
// data (NTFS pads a compression unit so); else it is malformed (bad).
// At most limit bytes out (a chunk's more).
func lzChunks(c []byte, limit int, zeroEnds bool, bad error) ([]byte, error) {
	var out []byte
	for i := 0; i+2 <= len(c) && len(out) <= limit; {
		header := binary.LittleEndian.Uint16(c[i:])
		if header == 0 && zeroEnds {
			break
		}
		size := int(header&0x0fff) + 3
		if header>>12&7 != 3 {
			return out, bad
		}
		end := min(i+size, len(c))
		chunk := c[i+2 : end]
		i = end
		if header&0x8000 == 0 { // stored: 4096 bytes as they are
			out = append(out, chunk...)
			continue
		}
		start := len(out)
		for j := 0; j < len(chunk); {
			flags := chunk[j]
			j++
			for bit := 0; bit < 8 && j < len(chunk); bit++ {
				if flags&(1<<bit) == 0 {
					out = append(out, chunk[j])
					j++
					continue
				}
				if j+2 > len(chunk) {
					return out, bad
				}
				token := int(binary.LittleEndian.Uint16(chunk[j:]))
				j += 2
				diff := len(out) - start
				if diff < 1 || diff > 4096 {
					return out, bad // a chunk holds 4,096 bytes at most, a copy needs one before it
				}
				bitCount := max(bits.Len(uint(diff-1)), 4)
				lengthMask := 0xffff >> bitCount
				length := token&lengthMask + 3
				offset := token>>(16-bitCount) + 1
				if offset > len(out)-start || offset <= 0 {
					return out, bad
				}
				for k := 0; k < length; k++ {
					out = append(out, out[len(out)-offset])
				}
			}
		}
	}
	return out, nil
}

// vbaModules reads a decompressed dir stream: each module's stream name
// and the offset of its compressed source in that stream.
func vbaModules(dir []byte) map[string]int {
	mods := map[string]int{}
	name := ""
	for i := 0; i+6 <= len(dir); {
		id := binary.LittleEndian.Uint16(dir[i:])
		size := int(binary.LittleEndian.Uint32(dir[i+2:]))
		i += 6
		if id == 0x0009 { // PROJECTVERSION: its size says 4, it holds 6
			size = 6
		}
		if size < 0 || i+size > len(dir) {
			break
		}
		v := dir[i : i+size]
		i += size
		switch id {
		case 0x001a: // MODULESTREAMNAME
			name = string(v)
		case 0x0031: // MODULEOFFSET
			if len(v) == 4 && name != "" {
				mods[name] = int(binary.LittleEndian.Uint32(v))
			}
		}
	}
	return mods
}
