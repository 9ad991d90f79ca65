package smtp

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/fsigkd/fsigkd/internal/hexesc"
)

// XFORWARD (Postfix's, www.postfix.org/XFORWARD_README.html): an MTA
// that hands mail to the relay (Postfix's content_filter) tells it who its
// client was, so that the spam engines, the skip lists, the access log and
// the next hop see that client and not the MTA. Only MTAs listed in
// trusted_mtas may: to them EHLO offers XFORWARD, and their XFORWARD
// commands are taken; anyone else gets the server's 500 for a command it
// does not know.
//
// The SMTP library has no hook for a command of its own, so a trusted
// MTA's connection is read through xforwardConn: it follows the command
// stream (commands, DATA's content after the 354, BDAT's chunks, and
// nothing after STARTTLS, where the stream is TLS), answers each XFORWARD
// line itself and keeps its attributes, and adds XFORWARD to EHLO's reply.
// The MTA waits for each reply before its next command group, so the
// library never sees the line nor writes between.

// forwarded is what an XFORWARD said of the MTA's client, for the next
// mail ("" where it said nothing, or [UNAVAILABLE]).
type forwarded struct {
	Name, Addr, Helo, Proto, Source string
}

// dataEnd ends DATA's content: a line holding a dot alone.
var dataEnd = []byte("\r\n.\r\n")

// maxXforwardLine bounds a command line held while it is read.
const maxXforwardLine = 4096

type xforwardConn struct {
	net.Conn

	mu    sync.Mutex
	in    []byte // read, a command line not yet whole
	out   []byte // for the server
	state xstate
	chunk int64 // BDAT bytes still to pass
	tail  []byte
	ehlo  bool // EHLO was passed: its reply gets XFORWARD
	attrs forwarded
	said  bool // an XFORWARD came since the last take
	buf   []byte
	err   error // the connection's last read error, given once what was read before it is

	// The replies are matched to the commands passed, in order
	// (pipelining): the reply to DATA says whether its content follows.
	cmds, replies int
	dataAt        int // the number of the DATA command awaiting its reply (0: none)
	greeted       bool
}

type xstate int

const (
	xCommand xstate = iota
	xData           // DATA's content, to the line with a dot alone
	xChunk          // BDAT's bytes
	xPass           // after STARTTLS: nothing is looked at
)

// NetConn is the connection under the wrapper (slots, socket options).
func (x *xforwardConn) NetConn() net.Conn { return x.Conn }

// take gives the attributes of the XFORWARD commands since the last take,
// and whether there was one.
func (x *xforwardConn) take() (forwarded, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	a, ok := x.attrs, x.said
	x.attrs, x.said = forwarded{}, false
	return a, ok
}

func (x *xforwardConn) Read(p []byte) (int, error) {
	for {
		x.mu.Lock()
		if len(x.out) > 0 {
			n := copy(p, x.out)
			x.out = x.out[n:]
			x.mu.Unlock()
			return n, nil
		}
		x.mu.Unlock()
		if err := x.err; err != nil {
			x.err = nil // given once, after what came before it, as the connection gave it
			return 0, err
		}
		if x.buf == nil {
			x.buf = make([]byte, 16<<10)
		}
		var n int
		n, x.err = x.Conn.Read(x.buf)
		x.mu.Lock()
		x.feed(x.buf[:n])
		x.mu.Unlock()
	}
}

// feed follows what the MTA sent.
func (x *xforwardConn) feed(b []byte) {
	for len(b) > 0 {
		switch x.state {
		case xPass:
			x.out = append(x.out, b...)
			return
		case xChunk:
			n := min(int64(len(b)), x.chunk)
			x.out = append(x.out, b[:n]...)
			x.chunk -= n
			b = b[n:]
			if x.chunk == 0 {
				x.state = xCommand
			}
		case xData:
			// To the end of the line holding a dot alone, across reads:
			// the end may begin in the tail (the last 4 bytes before b),
			// so it is looked for where the two meet, then in b alone
			// (no copy of each read of a mail's content).
			end := -1
			if len(x.tail) > 0 {
				var seam [8]byte
				j := append(append(seam[:0], x.tail...), b[:min(len(b), 4)]...)
				if i := bytes.Index(j, dataEnd); i >= 0 {
					end = i + len(dataEnd) - len(x.tail)
				}
			}
			if i := bytes.Index(b, dataEnd); end < 0 && i >= 0 {
				end = i + len(dataEnd)
			}
			if end < 0 {
				x.out = append(x.out, b...)
				if len(b) >= 4 {
					x.tail = append(x.tail[:0], b[len(b)-4:]...)
				} else {
					x.tail = append(x.tail, b...)
					x.tail = x.tail[max(0, len(x.tail)-4):]
				}
				return
			}
			x.out = append(x.out, b[:end]...)
			b = b[end:]
			x.tail = x.tail[:0]
			x.state = xCommand
			x.cmds++ // the content's end has a reply of its own
		case xCommand:
			x.in = append(x.in, b...)
			b = nil
			for x.state == xCommand {
				i := bytes.IndexByte(x.in, '\n')
				if i < 0 {
					if len(x.in) > maxXforwardLine {
						// No command line: the server says so.
						x.out, x.in = append(x.out, x.in...), nil
					}
					break
				}
				line := x.in[:i+1]
				x.in = x.in[i+1:]
				x.command(line)
			}
			if x.state != xCommand {
				// What followed the command is data or a chunk.
				b, x.in = x.in, nil
			}
		}
	}
}

