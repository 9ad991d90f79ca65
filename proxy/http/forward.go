package http

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/internal/sendwait"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/spool"
)

// target is where a request goes.
type target struct {
	host string // name or address, without brackets
	port int
	path string // origin-form
	url  string // for logs and pages
}

func (t target) addr() string { return net.JoinHostPort(t.host, strconv.Itoa(t.port)) }

// upstream is a connection to a server (or the parent proxy), kept for the
// next request of the same session when both sides allow.
type upstream struct {
	key string
	c   net.Conn
	br  *bufio.Reader
}

func (s *session) closeUpstream() {
	if s.up != nil {
		s.up.c.Close()
		freeReader(s.up.br)
		s.up = nil
	}
}

// resolveTarget reads where the request is going: an absolute URI, or in
// transparent mode the Host field (and the original destination's port).
func (s *session) resolveTarget(req *Request) (target, error) {
	if s.tls != nil {
		return s.insideTarget(req)
	}
	if strings.HasPrefix(req.Target, "/") {
		if !s.p.Svc.Transparent {
			return target{}, errors.New("origin-form request to a forward proxy")
		}
		host := req.Header.Get("Host")
		if host == "" {
			return target{}, errors.New("no Host")
		}
		h, port, err := splitHostPort(host, 80)
		if err != nil {
			return target{}, err
		}
		if s.p.OriginalDst != nil {
			// The name is for the server; the original destination is
			// where the client was really going: use that when known.
			a, err := s.p.Destination(s.c)
			if errors.Is(err, proxy.ErrNotDiverted) {
				return target{}, err
			} else if err == nil {
				port = a.Port
				if net.ParseIP(h) == nil {
					h = a.IP.String()
				}
			}
		}
		return target{host: h, port: port, path: req.Target, url: "http://" + host + req.Target}, nil
	}
	u, err := url.Parse(req.Target)
	if err != nil || u.Host == "" {
		return target{}, fmt.Errorf("target %q", truncate(req.Target))
	}
	if u.Scheme != "http" {
		return target{}, fmt.Errorf("scheme %q is not served", u.Scheme)
	}
	h, port, err := splitHostPort(u.Host, 80)
	if err != nil {
		return target{}, err
	}
	path := u.RequestURI()
	if u.Opaque != "" || !strings.HasPrefix(path, "/") {
		path = "/" + strings.TrimPrefix(path, "/")
	}
	return target{host: h, port: port, path: path, url: req.Target}, nil
}

func splitHostPort(hp string, def int) (string, int, error) {
	if h, p, err := net.SplitHostPort(hp); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("port %q", p)
		}
		return h, n, nil
	}
	h := strings.TrimSuffix(strings.TrimPrefix(hp, "["), "]")
	if h == "" || strings.ContainsAny(h, " /@") {
		return "", 0, fmt.Errorf("host %q", hp)
	}
	return h, def, nil
}

