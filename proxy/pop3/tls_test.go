package pop3

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/tlsca"
)

// clientCert makes the proxy's certificate for 127.0.0.1, signed by a CA
// of the test's own: its tls_cert and tls_key, and the CA's file for the
// clients.
func clientCert(t *testing.T) (keys, caFile string) {
	t.Helper()
	dir := t.TempDir()
	caFile, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	if _, err := tlsca.Ensure(caFile, caKey, "test CA"); err != nil {
		t.Fatal(err)
	}
	ca, err := tlsca.Load(caFile, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, key := servertest.WriteKeyPair(t, *leaf, dir)
	return "tls_cert = " + cert + "\ntls_key = " + key + "\n", caFile
}

// TestSTLSFromClients: with tls_cert set, the proxy offers STLS (in its
// own CAPA and in the server's it relays, not after TLS is on), and
// Python's poplib, checking the certificate, encrypts, logs in and
// retrieves the clean mail and the replaced infected one; fetchmail
// does the same with sslproto TLS1.2+ and sslcertck.
func TestSTLSFromClients(t *testing.T) {
	py := testenv.Need(t, "python3", "python3")
	keys, caFile := clientCert(t)
	e := newEnv(t, keys).withDovecot("")
	e.putPair(t)
	cl := dial(t, e.addr)
	if capa := string(cl.multi("CAPA")); !strings.Contains(capa, "STLS") {
		t.Errorf("CAPA before login:\n%s", capa)
	}
	cl.ok("QUIT")
	host, port := splitAddr(t, e.addr)
	script := `
import poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[4])
p = poplib.POP3(sys.argv[1], int(sys.argv[2]), timeout=30)
assert "STLS" in p.capa(), p.capa()
p.stls(context=ctx)
assert "STLS" not in p.capa(), p.capa()
p.user(sys.argv[3]); p.pass_("secret")
for n in (1, 2):
    resp, lines, octets = p.retr(n)
    sys.stdout.write("=== %d\n" % n + "\n".join(l.decode() for l in lines) + "\n")
p.quit()
`
	out, err := exec.Command(py, "-c", script, host, port, e.userAtServer(), caFile).CombinedOutput()
	if err != nil {
		t.Fatalf("poplib over STLS: %v\n%s", err, out)
	}
	first, second, _ := strings.Cut(string(out), "=== 2\n")
	if first != "=== 1\n"+strings.ReplaceAll(cleanMail, "\r\n", "\n") || !strings.Contains(second, "Subject: [VIRUS REMOVED] invoice") {
		t.Errorf("over STLS:\n%s", out)
	}

	fetchmail := testenv.Need(t, "fetchmail", "fetchmail")
	dir := t.TempDir()
	delivered := filepath.Join(dir, "delivered")
	rc := filepath.Join(dir, "fetchmailrc")
	os.WriteFile(rc, []byte("set no bouncemail\npoll "+host+" service "+port+" protocol pop3 auth password no uidl\n"+
		"  user \""+e.userAtServer()+"\" password \"secret\" is root here\n"+
		"  mda \"/bin/sh -c 'cat >> "+delivered+"; echo ===END=== >> "+delivered+"'\"\n"+
		"  sslproto 'TLS1.2+' sslcertck sslcertfile \""+caFile+"\"\n"), 0o600)
	cmd := exec.Command(fetchmail, "-f", rc, "--nodetach", "-v", "--keep")
	cmd.Env = append(os.Environ(), "FETCHMAILHOME="+dir, "HOME="+dir)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetchmail over STLS: %v\n%s", err, b)
	}
	if got, _ := os.ReadFile(delivered); !strings.Contains(string(got), "Just text.") || !strings.Contains(string(b), "STLS") {
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
	keys, _ := clientCert(t)
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
