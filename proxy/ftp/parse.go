package ftp

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/internal/lines"
)

// Reply is one FTP reply, multi-line ones whole (RFC 959 4.2).
type Reply struct {
	Code  int
	Lines []string // as received, without line ends
}

// String is the reply as it goes on the wire.
func (r Reply) String() string { return strings.Join(r.Lines, "\r\n") + "\r\n" }

// Raw is the reply's lines as received, without the last line end.
func (r Reply) Raw() string { return strings.Join(r.Lines, "\r\n") }

// Text is the reply's text, lines joined, for logs.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// maxReplyLines bounds a multi-line reply (a long FEAT or HELP).
const maxReplyLines = 1000

// ReadReply reads one reply from a server: a single line "ddd text", or
// "ddd-text" lines up to the line that starts "ddd ".
func ReadReply(br *bufio.Reader, maxLine int) (Reply, error) {
	line, err := lines.Read(br, maxLine)
	if err != nil {
		return Reply{}, err
	}
	code, multi, err := replyCode(line)
	if err != nil {
		return Reply{}, err
	}
	r := Reply{Code: code, Lines: []string{line}}
	for multi {
		if len(r.Lines) >= maxReplyLines {
			return Reply{}, errors.New("reply too long")
		}
		line, err = lines.Read(br, maxLine)
		if err != nil {
			return Reply{}, err
		}
		r.Lines = append(r.Lines, line)
		if len(line) >= 4 && line[3] == ' ' && line[:3] == r.Lines[0][:3] {
			multi = false
		}
	}
	return r, nil
}

func replyCode(line string) (int, bool, error) {
	if len(line) < 3 {
		return 0, false, fmt.Errorf("reply %q", line)
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil || code < 100 || code > 599 || line[0] == '+' {
		return 0, false, fmt.Errorf("reply %q", line)
	}
	return code, len(line) > 3 && line[3] == '-', nil
}

// Command is one client command.
type Command struct {
	Verb string // upper case
	Arg  string
}

// ParseCommand splits a command line. Telnet control bytes and NULs are
// refused: they have no place in a command and hide things from logs.
func ParseCommand(line string) (Command, error) {
	for i := 0; i < len(line); i++ {
		if c := line[i]; c == 0 || c == 0xff || c == '\r' || c == '\n' {
			return Command{}, errors.New("control byte in command")
		}
	}
	verb, arg, _ := strings.Cut(line, " ")
	if verb == "" || len(verb) > 4 {
		return Command{}, fmt.Errorf("command %q", truncate(line))
	}
	for i := 0; i < len(verb); i++ {
		c := verb[i] | 0x20
		if c < 'a' || c > 'z' {
			return Command{}, fmt.Errorf("command %q", truncate(line))
		}
	}
	return Command{Verb: strings.ToUpper(verb), Arg: arg}, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ParseHostPort reads PORT's and PASV's h1,h2,h3,h4,p1,p2 (in a 227 reply
// the numbers may stand in parentheses or after other text).
func ParseHostPort(s string) (*net.TCPAddr, error) {
	if i := strings.IndexByte(s, '('); i >= 0 {
		if j := strings.IndexByte(s[i:], ')'); j > 0 {
			s = s[i+1 : i+j]
		}
	} else if i := strings.IndexAny(s, "0123456789"); i > 0 {
		s = s[i:]
	}
	f := strings.Split(strings.TrimSpace(s), ",")
	if len(f) != 6 {
		return nil, fmt.Errorf("host-port %q", truncate(s))
	}
	var n [6]int
	for i, x := range f {
		v, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil || v < 0 || v > 255 {
			return nil, fmt.Errorf("host-port %q", truncate(s))
		}
		n[i] = v
	}
	return &net.TCPAddr{IP: net.IPv4(byte(n[0]), byte(n[1]), byte(n[2]), byte(n[3])), Port: n[4]<<8 | n[5]}, nil
}

// FormatHostPort writes a for PORT and 227.
func FormatHostPort(a *net.TCPAddr) string {
	ip := a.IP.To4()
	if ip == nil {
		ip = net.IPv4zero.To4()
	}
	return fmt.Sprintf("%d,%d,%d,%d,%d,%d", ip[0], ip[1], ip[2], ip[3], a.Port>>8, a.Port&0xff)
}

// ParseEPRT reads EPRT's |proto|address|port| (RFC 2428).
func ParseEPRT(s string) (*net.TCPAddr, error) {
	if len(s) < 7 {
		return nil, fmt.Errorf("EPRT %q", truncate(s))
	}
	d := s[:1]
	f := strings.Split(s, d)
	if len(f) != 5 || f[0] != "" || f[4] != "" {
		return nil, fmt.Errorf("EPRT %q", truncate(s))
	}
	ip := net.ParseIP(f[2])
	port, err := strconv.Atoi(f[3])
	if ip == nil || err != nil || port < 1 || port > 65535 || (f[1] != "1" && f[1] != "2") || (f[1] == "1") != (ip.To4() != nil) {
		return nil, fmt.Errorf("EPRT %q", truncate(s))
	}
	return &net.TCPAddr{IP: ip, Port: port}, nil
}

// ParseEPSV reads the port of a 229 reply: "(|||port|)".
func ParseEPSV(s string) (int, error) {
	i := strings.IndexByte(s, '(')
	j := strings.LastIndexByte(s, ')')
	if i < 0 || j < i+5 {
		return 0, fmt.Errorf("EPSV reply %q", truncate(s))
	}
	inner := s[i+1 : j]
	d := inner[:1]
	f := strings.Split(inner, d)
	if len(f) != 5 {
		return 0, fmt.Errorf("EPSV reply %q", truncate(s))
	}
	port, err := strconv.Atoi(f[3])
	if err != nil || port < 1 || port > 65535 {
		return 0, fmt.Errorf("EPSV reply %q", truncate(s))
	}
	return port, nil
}
