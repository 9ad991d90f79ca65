// Package http is fsigkd's HTTP service: a forward proxy (absolute-URI
// requests and CONNECT tunnels) and, with transparent = yes, an
// interception proxy for redirected origin-form requests. With
// tls_intercept = yes it looks inside HTTPS too (intercept.go): the HTTP
// inside a CONNECT, or a diverted TLS connection, is served by the same
// session loop as plain HTTP. Every response
// body (download) and request body (upload) is spooled to a file, scanned,
// and only then sent on; a detection gets a block page instead.
//
// It implements HTTP/1.1 (RFC 9110, 9112) itself rather than through
// net/http, because a scanning proxy must refuse what net/http tolerates:
// a request with both Content-Length and Transfer-Encoding, repeated
// Content-Length fields, obsolete line folding, malformed chunk sizes
// (request smuggling: 400 and the connection closed), and must keep a
// response whose header block is over the limit, dropping the excess
// (M08) instead of failing.
//
// What a user sees:
//   - Clean objects arrive as the server sent them (compressed bytes stay
//     compressed), with a Content-Length, once scanned.
//   - A detection: 403 and the block page naming the URL and the detection.
//   - Downloads still arriving after trickle_after seconds start to trickle
//     (trickle_bytes every trickle_interval) so that the client does not
//     time out; the last hold_back bytes wait for the verdict. If the
//     verdict is a detection the connection is cut, and the client keeps
//     an incomplete file it cannot mistake for a whole one.
//   - Range requests: the Range field is not forwarded; the whole object is
//     fetched and scanned, so that a file split across ranges cannot slip
//     through in pieces, and the client gets the part it asked for (206)
//     cut from the scanned whole. Several ranges, or an If-Range, get the
//     whole object (200), as RFC 9110 allows.
//   - Objects over max_scan_size: passed unscanned or blocked
//     (oversize_action), logged either way.
package http

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/policy"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/worker"
)

// Proxy is the HTTP service.
type Proxy struct {
	proxy.SessionServer

	reach      proxy.Reach // allow_servers, deny_servers
	page       *proxy.BlockPage
	blockHosts policy.Domains
	mitm       *interception // tls_intercept; nil when off
}

// New builds the service from a worker's environment.
func New(env *worker.Env) (worker.Service, error) {
	return proxy.Build(env, func(c proxy.Common) *Proxy { return &Proxy{SessionServer: proxy.NewSessionServer(c)} }, (*Proxy).init)
}

func (p *Proxy) init() error {
	var err error
	p.reach = proxy.ReachOf(p.Svc)
	if p.page, err = proxy.LoadBlockPage(p.Svc.BlockPage); err != nil {
		return err
	}
	if p.blockHosts, err = policy.ParseDomains(p.Svc.BlockHosts); err != nil {
		return fmt.Errorf("block_hosts: %v", err)
	}
	if p.Svc.TLSIntercept {
		if p.mitm, err = interceptionFor(p.Svc.TLSCACert, p.Svc.TLSCAKey, p.Svc.TLSCAFile, p.Svc.TLSBypass, p.Global.BaseDir, p.Svc.TLSRefusedBypass, p.Log); err != nil {
			return err
		}
	}
	return p.InitServer(p.serveConn, "")
}

// Serve accepts clients until ln is closed.
func (p *Proxy) Serve(ln net.Listener) error {
	p.Listening(ln.Addr())
	if sl, ok := ln.(*slots.Listener); ok {
		// A client outside allow_clients is answered without a slot, and
		// when every slot is busy the oldest idle keep-alive connection
		// gives its slot to a client waiting in the backlog.
		sl.Admit = p.admitted
		sl.Refuse = p.refuse
	}
	return p.SessionServer.Serve(ln)
}

// admitted tells whether c's address is in allow_clients.
func (p *Proxy) admitted(c net.Conn) bool {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	return ok && p.Svc.AllowClients.Contains(a.IP)
}

// refuse answers a client outside allow_clients with 403 once it has
// asked (answering before would be an unsolicited response), holding no
// slot: its request head must come within header_timeout.
func (p *Proxy) refuse(c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(p.Svc.HeaderTimeout))
	s := &session{p: p, c: c, br: bufio.NewReaderSize(c, 4<<10), log: p.Log}
	if _, err := ReadRequest(s.br, Limits{Header: int(p.Svc.MaxRequestHead)}); err != nil {
		return
	}
	s.writeError(403, "Forbidden", "This proxy does not serve your network.", true)
}

// Shutdown closes idle clients and waits for the others until ctx ends;
// the admin notices still queued go out.
func (p *Proxy) Shutdown(ctx context.Context) error {
	err := p.SessionServer.Shutdown(ctx)
	if p.mitm != nil {
		p.mitm.closeIdle()
	}
	return err
}

