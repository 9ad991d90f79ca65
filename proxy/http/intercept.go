package http

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/policy"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/tlsca"
)

// HTTPS interception (tls_intercept = yes). A CONNECT is answered, the
// client's ClientHello read for the name it asks for (SNI), and then, in
// this order: a name in block_hosts gets the block page (over TLS, with
// a certificate for it); a name in tls_bypass, or one this client refused
// the gateway's certificate for lately (tls_refused_bypass), is passed
// through untouched, its ClientHello replayed to the server; otherwise
// the server is reached first, over TLS, and checked as a browser checks
// it (chain to the system's roots and tls_ca_file, name, validity). A
// server that asks for a client certificate is passed through (the
// client's certificate cannot be presented by the gateway). Then the
// client's TLS is ended here with a leaf certificate for the name signed
// by the gateway's CA (tlsca), and the HTTP inside is served as plain
// HTTP is, its URLs https://; a server whose certificate failed gets the
// block page saying why, for every request. TLS 1.2 and 1.3, ALPN
// http/1.1 only, towards both sides.

// interception is the HTTP service's HTTPS, set up once.
type interception struct {
	ca      *tlsca.CA
	roots   *x509.CertPool // the servers' roots: the system's and tls_ca_file
	bypass  policy.Domains
	refusal time.Duration // tls_refused_bypass
	// sessions resumes TLS sessions with servers: a new client
	// connection to a server seen lately costs no full handshake (and no
	// chain verification) towards it.
	sessions tls.ClientSessionCache

	mu      sync.Mutex
	refused map[string]time.Time // client and host, until when passed through
	idle    map[string][]kept    // server connections between clients, by upstream key
	nIdle   int                  // how many in idle
}

// kept is a server connection waiting for the next client of its server.
type kept struct {
	c     *tls.Conn
	since time.Time
}

// keptFor is how long, and keptMax how many per server, server
// connections wait between intercepted clients: a browser opens a new
// connection for many a request, and each would otherwise cost a TLS
// handshake with the server too.
const (
	keptFor   = 30 * time.Second
	keptMax   = 8
	keptTotal = 256 // descriptors held for servers while no client uses them
)

// closeIdle closes the server connections kept between clients (at stop).
func (m *interception) closeIdle() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, cs := range m.idle {
		for _, k := range cs {
			k.c.Close()
		}
	}
	m.idle, m.nIdle = nil, 0
}

// take gives a kept connection for key that is still idle, or nil.
func (m *interception) take(key string) *tls.Conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	for cs := m.idle[key]; len(cs) > 0; cs = m.idle[key] {
		k := cs[len(cs)-1]
		m.idle[key] = cs[:len(cs)-1]
		m.nIdle--
		if time.Since(k.since) < keptFor && proxy.Idle(k.c.NetConn()) {
			return k.c
		}
		k.c.Close()
	}
	return nil
}

// keep puts a server connection aside for the next client of its
// server (closed when there are enough, or once it has waited too long).
func (m *interception) keep(key string, c *tls.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.idle == nil {
		m.idle = map[string][]kept{}
	}
	cs := m.idle[key]
	for len(cs) > 0 && time.Since(cs[0].since) >= keptFor {
		cs[0].c.Close()
		cs = cs[1:]
		m.nIdle--
	}
	m.idle[key] = cs
	if len(cs) == 0 {
		delete(m.idle, key)
	}
	if len(cs) >= keptMax || m.nIdle >= keptTotal {
		c.Close()
		return
	}
	m.idle[key] = append(cs, kept{c, time.Now()})
	m.nIdle++
}

// inside is what a session inside an intercepted connection knows of it.
type inside struct {
	host    string // where the CONNECT went (dialled)
	port    int
	name    string // the name the client asked for, verified on the server
	refusal string // why every request is refused (a server certificate that failed)
}

