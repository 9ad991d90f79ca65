package icap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/internal/chunked"
	"github.com/fsigkd/fsigkd/internal/lines"
)

// Request is one ICAP request's head and its encapsulated HTTP heads.
type Request struct {
	Method string // OPTIONS, REQMOD or RESPMOD
	URI    string
	Path   string // the service path of the URI
	Header textproto.MIMEHeader
	// ReqHdr and ResHdr are the encapsulated HTTP request and response
	// heads as sent (empty when absent).
	ReqHdr, ResHdr []byte
	// Body is the encapsulated body's kind: req-body, res-body, opt-body
	// or null-body.
	Body string
	// Preview is the Preview header's size; -1 without one.
	Preview int64
}

// BadRequest is a request the server answers 400 (or Code) and then
// closes the connection: its framing cannot be trusted.
type BadRequest struct {
	Code int
	Why  string
}

func (e *BadRequest) Error() string { return e.Why }

func bad(format string, a ...any) error {
	return &BadRequest{Code: 400, Why: fmt.Sprintf(format, a...)}
}

// maxLine bounds a line of the ICAP head.
const maxLine = 8192

// ReadRequest reads an ICAP request's head and its encapsulated HTTP
// heads, at most limit bytes in all. The body, if any, follows in br,
// chunked.
func ReadRequest(br *bufio.Reader, limit int) (*Request, error) {
	budget := limit
	line, err := lines.Read(br, min(maxLine, budget))
	if err != nil {
		if errors.Is(err, lines.ErrTooLong) {
			return nil, bad("request line too long")
		}
		return nil, err // io.EOF: the client closed between requests
	}
	budget -= len(line) + 2
	f := strings.Split(line, " ")
	if len(f) != 3 || !strings.HasPrefix(f[2], "ICAP/1.") {
		return nil, bad("malformed request line")
	}
	r := &Request{Method: f[0], URI: f[1], Preview: -1, Header: textproto.MIMEHeader{}}
	switch r.Method {
	case "OPTIONS", "REQMOD", "RESPMOD":
	default:
		return nil, &BadRequest{Code: 501, Why: "method not implemented"}
	}
	rest, ok := strings.CutPrefix(r.URI, "icap://")
	if !ok {
		return nil, bad("the URI is not icap://")
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		r.Path = rest[i:]
	} else {
		r.Path = "/"
	}
	if q := strings.IndexByte(r.Path, '?'); q >= 0 {
		r.Path = r.Path[:q]
	}
	for n := 0; ; n++ {
		l, err := lines.Read(br, min(maxLine, max(budget, 1)))
		if err != nil {
			if errors.Is(err, lines.ErrTooLong) {
				return nil, bad("header too long")
			}
			return nil, bad("head cut short")
		}
		budget -= len(l) + 2
		if budget < 0 || n > 100 {
			return nil, bad("head too long")
		}
		if l == "" {
			break
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, bad("malformed header line")
		}
		r.Header.Add(textproto.CanonicalMIMEHeaderKey(k), strings.TrimSpace(v))
	}
	if p := r.Header.Get("Preview"); p != "" {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 {
			return nil, bad("bad Preview")
		}
		r.Preview = n
	}
	enc, ok := r.Header["Encapsulated"]
	if !ok || len(enc) != 1 {
		if r.Method == "OPTIONS" && !ok {
			r.Body = "null-body"
			return r, nil
		}
		return nil, bad("Encapsulated missing or given twice")
	}
	sections, err := parseEncapsulated(enc[0])
	if err != nil {
		return nil, err
	}
	last := sections[len(sections)-1]
	r.Body = last.name
	if last.off > budget {
		return nil, bad("encapsulated heads too long")
	}
	heads := make([]byte, last.off)
	if _, err := io.ReadFull(br, heads); err != nil {
		return nil, bad("encapsulated heads cut short")
	}
	for i, s := range sections[:len(sections)-1] {
		part := heads[s.off:sections[i+1].off]
		switch s.name {
		case "req-hdr":
			r.ReqHdr = part
		case "res-hdr":
			r.ResHdr = part
		}
	}
	switch {
	case r.Method == "REQMOD" && r.ResHdr != nil, r.Method == "REQMOD" && r.Body == "res-body":
		return nil, bad("REQMOD carries a request")
	case r.Method == "RESPMOD" && r.Body == "req-body":
		return nil, bad("RESPMOD carries a response")
	}
	return r, nil
}

type section struct {
	name string
	off  int
}

// parseEncapsulated reads "req-hdr=0, res-hdr=137, res-body=296": heads
// first, in order, at increasing offsets, and one body (or null-body)
// last.
func parseEncapsulated(v string) ([]section, error) {
	var out []section
	seen := map[string]bool{}
	for _, part := range strings.Split(v, ",") {
		k, o, ok := strings.Cut(strings.TrimSpace(part), "=")
		off, err := strconv.Atoi(o)
		if !ok || err != nil || off < 0 || off > 1<<24 {
			return nil, bad("malformed Encapsulated")
		}
		switch k {
		case "req-hdr", "res-hdr", "req-body", "res-body", "null-body", "opt-body":
		default:
			return nil, bad("unknown Encapsulated entity %q", k)
		}
		if seen[k] || len(out) > 0 && off < out[len(out)-1].off || len(out) > 0 && strings.HasSuffix(out[len(out)-1].name, "body") {
			return nil, bad("malformed Encapsulated")
		}
		seen[k] = true
		out = append(out, section{k, off})
	}
	if len(out) == 0 || !strings.HasSuffix(out[len(out)-1].name, "body") || out[0].off != 0 {
		return nil, bad("malformed Encapsulated")
	}
	return out, nil
}

// chunks reads an ICAP body: HTTP chunks (as internal/chunked reads
// them) up to the zero-size chunk, whose extension "ieof" says the body
// ended within a preview. After a preview that did not end the body, More
// reads the chunks that follow the server's 100 Continue. Every failure,
// a body cut short included, is a bad request.
type chunks struct{ *chunked.Reader }

func newChunks(br *bufio.Reader) *chunks { return &chunks{chunked.NewReader(br)} }

func (c *chunks) Read(p []byte) (int, error) {
	n, err := c.Reader.Read(p)
	switch ce := (*chunked.Error)(nil); {
	case err == nil || err == io.EOF:
		return n, err
	case errors.As(err, &ce):
		return n, bad("%s", ce.Why)
	}
	return n, bad("body cut short")
}

// ieof tells whether the body ended within its preview.
func (c *chunks) ieof() bool { return c.LastExt == "ieof" }

// Body reads the chunked body that follows a request's head in br, to
// its zero-size chunk (for a preview: the preview alone).
func Body(br *bufio.Reader) io.Reader { return newChunks(br) }
