package icap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/spool"
)

// conn is one client connection.
type conn struct {
	p      *Proxy
	c      net.Conn
	br     *bufio.Reader
	client string
}

func (p *Proxy) serve(c net.Conn) {
	if _, ok := p.Handshake(c, p.Svc.HeaderTimeout); !ok {
		return
	}
	s := &conn{p: p, c: c, br: bufio.NewReaderSize(c, 64<<10)}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		s.client = a.IP.String()
	}
	firstBy := time.Now().Add(p.Svc.HeaderTimeout)
	for first := true; ; first = false {
		if !p.Sessions.SetIdle(c, true) {
			return
		}
		if first {
			c.SetReadDeadline(firstBy)
		} else {
			c.SetReadDeadline(time.Now().Add(p.Svc.IdleTimeout))
		}
		if _, err := s.br.Peek(1); err != nil {
			return // closed, or silent too long, between requests
		}
		if !p.Sessions.SetIdle(c, false) {
			return
		}
		// A request head arrives whole within header_timeout.
		c.SetReadDeadline(time.Now().Add(p.Svc.HeaderTimeout))
		req, err := ReadRequest(s.br, int(p.Svc.MaxRequestHead))
		if err != nil {
			var br *BadRequest
			if errors.As(err, &br) {
				s.status(br.Code, br.Why)
			}
			return
		}
		if first {
			slots.Started(c)
		}
		c.SetReadDeadline(time.Now().Add(p.Svc.IdleTimeout))
		if !s.handle(req) || strings.EqualFold(req.Header.Get("Connection"), "close") {
			return
		}
	}
}

// status answers a request with a bare status (an error), the
// connection then closed.
func (s *conn) status(code int, why string) {
	text := map[int]string{400: "Bad Request", 404: "ICAP Service Not Found", 405: "Method Not Allowed For Service",
		500: "Server Error", 501: "Method Not Implemented"}[code]
	s.write(fmt.Sprintf("ICAP/1.0 %d %s\r\nServer: fsigkd\r\nISTag: %s\r\nConnection: close\r\nEncapsulated: null-body=0\r\n\r\n", code, text, s.p.istag()))
	s.p.Log.Debug("ICAP request refused", zap.Int("status", code), zap.String("why", why), zap.String("client", s.client))
}

func (s *conn) write(b string) error {
	s.c.SetWriteDeadline(time.Now().Add(s.p.Global.SendfileTimeout))
	defer s.c.SetWriteDeadline(time.Time{})
	_, err := io.WriteString(s.c, b)
	return err
}

// handle answers one request; false closes the connection.
func (s *conn) handle(req *Request) bool {
	methods := []string{}
	if s.p.Svc.RespmodPaths.Has(req.Path) {
		methods = append(methods, "RESPMOD")
	}
	if s.p.Svc.ReqmodPaths.Has(req.Path) {
		methods = append(methods, "REQMOD")
	}
	if len(methods) == 0 {
		s.drain(req)
		s.status(404, "no such service "+req.Path)
		return false
	}
	if req.Method == "OPTIONS" {
		return s.options(methods) == nil
	}
	if !(req.Method == "RESPMOD" && s.p.Svc.RespmodPaths.Has(req.Path) || req.Method == "REQMOD" && s.p.Svc.ReqmodPaths.Has(req.Path)) {
		s.drain(req)
		s.status(405, req.Method+" on "+req.Path)
		return false
	}
	return s.modify(req)
}

// drain reads a refused request's body, so that its answer is read as
// one.
func (s *conn) drain(req *Request) {
	if req.Body == "req-body" || req.Body == "res-body" {
		drainChunks(newChunks(s.br))
	}
}

// drainChunks reads what is left of a body (or of its preview) into
// nothing, 1 MiB at most: in step says it ended there.
func drainChunks(ch *chunks) (inStep bool) {
	n, err := io.Copy(io.Discard, io.LimitReader(ch, 1<<20))
	return err == nil && n < 1<<20
}

func (s *conn) options(methods []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ICAP/1.0 200 OK\r\nMethods: %s\r\nService: fsigkd ICAP\r\nISTag: %s\r\nServer: fsigkd\r\n", strings.Join(methods, ", "), s.p.istag())
	fmt.Fprintf(&b, "Max-Connections: %d\r\nOptions-TTL: %d\r\nAllow: 204\r\n", s.p.Svc.PreSpawn, int(s.p.Svc.OptionsTTL/time.Second))
	// The headers a detection carries (e2guardian reads the threat's
	// name only from a server that says it sends them).
	b.WriteString("X-Allow-Out: X-Infection-Found, X-Virus-ID\r\n")
	if s.p.Svc.PreviewSize > 0 {
		fmt.Fprintf(&b, "Preview: %d\r\nTransfer-Preview: *\r\n", s.p.Svc.PreviewSize)
	}
	b.WriteString("Encapsulated: null-body=0\r\n\r\n")
	return s.write(b.String())
}