// interceptionFor sets interception up from the settings: the CA (made
// under baseDir at first start when none is set), the roots, the lists.
func interceptionFor(caCert, caKey, caFile, bypass, baseDir string, refusal time.Duration, log *zap.Logger) (*interception, error) {
	certFile, keyFile := tlsca.Paths(caCert, caKey, baseDir)
	if caCert == "" {
		host, _ := os.Hostname()
		made, err := tlsca.Ensure(certFile, keyFile, "fsigkd CA ("+host+")")
		if err != nil {
			return nil, fmt.Errorf("the interception CA: %w", err)
		}
		if made {
			log.Warn("made the interception CA: clients must trust it (fsigkd ca prints it)", zap.String("certificate", certFile))
		}
	}
	ca, err := tlsca.Load(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("the interception CA: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		roots.AppendCertsFromPEM(b)
	}
	m := &interception{ca: ca, roots: roots, refusal: refusal, refused: map[string]time.Time{}, sessions: tls.NewLRUClientSessionCache(4096)}
	if m.bypass, err = policy.ParseDomains(bypass); err != nil {
		return nil, fmt.Errorf("tls_bypass: %w", err)
	}
	return m, nil
}

// refusedLately tells whether client refused the gateway's certificate
// for host within tls_refused_bypass.
func (m *interception) refusedLately(client, host string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	until, ok := m.refused[client+" "+host]
	if ok && time.Now().After(until) {
		delete(m.refused, client+" "+host)
		return false
	}
	return ok
}

// remember notes that client refused the gateway's certificate for host;
// false when it was already noted (so that it is logged once).
func (m *interception) remember(client, host string) bool {
	if m.refusal <= 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.refused) >= 100000 {
		m.refused = map[string]time.Time{} // a flood of names: start again
	}
	_, known := m.refused[client+" "+host]
	m.refused[client+" "+host] = time.Now().Add(m.refusal)
	return !known
}

// errProbed ends the probe of a ClientHello: it has been read.
var errProbed = errors.New("ClientHello read")

// recorder is the client's connection while its ClientHello is read: what
// is read is kept to be read again, and nothing is written.
type recorder struct {
	net.Conn
	r   io.Reader
	rec bytes.Buffer
}

func (c *recorder) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.rec.Write(p[:n])
	return n, err
}

func (c *recorder) Write(p []byte) (int, error) { return len(p), nil }

// replayed is the client's connection with what was read of it first.
type replayed struct {
	net.Conn
	r io.Reader
}

func (c *replayed) Read(p []byte) (int, error) { return c.r.Read(p) }

// hello reads the client's ClientHello (crypto/tls parses it): the name
// it asks for, and every byte it sent for it. The client must send it
// within header_timeout.
func (s *session) hello() (name string, sent []byte, err error) {
	var buffered []byte
	if n := s.br.Buffered(); n > 0 {
		buffered, _ = s.br.Peek(n)
		buffered = bytes.Clone(buffered)
	}
	rec := &recorder{Conn: s.c, r: io.MultiReader(bytes.NewReader(buffered), s.c)}
	got := false
	probe := tls.Server(rec, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		name, got = h.ServerName, true
		return nil, errProbed
	}})
	s.c.SetReadDeadline(time.Now().Add(s.p.Svc.HeaderTimeout))
	err = probe.Handshake()
	s.c.SetReadDeadline(time.Time{})
	if !got {
		return "", nil, fmt.Errorf("no TLS ClientHello: %w", err)
	}
	return name, rec.rec.Bytes(), nil
}

// startsTLS tells whether a diverted client's first byte opens a TLS
// handshake (a record of type 22), waiting header_timeout for it.
func (s *session) startsTLS() bool {
	s.c.SetReadDeadline(time.Now().Add(s.p.Svc.HeaderTimeout))
	b, err := s.br.Peek(1)
	s.c.SetReadDeadline(time.Time{})
	return err == nil && b[0] == 0x16
}

// interceptDiverted serves a TLS connection the firewall diverted here:
// intercepted as a CONNECT to its original destination would be.
func (s *session) interceptDiverted() {
	dst, err := s.p.Destination(s.c)
	if err != nil {
		s.log.Info("intercept: no original destination", zap.String("client", s.client), zap.Error(err))
		return
	}
	target := dst.String()
	tr := s.p.Begin(&logs.Access{Start: time.Now(), Client: s.client, Method: "CONNECT", URL: target, Service: "http",
		Slot: slots.SlotOf(s.base), Result: "TCP_TUNNEL"})
	defer tr.End()
	slots.Started(s.base)
	s.intercept(&Request{Method: "CONNECT", Target: target}, tr, dst.IP.String(), dst.Port, false)
}

