// Package packtest compresses test data in the forms the tests of several
// packages need (a gzip member, a zlib stream, raw deflate, brotli,
// zstd), so that each does not write its own.
package packtest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
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

// Deflate is b as a raw deflate stream (no zlib header).
func Deflate(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, 5)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// Brotli is b as a brotli stream.
func Brotli(b []byte) []byte {
	var buf bytes.Buffer
	w := brotli.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// Zstd is b as one zstd frame.
func Zstd(b []byte) []byte {
	w, _ := zstd.NewWriter(nil)
	defer w.Close()
	return w.EncodeAll(b, nil)
}
