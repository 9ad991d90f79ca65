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
		req, err := http.NewRequestWithContext(ctx, "POST", "http://rspamd/checkv2", io.NewSectionReader(obj.ReaderAt(), 0, obj.Size))
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
		Subject       string                     `json:"subject"`
		Milter        struct {
			AddHeaders    map[string]json.RawMessage `json:"add_headers"`
			RemoveHeaders map[string]json.RawMessage `json:"remove_headers"`
		} `json:"milter"`
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
	if raw.Action == "rewrite subject" {
		v.Subject = oneLine(raw.Subject)
	}
	v.AddHeaders, v.RemoveHeaders = milterHeaders(raw.Milter.AddHeaders, raw.Milter.RemoveHeaders)
	return v, nil
}

// maxHeaderChanges bounds the header changes taken from one reply.
const maxHeaderChanges = 64

// milterHeaders reads rspamd's header changes: add_headers maps a name to
// a value, an object {"value", "order"} or a list of them; remove_headers
// maps a name to how many (0: all; fsigkd removes all). Names that are no
// header names and values that would end the field are dropped; at most
// maxHeaderChanges of each; in order (then by name).
func milterHeaders(add, remove map[string]json.RawMessage) ([]HeaderField, []string) {
	type ordered struct {
		HeaderField
		order int
	}
	var adds []ordered
	for name, raw := range add {
		if !headerName(name) {
			continue
		}
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			items = []json.RawMessage{raw}
		}
		for _, it := range items {
			var val string
			var obj struct {
				Value string `json:"value"`
				Order int    `json:"order"`
			}
			order := 0
			if json.Unmarshal(it, &val) != nil {
				if json.Unmarshal(it, &obj) != nil {
					continue
				}
				val, order = obj.Value, obj.Order
			}
			adds = append(adds, ordered{HeaderField{name, oneLine(val)}, order})
		}
	}
	sort.SliceStable(adds, func(i, j int) bool {
		if adds[i].order != adds[j].order {
			return adds[i].order < adds[j].order
		}
		return adds[i].Name < adds[j].Name
	})
	var out []HeaderField
	for _, a := range adds[:min(len(adds), maxHeaderChanges)] {
		out = append(out, a.HeaderField)
	}
	var rm []string
	for name := range remove {
		if headerName(name) {
			rm = append(rm, name)
		}
	}
	sort.Strings(rm)
	return out, rm[:min(len(rm), maxHeaderChanges)]
}

// headerName tells whether s is a header field name (RFC 5322 ftext).
func headerName(s string) bool {
	if s == "" || len(s) > 76 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == ':' {
			return false
		}
	}
	return true
}

// oneLine keeps a value on one line and bounded.
func oneLine(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	if len(s) > 8192 {
		s = s[:8192]
	}
	return s
}
