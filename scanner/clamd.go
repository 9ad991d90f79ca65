package scanner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/fsigkd/fsigkd/catalog"
)

// Clamd is a client of ClamAV's clamd. Over a Unix socket it passes the
// spooled file's descriptor (zFILDES): no byte is copied and clamd needs
// no access to temp_dir. Over TCP, or with InStream set, it streams the
// file (zINSTREAM). Every command uses the z form (NUL-terminated).
type Clamd struct {
	Pool     *Pool
	InStream bool // stream even over a Unix socket
	Chunk    int  // INSTREAM chunk size (zero: 64 KiB)

	version atomic.Value // the last VERSION answer
}

// Version is the engine and database version clamd last gave
// ("ClamAV 1.4.6/27489/<date>"; "" before any).
func (cl *Clamd) Version() string {
	v, _ := cl.version.Load().(string)
	return v
}

// RefreshVersion asks clamd for its version (VERSION, in the session).
func (cl *Clamd) RefreshVersion(ctx context.Context) error {
	return cl.Pool.Do(ctx, func(c *Conn) (bool, error) {
		c.Seq++
		if _, err := c.Write([]byte("zVERSION\x00")); err != nil {
			return false, err
		}
		r, err := cl.reply(c)
		if err != nil {
			return false, err
		}
		if !strings.HasPrefix(r, "ClamAV ") {
			return false, fmt.Errorf("VERSION answered %q", r)
		}
		cl.version.Store(r)
		return true, nil
	})
}

// NewClamd makes a client for endpoints. Its connections are clamd
// sessions (zIDSESSION), kept in the pool between scans: a scan costs a
// command, not a connection. clamd numbers the replies of a session
// ("<n>: fd[7]: OK"); a session clamd has closed meanwhile (its
// IdleTimeout) is noticed on first use and the scan tried again on a new
// one, as for any pooled connection.
func NewClamd(p *Pool, instream bool) *Clamd {
	p.Engine = "clamd"
	p.DownMsg = catalog.M25
	p.Prepare = func(c *Conn) error {
		_, err := c.Write([]byte("zIDSESSION\x00"))
		return err
	}
	return &Clamd{Pool: p, InStream: instream}
}

// reply reads the answer to the connection's latest request, its number
// checked and taken off.
func (cl *Clamd) reply(c *Conn) (string, error) {
	r, err := readNul(c)
	if err != nil {
		return "", err
	}
	n, rest, ok := strings.Cut(r, ": ")
	if !ok || n != strconv.Itoa(c.Seq) {
		// An error about the session itself comes unnumbered.
		return r, errSessionReply
	}
	return rest, nil
}

// errSessionReply is a reply that is not the answer to our request: the
// session is not to be used again.
var errSessionReply = errors.New("clamd: a reply out of the session's order")

// maxClamdReply bounds a reply: a name and a message.
const maxClamdReply = 16 << 10

// readNul reads a reply up to its NUL.
func readNul(c *Conn) (string, error) {
	var b []byte
	for {
		chunk, err := c.R.ReadSlice(0)
		b = append(b, chunk...)
		if err == nil {
			return string(bytes.TrimRight(b[:len(b)-1], "\n")), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) || len(b) > maxClamdReply {
			if len(b) > 0 && errors.Is(err, io.EOF) {
				// Some errors are sent without the NUL before the close.
				return string(bytes.TrimRight(b, "\n")), nil
			}
			return "", err
		}
	}
}

// Ping sends zPING and wants PONG.
func (cl *Clamd) Ping(ctx context.Context) error {
	return cl.Pool.Do(ctx, func(c *Conn) (bool, error) {
		c.Seq++
		if _, err := c.Write([]byte("zPING\x00")); err != nil {
			return false, err
		}
		r, err := cl.reply(c)
		if err != nil {
			return false, err
		}
		if r != "PONG" {
			return false, fmt.Errorf("PING answered %q", r)
		}
		return true, nil
	})
}

