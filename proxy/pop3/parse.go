package pop3

import (
	"bufio"
	"errors"
	"io"
	"strings"
)

// MaxLine bounds a command line and a response line, CRLF included. RFC
// 2449 allows 255 octets for a command and 512 for a response; an AUTH
// exchange carries tokens (XOAUTH2, Kerberos) of a few KiB, and a mail
// server's list lines are short.
const MaxLine = 8192

// Command is one client command: its keyword in upper case and the rest of
// the line as it was sent (PASS keeps the spaces of a password).
type Command struct {
	Verb string
	Arg  string
}

// Line is the command as it goes to the server.
func (c Command) Line() string {
	if c.Arg == "" {
		return c.Verb
	}
	return c.Verb + " " + c.Arg
}

// Args splits the argument at spaces.
func (c Command) Args() []string { return strings.Fields(c.Arg) }

var errSyntax = errors.New("syntax error")

// ParseCommand reads a command line (its CRLF taken off): a keyword of 3
// to 8 letters and an argument. A control byte anywhere is refused: a CR
// or NUL inside a line could make the server read two commands where the
// proxy saw one.
func ParseCommand(line string) (Command, error) {
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return Command{}, errSyntax
		}
	}
	verb, arg, _ := strings.Cut(line, " ")
	if len(verb) < 3 || len(verb) > 8 {
		return Command{}, errSyntax
	}
	for i := 0; i < len(verb); i++ {
		c := verb[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return Command{}, errSyntax
		}
	}
	return Command{Verb: strings.ToUpper(verb), Arg: arg}, nil
}

// Status is a server's status line.
type Status struct {
	OK   bool
	Text string // what follows +OK or -ERR, without the space
}

func (s Status) String() string {
	if s.OK {
		return joinText("+OK", s.Text)
	}
	return joinText("-ERR", s.Text)
}

func joinText(ind, text string) string {
	if text == "" {
		return ind
	}
	return ind + " " + text
}

var errNotStatus = errors.New("not a POP3 status line")

// ParseStatus reads a status line: +OK or -ERR, then text.
func ParseStatus(line string) (Status, error) {
	for _, ind := range []string{"+OK", "-ERR"} {
		if len(line) >= len(ind) && strings.EqualFold(line[:len(ind)], ind) {
			rest := line[len(ind):]
			if rest != "" && rest[0] != ' ' {
				break
			}
			return Status{OK: ind == "+OK", Text: strings.TrimPrefix(rest, " ")}, nil
		}
	}
	return Status{}, errNotStatus
}

// ErrBrokenOff is a multi-line response that ended before its terminator:
// the connection closed or stalled mid-mail.
var ErrBrokenOff = errors.New("the response ended before its terminating line")

// Unstuff copies the body of a multi-line response from r to w, undoing
// the dot-stuffing (RFC 1939 section 3), up to and without the
// terminating line ("." alone; a bare LF ends a line as CRLF does). The
// bytes between are copied as they are, so that Stuff gives back exactly
// what the server sent. It returns the bytes written; a response cut off
// is ErrBrokenOff, a write that fails is its error, and then the
// response is still read to its end (the server's session stays in step
// with the proxy's).
func Unstuff(w io.Writer, r *bufio.Reader) (int64, error) {
	n, _, err := UnstuffUpTo(w, r, -1)
	return n, err
}

// UnstuffUpTo is Unstuff that stops once more than max bytes (max >= 0)
// of the body were read, so that a server sending without end fills no
// disk and holds no session: rest is then the response's remainder,
// still in r (nil: it ended). What was written holds at most one read of
// r past max.
func UnstuffUpTo(w io.Writer, r *bufio.Reader, max int64) (n int64, rest *Rest, err error) {
	var werr error
	var seen int64
	bol := true
	for {
		chunk, err := r.ReadSlice('\n')
		if len(chunk) > 0 {
			if bol && chunk[0] == '.' {
				if err == nil && (len(chunk) == 2 || len(chunk) == 3 && chunk[1] == '\r') {
					return n, nil, werr
				}
				chunk = chunk[1:]
			}
			bol = err == nil
			seen += int64(len(chunk))
			if werr == nil && len(chunk) > 0 {
				var m int
				m, werr = w.Write(chunk)
				n += int64(m)
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return n, nil, ErrBrokenOff
		}
		if max >= 0 && seen > max {
			return n, &Rest{r: r, midLine: !bol}, werr
		}
	}
}

// Rest is what is left of a multi-line response that UnstuffUpTo stopped
// reading.
type Rest struct {
	r       *bufio.Reader
	midLine bool // the part read ended inside a line
}

// Relay copies the rest of the response to w as the server sent it,
// still dot-stuffed, its terminating line included: after what was read
// stuffed again, w has the response whole. A response cut off is
// ErrBrokenOff.
func (rs *Rest) Relay(w io.Writer) (int64, error) {
	n, _, err := rs.RelayUpTo(w, -1)
	return n, err
}

// RelayUpTo is Relay that stops once more than max bytes (max >= 0) were
// copied: more says the response goes on still.
func (rs *Rest) RelayUpTo(w io.Writer, max int64) (n int64, more bool, err error) {
	for {
		chunk, err := rs.r.ReadSlice('\n')
		if len(chunk) > 0 {
			m, werr := w.Write(chunk)
			n += int64(m)
			if werr != nil {
				return n, true, werr
			}
			if !rs.midLine && err == nil && chunk[0] == '.' && (len(chunk) == 2 || len(chunk) == 3 && chunk[1] == '\r') {
				return n, false, nil
			}
			rs.midLine = err != nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return n, true, ErrBrokenOff
		}
		if max >= 0 && n > max {
			return n, true, nil
		}
	}
}