// handle serves one request; false ends the session.
func (s *session) handle(req *Request) bool {
	start := time.Now()
	tr := s.p.Begin(&logs.Access{Start: start, Client: s.client, Method: req.Method, Service: "http", Slot: slots.SlotOf(s.base), Result: "TCP_MISS"})
	s.pageBytes = 0
	defer func() {
		if tr.Rec.Bytes == 0 {
			tr.Rec.Bytes = s.pageBytes // a page of ours is what the client got
		}
		tr.End()
	}()
	if req.Method == "CONNECT" {
		s.tunnel(req, tr)
		return false
	}
	t, err := s.resolveTarget(req)
	if err != nil {
		tr.Rec.URL, tr.Rec.Status = req.Target, 400
		s.writeError(400, "Bad Request", err.Error(), true)
		return false
	}
	tr.Rec.URL = t.url
	if entry := s.blockedHost(t, req); entry != "" {
		s.blockHost(tr, t.url, entry)
		return s.drain(req) && keepAlive(req.Proto, req.Header)
	}
	if s.tls != nil && s.tls.refusal != "" {
		tr.Rec.Detail = "server certificate " + s.tls.refusal
		s.block(tr, t.url, "", "The server's certificate "+s.tls.refusal+": the gateway does not connect to it.")
		return s.drain(req) && keepAlive(req.Proto, req.Header)
	}
	clientKeep := keepAlive(req.Proto, req.Header)
	if answered, keep := s.maxForwards(req, tr, clientKeep); answered {
		return keep
	}

	// The upload, if any: spooled and scanned before any byte goes on.
	body, bodyRest, goOn, keep := s.upload(req, t, tr)
	if !goOn {
		return keep
	}

	resp, keep := s.fetch(req, t, tr, body, bodyRest, clientKeep)
	if resp == nil {
		return keep
	}
	tr.Rec.Status, tr.Rec.ContentType = resp.Status, resp.Header.Get("Content-Type")
	if resp.Status == 101 {
		s.switched(req, resp, t, tr)
		return false
	}
	upKeep := keepAlive(resp.Proto, resp.Header) && (resp.Chunked || resp.ContentLength >= 0)
	keep = s.respond(req, resp, t, tr, clientKeep)
	if !upKeep || !keep {
		s.closeUpstream()
	}
	return keep && clientKeep
}

// fetch sends the request, its body judged already, to the server (or
// the parent proxy) and reads its answer's head; nil: the client was
// answered, and keep says whether the session goes on.
func (s *session) fetch(req *Request, t target, tr *proxy.Transfer, body *spool.File, rest io.Reader, clientKeep bool) (resp *Response, keep bool) {
	up, err := s.connect(t)
	if errors.Is(err, proxy.ErrServerRefused) {
		s.refuseServer(tr, t.url)
		return nil, false
	}
	if s.p.OutOfFiles(err, "connect") {
		s.unavailable(tr)
		return nil, false
	}
	if err != nil {
		tr.Rec.Status = 502
		s.log.Info("server unreachable", zap.String("url", t.url), zap.Error(err))
		s.writeError(502, "Bad Gateway", "The server could not be reached ("+unreachable(err)+").", !clientKeep)
		return nil, clientKeep
	}
	if ta, ok := up.c.RemoteAddr().(*net.TCPAddr); ok {
		tr.Rec.Server = ta.IP.String()
	}
	if err := s.sendRequest(up, req, t, body, rest); err != nil {
		s.closeUpstream()
		tr.Rec.Status = 502
		s.writeError(502, "Bad Gateway", "The server closed the connection.", true)
		return nil, false
	}
	resp, err = s.readResponse(up, req.Method, t.url)
	if err != nil {
		s.closeUpstream()
		tr.Rec.Status = 502
		s.log.Info("bad or no response", zap.String("url", t.url), zap.Error(err))
		s.writeError(502, "Bad Gateway", "The server's response could not be read.", true)
		return nil, false
	}
	return resp, true
}

