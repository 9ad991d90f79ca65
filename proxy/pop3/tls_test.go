package pop3

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/proxy"
)

// TestSTLSFromClients: with tls_cert set, the proxy offers STLS (in its
// own CAPA and in the server's it relays, not after TLS is on), and
// Python's poplib, checking the certificate, encrypts, logs in and
// retrieves the clean mail and the replaced infected one; fetchmail
// does the same with sslproto TLS1.2+ and sslcertck.
func TestSTLSFromClients(t *testing.T) {
	py := testenv.Need(t, "python3", "python3")
	keys, caFile := servertest.SignedLeaf(t)
	e := newEnv(t, keys).withDovecot("")
	e.putPair(t)
	cl := dial(t, e.addr)
	if capa := string(cl.multi("CAPA")); !strings.Contains(capa, "STLS") {
		t.Errorf("CAPA before login:\n%s", capa)
	}
	cl.ok("QUIT")
	host, port := splitAddr(t, e.addr)
	retrieveWithPoplib(t, py, `p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=30)
assert "STLS" in p.capa(), p.capa()
p.stls(context=ctx)
assert "STLS" not in p.capa(), p.capa()`, host, port, e.userAtServer(), caFile)
	b, got := fetchmailRetrieves(t, host, port, e.userAtServer(), caFile, "")
	if !strings.Contains(got, "Just text.") || !strings.Contains(b, "STLS") {
		t.Errorf("fetchmail:\n%s\ndelivered:\n%s", b, got)
	}
}

// TestSTLSWithoutCertificateAndPipelined: without tls_cert STLS is
// neither offered nor done; a client that sends a command behind STLS
// in the same packet (it would be read in the clear) is refused.
func TestSTLSWithoutCertificateAndPipelined(t *testing.T) {
	e := newEnv(t, "").withDovecot("")
	cl := dial(t, e.addr)
	if capa := string(cl.multi("CAPA")); strings.Contains(capa, "STLS") {
		t.Errorf("STLS offered without a certificate:\n%s", capa)
	}
	if r := cl.cmd("STLS"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("STLS without a certificate: %q", r)
	}
	keys, _ := servertest.SignedLeaf(t)
	e2 := newEnv(t, keys).withDovecot("")
	c2 := dial(t, e2.addr)
	c2.c.Write([]byte("STLS\r\nUSER x@y\r\n"))
	if r := c2.line(); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("STLS with a command behind it: %q", r)
	}
}

// TestParentTLSVerify: parent_tls = verify refuses Dovecot's self-signed
// certificate (the client is told to try later), none keeps the session
// in the clear, may (as shipped) encrypts and logs once that the
// certificate does not verify.
func TestParentTLSVerify(t *testing.T) {
	e := newEnv(t, "parent_tls = verify").withDovecot("")
	cl := dial(t, e.addr)
	if r := cl.cmd("USER " + e.srv.User + "@" + e.srv.Addr); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") || !strings.Contains(r, "TLS") {
		t.Errorf("verify against a self-signed server: %q", r)
	}
	for mode, wantTLS := range map[string]bool{"none": false, "may": true} {
		e := newEnv(t, "parent_tls = "+mode).withDovecot("")
		e.srv.Put(t, []byte(cleanMail))
		cl := e.login()
		if got := string(cl.multi("RETR 1")); got != cleanMail {
			t.Errorf("%s: RETR %q", mode, got)
		}
		cl.ok("QUIT")
		if tlsSeen := strings.Contains(e.srv.DovecotLog(), "TLS"); tlsSeen != wantTLS {
			t.Errorf("%s: Dovecot saw TLS: %v\n%s", mode, tlsSeen, e.srv.DovecotLog())
		}
		if mode == "may" && e.kit.Obs.FilterMessageSnippet("does not verify").Len() != 1 {
			t.Errorf("may: the unverified certificate was not logged once")
		}
	}
}

// TestPOP3SFromClients: on tls_port (POP3S, 995) the client speaks TLS
// from its first byte: Python's POP3_SSL, checking the certificate,
// retrieves the clean mail and the replaced infected one, and is offered
// no STLS; fetchmail with ssl and sslcertck does the same; the plain
// port goes on beside it.
func TestPOP3SFromClients(t *testing.T) {
	py := testenv.Need(t, "python3", "python3")
	keys, caFile := servertest.SignedLeaf(t)
	e := newEnv(t, keys).withDovecot("")
	tlsAddr := proxytest.ServeTLS(t, e.p)
	e.putPair(t)
	host, port := splitAddr(t, tlsAddr)
	retrieveWithPoplib(t, py, `p = poplib.POP3_SSL(sys.argv[1], int(sys.argv[2]), context=ctx, timeout=30)
assert "STLS" not in p.capa(), p.capa()`, host, port, e.userAtServer(), caFile)
	b, got := fetchmailRetrieves(t, host, port, e.userAtServer(), caFile, "ssl ")
	if !strings.Contains(got, "Just text.") || !strings.Contains(got, "[VIRUS REMOVED]") {
		t.Errorf("fetchmail:\n%s\ndelivered:\n%s", b, got)
	}

	cl := dial(t, e.addr)
	if !strings.HasPrefix(cl.Greeting, "+OK") {
		t.Errorf("the plain port beside it: %q", cl.Greeting)
	}
}

