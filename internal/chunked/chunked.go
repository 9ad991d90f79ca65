// Package chunked reads HTTP/1.1's chunked transfer coding (RFC 9112
// 7.1): the HTTP proxy's request and response bodies, and the bodies an
// ICAP client encapsulates. One strict reading for both, so that what the
// gateway takes for a body's end is what every reader after it takes:
// sizes in hex digits only (no sign, no 0x, at most 15 digits), optional
// white space before an extension, no CR or NUL inside a line, CRLF after
// each chunk, at most 100 trailer lines (read and dropped), and an input
// that ends before the zero-size chunk and its blank line is cut short,
// never a whole body.
package chunked

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/internal/lines"
)

// Limits of one size or trailer line, and of the trailer.
const (
	maxSizeLine    = 4096
	maxTrailerLine = 8192
	maxTrailers    = 100
)

// Error is a body that breaks the coding; the protocol answers it as a
// bad request.
type Error struct{ Why string }

func (e *Error) Error() string { return e.Why }

// Reader decodes one chunked body from a bufio.Reader. Read gives the
// data; at the zero-size chunk it gives io.EOF; any other error is an
// *Error, io.ErrUnexpectedEOF (the input ended inside the body) or the
// connection's own.
type Reader struct {
	br   *bufio.Reader
	left int64 // bytes left in the current chunk
	done bool  // the zero-size chunk and its trailer were read
	err  error
	// LastExt is the zero-size chunk's extension, without its ';' (ICAP's
	// "ieof": the body ended within a preview).
	LastExt string
}

// NewReader reads the chunked body that follows in br.
func NewReader(br *bufio.Reader) *Reader { return &Reader{br: br} }

// More goes on reading chunks after the zero-size one (ICAP: the rest of
// a body whose preview has been read).
func (r *Reader) More() { r.done, r.LastExt = false, "" }

func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.done {
		return 0, io.EOF
	}
	if r.left == 0 {
		n, err := r.size()
		if err != nil {
			r.err = err
			return 0, err
		}
		if n == 0 {
			if err := r.trailer(); err != nil {
				r.err = err
				return 0, err
			}
			r.done = true
			return 0, io.EOF
		}
		r.left = n
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.br.Read(p)
	r.left -= int64(n)
	if err != nil {
		r.err = cut(err)
		return n, r.err
	}
	if r.left == 0 {
		l, err := r.line(2)
		switch ce := (*Error)(nil); {
		case err != nil && !errors.As(err, &ce):
			r.err = err // cut short, or the connection's own
			return n, r.err
		case err != nil || l != "":
			r.err = &Error{"no CRLF after a chunk"}
			return n, r.err
		}
	}
	return n, nil
}

// size reads a chunk's size line.
func (r *Reader) size() (int64, error) {
	l, err := r.line(maxSizeLine)
	if err != nil {
		return 0, err
	}
	size, ext, _ := strings.Cut(l, ";")
	size = strings.TrimRight(size, " \t")
	n, err := strconv.ParseInt(size, 16, 64)
	if err != nil || n < 0 || size == "" || len(size) > 15 || strings.ContainsAny(size, "+-xX") {
		return 0, &Error{"chunk size " + strconv.Quote(truncate(l))}
	}
	if n == 0 {
		r.LastExt = strings.TrimSpace(ext)
	}
	return n, nil
}

// trailer reads the trailer's lines to the blank one.
func (r *Reader) trailer() error {
	for i := 0; ; i++ {
		t, err := r.line(maxTrailerLine)
		if err != nil {
			return err
		}
		if t == "" {
			return nil
		}
		if i >= maxTrailers {
			return &Error{"too many trailer lines"}
		}
	}
}

// line reads one line of the coding, at most max bytes.
func (r *Reader) line(max int) (string, error) {
	l, err := lines.Read(r.br, max)
	switch {
	case errors.Is(err, lines.ErrTooLong):
		return "", &Error{"chunk line too long"}
	case err != nil:
		return "", cut(err)
	case strings.ContainsAny(l, "\r\x00"):
		// A bare CR is a line end to some readers and not to others.
		return "", &Error{"CR or NUL inside a chunk line"}
	}
	return l, nil
}

// cut is an input that ended inside the body.
func cut(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