// upload spools and judges a request's body, if any, before any byte of
// it goes on: body is what was spooled (nil: no body), rest what follows
// it past max_scan_size with oversize_action = pass. goOn false: the
// request was answered (refused), and keep says whether the session goes
// on.
func (s *session) upload(req *Request, t target, tr *proxy.Transfer) (body *spool.File, rest io.Reader, goOn, keep bool) {
	if !req.Chunked && req.ContentLength <= 0 {
		return nil, nil, true, true
	}
	if req.Header.hasToken("Expect", "100-continue") {
		io.WriteString(s.c, "HTTP/1.1 100 Continue\r\n\r\n")
	}
	// Paced: a client trickling its upload does not hold a slot.
	reqBody := proxy.Paced(bodyReader(s.br, req.Chunked, req.ContentLength), s.c, s.p.Svc.IdleTimeout, proxy.MinRate)
	encodings := req.Header.Values("Content-Encoding")
	o := tr.Object()
	o.Coded(encodings)
	over, err := o.Fill(reqBody, nil)
	switch {
	case proxy.SpoolFailure(err):
		s.unavailable(tr)
		return nil, nil, false, false
	case err != nil:
		s.log.Info("upload not received", zap.String("url", t.url), zap.Error(err))
		tr.Rec.Status = 400
		if br := (*ErrBadRequest)(nil); errors.As(err, &br) {
			s.writeError(400, "Bad Request", "The request body is malformed.", true)
		}
		return nil, nil, false, false
	case over && !o.Oversize("upload").Delivered():
		s.block(tr, t.url, "", "The upload is larger than this gateway scans.")
		return nil, nil, false, false
	case over:
		return o.File(), reqBody, true, true
	}
	meta := scanner.Meta{Service: "http", URL: t.url, Client: s.client, ContentType: req.Header.Get("Content-Type")}
	if pass, name, reason := judge(o, proxy.Subject{Meta: meta, Codings: encodings}); !pass {
		s.block(tr, t.url, name, reason)
		return nil, nil, false, true // blocked; the body was read whole, the session goes on
	}
	return o.File(), nil, true, true
}

func keepAlive(proto string, h Header) bool {
	if h.hasToken("Connection", "close") {
		return false
	}
	if proto == "HTTP/1.0" {
		return h.hasToken("Connection", "keep-alive")
	}
	return true
}

// connect gives a connection to the server of t (or to the parent proxy),
// reusing the session's kept one when it goes to the same place.
func (s *session) connect(t target) (*upstream, error) {
	if s.tls != nil {
		return s.connectTLS(t)
	}
	addr := t.addr()
	parent := s.p.Svc.ParentServerHost != ""
	if parent {
		addr = s.p.ParentAddr()
	}
	if s.up != nil && s.up.key == addr && s.up.idle() && proxy.Idle(s.up.c) {
		s.up.reader()
		return s.up, nil
	}
	s.closeUpstream()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var c net.Conn
	var err error
	if parent {
		// The parent is the administrator's choice, not a client's.
		c, err = s.p.Dial(ctx, net.ParseIP(s.client), "tcp", addr)
	} else {
		c, err = s.p.DialServer(ctx, &s.p.reach, net.ParseIP(s.client), t.host, t.port)
	}
	if err != nil {
		return nil, err
	}
	s.up = &upstream{key: addr, c: c, br: newReader(c)}
	return s.up, nil
}

