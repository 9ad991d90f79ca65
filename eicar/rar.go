package eicar

import (
	"encoding/binary"
	"hash/crc32"
)

// vint is RAR5's variable-length integer.
func vint(n uint64) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// StoredRAR5 builds a RAR 5 archive holding name, stored (method 0), as
// the format's documentation describes it (no RAR writer is free to use).
func StoredRAR5(name string, data []byte) []byte {
	header := func(typ, flags uint64, dataSize int, fields []byte) []byte {
		body := append(vint(typ), vint(flags)...)
		if flags&2 != 0 {
			body = append(body, vint(uint64(dataSize))...)
		}
		body = append(body, fields...)
		sized := append(vint(uint64(len(body))), body...)
		crc := make([]byte, 4)
		binary.LittleEndian.PutUint32(crc, crc32.ChecksumIEEE(sized))
		return append(crc, sized...)
	}
	out := []byte("Rar!\x1a\x07\x01\x00")
	out = append(out, header(1, 0, 0, vint(0))...)
	var f []byte
	f = append(f, vint(0x4)...) // file flags: data CRC32 present
	f = append(f, vint(uint64(len(data)))...)
	f = append(f, vint(0x20)...) // attributes
	crc := make([]byte, 4)
	binary.LittleEndian.PutUint32(crc, crc32.ChecksumIEEE(data))
	f = append(f, crc...)
	f = append(f, vint(0)...) // compression: version 0, stored
	f = append(f, vint(1)...) // host OS: Unix
	f = append(f, vint(uint64(len(name)))...)
	f = append(f, name...)
	out = append(out, header(2, 2, len(data), f)...)
	out = append(out, data...)
	return append(out, header(5, 0, 0, vint(0))...)
}