// Scan scans obj with FILDES or INSTREAM.
func (cl *Clamd) Scan(ctx context.Context, obj *Object) (Verdict, error) {
	inMemory := obj.InMemory()
	if !inMemory {
		if err := obj.Files(); err != nil {
			return Verdict{}, err
		}
	}
	var v Verdict
	err := cl.Pool.Do(ctx, func(c *Conn) (bool, error) {
		var reply string
		var err error
		c.Seq++
		uc, unix := c.Conn.(*net.UnixConn)
		switch {
		case inMemory:
			reply, err = cl.instreamBytes(c, obj.Data)
		case unix && !cl.InStream:
			reply, err = cl.fildes(c, uc, obj)
		default:
			reply, err = cl.instream(c, obj)
		}
		if err != nil {
			return false, err
		}
		res, err := ParseClamdReply(reply)
		if err != nil {
			return false, &Error{Kind: Protocol, Engine: "clamd", Endpoint: c.ep.Name, Err: err}
		}
		v = Verdict{Engine: "clamd " + c.ep.Name}
		switch {
		case res.Error != "" && strings.Contains(res.Error, "size limit exceeded"):
			return false, &Error{Kind: Refused, Engine: "clamd", Endpoint: c.ep.Name, Err: errors.New(res.Error)}
		case res.Error != "":
			return false, &Error{Kind: Refused, Engine: "clamd", Endpoint: c.ep.Name, Err: errors.New(res.Error)}
		case res.Found != "":
			st := Infected
			if strings.HasPrefix(res.Found, "Heuristics.") {
				st = Suspected
			} else if strings.HasPrefix(res.Found, "PUA.") {
				st = Riskware
			}
			v.add(st, res.Found)
		}
		return true, nil // the session serves the next scan
	})
	return v, err
}

func (cl *Clamd) fildes(c *Conn, uc *net.UnixConn, obj *Object) (string, error) {
	if err := sendWithFile(uc, "zFILDES\x00\x00", obj.File); err != nil {
		return "", err
	}
	return cl.reply(c)
}

// instreamBytes sends an object held in memory (a small one) as one
// INSTREAM chunk, the request whole in one write: no file is written for
// it, nor a descriptor passed.
func (cl *Clamd) instreamBytes(c *Conn, data []byte) (string, error) {
	b := make([]byte, 0, len("zINSTREAM\x00")+8+len(data))
	b = append(b, "zINSTREAM\x00"...)
	if len(data) > 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
		b = append(b, data...)
	}
	b = append(b, 0, 0, 0, 0)
	if err := c.ask(b); err != nil {
		return "", err
	}
	return cl.reply(c)
}

func (cl *Clamd) instream(c *Conn, obj *Object) (string, error) {
	size := cl.Chunk
	if size <= 0 {
		size = 64 << 10
	}
	if _, err := c.Write([]byte("zINSTREAM\x00")); err != nil {
		return "", err
	}
	buf := make([]byte, 4+size)
	var off int64
	for {
		n, rerr := obj.File.ReadAt(buf[4:], off)
		if n > 0 {
			binary.BigEndian.PutUint32(buf, uint32(n))
			if _, err := c.Write(buf[:4+n]); err != nil {
				// clamd closes at once past StreamMaxLength, having said
				// why: read that rather than report a broken pipe.
				if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
					if r, rerr := cl.reply(c); rerr == nil {
						return r, nil
					}
				}
				return "", err
			}
			off += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", rerr
		}
	}
	if err := c.ask([]byte{0, 0, 0, 0}); err != nil {
		if r, rerr := cl.reply(c); rerr == nil {
			return r, nil
		}
		return "", err
	}
	return cl.reply(c)
}

// ClamdReply is one parsed clamd scan reply.
type ClamdReply struct {
	Subject string // "stream", "fd[5]", or a path
	Found   string // the detection name
	Error   string // the error text, without " ERROR"
}

// ParseClamdReply reads "<subject>: OK", "<subject>: <Name> FOUND" or
// "<subject>: <message> ERROR" (and bare "<message> ERROR").
func ParseClamdReply(s string) (ClamdReply, error) {
	var r ClamdReply
	if strings.HasSuffix(s, " ERROR") {
		r.Error = strings.TrimSuffix(s, " ERROR")
		if subj, msg, ok := strings.Cut(r.Error, ": "); ok && !strings.Contains(subj, " ") {
			r.Subject, r.Error = subj, msg
		}
		if r.Error == "" {
			r.Error = "ERROR"
		}
		return r, nil
	}
	subj, rest, ok := strings.Cut(s, ": ")
	if !ok {
		return r, fmt.Errorf("reply %q", s)
	}
	r.Subject = subj
	switch {
	case rest == "OK":
	case strings.HasSuffix(rest, " FOUND") && len(rest) > len(" FOUND"):
		r.Found = strings.TrimSuffix(rest, " FOUND")
	default:
		return r, fmt.Errorf("reply %q", s)
	}
	return r, nil
}
