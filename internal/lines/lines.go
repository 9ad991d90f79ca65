// Package lines reads the lines of line-based protocols (HTTP heads, FTP
// and SMTP commands and replies) with a bound on their length, so that no
// peer can make a reader hold more than it allows.
package lines

import (
	"bufio"
	"errors"
	"io"
)

// ErrTooLong is a line past the bound.
var ErrTooLong = errors.New("line too long")

// Read reads one line ending in LF, at most max bytes with its end, and
// returns it without its LF (or CRLF). A line cut short by the end of the
// input is io.ErrUnexpectedEOF.
func Read(br *bufio.Reader, max int) (string, error) {
	var line []byte // the chunks of a line longer than the reader's buffer
	for {
		chunk, err := br.ReadSlice('\n')
		if line == nil && err == nil && len(chunk) <= max {
			// Whole in the reader's buffer, as most lines are: one
			// allocation (the string), not two.
			return trimEnd(chunk), nil
		}
		line = append(line, chunk...)
		if len(line) > max {
			return "", ErrTooLong
		}
		if err == nil {
			return trimEnd(line), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if len(line) > 0 && errors.Is(err, io.EOF) {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
	}
}

// trimEnd is line, which ends in LF, without its LF or CRLF.
func trimEnd(line []byte) string {
	n := len(line) - 1
	if n > 0 && line[n-1] == '\r' {
		n--
	}
	return string(line[:n])
}