// command passes a command line to the server, or answers an XFORWARD.
func (x *xforwardConn) command(line []byte) {
	verb, arg, _ := strings.Cut(strings.TrimRight(string(line), "\r\n"), " ")
	switch strings.ToUpper(verb) {
	case "XFORWARD":
		if x.xforward(arg) {
			x.Conn.Write([]byte("250 2.0.0 Ok\r\n"))
		} else {
			x.Conn.Write([]byte("501 5.5.4 Bad XFORWARD attribute\r\n"))
		}
		return
	case "EHLO":
		x.ehlo = true
	case "DATA":
		x.dataAt = x.cmds + 1
	case "BDAT":
		f := strings.Fields(arg)
		if len(f) > 0 {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil && n > 0 {
				x.cmds++
				x.out = append(x.out, line...)
				x.state, x.chunk = xChunk, n
				return
			}
		}
	case "STARTTLS":
		x.out = append(x.out, line...)
		x.state = xPass
		return
	}
	x.cmds++
	x.out = append(x.out, line...)
}

// xforward keeps an XFORWARD's attributes; false for one it does not
// know or a value that is not one.
func (x *xforwardConn) xforward(arg string) bool {
	for _, kv := range strings.Fields(arg) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || len(v) > 255 {
			return false
		}
		v = hexesc.Decode(v, '+')
		if strings.EqualFold(v, "[UNAVAILABLE]") || strings.EqualFold(v, "[TEMPUNAVAIL]") {
			v = ""
		}
		switch strings.ToUpper(k) {
		case "NAME":
			x.attrs.Name = v
		case "ADDR":
			v = strings.TrimPrefix(strings.TrimPrefix(v, "IPV6:"), "IPv6:")
			if v != "" && net.ParseIP(v) == nil {
				return false
			}
			x.attrs.Addr = v
		case "HELO":
			x.attrs.Helo = v
		case "PROTO":
			x.attrs.Proto = v
		case "SOURCE":
			x.attrs.Source = v
		case "PORT", "IDENT":
		default:
			return false
		}
	}
	x.said = true
	return true
}

// Write adds XFORWARD to EHLO's reply, and sees the reply to DATA: a
// 354 starts its content.
func (x *xforwardConn) Write(p []byte) (int, error) {
	x.mu.Lock()
	// A reply ends with a line "ddd text" (the library writes a line at
	// a time); the first is the greeting.
	for _, line := range bytes.SplitAfter(p, []byte("\n")) {
		if len(line) < 4 || line[3] != ' ' {
			continue
		}
		if !x.greeted {
			x.greeted = true
			continue
		}
		x.replies++
		if x.dataAt != 0 && x.replies >= x.dataAt {
			if x.replies == x.dataAt && bytes.HasPrefix(line, []byte("354")) && x.state == xCommand {
				x.state, x.tail = xData, append(x.tail[:0], "\r\n"...)
			}
			x.dataAt = 0
		}
	}
	if x.ehlo && bytes.HasPrefix(p, []byte("250-")) {
		x.ehlo = false
		if i := bytes.Index(p, []byte("\r\n")); i >= 0 {
			x.mu.Unlock()
			w := append(append(append([]byte(nil), p[:i+2]...), "250-XFORWARD NAME ADDR PROTO HELO SOURCE\r\n"...), p[i+2:]...)
			if _, err := x.Conn.Write(w); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	x.mu.Unlock()
	return x.Conn.Write(p)
}