// intercept serves a CONNECT to host:port with interception on (answer:
// the CONNECT is answered first; a diverted connection has none).
func (s *session) intercept(req *Request, tr *proxy.Transfer, host string, port int, answer bool) {
	m := s.p.mitm
	tr.Rec.Status = 200
	if answer {
		if _, err := io.WriteString(s.c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			return
		}
	}
	name, sent, err := s.hello()
	s.br = nil // what it held is in sent; the session reads no more of it
	if err != nil {
		tr.Rec.Detail = "not TLS: closed"
		s.log.Info("intercept: the client did not start TLS", zap.String("client", s.client), zap.String("target", req.Target), zap.Error(err))
		return
	}
	if name == "" {
		name = host
	}
	blocked := s.p.blockHosts.Match(name)
	if blocked == "" && (m.bypass.Match(name) != "" || m.refusedLately(s.client, name)) {
		tr.Rec.Detail = "passed through"
		s.passThrough(tr, req.Target, host, port, sent)
		return
	}
	in := &inside{host: host, port: port, name: name}
	key := upstreamKey(host, port, name)
	var origin net.Conn
	switch tc := m.take(key); {
	case blocked != "":
		if tc != nil {
			m.keep(key, tc)
		}
	case tc != nil:
		origin = tc // one another client of this server left
	default:
		c, err := s.dialTLS(host, port, name)
		var refusal *certRefusal
		switch {
		case errors.Is(err, errClientCertificate):
			tr.Rec.Detail = "passed through: the server asks for a client certificate"
			s.passThrough(tr, req.Target, host, port, sent)
			return
		case errors.As(err, &refusal):
			in.refusal = refusal.why
		case err != nil:
			in.refusal = "could not be reached (" + unreachable(err) + ")"
		default:
			origin = c
		}
	}
	// What the server's certificate says is mirrored in the leaf, where
	// the client shows it.
	var originCert *x509.Certificate
	if tc, ok := origin.(*tls.Conn); ok {
		if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
			originCert = pc[0]
		}
	}
	leaf, err := m.ca.LeafFor(name, originCert)
	if err != nil {
		if origin != nil {
			origin.Close()
		}
		s.log.Error("intercept: no certificate made", zap.String("name", name), zap.Error(err))
		return
	}
	tc := tls.Server(&replayed{Conn: s.c, r: io.MultiReader(bytes.NewReader(sent), s.c)}, &tls.Config{
		Certificates: []tls.Certificate{*leaf},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: tlsca.ModernSuites,
		NextProtos:   []string{"http/1.1"},
	})
	tc.SetDeadline(time.Now().Add(s.p.Svc.HeaderTimeout))
	err = tc.Handshake()
	tc.SetDeadline(time.Time{})
	if err != nil {
		if origin != nil {
			origin.Close()
		}
		tr.Rec.Detail = "the client refused the gateway's certificate"
		if refusedCA(err) && m.remember(s.client, name) {
			s.log.Info("a client refused the interception certificate: the host is passed through for it",
				zap.String("client", s.client), zap.String("host", name), zap.Duration("for", m.refusal), zap.Error(err))
		}
		return
	}
	tr.Rec.Detail = "intercepted"
	inner := &session{p: s.p, c: tc, base: s.base, br: newReader(tc), client: s.client, log: s.log, tls: in}
	if origin != nil {
		inner.up = &upstream{key: key, c: origin, br: newReader(origin)}
	}
	inner.serve(true, time.Now().Add(s.p.Svc.HeaderTimeout))
	inner.parkUpstream()
	inner.closeUpstream()
	freeReader(inner.br)
}

// refusedCA tells whether a failed handshake was the client refusing the
// certificate (an alert saying so), not a connection that broke.
func refusedCA(err error) bool {
	e := err.Error()
	return strings.Contains(e, "unknown certificate authority") || strings.Contains(e, "bad certificate") ||
		strings.Contains(e, "certificate unknown") || strings.Contains(e, "unsupported certificate")
}

