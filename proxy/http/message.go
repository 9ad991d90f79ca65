package http

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/internal/chunked"
	"github.com/fsigkd/fsigkd/internal/lines"
)

// Header is a message's fields in the order they came, names as sent.
type Header []Field

// Field is one header field.
type Field struct{ Name, Value string }

// Get is the first value of name (case-insensitive), or "".
func (h Header) Get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Values is every value of name.
func (h Header) Values(name string) []string {
	var out []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// Del removes every field called name.
func (h *Header) Del(name string) {
	out := (*h)[:0]
	for _, f := range *h {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	*h = out
}

// Set replaces every field called name with one.
func (h *Header) Set(name, value string) {
	h.Del(name)
	*h = append(*h, Field{name, value})
}

// hasToken tells whether a comma-separated field lists token.
func (h Header) hasToken(name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func (h Header) write(b *bytes.Buffer) {
	for _, f := range h {
		b.WriteString(f.Name)
		b.WriteString(": ")
		b.WriteString(f.Value)
		b.WriteString("\r\n")
	}
}

// hopByHop are the fields that belong to one connection, never forwarded
// (RFC 9110 7.6.1), with those the Connection field names.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization"}

func (h *Header) stripHopByHop() {
	for _, v := range h.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				h.Del(t)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
}

// Request is a parsed request head.
type Request struct {
	Method, Target, Proto string
	Header                Header
	// Framing, as checked: the body is chunked, or ContentLength bytes
	// (-1: none, for a request).
	Chunked       bool
	ContentLength int64
}

// Response is a parsed response head.
type Response struct {
	Proto         string
	Status        int
	Reason        string
	Header        Header
	Chunked       bool
	ContentLength int64 // -1: to the close
	// Ignored is how many header bytes past the limit were dropped (M08).
	Ignored int
}

// Limits of what a head may hold.
type Limits struct {
	RequestLine int // bytes (default 8 KiB)
	Header      int // bytes of a request's header block (default 64 KiB)
	Fields      int // fields (default 200)
}

// ErrBadRequest is a request that is refused and its connection closed:
// malformed, or framed in a way two parties could read differently
// (request smuggling), answered 400; or with a head past the limits,
// answered 431. It knows its reply (Reply), so that no caller reads its
// words to choose one.
type ErrBadRequest struct {
	Why      string
	TooLarge bool // past the head's limits: 431
}

func (e *ErrBadRequest) Error() string { return "bad request: " + e.Why }

// Reply is what the client is answered: the status, its reason phrase
// and the page's words (which never show the request's own bytes).
func (e *ErrBadRequest) Reply() (status int, reason, text string) {
	if e.TooLarge {
		return 431, "Request Header Fields Too Large", "The request head is too large."
	}
	return 400, "Bad Request", "The request is malformed."
}

func bad(format string, args ...any) error { return &ErrBadRequest{Why: fmt.Sprintf(format, args...)} }

// tooLarge is a request head past its limits.
func tooLarge(why string) error { return &ErrBadRequest{Why: why, TooLarge: true} }

// readLine reads one line (see lines.Read), refusing a CR or NUL inside:
// a bare CR is read as a line end by some parsers and not by others.
func readLine(br *bufio.Reader, max int) (string, error) {
	line, err := lines.Read(br, max)
	if err != nil {
		return "", err
	}
	if strings.IndexByte(line, '\r') >= 0 || strings.IndexByte(line, 0) >= 0 {
		return "", bad("CR or NUL inside a line")
	}
	return line, nil
}

var errTooLong = lines.ErrTooLong

// readHeader reads fields up to the blank line. Obsolete line folding is
// refused (RFC 9112 5.2). Past limit bytes, fields are counted as ignored
// when ignore is set, refused otherwise.
func readHeader(br *bufio.Reader, limit, maxFields int, ignore bool) (Header, int, error) {
	var h Header
	total, ignored := 0, 0
	for {
		line, err := readLine(br, 64<<10)
		if errors.Is(err, errTooLong) {
			return nil, 0, tooLarge("header line too long")
		}
		if err != nil {
			return nil, 0, err
		}
		if line == "" {
			return h, ignored, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, 0, bad("obsolete line folding")
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || !validToken(name) {
			return nil, 0, bad("malformed header field %q", truncate(line))
		}
		total += len(line) + 2
		if total > limit || len(h) >= maxFields {
			if !ignore {
				return nil, 0, tooLarge("header block too large")
			}
			if !essential(name) {
				ignored += len(line) + 2
				continue
			}
		}
		h = append(h, Field{name, strings.Trim(value, " \t")})
	}
}

// essential fields are kept even past the header limit: without them the
// body could not be framed or scanned right.
func essential(name string) bool {
	for _, n := range []string{"Content-Length", "Transfer-Encoding", "Content-Type", "Content-Encoding", "Connection"} {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// framing works out how a body is delimited, refusing every ambiguity:
// Content-Length together with Transfer-Encoding, more than one
// Content-Length, a Transfer-Encoding other than a final chunked.
func framing(h Header) (chunked bool, length int64, err error) {
	te := h.Values("Transfer-Encoding")
	cl := h.Values("Content-Length")
	if len(te) > 0 && len(cl) > 0 {
		return false, 0, bad("both Content-Length and Transfer-Encoding")
	}
	if len(cl) > 1 {
		return false, 0, bad("more than one Content-Length")
	}
	if len(te) > 0 {
		if len(te) > 1 || !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return false, 0, bad("Transfer-Encoding %q", strings.Join(te, ", "))
		}
		return true, -1, nil
	}
	if len(cl) == 1 {
		v := strings.TrimSpace(cl[0])
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || v == "" || v[0] == '+' {
			return false, 0, bad("Content-Length %q", cl[0])
		}
		return false, n, nil
	}
	return false, -1, nil
}

// ReadRequest reads a request head.
func ReadRequest(br *bufio.Reader, lim Limits) (*Request, error) {
	if lim.RequestLine <= 0 {
		lim.RequestLine = 8 << 10
	}
	if lim.Header <= 0 {
		lim.Header = 64 << 10
	}
	if lim.Fields <= 0 {
		lim.Fields = 200
	}
	var line string
	var err error
	for i := 0; ; i++ { // RFC 9112 2.2: ignore a few empty lines first
		line, err = readLine(br, lim.RequestLine)
		if errors.Is(err, errTooLong) {
			return nil, tooLarge("request line too long")
		}
		if err != nil {
			return nil, err
		}
		if line != "" || i > 4 {
			break
		}
	}
	parts := strings.Split(line, " ")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || !validToken(parts[0]) {
		return nil, bad("request line %q", truncate(line))
	}
	if parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0" {
		return nil, bad("version %q", truncate(parts[2]))
	}
	h, _, err := readHeader(br, lim.Header, lim.Fields, false)
	if err != nil {
		return nil, err
	}
	req := &Request{Method: parts[0], Target: parts[1], Proto: parts[2], Header: h}
	if req.Chunked, req.ContentLength, err = framing(h); err != nil {
		return nil, err
	}
	if req.Proto == "HTTP/1.1" && len(h.Values("Host")) != 1 {
		return nil, bad("HTTP/1.1 request with %d Host fields", len(h.Values("Host")))
	}
	return req, nil
}

// ReadResponse reads a response head. Past headerLimit bytes, fields are
// dropped (and counted in Ignored) rather than refused.
func ReadResponse(br *bufio.Reader, headerLimit int, method string) (*Response, error) {
	line, err := readLine(br, 8<<10)
	if err != nil {
		return nil, err
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, reason, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil || status < 100 || status > 999 || len(code) != 3 {
		return nil, fmt.Errorf("bad status line %q", truncate(line))
	}
	h, ignored, err := readHeader(br, headerLimit, 1000, true)
	if err != nil {
		return nil, err
	}
	resp := &Response{Proto: proto, Status: status, Reason: reason, Header: h, Ignored: ignored}
	if resp.Chunked, resp.ContentLength, err = framing(h); err != nil {
		return nil, err
	}
	if method == "HEAD" || status == 204 || status == 304 || status < 200 {
		resp.Chunked, resp.ContentLength = false, 0
	}
	return resp, nil
}

// chunkedBody is a chunked body read as internal/chunked reads it, a
// break of the coding answered as a bad request (400).
type chunkedBody struct{ r *chunked.Reader }

func (c chunkedBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if ce := (*chunked.Error)(nil); errors.As(err, &ce) {
		return n, bad("%s", ce.Why)
	}
	return n, err
}

// bodyReader is the body of a message framed as given.
func bodyReader(br *bufio.Reader, isChunked bool, length int64) io.Reader {
	switch {
	case isChunked:
		return chunkedBody{chunked.NewReader(br)}
	case length >= 0:
		return &exactReader{r: io.LimitReader(br, length), left: length}
	}
	return br // to the close
}

// exactReader is a Content-Length body that must not end early.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		return 0, io.EOF
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
