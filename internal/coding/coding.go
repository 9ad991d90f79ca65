// Package coding undoes HTTP content codings (RFC 9110 8.4), so that what
// is scanned is what a browser or `curl --compressed` ends up with:
// gzip (several members, trailing bytes ignored as clients do), deflate in
// its zlib form and raw (both exist in the wild), br and zstd, several
// codings in one field or in several fields, undone in reverse order.
//
// A coding it does not know is an *Unsupported error before any byte is
// read: the caller must not take the coded bytes for the content. Used
// says, once the decoding has ended, how much of the raw body it took:
// what follows is the raw body's alone, for the caller to scan too.
package coding

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// MaxCodings bounds the codings of one body: a chain of hundreds would be
// a way to make the proxy work, not a way to send a file.
const MaxCodings = 4

// Unsupported is a coding this package does not undo.
type Unsupported struct{ Coding string }

func (u *Unsupported) Error() string {
	return fmt.Sprintf("content coding %q is not decoded", u.Coding)
}

// List reads the codings of Content-Encoding field values, in the order
// they were applied; identity is dropped.
func List(fields []string) []string {
	var out []string
	for _, f := range fields {
		for _, t := range strings.Split(f, ",") {
			t = strings.ToLower(strings.TrimSpace(t))
			if t != "" && t != "identity" {
				out = append(out, t)
			}
		}
	}
	return out
}

// Reader undoes codings (as List gives them) over r. Close releases the
// decoders.
func Reader(r io.Reader, codings []string) (io.ReadCloser, error) {
	if len(codings) > MaxCodings {
		return nil, &Unsupported{Coding: strings.Join(codings, ", ")}
	}
	for _, c := range codings {
		if !known(c) {
			return nil, &Unsupported{Coding: c}
		}
	}
	raw := &counted{r: r}
	ch := &chain{raw: raw}
	r = raw
	for i := len(codings) - 1; i >= 0; i-- {
		next, closer, br, err := one(r, codings[i])
		if err != nil {
			ch.Close()
			return nil, err
		}
		if i == len(codings)-1 {
			ch.first = br // the decoder that reads the raw bytes
		}
		r = next
		if closer != nil {
			ch.closers = append(ch.closers, closer)
		}
	}
	ch.Reader = r
	return ch, nil
}

type chain struct {
	io.Reader
	closers []func()
	raw     *counted
	first   *bufio.Reader // what the raw layer's decoder reads through (nil: not known)
}

// Used is how many raw bytes the decoding took, once it has ended: what
// follows (bytes after a gzip's last member, after a deflate stream's
// end) a client that decodes never sees, and one that keeps the raw body
// (a download manager, a server taking an upload) keeps. With br and
// zstd, whose decoders read ahead, it is what they read.
func Used(r io.Reader) (int64, bool) {
	ch, ok := r.(*chain)
	if !ok {
		return 0, false
	}
	n := ch.raw.n
	if ch.first != nil {
		n -= int64(ch.first.Buffered())
	}
	return n, true
}

// counted counts the bytes read through it.
type counted struct {
	r io.Reader
	n int64
}

func (c *counted) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *chain) Close() error {
	for _, f := range c.closers {
		f()
	}
	c.closers = nil
	return nil
}

func known(c string) bool {
	switch c {
	case "gzip", "x-gzip", "deflate", "br", "zstd":
		return true
	}
	return false
}

func one(r io.Reader, c string) (io.Reader, func(), *bufio.Reader, error) {
	switch c {
	case "gzip", "x-gzip":
		br := bufio.NewReader(r)
		return &gzipMembers{br: br}, nil, br, nil
	case "deflate":
		return deflate(r)
	case "br":
		return brotli.NewReader(r), nil, nil, nil
	case "zstd":
		// A window of at most 8 MiB, as RFC 8878 asks of HTTP clients.
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, nil, err
		}
		return d, d.Close, nil, nil
	}
	return nil, nil, nil, &Unsupported{Coding: c}
}

// deflate reads the zlib form when the first two bytes are a zlib header,
// raw deflate otherwise, as browsers do.
func deflate(r io.Reader) (io.Reader, func(), *bufio.Reader, error) {
	br := bufio.NewReader(r)
	h, _ := br.Peek(2)
	if len(h) == 2 && h[0]&0x0f == 8 && h[0]>>4 <= 7 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
		zr, err := zlib.NewReader(br)
		if err != nil {
			return nil, nil, nil, err
		}
		return &ignoreChecksum{zr}, func() { zr.Close() }, br, nil
	}
	fr := flate.NewReader(br)
	return fr, func() { fr.Close() }, br, nil
}

// ignoreChecksum ends a zlib stream at its end whatever its Adler-32 says:
// clients show the content of a stream with a wrong checksum.
type ignoreChecksum struct{ r io.Reader }

func (c *ignoreChecksum) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if errors.Is(err, zlib.ErrChecksum) {
		err = io.EOF
	}
	return n, err
}

// gzipMembers reads every gzip member in turn, as clients do, ignoring a
// wrong CRC and whatever follows the last member that is not one.
type gzipMembers struct {
	br  *bufio.Reader
	zr  *gzip.Reader
	any bool
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		if g.zr == nil {
			if g.any {
				if h, _ := g.br.Peek(2); len(h) < 2 || h[0] != 0x1f || h[1] != 0x8b {
					return 0, io.EOF // trailing bytes: clients stop here too
				}
			}
			zr, err := gzip.NewReader(g.br)
			if err != nil {
				return 0, err
			}
			zr.Multistream(false)
			g.zr, g.any = zr, true
		}
		n, err := g.zr.Read(p)
		if errors.Is(err, gzip.ErrChecksum) || err == io.EOF {
			g.zr = nil
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}
