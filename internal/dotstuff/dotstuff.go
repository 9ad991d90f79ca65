// Package dotstuff writes the body of an SMTP DATA or a POP3 multi-line
// response with its dot-stuffing (a line that begins with a dot gets
// another) and its terminating line.
package dotstuff

import (
	"bytes"
	"io"
)

// Writer writes the body of an SMTP DATA or a POP3 multi-line
// response: a line that begins with a dot gets another (RFC 5321 4.5.2,
// RFC 1939 3). Close ends the body: a line end first if the body did not
// end with one, then the terminating line. It copies runs, not bytes: the
// byte-at-a-time form was a tenth of the SMTP relay's CPU.
type Writer struct {
	W       io.Writer
	midLine bool
}

func (s *Writer) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if !s.midLine && p[0] == '.' {
			if _, err := io.WriteString(s.W, "."); err != nil {
				return n, err
			}
		}
		end := len(p)
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			end = i + 1
		}
		m, err := s.W.Write(p[:end])
		n += m
		if err != nil {
			return n, err
		}
		s.midLine = p[end-1] != '\n'
		p = p[end:]
	}
	return n, nil
}

// Close writes the terminating line.
func (s *Writer) Close() error {
	end := ".\r\n"
	if s.midLine {
		end = "\r\n.\r\n"
	}
	_, err := io.WriteString(s.W, end)
	return err
}
