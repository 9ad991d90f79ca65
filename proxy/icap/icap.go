// Package icap is fsigkd's ICAP server (RFC 3507): fsigkd's scanning for
// Squid, e2guardian or any ICAP client, a drop-in for c-icap's avscan.
//
// OPTIONS answers Methods, ISTag (it changes with the engine's signature
// version), Preview (preview_size), Transfer-Preview: *, Allow: 204,
// Max-Connections (pre_spawn) and Options-TTL (options_ttl). RESPMOD
// (respmod_paths) and REQMOD (reqmod_paths) take the encapsulated heads
// and the chunked body, with a preview (a preview that does not end the
// body gets 100 Continue: the verdict needs the whole object); the body is
// spooled whole and goes through the same pipeline as the HTTP proxy's
// (proxy.Object.Judge: content codings undone for the scan, max_scan_size and
// oversize_action, scan_failure, action, the admin notice). Clean: 204
// when the client allows it, otherwise the request's own message back,
// which for a large message starts going back as it arrives (see
// early.go: Squid waits for it before it sends more). A
// detection, or what the settings block: 200 with a 403 and the block page
// as the encapsulated response (for REQMOD too: the upload never reaches
// the server), and the headers ICAP clients log a name from:
// X-Infection-Found, X-Virus-ID, and F-Secure's X-FSecure-Scan-Result and
// X-FSecure-Infection-Name. Connections are persistent. A request whose
// framing cannot be trusted gets 400 (501 for an unknown method, 404 for
// an unknown service) and the connection is closed.
package icap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/worker"
)

// Proxy is the ICAP service.
type Proxy struct {
	proxy.SessionServer

	page *proxy.BlockPage
}

// New builds the service from a worker's environment.
func New(env *worker.Env) (worker.Service, error) {
	return proxy.Build(env, func(c proxy.Common) *Proxy { return &Proxy{SessionServer: proxy.NewSessionServer(c)} }, (*Proxy).init)
}

func (p *Proxy) init() error {
	var err error
	if p.page, err = proxy.LoadBlockPage(p.Svc.BlockPage); err != nil {
		return err
	}
	return p.InitServer(p.serve, "")
}

// istag names the service's current state: it changes with the engine's
// signature version, so that clients drop what they cached from the
// previous one.
func (p *Proxy) istag() string {
	v := ""
	if vs, ok := p.Scanner.(scanner.Versioner); ok {
		if v = vs.Version(); v == "" {
			// Not yet asked: the engine is asked now.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			vs.RefreshVersion(ctx)
			cancel()
			v = vs.Version()
		}
	}
	return `"FSIGKD-` + istagOf(v) + `"`
}

// istagOf is the part of the ISTag that a signature version makes.
func istagOf(version string) string {
	sum := sha256.Sum256([]byte("fsigkd\x00" + version))
	return hex.EncodeToString(sum[:])[:16]
}