// passThrough relays the connection to host:port untouched, the
// ClientHello already read sent first.
func (s *session) passThrough(tr *proxy.Transfer, target, host string, port int, sent []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	up, err := s.dialOrigin(ctx, host, port)
	if err != nil {
		s.log.Info("tunnel: server unreachable", zap.String("target", target), zap.Error(err))
		return
	}
	defer up.Close()
	if _, err := up.Write(sent); err != nil {
		return
	}
	s.relay(tr, up)
}

// dialOrigin reaches host:port for a connection intercepted or passed
// through: through the parent proxy's CONNECT when parent_server_host is
// set (the parent resolves the name and reaches the server, as it does
// for plain requests), else directly, within allow_servers and
// deny_servers. What goes over it is the server's TLS, checked here as
// ever: the parent sees only the name and the port.
func (s *session) dialOrigin(ctx context.Context, host string, port int) (net.Conn, error) {
	if s.p.Svc.ParentServerHost == "" {
		return s.p.DialServer(ctx, &s.p.reach, net.ParseIP(s.client), host, port)
	}
	c, err := s.p.Dial(ctx, net.ParseIP(s.client), "tcp", s.p.ParentAddr())
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	target := net.JoinHostPort(host, strconv.Itoa(port))
	if _, err := io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	// The server speaks only after the ClientHello, so nothing may follow
	// the parent's answer: bytes buffered past it would be lost to the
	// handshake, and are refused.
	br := bufio.NewReaderSize(c, 4096)
	resp, err := ReadResponse(br, 16<<10, "CONNECT")
	switch {
	case err != nil:
		c.Close()
		return nil, fmt.Errorf("the parent proxy's answer to CONNECT: %v", err)
	case resp.Status/100 != 2:
		c.Close()
		return nil, fmt.Errorf("the parent proxy refused the CONNECT (%d)", resp.Status)
	case br.Buffered() > 0:
		c.Close()
		return nil, errors.New("the parent proxy sent bytes before the server spoke")
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// errClientCertificate: the server asked for a client certificate.
var errClientCertificate = errors.New("the server asks for a client certificate")

// certRefusal is a server certificate that a browser would refuse, and
// why, in words for the block page.
type certRefusal struct{ why string }

func (e *certRefusal) Error() string { return "server certificate " + e.why }

// dialTLS reaches host:port over TLS, checking the server's certificate
// for name as a browser does.
func (s *session) dialTLS(host string, port int, name string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := s.dialOrigin(ctx, host, port)
	if err != nil {
		return nil, err
	}
	asked := false
	tc := tls.Client(c, &tls.Config{
		ServerName:         name,
		RootCAs:            s.p.mitm.roots,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: s.p.mitm.sessions,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			return nil, errClientCertificate
		},
	})
	err = tc.HandshakeContext(ctx)
	switch {
	case asked:
		c.Close()
		return nil, errClientCertificate
	case err != nil:
		c.Close()
		if why := certProblem(err); why != "" {
			return nil, &certRefusal{why}
		}
		return nil, err
	}
	return tc, nil
}

// certProblem says, for the block page, what is wrong with a server's
// certificate ("" when err is no certificate problem).
func certProblem(err error) string {
	var inv x509.CertificateInvalidError
	var host x509.HostnameError
	var auth x509.UnknownAuthorityError
	var verr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return "has expired or is not yet valid (" + inv.Detail + ")"
	case errors.As(err, &inv):
		return "is not valid for this use (" + inv.Error() + ")"
	case errors.As(err, &host):
		return "is issued for another name (" + host.Error() + ")"
	case errors.As(err, &auth):
		if auth.Cert != nil && bytes.Equal(auth.Cert.RawIssuer, auth.Cert.RawSubject) {
			return "is self-signed"
		}
		return "is not signed by a trusted authority"
	case errors.As(err, &verr):
		return "could not be verified (" + verr.Err.Error() + ")"
	}
	return ""
}

// blockHost answers a request or a CONNECT for a host in block_hosts.
func (s *session) blockHost(tr *proxy.Transfer, url, entry string) {
	tr.Rec.Detect, tr.Rec.Name, tr.Rec.Action = "BLOCKED", "block_hosts="+entry, "DENY"
	s.block(tr, url, "block_hosts="+entry, "This site is blocked by the gateway.")
}

