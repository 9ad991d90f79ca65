package unpack

import (
	"encoding/binary"
	"errors"
)

// Compressed RTF (MS-OXRTFCP): the body Outlook keeps in
// PR_RTF_COMPRESSED, in a TNEF's message properties too. A 16-byte header
// (sizes, "LZFu" or "MELA" for stored, a CRC), then LZ77 over a 4 KiB
// dictionary that starts holding a fixed RTF prefix: flag bytes, each
// bit (lowest first) a literal byte or a 12-bit offset and 4-bit length
// into the dictionary; a reference to the write position itself ends it.

var errRTF = errors.New("compressed RTF: damaged")

const rtfPrebuf = "{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"

// rtfDecompress gives the RTF a compressed RTF holds, at most limit
// bytes; what came out, and an error, when it is damaged or cut short.
func rtfDecompress(b []byte, limit int) ([]byte, error) {
	if len(b) < 16 {
		return nil, errRTF
	}
	raw := int(binary.LittleEndian.Uint32(b[4:]))
	data := b[16:]
	switch string(b[8:12]) {
	case "MELA":
		return data[:min(len(data), raw, limit)], nil
	case "LZFu":
	default:
		return nil, errRTF
	}
	var dict [4096]byte
	w := copy(dict[:], rtfPrebuf)
	out := make([]byte, 0, min(raw, limit, 1<<20))
	for i := 0; i < len(data); {
		flags := data[i]
		i++
		for bit := 0; bit < 8; bit++ {
			if len(out) >= limit {
				return out, nil
			}
			if flags&(1<<bit) == 0 {
				if i >= len(data) {
					return out, errRTF
				}
				out = append(out, data[i])
				dict[w] = data[i]
				w = (w + 1) % len(dict)
				i++
				continue
			}
			if i+2 > len(data) {
				return out, errRTF
			}
			ref := int(data[i])<<8 | int(data[i+1])
			i += 2
			off, n := ref>>4, ref&0xf+2
			if off == w {
				return out, nil // the end
			}
			for ; n > 0 && len(out) < limit; n-- {
				c := dict[off]
				out = append(out, c)
				dict[w] = c
				w = (w + 1) % len(dict)
				off = (off + 1) % len(dict)
			}
		}
	}
	return out, errRTF // no end reference
}
