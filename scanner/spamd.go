package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/catalog"
)

// Spamd is a client of SpamAssassin's spamd (SPAMC/1.5). It sends SYMBOLS,
// which answers the verdict and the rules that hit.
type Spamd struct {
	Pool *Pool
	User string // the per-user settings spamd should use; empty: spamd's own
}

// NewSpamd makes a client for endpoints (M24 for a dead socket).
func NewSpamd(p *Pool) *Spamd {
	p.Engine = "spamd"
	p.DownMsg = catalog.M24
	return &Spamd{Pool: p}
}

// maxSpamdReply bounds spamd's reply head and its symbol list.
const maxSpamdReply = 64 << 10

// Check asks spamd about the mail in obj.
func (s *Spamd) Check(ctx context.Context, obj *Object) (SpamVerdict, error) {
	var v SpamVerdict
	err := s.Pool.Do(ctx, func(c *Conn) (bool, error) {
		// spamd matches header names case-sensitively: "Content-length"
		// exactly, or it waits for the client to half-close.
		head := fmt.Sprintf("SYMBOLS SPAMC/1.5\r\nContent-length: %d\r\n", obj.Size)
		if s.User != "" {
			head += "User: " + s.User + "\r\n"
		}
		if _, err := io.WriteString(c, head+"\r\n"); err != nil {
			return false, err
		}
		if _, err := io.Copy(c, io.NewSectionReader(obj.ReaderAt(), 0, obj.Size)); err != nil {
			return false, err
		}
		reply, err := io.ReadAll(io.LimitReader(c.R, maxSpamdReply+1))
		if err != nil {
			return false, err
		}
		if len(reply) > maxSpamdReply {
			return false, errors.New("spamd reply too long")
		}
		r, err := ParseSpamdReply(string(reply))
		if err != nil {
			return false, err
		}
		if r.Code != 0 {
			se := &Error{Kind: Broken, Engine: "spamd", Endpoint: c.ep.Name, Err: fmt.Errorf("%d %s", r.Code, r.Message)}
			switch r.Code {
			case 78: // EX_CONFIG: rules or database missing
				m := catalog.M22(c.ep.Name, r.Message)
				se.Msg = &m
			case 69, 70, 71: // EX_UNAVAILABLE, EX_SOFTWARE, EX_OSERR
				m := catalog.M23()
				se.Msg = &m
			default:
				se.Kind = Protocol
			}
			return false, se
		}
		v = SpamVerdict{Spam: r.Spam, Score: r.Score, Threshold: r.Threshold, Symbols: r.Symbols, Engine: "spamd " + c.ep.Name}
		return false, nil
	})
	return v, err
}

// SpamdReply is a parsed spamd reply.
type SpamdReply struct {
	Code      int
	Message   string
	Spam      bool
	Score     float64
	Threshold float64
	Symbols   []string
}

// ParseSpamdReply reads "SPAMD/1.1 0 EX_OK", the headers (Spam: True ;
// 1002.7 / 5.0) and, after the blank line, the comma-separated symbols.
func ParseSpamdReply(s string) (SpamdReply, error) {
	var r SpamdReply
	head, body, _ := strings.Cut(s, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	status := strings.SplitN(lines[0], " ", 3)
	if len(status) < 2 || !strings.HasPrefix(status[0], "SPAMD/") {
		return r, fmt.Errorf("spamd status line %q", lines[0])
	}
	code, err := strconv.Atoi(status[1])
	if err != nil {
		return r, fmt.Errorf("spamd status line %q", lines[0])
	}
	r.Code = code
	if len(status) == 3 {
		r.Message = status[2]
	}
	if code != 0 {
		return r, nil
	}
	seen := false
	for _, l := range lines[1:] {
		name, val, ok := strings.Cut(l, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "Spam") {
			continue
		}
		verdict, scores, ok := strings.Cut(val, ";")
		score, thr, ok2 := strings.Cut(scores, "/")
		if !ok || !ok2 {
			return r, fmt.Errorf("spamd Spam header %q", l)
		}
		r.Spam = strings.EqualFold(strings.TrimSpace(verdict), "true") || strings.EqualFold(strings.TrimSpace(verdict), "yes")
		if r.Score, err = strconv.ParseFloat(strings.TrimSpace(score), 64); err != nil {
			return r, fmt.Errorf("spamd score %q", score)
		}
		if r.Threshold, err = strconv.ParseFloat(strings.TrimSpace(thr), 64); err != nil {
			return r, fmt.Errorf("spamd threshold %q", thr)
		}
		seen = true
	}
	if !seen {
		return r, errors.New("spamd reply without a Spam header")
	}
	for _, sym := range strings.Split(strings.TrimSpace(body), ",") {
		if sym = strings.TrimSpace(sym); sym != "" {
			r.Symbols = append(r.Symbols, sym)
		}
	}
	return r, nil
}