// blockedHost gives the block_hosts entry a request's target is under,
// or, inside an intercepted connection, its Host field (a name another
// than the one asked for, as a CDN routes it).
func (s *session) blockedHost(t target, req *Request) string {
	if e := s.p.blockHosts.Match(t.host); e != "" {
		return e
	}
	if s.tls != nil {
		if e := s.p.blockHosts.Match(s.tls.name); e != "" {
			return e
		}
	}
	if h, _, err := splitHostPort(req.Header.Get("Host"), 0); err == nil {
		return s.p.blockHosts.Match(h)
	}
	return ""
}

// insideTarget is where a request inside an intercepted connection goes:
// its server is the CONNECT's, its URL names the verified name.
func (s *session) insideTarget(req *Request) (target, error) {
	if !strings.HasPrefix(req.Target, "/") {
		return target{}, errors.New("an absolute target inside HTTPS")
	}
	hp := s.tls.name
	if s.tls.port != 443 {
		hp = net.JoinHostPort(s.tls.name, strconv.Itoa(s.tls.port))
	} else if strings.Contains(hp, ":") {
		hp = "[" + hp + "]"
	}
	return target{host: s.tls.host, port: s.tls.port, path: req.Target, url: "https://" + hp + req.Target}, nil
}

// drain reads a refused request's body, so that the connection can serve
// the next request; false when it is too large to be worth reading.
func (s *session) drain(req *Request) bool {
	if !req.Chunked && req.ContentLength <= 0 {
		return true
	}
	const most = 1 << 20
	n, err := io.Copy(io.Discard, io.LimitReader(bodyReader(s.br, req.Chunked, req.ContentLength), most+1))
	return err == nil && n <= most
}

// connectTLS gives the server connection of a request inside HTTPS: the
// session's, one an idle client left for the next (parkUpstream), or a
// new one, checked again.
func (s *session) connectTLS(t target) (*upstream, error) {
	key := upstreamKey(t.host, t.port, s.tls.name)
	if s.up != nil && s.up.key == key && s.up.idle() {
		// Idle is asked of the socket under the TLS: a connection kept
		// was otherwise never reused, each request a new handshake.
		if tc, ok := s.up.c.(*tls.Conn); ok && proxy.Idle(tc.NetConn()) {
			s.up.reader()
			return s.up, nil
		}
	}
	s.closeUpstream()
	var c net.Conn
	if tc := s.p.mitm.take(key); tc != nil {
		c = tc
	} else {
		var err error
		if c, err = s.dialTLS(t.host, t.port, s.tls.name); err != nil {
			return nil, err
		}
	}
	s.up = &upstream{key: key, c: c, br: newReader(c)}
	return s.up, nil
}

// parkAfter is how long a client may be silent between requests before
// its session waits holding less: inside HTTPS, before its server
// connection is parked; on a client's own connection, before the session
// goes on in a goroutine with a small stack (keepAlive). One that asks
// again at once keeps what it has (parking at every request cost a tenth
// of the rate), one that goes quiet holds little.
const parkAfter = time.Second

// parkWhenQuiet waits up to parkAfter for the client's next request and
// parks the server connection if none came; false when the client is gone.
func (s *session) parkWhenQuiet() bool {
	if s.tls == nil || s.up == nil || s.br.Buffered() > 0 {
		return true
	}
	s.c.SetReadDeadline(time.Now().Add(parkAfter))
	_, err := s.br.Peek(1)
	var ne net.Error
	switch {
	case err == nil:
	case errors.As(err, &ne) && ne.Timeout():
		s.parkUpstream()
	default:
		return false
	}
	return true
}

// parkUpstream gives the server connection of a session inside HTTPS,
// idle between its client's requests, to the next client of that server
// (intercepted clients idle by the thousand hold none, and a client's
// next connection finds one ready).
func (s *session) parkUpstream() {
	up := s.up
	if s.tls == nil || up == nil || !up.idle() {
		return
	}
	if tc, ok := up.c.(*tls.Conn); ok {
		s.up = nil
		freeReader(up.br)
		s.p.mitm.keep(up.key, tc)
	}
}

// upstreamKey names a server connection inside HTTPS: where it goes and
// the name its certificate was checked for.
func upstreamKey(host string, port int, name string) string {
	return "tls " + net.JoinHostPort(host, strconv.Itoa(port)) + " " + name
}
