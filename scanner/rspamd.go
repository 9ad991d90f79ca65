package scanner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/fsigkd/fsigkd/catalog"
)

// Rspamd is a client of rspamd's normal worker (POST /checkv2, port 11333
// or a Unix socket).
type Rspamd struct {
	Pool *Pool
}

// NewRspamd makes a client for endpoints (M24 for a dead socket).
func NewRspamd(p *Pool) *Rspamd {
	p.Engine = "rspamd"
	p.DownMsg = catalog.M24
	return &Rspamd{Pool: p}
}

// maxRspamdReply bounds the JSON reply.
const maxRspamdReply = 1 << 20

// Check posts the mail to /checkv2 with its envelope.
func (r *Rspamd) Check(ctx context.Context, obj *Object) (SpamVerdict, error) {
	var v SpamVerdict
	err := r.Pool.Do(ctx, func(c *Conn) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", "http://rspamd/checkv2", io.NewSectionReader(obj.File, 0, obj.Size))
		if err != nil {
			return false, err
		}
		req.ContentLength = obj.Size
		m := obj.Meta
		if m.Client != "" {
			req.Header.Set("IP", m.Client)
		}
		if m.Helo != "" {
			req.Header.Set("Helo", m.Helo)
		}
		if m.Sender != "" {
			req.Header.Set("From", m.Sender)
		}
		for _, rc := range m.Recipients {
			req.Header.Add("Rcpt", rc)
		}
		// The connection comes from the pool (failover, breaker); the
		// HTTP transport only frames the request on it.
		tr := &http.Transport{DisableKeepAlives: true, DialContext: func(context.Context, string, string) (net.Conn, error) { return c.Conn, nil }}
		resp, err := (&http.Client{Transport: tr, Timeout: r.Pool.timeout()}).Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxRspamdReply+1))
		if err != nil {
			return false, err
		}
		if resp.StatusCode != 200 {
			msg := catalog.M23()
			return false, &Error{Kind: Broken, Engine: "rspamd", Endpoint: c.ep.Name, Err: fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 200)]))), Msg: &msg}
		}
		res, err := ParseRspamdReply(body)
		if err != nil {
			return false, &Error{Kind: Protocol, Engine: "rspamd", Endpoint: c.ep.Name, Err: err}
		}
		v = res
		v.Engine = "rspamd " + c.ep.Name
		return false, nil
	})
	return v, err
}

// ParseRspamdReply reads rspamd's JSON verdict.
func ParseRspamdReply(b []byte) (SpamVerdict, error) {
	if len(b) > maxRspamdReply {
		return SpamVerdict{}, errors.New("reply too long")
	}
	var raw struct {
		Score         *float64                   `json:"score"`
		RequiredScore float64                    `json:"required_score"`
		Action        string                     `json:"action"`
		IsSkipped     bool                       `json:"is_skipped"`
		Symbols       map[string]json.RawMessage `json:"symbols"`
		Error         string                     `json:"error"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return SpamVerdict{}, err
	}
	if raw.Error != "" {
		return SpamVerdict{}, errors.New(raw.Error)
	}
	if raw.Score == nil || raw.Action == "" {
		return SpamVerdict{}, errors.New("reply without score or action")
	}
	v := SpamVerdict{Score: *raw.Score, Threshold: raw.RequiredScore, Action: raw.Action}
	switch raw.Action {
	case "reject", "add header", "rewrite subject":
		v.Spam = true
	}
	for s := range raw.Symbols {
		v.Symbols = append(v.Symbols, s)
	}
	sort.Strings(v.Symbols)
	return v, nil
}
