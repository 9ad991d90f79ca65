package unpack

import (
	"bytes"
	"encoding/binary"
)

// TNEF (winmail.dat, application/ms-tnef): Outlook's wrapper of a mail's
// attachments, which Outlook, Thunderbird's add-ons and the tnef tool
// unwrap. Each attachment's data (attAttachData) is scanned as a member
// under its title (attAttachTitle), and so is the data an attachment's
// MAPI properties carry (attAttachment: PR_ATTACH_DATA_BIN, under
// PR_ATTACH_LONG_FILENAME when given), and the message's compressed RTF
// body (attMAPIProps: PR_RTF_COMPRESSED, rtf.go) as body.rtf. A stream
// cut inside an attribute, or a body that does not decompress, is
// Broken.Archive, what it gave scanned.

var tnefMagic = []byte{0x78, 0x9f, 0x3e, 0x22}

const (
	attAttachData  = 0x800f
	attAttachTitle = 0x8010
	attAttachRend  = 0x9002
	attMAPIProps   = 0x9003
	attAttachment  = 0x9005
)

func (s *scan) tnef(data []byte, where string, depth int) {
	title, n := "", 0
	name := func() string {
		if title != "" {
			return title
		}
		return "attachment" + string(rune('0'+n%10))
	}
	for off := 6; off < len(data) && !s.stop; {
		if off+9 > len(data) {
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
			return
		}
		id := binary.LittleEndian.Uint32(data[off+1:]) & 0xffff
		size := int(binary.LittleEndian.Uint32(data[off+5:]))
		start := off + 9
		if size < 0 || start+size > len(data) {
			// Cut short: what is there is scanned, and said damaged.
			if id == attAttachData {
				s.memberData(data[start:], -1, join(where, name()), depth)
			}
			s.add(Detection{Name: "Heuristics.Broken.Archive", Path: where, Kind: Suspected, Depth: depth - 1})
			return
		}
		v := data[start : start+size]
		off = start + size + 2 // and the attribute's checksum
		switch id {
		case attAttachRend: // a new attachment begins
			title = ""
			n++
		case attAttachTitle:
			title = string(bytes.TrimRight(v, "\x00"))
		case attAttachData:
			s.memberData(v, -1, join(where, name()), depth)
		case attAttachment, attMAPIProps:
			for _, p := range mapiBinaries(v) {
				at := join(where, p.name)
				if !p.rtf {
					s.memberData(p.data, -1, at, depth)
					continue
				}
				room := min(s.lim.MaxFileSize, s.lim.MaxTotal-s.unpacked)
				body, err := rtfDecompress(p.data, int(room+1))
				s.memberData(body, int64(len(p.data)), at, depth)
				if err != nil {
					s.add(Detection{Name: "Heuristics.Broken.Archive", Path: at, Kind: Suspected, Depth: depth})
				}
			}
		}
	}
}

type mapiBinary struct {
	name string
	data []byte
	rtf  bool // a compressed RTF body
}

// mapiBinaries reads a MAPI property list (attAttachment, attMAPIProps):
// the binary attachment data it holds (PR_ATTACH_DATA_BIN, 0x3701), named
// by PR_ATTACH_LONG_FILENAME (0x3707) or PR_ATTACH_FILENAME (0x3704), and
// a compressed RTF body (PR_RTF_COMPRESSED, 0x1009).
func mapiBinaries(b []byte) []mapiBinary {
	if len(b) < 4 {
		return nil
	}
	count := int(binary.LittleEndian.Uint32(b))
	p := b[4:]
	var datas [][]byte
	var rtf []byte
	name := ""
	u32 := func() (int, bool) {
		if len(p) < 4 {
			return 0, false
		}
		v := int(binary.LittleEndian.Uint32(p))
		p = p[4:]
		return v, true
	}
	for i := 0; i < count && i < maxParts && len(p) >= 4; i++ {
		typ := binary.LittleEndian.Uint16(p)
		id := binary.LittleEndian.Uint16(p[2:])
		p = p[4:]
		if id >= 0x8000 { // a named property: its GUID and name first
			if len(p) < 20 {
				break
			}
			kind := binary.LittleEndian.Uint32(p[16:])
			p = p[20:]
			if kind == 1 { // a string name
				n, ok := u32()
				if !ok || n > len(p) {
					return bins(datas, name, rtf)
				}
				p = p[(n+3)/4*4:]
			} else if len(p) >= 4 {
				p = p[4:]
			}
		}
		multi := typ&0x1000 != 0
		typ &^= 0x1000
		values := 1
		if multi || typ == 0x001e || typ == 0x001f || typ == 0x0102 || typ == 0x000d {
			if v, ok := u32(); ok {
				values = v
			}
		}
		for k := 0; k < values && k < maxParts; k++ {
			switch typ {
			case 0x0002, 0x000b: // short, boolean: padded to 4
				p = p[min(4, len(p)):]
			case 0x0003, 0x0004, 0x000a: // long, float, error
				p = p[min(4, len(p)):]
			case 0x0005, 0x0006, 0x0007, 0x0014, 0x0040: // 8 bytes
				p = p[min(8, len(p)):]
			case 0x0048: // GUID
				p = p[min(16, len(p)):]
			case 0x001e, 0x001f, 0x0102, 0x000d: // counted, padded to 4
				n, ok := u32()
				if !ok || n < 0 || n > len(p) {
					return bins(datas, name, rtf)
				}
				v := p[:n]
				p = p[min(len(p), (n+3)/4*4):]
				switch {
				case id == 0x3701 && (typ == 0x0102 || typ == 0x000d):
					if typ == 0x000d && len(v) >= 16 {
						v = v[16:] // an embedded object: its IID first
					}
					datas = append(datas, v)
				case id == 0x1009 && typ == 0x0102:
					rtf = v
				case (id == 0x3707 || id == 0x3704) && typ == 0x001e:
					name = string(bytes.TrimRight(v, "\x00"))
				case (id == 0x3707 || id == 0x3704) && typ == 0x001f:
					name = string(bytes.ReplaceAll(bytes.TrimRight(v, "\x00"), []byte{0}, nil))
				}
			default:
				return bins(datas, name, rtf)
			}
		}
	}
	return bins(datas, name, rtf)
}

func bins(datas [][]byte, name string, rtf []byte) []mapiBinary {
	if name == "" {
		name = "attachment"
	}
	var out []mapiBinary
	for _, d := range datas {
		out = append(out, mapiBinary{name: name, data: d})
	}
	if rtf != nil {
		out = append(out, mapiBinary{name: "body.rtf", data: rtf, rtf: true})
	}
	return out
}