// TestPOP3SRefusesWhatIsNotTLS: a client that speaks plain POP3, or
// nothing, to tls_port is closed (the second within header_timeout),
// and is never greeted in the clear.
func TestPOP3SRefusesWhatIsNotTLS(t *testing.T) {
	keys, _ := servertest.SignedLeaf(t)
	e := newEnv(t, keys+"header_timeout = 1").withDovecot("")
	tlsAddr := proxytest.ServeTLS(t, e.p)
	for name, send := range map[string]string{"plain commands": "CAPA\r\nUSER x\r\n", "silence": ""} {
		c, err := net.Dial("tcp", tlsAddr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(send))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		b, _ := io.ReadAll(c)
		c.Close()
		if strings.Contains(string(b), "+OK") || time.Since(start) > 5*time.Second {
			t.Errorf("%s: read %q, closed after %v", name, b, time.Since(start))
		}
	}
}

// TestPOP3STransparent: a client diverted from port 995 reaches the
// server it was going to over TLS too (Dovecot's POP3S, its certificate
// self-signed): parent_tls = may retrieves, Dovecot seeing TLS; verify
// refuses the self-signed server, the client told to try later.
func TestPOP3STransparent(t *testing.T) {
	for _, mode := range []string{"may", "verify"} {
		keys, caFile := servertest.SignedLeaf(t)
		pop3s := testenv.FreePort(t)
		srv := servertest.Dovecot(t, "service pop3-login {\n  inet_listener pop3s {\n    port = "+strconv.Itoa(pop3s)+"\n  }\n}\n")
		srv.Put(t, []byte(cleanMail))
		c, kit := proxytest.Common(t, "pop", keys+"transparent = yes\nparent_tls = "+mode+"\n")
		e := &env{t: t, p: &Proxy{LineService: proxy.NewLineService(c)}, kit: kit, srv: srv}
		dst := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: pop3s}
		e.p.OriginalDst = func(net.Conn) (net.Addr, error) { return dst, nil }
		e.start()
		tlsAddr := proxytest.ServeTLS(t, e.p)
		pool := x509.NewCertPool()
		pem, _ := os.ReadFile(caFile)
		pool.AppendCertsFromPEM(pem)
		tc, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		tc.SetDeadline(time.Now().Add(30 * time.Second))
		cl := &client{t: t, c: tc, br: bufio.NewReader(tc)}
		cl.Greeting = cl.line()
		switch mode {
		case "may":
			if !strings.HasPrefix(cl.Greeting, "+OK") {
				t.Fatalf("may: greeting %q", cl.Greeting)
			}
			cl.ok("USER " + srv.User)
			cl.ok("PASS " + srv.Pass)
			if got := string(cl.multi("RETR 1")); got != cleanMail {
				t.Errorf("may: RETR %q", got)
			}
			cl.ok("QUIT")
			if !strings.Contains(srv.DovecotLog(), "TLS") {
				t.Errorf("may: Dovecot saw no TLS:\n%s", srv.DovecotLog())
			}
		case "verify":
			if !strings.HasPrefix(cl.Greeting, "-ERR [SYS/TEMP]") || !strings.Contains(cl.Greeting, "TLS") {
				t.Errorf("verify against a self-signed server: %q", cl.Greeting)
			}
		}
		tc.Close()
	}
}

// retrieveWithPoplib has Python's poplib connect as open says (a Python
// snippet making p, with ctx checking the certificate against the CA),
// log in and retrieve the clean mail and the infected one, which must
// come back replaced.
func retrieveWithPoplib(t *testing.T, py, open, host, port, user, caFile string) {
	t.Helper()
	script := "import poplib, ssl, sys\nctx = ssl.create_default_context(cafile=sys.argv[4])\n" + open + `
p.user(sys.argv[3]); p.pass_("secret")
for n in (1, 2):
    resp, lines, octets = p.retr(n)
    sys.stdout.write("=== %d\n" % n + "\n".join(l.decode() for l in lines) + "\n")
p.quit()
`
	out, err := exec.Command(py, "-c", script, host, port, user, caFile).CombinedOutput()
	if err != nil {
		t.Fatalf("poplib: %v\n%s", err, out)
	}
	first, second, _ := strings.Cut(string(out), "=== 2\n")
	if first != "=== 1\n"+strings.ReplaceAll(cleanMail, "\r\n", "\n") || !strings.Contains(second, "Subject: [VIRUS REMOVED] invoice") {
		t.Errorf("poplib retrieved:\n%s", out)
	}
}

// fetchmailRetrieves runs fetchmail over TLS (ssl: "ssl " for TLS from
// the first byte, "" for STLS), checking the certificate: its output, and
// what it delivered.
func fetchmailRetrieves(t *testing.T, host, port, user, caFile, ssl string) (out, delivered string) {
	t.Helper()
	fetchmail := testenv.Need(t, "fetchmail", "fetchmail")
	dir := t.TempDir()
	dest := filepath.Join(dir, "delivered")
	rc := filepath.Join(dir, "fetchmailrc")
	os.WriteFile(rc, []byte("set no bouncemail\npoll "+host+" service "+port+" protocol pop3 auth password no uidl\n"+
		"  user \""+user+"\" password \"secret\" is root here\n"+
		"  mda \"/bin/sh -c 'cat >> "+dest+"; echo ===END=== >> "+dest+"'\"\n"+
		"  "+ssl+"sslproto 'TLS1.2+' sslcertck sslcertfile \""+caFile+"\"\n"), 0o600)
	cmd := exec.Command(fetchmail, "-f", rc, "--nodetach", "-v", "--keep")
	cmd.Env = append(os.Environ(), "FETCHMAILHOME="+dir, "HOME="+dir)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetchmail: %v\n%s", err, b)
	}
	got, _ := os.ReadFile(dest)
	return string(b), string(got)
}
