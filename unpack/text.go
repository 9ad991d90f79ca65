package unpack

import (
	"encoding/binary"
	"unicode/utf16"
)

// utf16Text reads UTF-16 in the byte order given as a string (a last
// odd byte dropped): Joliet's, UDF's and NTFS's names, a page or a PDF
// string told UTF-16 by its byte order mark.
func utf16Text(b []byte, order binary.ByteOrder) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = order.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// latin1 reads bytes as the characters of their values: UDF's 8-bit
// names, FAT's short ones (code page 437 and its kin differ from 0x80;
// the names are for the rules and the log).
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}