// modify answers REQMOD and RESPMOD.
func (s *conn) modify(req *Request) bool {
	t, url, client := s.begin(req)
	defer t.End()
	allow204 := strings.Contains(strings.ToLower(strings.Join(req.Header.Values("Allow"), ",")), "204")
	if req.Body != "req-body" && req.Body != "res-body" {
		// Nothing to scan.
		t.Rec.Detail = "no body"
		return s.pass(req, nil, allow204, t)
	}
	o := t.Object()
	f, err := o.Spool()
	if err != nil {
		s.drain(req)
		s.status(500, "spool")
		return false
	}
	h := httpHeader(messageHead(req))
	// A large body with no content coding is followed by the engine as
	// it comes.
	o.Coded(h.Values("Content-Encoding"))
	ch := newChunks(s.br)
	// At most max_scan_size is spooled, whatever the client sends.
	over, err := o.Fill(ch, nil)
	if err != nil {
		return s.broken(err)
	}
	meta := scanner.Meta{Service: "icap", URL: url, Client: client, ContentType: h.Get("Content-Type"),
		FileName: proxy.DispositionName(h.Get("Content-Disposition"))}
	if allow204 && t.Skips(meta) {
		t.Rec.Bytes = f.Size()
		if over {
			// Past max_scan_size with the rest still coming: given back
			// as it comes.
			return s.giveBack(req, url, f, ch, nil, req.Preview >= 0 && !ch.ieof(), t)
		}
		// Skip-listed: 204 at once (on a preview, the rest is never sent).
		return s.pass(req, nil, true, t)
	}
	var early *earlyAnswer
	if !over && req.Preview >= 0 && !ch.ieof() {
		// The verdict needs the whole object.
		var ended bool
		if early, over, ended = s.restOfPreview(req, url, client, ch, o, allow204, t); ended {
			return false
		}
		if early.prefixed != nil {
			// A prefix check found something before anything went back:
			// judged on that prefix, the client is answered now (it may
			// be waiting for an answer before it sends more).
			defer early.drain()
		}
	}
	if over {
		return s.oversize(req, url, ch, early, t, o)
	}
	return s.verdict(req, url, proxy.Subject{Meta: meta, Codings: h.Values("Content-Encoding")}, o, early, allow204, t)
}

// restOfPreview asks for the rest of a body whose preview did not end it
// (100 Continue) and receives it into o as it comes, the client answered
// early when it waits for an answer before it sends more (early.go).
// ended: the connection is over (cut, or answered for a broken body).
func (s *conn) restOfPreview(req *Request, url, client string, ch *chunks, o *proxy.Object, allow204 bool, t *proxy.Transfer) (early *earlyAnswer, over, ended bool) {
	if s.write("ICAP/1.0 100 Continue\r\n\r\n") != nil {
		return nil, false, true
	}
	ch.More()
	codings := httpHeader(messageHead(req)).Values("Content-Encoding")
	early = &earlyAnswer{s: s, req: req, f: o.File(), o: o, t: t, enabled: !allow204, prefix: proxy.Prefix{C: &s.p.Common,
		Codings: codings, Meta: scanner.Meta{Service: "icap", URL: url, Client: client}, Hold: s.p.Svc.HoldBack}}
	over, err := early.fill(ch)
	if err != nil {
		if early.started {
			early.abort()
		} else {
			s.broken(err)
		}
		return early, over, true
	}
	return early, over, false
}

// messageHead is the HTTP head a request carries its body with: the
// response's for RESPMOD, the request's for REQMOD.
func messageHead(req *Request) []byte {
	if req.Method == "REQMOD" {
		return req.ReqHdr
	}
	return req.ResHdr
}

// begin starts the transfer of a request: its record, the URL of the
// HTTP message it carries, and the client (Squid's X-Client-IP, else the
// ICAP client itself).
func (s *conn) begin(req *Request) (t *proxy.Transfer, url, client string) {
	url, client = requestURL(req.ReqHdr), s.client
	if ip := net.ParseIP(req.Header.Get("X-Client-Ip")); ip != nil {
		client = ip.String()
	}
	t = s.p.Begin(&logs.Access{Start: time.Now(), Client: client, Result: "ICAP", Method: req.Method, URL: url,
		Service: "icap", Slot: slots.SlotOf(s.c)})
	return t, url, client
}