// session is one client connection, or the HTTP inside an intercepted
// TLS connection of one.
type session struct {
	p    *Proxy
	c    net.Conn // what requests are read from and answers written to
	base net.Conn // the accepted connection (its slot, its idle state)
	br   *bufio.Reader
	pre  prefixed // the first bytes of a request awaited without a buffer
	// moved is set while the session goes on in another goroutine
	// (keepAlive): the one it leaves gives nothing back.
	moved  bool
	client string
	up     *upstream // a kept-alive server connection
	tls    *inside   // the intercepted HTTPS this session reads, if it does
	log    *zap.Logger
	// pageBytes is the body of the last page of ours (an error, the block
	// page) sent for the request being served.
	pageBytes int64
}

func (p *Proxy) serveConn(c net.Conn) {
	s := &session{p: p, c: c, base: c, br: newReader(c), log: p.Log}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		s.client = a.IP.String()
	}
	defer s.end()
	if p.mitm != nil && p.Svc.Transparent && p.admitted(c) && s.startsTLS() {
		// Port 443 diverted here: HTTPS without a CONNECT.
		s.interceptDiverted()
		return
	}
	// A client outside allow_clients gets its 403 once it has asked:
	// answering before would be an unsolicited response. The first
	// request head must have come whole within header_timeout of the
	// accept: a silent or trickling client does not hold a slot.
	s.serve(p.admitted(c), time.Now().Add(p.Svc.HeaderTimeout))
}

// end gives back the session's buffers and its server connection, unless
// the session goes on in another goroutine (resume).
func (s *session) end() {
	if s.moved {
		return
	}
	freeReader(s.br)
	s.br = nil
	s.closeUpstream()
}

// serve reads and answers requests until the client or a request ends
// the session; firstBy is when the first request head must be in.
func (s *session) serve(allowed bool, firstBy time.Time) {
	// A new client counts as busy until its first request: a stop or a
	// reload closing it as idle would drop one that connected a moment
	// before.
	if s.awaitRequest(firstBy) != nil || !s.answer(allowed, true) {
		return
	}
	s.keepAlive(allowed)
}

// keepAlive waits for the client's next request and answers it, until
// the client or a request ends the session. Between requests the session
// is idle. A client's own connection (not the HTTPS inside one) silent
// for parkAfter goes on waiting in a new goroutine (resume): what an idle
// kept-alive client costs is mostly the stack of the goroutine waiting
// for it, 8 KiB or more after a request, 2 KiB in a new one.
func (s *session) keepAlive(allowed bool) {
	p := s.p
	for {
		if !s.parkWhenQuiet() || !p.Sessions.SetIdle(s.base, true) {
			return
		}
		by := time.Now().Add(p.Svc.IdleTimeout)
		if s.tls == nil {
			err := s.awaitRequest(time.Now().Add(min(p.Svc.IdleTimeout, parkAfter)))
			if errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(by) {
				s.moved = true
				p.Sessions.Then(s.base, func() { s.resume(allowed, by) })
				return
			}
			if err != nil || !s.answer(allowed, false) {
				return
			}
			continue
		}
		if s.awaitRequest(by) != nil || !s.answer(allowed, false) {
			return
		}
	}
}

// resume is keepAlive going on in a goroutine of its own.
func (s *session) resume(allowed bool, by time.Time) {
	s.moved = false
	defer s.end()
	if s.awaitRequest(by) != nil || !s.answer(allowed, false) {
		return
	}
	s.keepAlive(allowed)
}

// answer reads the request that has begun to come and answers it; false
// when the session ends with it.
func (s *session) answer(allowed, first bool) bool {
	p, c := s.p, s.c
	// A request is coming: it is served, even if a stop has begun
	// meanwhile (the session ends after it).
	p.Sessions.SetIdle(s.base, false)
	if first && s.pre.lineIn() {
		// Its request line came whole: a client that spoke, not a silent
		// one to evict while its request is read.
		slots.Started(s.base)
	}
	if !first {
		c.SetReadDeadline(time.Now().Add(p.Svc.HeaderTimeout))
	}
	req, err := ReadRequest(s.br, Limits{Header: int(p.Svc.MaxRequestHead)})
	if err != nil {
		var br *ErrBadRequest
		if errors.As(err, &br) {
			s.log.Info("request refused", zap.String("client", s.client), zap.String("why", br.Why))
			status, reason, text := br.Reply()
			s.writeError(status, reason, text, true)
		}
		return false
	}
	c.SetReadDeadline(time.Time{})
	if first {
		slots.Started(s.base) // no longer a silent client to evict
	}
	if !allowed {
		s.writeError(403, "Forbidden", "This proxy does not serve your network.", true)
		return false
	}
	return s.handle(req)
}
