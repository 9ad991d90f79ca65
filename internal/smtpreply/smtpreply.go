// Package smtpreply reads SMTP replies (RFC 5321 4.2): "ddd text" or
// "ddd-text" lines up to the one that starts "ddd ". The relay's session
// to the next hop and the notice sender both read them.
package smtpreply

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/internal/lines"
)

// Bounds of a reply.
const (
	MaxLine  = 4096
	MaxLines = 1000
)

// Reply is one reply.
type Reply struct {
	Code  int
	Lines []string // as received, without line ends
}

// Text is the reply as the documented messages show it: its lines joined.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// Message is the text of each line, after its code.
func (r Reply) Message() []string {
	out := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		if len(l) > 4 {
			out[i] = l[4:]
		}
	}
	return out
}

// Read reads one reply.
func Read(br *bufio.Reader) (Reply, error) {
	var r Reply
	for len(r.Lines) < MaxLines {
		line, err := lines.Read(br, MaxLine)
		if err != nil {
			return r, err
		}
		if len(line) < 3 {
			return r, fmt.Errorf("reply line %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 100 || code > 599 || line[0] == '+' || (r.Code != 0 && code != r.Code) {
			return r, fmt.Errorf("reply line %q", line)
		}
		r.Code = code
		r.Lines = append(r.Lines, line)
		if len(line) == 3 || line[3] != '-' {
			return r, nil
		}
	}
	return r, errors.New("reply too long")
}