// verdict judges the body in o (or, when an early answer's prefix check
// found something, that prefix) and answers the client.
func (s *conn) verdict(req *Request, url string, sub proxy.Subject, o *proxy.Object, early *earlyAnswer, allow204 bool, t *proxy.Transfer) bool {
	judged := o
	if early != nil && early.prefixed != nil {
		judged = early.prefixed // the prefix, not the body followed
	}
	f := judged.File()
	t.Rec.Bytes = f.Size()
	out := judged.Judge(sub)
	if early != nil && early.started {
		return early.finish(out, t)
	}
	if early != nil && early.prefixed != nil {
		if out.Delivered() {
			// Clean by now (an engine that failed and came back), but
			// only a prefix was kept: never given as a whole.
			t.Rec.Detail = "prefix not clean at first; cut"
			early.abort()
			return false
		}
		s.answer(req, url, out, allow204, f, t)
		return false // the rest of the body is not read as a request
	}
	return s.answer(req, url, out, allow204, f, t)
}

// answer gives the client the verdict out on its message (body in f).
func (s *conn) answer(req *Request, url string, out proxy.Outcome, allow204 bool, f *spool.File, t *proxy.Transfer) bool {
	if out.Delivered() {
		return s.pass(req, f, allow204, t)
	}
	name, reason := proxy.Refusal(out)
	return s.block(req, url, name, reason, t)
}

// oversize answers a message whose body passes max_scan_size (what came
// of it is in o's file, the rest still to be read from ch; early, if not nil,
// may have answered part of it): refused with the block page, or, with
// oversize_action = pass, given back whole as it comes, the rest never
// written to disk.
func (s *conn) oversize(req *Request, url string, ch *chunks, early *earlyAnswer, t *proxy.Transfer, o *proxy.Object) bool {
	f := o.File()
	t.Rec.Bytes = f.Size()
	out := o.Oversize("")
	// Over within a preview: the client sends the rest only when told
	// to (100 Continue).
	inPreview := early == nil && req.Preview >= 0 && !ch.ieof()
	if !out.Delivered() {
		if early != nil && early.started {
			t.Rec.Detail += fmt.Sprintf("; connection cut after %d bytes answered early", early.sent)
			early.abort()
			return false
		}
		name, reason := proxy.Refusal(out)
		// The rest of the body is not read: the connection ends, unless
		// the client is waiting to be told to send it (the rest of its
		// preview is read first, a little, to stay in step).
		inStep := inPreview && drainChunks(ch)
		return s.block(req, url, name, reason, t) && inStep
	}
	return s.giveBack(req, url, f, ch, early, inPreview, t)
}

// giveBack answers with the message whole and unscanned: what was
// spooled (from what early sent on), then the rest of the body as it
// comes, never to disk.
func (s *conn) giveBack(req *Request, url string, f *spool.File, ch *chunks, early *earlyAnswer, inPreview bool, t *proxy.Transfer) bool {
	e := early
	if e == nil {
		e = &earlyAnswer{s: s, req: req, f: f, prefix: proxy.Prefix{Meta: scanner.Meta{URL: url}}}
	}
	if inPreview && s.write("ICAP/1.0 100 Continue\r\n\r\n") != nil {
		return false
	}
	t.Rec.Status = 200
	if !e.started && e.head() != nil {
		return false
	}
	if rest := f.Size() - e.sent; rest > 0 && e.send(rest) != nil {
		return false
	}
	n, err := e.relay(ch) // the body, or the rest of its preview
	if err == nil && inPreview {
		ch.More() // and then what the client sends after it
		var more int64
		more, err = e.relay(ch)
		n += more
	}
	t.Rec.Bytes = e.sent + n
	if err != nil {
		t.Rec.Detail += "; the body broke off while it was relayed"
		e.abort()
		return false
	}
	return s.write("0\r\n\r\n") == nil
}

// broken ends a connection whose body could not be read.
func (s *conn) broken(err error) bool {
	var br *BadRequest
	if errors.As(err, &br) {
		s.status(br.Code, br.Why)
	} else if proxy.SpoolFailure(err) { // logged where the spool failed
		s.status(500, "spool")
	}
	return false
}

