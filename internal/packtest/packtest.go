// Package packtest compresses test data in the forms the tests of several
// packages need (a gzip member, a zlib stream, raw deflate, brotli,
// zstd), so that each does not write its own.
package packtest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// Gzip is b as one gzip member.
func Gzip(b []byte) []byte {
	return pack(b, func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) })
}

// Zlib is b as a zlib stream.
func Zlib(b []byte) []byte {
	return pack(b, func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) })
}

// Deflate is b as a raw deflate stream (no zlib header).
func Deflate(b []byte) []byte {
	return pack(b, func(w io.Writer) io.WriteCloser { fw, _ := flate.NewWriter(w, 5); return fw })
}

// Brotli is b as a brotli stream.
func Brotli(b []byte) []byte {
	return pack(b, func(w io.Writer) io.WriteCloser { return brotli.NewWriter(w) })
}

// pack is b through the compressor a writer of newWriter makes.
func pack(b []byte, newWriter func(io.Writer) io.WriteCloser) []byte {
	var buf bytes.Buffer
	w := newWriter(&buf)
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
