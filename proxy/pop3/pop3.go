// Package pop3 is fsigkd's POP3 service (RFC 1939, with RFC 2449's CAPA
// and RFC 2595's STLS towards the server): every mail a client retrieves
// (RETR, and TOP) is fetched from the server into a spool file, scanned
// whole, and only then sent to the client.
//
// Which server: with parent_server_host set, every client goes there and
// its USER is relayed as it is (mailboxes named name@domain work); in
// transparent mode, where the client was going; otherwise (forward mode)
// the client logs in as USER name@server[:port], the port defaulting to
// parent_server_port. In the first two the server's greeting is relayed,
// so that APOP (whose digest covers the greeting's timestamp) works; in
// forward mode the proxy greets with no timestamp, and APOP is not
// offered. Towards the server STLS is used per parent_tls (as shipped,
// whenever the server offers it: encrypted, not authenticated, as between
// mail servers; verify checks its certificate), so that passwords and
// mail do not cross the wire in the clear. Towards the client STLS is
// offered when tls_cert is set: the proxy ends that TLS and reads the
// mail it scans. CAPA is relayed without what the proxy cannot carry (the
// server's STLS, LANG, SASL mechanisms bound to the channel or with a
// security layer), with the proxy's own STLS.
//
// A retrieved mail: dot-unstuffed into the spool (byte for byte as the
// server sent it), scanned, then dot-stuffed again to the client, so that
// a clean mail arrives as it was, with X-Virus-Status: clean(fsigkd) first
// only when status_header asks for it. A detection, per action: delete
// (the default) sends the mail's own headers, Subject tagged with
// virus_subject_tag, and a text part saying what was found and removed, so
// that the client shows the user a message; a DELE then deletes the
// original on the server, as for any mail. deny answers -ERR (the mail
// stays on the server, and the client cannot fetch it); pass delivers it
// with X-Virus-Status: infected(...). A mail that could not be scanned is
// never replaced (the client would delete the only copy): with
// scan_failure = block the client gets -ERR and tries again later.
//
// Slow mails: the client gets nothing until the verdict, unless the mail
// is not ready within progress_interval (a slow server, a big mail). Then
// it gets the status line and, every progress_interval, a line of a folded
// X-Fsigkd-Progress header field, so that no client's idle timeout
// (fetchmail's 300 s, Thunderbird's 100 s) runs out. From then on a
// refusal (a detection with action = deny, a failed scan, a server that
// broke off) can no longer be an -ERR: the connection is closed without
// the terminating line, which every client reads as a failed retrieval,
// never as a whole mail. With action = delete the replacement is sent as
// usual.
//
// Spam (fsasd_service = yes): a retrieved mail is checked, and spam gets
// spam_subject_tag and the X-Spam-* fields; it is never deleted.
package pop3

import (
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/worker"
)

// Proxy is the POP3 service.
type Proxy struct {
	proxy.LineService
}

// New builds the service from a worker's environment.
func New(env *worker.Env) (worker.Service, error) {
	return proxy.Build(env, func(c proxy.Common) *Proxy { return &Proxy{LineService: proxy.NewLineService(c)} }, (*Proxy).init)
}

func (p *Proxy) init() error {
	// A client waiting between commands at a stop, or whose slot goes
	// to a waiting client, is told so. Its server session ends without
	// QUIT, so that the server deletes nothing it was asked to.
	return p.InitLine(p.serve, "-ERR [SYS/TEMP] The gateway closes this idle session; please reconnect later.")
}