// pass lets the message through: 204 when the client allows it, else its
// own message back (f holds the body; nil: none).
func (s *conn) pass(req *Request, f *spool.File, allow204 bool, t *proxy.Transfer) bool {
	if allow204 {
		t.Rec.Status = 204
		return s.write(fmt.Sprintf("ICAP/1.0 204 No Content\r\nISTag: %s\r\nServer: fsigkd\r\nEncapsulated: null-body=0\r\n\r\n", s.p.istag())) == nil
	}
	t.Rec.Status = 200
	var heads []string
	var parts []string
	off := 0
	// The message modified is given back: a RESPMOD answer carries the
	// response alone (clients read its first head as the response's).
	if req.ReqHdr != nil && req.Method == "REQMOD" {
		parts = append(parts, fmt.Sprintf("req-hdr=%d", off))
		heads = append(heads, string(req.ReqHdr))
		off += len(req.ReqHdr)
	}
	if req.ResHdr != nil {
		parts = append(parts, fmt.Sprintf("res-hdr=%d", off))
		heads = append(heads, string(req.ResHdr))
		off += len(req.ResHdr)
	}
	body := "null-body"
	if f != nil {
		body = req.Body
	}
	parts = append(parts, fmt.Sprintf("%s=%d", body, off))
	w := bufio.NewWriterSize(&deadlineWriter{c: s.c, timeout: s.p.Global.SendfileTimeout}, 64<<10)
	fmt.Fprintf(w, "ICAP/1.0 200 OK\r\nISTag: %s\r\nServer: fsigkd\r\nEncapsulated: %s\r\n\r\n%s", s.p.istag(), strings.Join(parts, ", "), strings.Join(heads, ""))
	if f != nil {
		if f.Size() > 0 {
			fmt.Fprintf(w, "%x\r\n", f.Size())
			if _, err := io.Copy(w, io.NewSectionReader(f, 0, f.Size())); err != nil {
				return false
			}
			w.WriteString("\r\n")
		}
		w.WriteString("0\r\n\r\n")
	}
	return w.Flush() == nil
}

// block answers with a 403 and the block page as the encapsulated
// response, and the headers clients log the threat from.
func (s *conn) block(req *Request, url, name, reason string, t *proxy.Transfer) bool {
	page := s.p.page.Render(url, name, reason)
	t.Rec.Status = 403
	resHdr := fmt.Sprintf("HTTP/1.1 403 Forbidden\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n", len(page))
	var b bytes.Buffer
	fmt.Fprintf(&b, "ICAP/1.0 200 OK\r\nISTag: %s\r\nServer: fsigkd\r\n", s.p.istag())
	if name != "" {
		fmt.Fprintf(&b, "X-Infection-Found: Type=0; Resolution=2; Threat=%s;\r\nX-Virus-ID: %s\r\nX-FSecure-Scan-Result: infected\r\nX-FSecure-Infection-Name: \"%s\"\r\n", name, name, name)
	}
	fmt.Fprintf(&b, "Encapsulated: res-hdr=0, res-body=%d\r\n\r\n%s%x\r\n%s\r\n0\r\n\r\n", len(resHdr), resHdr, len(page), page)
	return s.write(b.String()) == nil
}

// deadlineWriter gives each write sendfile_timeout to make progress.
type deadlineWriter struct {
	c       net.Conn
	timeout time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.c.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.c.Write(p)
}

// requestURL is the URL of an encapsulated HTTP request head: its target
// when absolute, else Host and the path.
func requestURL(reqHdr []byte) string {
	if len(reqHdr) == 0 {
		return ""
	}
	first, rest, _ := strings.Cut(string(reqHdr), "\r\n")
	f := strings.Fields(first)
	if len(f) < 2 {
		return ""
	}
	target := f[1]
	if strings.Contains(target, "://") {
		return target
	}
	host := httpHeader([]byte("x\r\n" + rest)).Get("Host")
	if f[0] == "CONNECT" {
		return target
	}
	return "http://" + host + target
}

// httpHeader reads the fields of an encapsulated HTTP head (its first
// line skipped).
func httpHeader(head []byte) textproto.MIMEHeader {
	h := textproto.MIMEHeader{}
	_, rest, _ := strings.Cut(string(head), "\n")
	for _, l := range strings.Split(rest, "\n") {
		k, v, ok := strings.Cut(strings.TrimRight(l, "\r"), ":")
		if ok && k != "" && !strings.ContainsAny(k, " \t") {
			h.Add(textproto.CanonicalMIMEHeaderKey(k), strings.TrimSpace(v))
		}
	}
	return h
}
