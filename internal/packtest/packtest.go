// Package packtest compresses test data in the forms the tests of several
// packages need (a gzip member, a zlib stream), so that each does not
// write its own.
package packtest

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
)

// Gzip is b as one gzip member.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// Zlib is b as a zlib stream.
func Zlib(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}