// sendRequest writes the request head and the spooled body (and what
// followed it unscanned, past max_scan_size).
func (s *session) sendRequest(up *upstream, req *Request, t target, body *spool.File, rest io.Reader) error {
	h := append(Header(nil), req.Header...)
	h.stripHopByHop()
	h.Del("Expect")
	// The whole object is fetched and scanned; see the package doc.
	h.Del("Range")
	h.Del("If-Range")
	h.Set("Via", via(req.Header.Get("Via"), req.Proto))
	if !strings.HasPrefix(req.Target, "/") || h.Get("Host") == "" {
		// RFC 9112 3.2.2: the target's authority replaces whatever Host
		// the client sent with an absolute URI, so that the server sees
		// the name the proxy connected for.
		h.Del("Host")
		h = append(Header{{"Host", s.hostField(t)}}, h...)
	}
	if mf, ok := maxForwardsOf(req); ok {
		h.Set("Max-Forwards", strconv.Itoa(mf-1))
	}
	if isWebSocket(req) {
		// The one upgrade passed on; see websocket.go.
		h = append(h, Field{"Connection", "Upgrade"}, Field{"Upgrade", "websocket"})
	}
	tgt := t.path
	if s.p.Svc.ParentServerHost != "" {
		tgt = "http://" + hostField(t) + t.path
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", req.Method, tgt)
	h.write(&b)
	switch {
	case body != nil && rest != nil:
		b.WriteString("Transfer-Encoding: chunked\r\n")
	case body != nil:
		fmt.Fprintf(&b, "Content-Length: %d\r\n", body.Size())
	}
	b.WriteString("\r\n")
	up.c.SetWriteDeadline(time.Now().Add(s.p.Svc.IdleTimeout))
	defer up.c.SetWriteDeadline(time.Time{})
	// The server has IdleTimeout to answer once the request has gone
	// (readResponse reads by this deadline).
	answerBy := func() { up.c.SetReadDeadline(time.Now().Add(s.p.Svc.IdleTimeout)) }
	if body == nil {
		// The answer's first bytes are waited for with the request's
		// send, so that readResponse's first read finds them (package
		// sendwait: one system call less an exchange).
		answerBy()
		return sendwait.Ask(up.c, up.br, b.Bytes())
	}
	if _, err := up.c.Write(b.Bytes()); err != nil {
		return err
	}
	defer answerBy()
	if rest == nil {
		_, err := s.p.Send(s.log, up.c, body, 0, body.Size(), t.url)
		return err
	}
	cw := &chunkWriter{w: up.c}
	if _, err := io.Copy(cw, io.MultiReader(io.NewSectionReader(body, 0, body.Size()), rest)); err != nil {
		return err
	}
	return cw.Close()
}

// hostField is the Host field for t: inside HTTPS, the name the client
// asked for.
func (s *session) hostField(t target) string {
	if s.tls != nil {
		u := strings.TrimPrefix(t.url, "https://")
		return u[:strings.IndexByte(u, '/')]
	}
	return hostField(t)
}

func hostField(t target) string {
	h := t.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if t.port != 80 {
		h += ":" + strconv.Itoa(t.port)
	}
	return h
}

func via(prev, proto string) string {
	v := strings.TrimPrefix(proto, "HTTP/") + " fsigkd"
	if prev != "" {
		return prev + ", " + v
	}
	return v
}

// readResponse reads the final response head, skipping interim ones, and
// logs M08 when fields were dropped past max_header_size, by the read
// deadline sendRequest set.
func (s *session) readResponse(up *upstream, method, url string) (*Response, error) {
	defer up.c.SetReadDeadline(time.Time{})
	for i := 0; i < 10; i++ {
		resp, err := ReadResponse(up.br, int(s.p.Svc.MaxHeaderSize), method)
		if err != nil {
			return nil, err
		}
		if resp.Ignored > 0 {
			logs.Emit(s.log.Named("header"), catalog.M08(strconv.FormatInt(s.p.Svc.MaxHeaderSize, 10), url))
		}
		if resp.Status >= 200 || resp.Status == 101 {
			// 101 ends the exchange too: what follows is another protocol.
			return resp, nil
		}
	}
	return nil, errors.New("too many interim responses")
}

// respond handles the response: passes one without a body, or spools,
// scans and delivers (or blocks) one with a body. false: close the client.
func (s *session) respond(req *Request, resp *Response, t target, tr *proxy.Transfer, clientKeep bool) bool {
	if s.refusePart(resp, t, tr) {
		return false
	}
	head := resp.Header
	head.stripHopByHop()
	head.Set("Via", via(resp.Header.Get("Via"), resp.Proto))
	if !resp.Chunked && resp.ContentLength == 0 {
		// No body (HEAD, 204, 304, or empty): the head goes as it came,
		// its Content-Length (the object's, for HEAD) included.
		s.writeHead(resp, head, -1, clientKeep)
		return true
	}
	// The length is ours to state: the body is re-framed on the way.
	head.Del("Content-Length")
	encodings := resp.Header.Values("Content-Encoding")
	d := s.newDownload(req, resp, head, t, encodings, clientKeep)
	// A server may be slow (the trickle is for that), not silent for
	// idle_timeout.
	respBody := proxy.Paced(bodyReader(s.up.br, resp.Chunked, resp.ContentLength), s.up.c, s.p.Svc.IdleTimeout, 0)
	meta := scanner.Meta{Service: "http", URL: t.url, Client: s.client, ContentType: resp.Header.Get("Content-Type"),
		FileName: proxy.DispositionName(resp.Header.Get("Content-Disposition"))}
	if tr.Skips(meta) {
		// Skip-listed: streamed as it comes, neither spooled nor held.
		return d.passRest(nil, respBody, tr)
	}
	download := tr.Object()
	download.Coded(encodings)
	over, err := download.Fill(respBody, func() { d.progress(download.File()) })
	f := download.File()
	switch {
	case proxy.SpoolFailure(err):
		d.refuse(func() { s.unavailable(tr) })
		return false
	case err != nil:
		// The server broke off: the client must not get a short file
		// that looks whole.
		tr.Rec.Detail = "server closed mid-body"
		s.log.Info("download broken off", zap.String("url", t.url), zap.Error(err))
		d.refuse(func() {
			tr.Rec.Status = 502
			s.writeError(502, "Bad Gateway", "The server closed the connection before the end of the object.", true)
		})
		return false
	case over && !download.Oversize("").Delivered():
		d.refuse(func() { s.block(tr, t.url, "", "The object is larger than this gateway scans.") })
		return false
	case over:
		return d.passRest(f, respBody, tr)
	}
	pass, name, reason := d.scanWhileTrickling(f, func() (bool, string, string) {
		return judge(download, proxy.Subject{Meta: meta, Codings: encodings})
	})
	if !pass {
		if d.headSent {
			tr.Rec.Detail = fmt.Sprintf("connection cut after %d trickled bytes", d.sent)
			d.abort()
			return false
		}
		s.block(tr, t.url, name, reason)
		return true // the body was read whole: the session goes on
	}
	return d.finish(f, tr)
}

// refusePart refuses a part of an object (a 206, or a 200 that says with
// Content-Range that it is one): Range is never forwarded, so a part is
// not what was asked for, and parts (multipart/byteranges) join into an
// object nobody scanned whole.
func (s *session) refusePart(resp *Response, t target, tr *proxy.Transfer) bool {
	if resp.Status != 206 && resp.Header.Get("Content-Range") == "" {
		return false
	}
	tr.Rec.Status, tr.Rec.Detail = 502, "partial content not asked for refused"
	s.log.Warn("a server answered with a part that was not asked for; refused", zap.String("url", t.url))
	s.writeError(502, "Bad Gateway", "The server sent part of an object that was not asked for.", true)
	return true
}

// judge scans the spooled object o (decoded, with content codings: see
// proxy.Object.Judge) and says whether it may go on; when not, why (the
// detection name, or a reason) for the block page.
func judge(o *proxy.Object, sub proxy.Subject) (pass bool, name, reason string) {
	out := o.Judge(sub)
	if out.Delivered() {
		return true, "", ""
	}
	name, reason = proxy.Refusal(out)
	return false, name, reason
}

// writeHead sends a response head to the client with a known length (-1:
// the head's own fields say it).
func (s *session) writeHead(resp *Response, head Header, length int64, keep bool) error {
	b := headOf(resp, head, length, keep)
	defer heads.Put(b)
	s.c.SetWriteDeadline(time.Now().Add(s.p.Global.SendfileTimeout))
	defer s.c.SetWriteDeadline(time.Time{})
	_, err := s.c.Write(b.Bytes())
	return err
}

// heads holds the buffers response heads are written into.
var heads = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// headOf is a response head with a known length (see writeHead), in a
// buffer of heads.
func headOf(resp *Response, head Header, length int64, keep bool) *bytes.Buffer {
	b := heads.Get().(*bytes.Buffer)
	b.Reset()
	b.WriteString("HTTP/1.1 ")
	b.WriteString(strconv.Itoa(resp.Status))
	b.WriteByte(' ')
	b.WriteString(resp.Reason)
	b.WriteString("\r\n")
	head.write(b)
	if length >= 0 {
		b.WriteString("Content-Length: ")
		b.WriteString(strconv.FormatInt(length, 10))
		b.WriteString("\r\n")
	}
	if !keep {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	return b
}

// chunkWriter writes HTTP chunks.
type chunkWriter struct{ w io.Writer }

func (c *chunkWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if _, err := fmt.Fprintf(c.w, "%x\r\n", len(p)); err != nil {
		return 0, err
	}
	n, err := c.w.Write(p)
	if err != nil {
		return n, err
	}
	_, err = io.WriteString(c.w, "\r\n")
	return n, err
}

func (c *chunkWriter) Close() error {
	_, err := io.WriteString(c.w, "0\r\n\r\n")
	return err
}

// maxForwardsOf reads Max-Forwards on TRACE and OPTIONS (the only methods
// it means anything for, RFC 9110 7.6.2).
func maxForwardsOf(req *Request) (int, bool) {
	if req.Method != "TRACE" && req.Method != "OPTIONS" {
		return 0, false
	}
	v := req.Header.Get("Max-Forwards")
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// maxForwards answers a TRACE or OPTIONS whose Max-Forwards is 0 itself,
// as the final recipient (RFC 9110 7.6.2): TRACE with the request as it
// came (message/http), OPTIONS with the methods the proxy serves.
func (s *session) maxForwards(req *Request, tr *proxy.Transfer, keep bool) (answered, keepOpen bool) {
	if mf, ok := maxForwardsOf(req); !ok || mf > 0 {
		return false, false
	}
	if req.ContentLength > 0 || req.Chunked {
		// A body would have to be read first: refused rather than guessed.
		tr.Rec.Status = 400
		s.writeError(400, "Bad Request", "A TRACE or OPTIONS with Max-Forwards: 0 has no body.", true)
		return true, false
	}
	var body bytes.Buffer
	var b bytes.Buffer
	switch req.Method {
	case "TRACE":
		fmt.Fprintf(&body, "%s %s %s\r\n", req.Method, req.Target, req.Proto)
		req.Header.write(&body)
		body.WriteString("\r\n")
		fmt.Fprintf(&b, "HTTP/1.1 200 OK\r\nContent-Type: message/http\r\nContent-Length: %d\r\n", body.Len())
	default:
		b.WriteString("HTTP/1.1 200 OK\r\nAllow: GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH, CONNECT\r\nContent-Length: 0\r\n")
	}
	if !keep {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body.Bytes())
	tr.Rec.Status, tr.Rec.Bytes, tr.Rec.Detail = 200, int64(body.Len()), "answered by the proxy: Max-Forwards 0"
	s.c.SetWriteDeadline(time.Now().Add(s.p.Global.SendfileTimeout))
	_, err := s.c.Write(b.Bytes())
	s.c.SetWriteDeadline(time.Time{})
	return true, keep && err == nil
}

// unavailable answers a client the gateway cannot serve now for want of
// its own resources (a full spool, no descriptor left): 503, try later;
// the fault is logged by SpoolFailed or OutOfFiles.
func (s *session) unavailable(tr *proxy.Transfer) {
	tr.Rec.Status, tr.Rec.Detail = 503, "gateway short of resources"
	s.writeError(503, "Service Unavailable", "The gateway cannot take the object now. Please try again later.", true)
}

// unreachable says why a server could not be reached, in words for a
// client: the system's for an errno, never the gateway's own error text.
func unreachable(err error) string {
	var dns *net.DNSError
	var ne net.Error
	switch en, ok := catalog.Errno(err); {
	case errors.As(err, &dns):
		return "its name does not resolve"
	case ok:
		return strings.ToLower(catalog.Strerror(en))
	case errors.As(err, &ne) && ne.Timeout():
		return "it did not answer in time"
	}
	return "the connection failed"
}
