// Package ftp is fsigkd's FTP service (RFC 959, with RFC 2428's EPRT and
// EPSV): clients log in as USER name@host[:port] (or arrive transparently)
// and every file that crosses is scanned. Downloads (RETR) are fetched
// from the server into a spool file, scanned, and only then sent to the
// client; uploads (STOR, APPE, STOU) are taken from the client, scanned,
// and only then sent to the server: an infected upload never reaches it.
// Listings (LIST, NLST, MLSD) are relayed unscanned, the kernel doing the
// copy (splice).
//
// Data connections: PASV and EPSV are answered with the proxy's own
// address, PORT and EPRT are taken from the client but only for the
// client's own address (no FTP bounce); towards the server, passive by
// default, active with server_active. A data connection to our passive
// port from another address is refused (530 Invalid Connection Source.).
//
// While a file is fetched and scanned the client gets "150-" lines every
// progress_interval (as frox did), the first after one interval, so that a
// file refused sooner gets a plain 550; and the server a NOOP every
// noop_interval (a reply other than 200: M12). REST: a download restarts
// from the offset of the whole file, fetched and scanned whole; a restarted
// upload is refused (550), since a part of a file cannot be judged. TYPE
// and the other commands are relayed as they are. A server that breaks off
// a transfer gives the client 451, never a short file reported whole.
//
// FTPS (explicit, RFC 4217) both ways: AUTH TLS from clients with
// tls_cert, towards servers per parent_tls (tls.go).
package ftp

import (
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/worker"
)

// Proxy is the FTP service.
type Proxy struct {
	proxy.LineService
}

// New builds the service from a worker's environment.
func New(env *worker.Env) (worker.Service, error) {
	return proxy.Build(env, func(c proxy.Common) *Proxy { return &Proxy{LineService: proxy.NewLineService(c)} }, (*Proxy).init)
}

func (p *Proxy) init() error {
	// A client waiting between commands at a stop, or whose slot goes
	// to a waiting client, is told so.
	return p.InitLine(p.serve, "421 The gateway closes this idle session; please reconnect later.")
}
