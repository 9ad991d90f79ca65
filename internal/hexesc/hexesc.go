// Package hexesc undoes the escapes that write a byte as a mark and two
// hex digits: %XX in the access log's fields, +XX in SMTP's xtext (RFC
// 3461). A mark not followed by two hex digits is taken as it is. Digit
// reads one hex digit, for the readers that undo escapes of their own.
package hexesc

import (
	"strconv"
	"strings"
)

// Digit is a hex digit's value, -1 for a byte that is none.
func Digit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c|0x20 >= 'a' && c|0x20 <= 'f':
		return int(c|0x20-'a') + 10
	}
	return -1
}

// Decode undoes mark+HH in s.
func Decode(s string, mark byte) string {
	if strings.IndexByte(s, mark) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == mark && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
