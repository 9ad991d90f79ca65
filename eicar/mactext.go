package eicar

import (
	"encoding/binary"
	"strings"
)

// BinHex encodes data as a BinHex 4.0 file named name (a data fork, no
// resource fork), as a Mac's mail program attaches it: the mark line,
// then the ':'-framed text in lines of 64.
func BinHex(name string, data []byte) string {
	var raw []byte
	raw = append(raw, byte(len(name)))
	raw = append(raw, name...)
	raw = append(raw, 0)
	raw = append(raw, "TEXTttxt"...) // type and creator
	raw = append(raw, 0, 0)          // flags
	raw = binary.BigEndian.AppendUint32(raw, uint32(len(data)))
	raw = binary.BigEndian.AppendUint32(raw, 0)
	raw = binary.BigEndian.AppendUint16(raw, crcXmodem(raw))
	raw = append(raw, data...)
	raw = binary.BigEndian.AppendUint16(raw, crcXmodem(data))
	raw = binary.BigEndian.AppendUint16(raw, 0) // the empty resource fork's
	var rle []byte
	for _, c := range raw {
		rle = append(rle, c)
		if c == 0x90 {
			rle = append(rle, 0) // the run marker itself
		}
	}
	const alphabet = "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"
	var enc strings.Builder
	enc.WriteByte(':')
	col := 1
	put := func(v uint32) {
		enc.WriteByte(alphabet[v&63])
		if col++; col == 64 {
			enc.WriteString("\r\n")
			col = 0
		}
	}
	for i := 0; i < len(rle); i += 3 {
		var g [3]byte
		n := copy(g[:], rle[i:])
		v := uint32(g[0])<<16 | uint32(g[1])<<8 | uint32(g[2])
		for k := 0; k <= n; k++ {
			put(v >> (18 - 6*k))
		}
	}
	enc.WriteString(":\r\n")
	return "(This file must be converted with BinHex 4.0)\r\n\r\n" + enc.String()
}

// crcXmodem is BinHex's CRC (CCITT, initial 0).
func crcXmodem(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// YEnc encodes data as a yEnc block named name, as a news poster writes
// it: lines of 128, the critical bytes escaped.
func YEnc(name string, data []byte) string {
	var b strings.Builder
	b.WriteString("=ybegin line=128 size=")
	b.WriteString(itoa(len(data)))
	b.WriteString(" name=" + name + "\r\n")
	col := 0
	for _, c := range data {
		e := c + 42
		if e == 0 || e == '\n' || e == '\r' || e == '=' || (col == 0 && (e == '\t' || e == ' ' || e == '.')) {
			b.WriteByte('=')
			e += 64
			col++
		}
		b.WriteByte(e)
		if col++; col >= 128 {
			b.WriteString("\r\n")
			col = 0
		}
	}
	if col > 0 {
		b.WriteString("\r\n")
	}
	b.WriteString("=yend size=" + itoa(len(data)) + "\r\n")
	return b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}
