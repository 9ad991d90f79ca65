package servertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/tlsca"
)

// SelfSigned is a certificate for 127.0.0.1 made for the test.
func SelfSigned(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := selfSigned()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func selfSigned() (tls.Certificate, error) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, err
}

// WriteKeyPair writes cert (from SelfSigned) as PEM files in dir.
func WriteKeyPair(t testing.TB, cert tls.Certificate, dir string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile, err := writeKeyPair(cert, dir)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// SignedLeaf makes a service's certificate for 127.0.0.1, signed by a CA
// of the test's own: the tls_cert and tls_key lines of its section, and
// the CA's file for clients that check it.
func SignedLeaf(t testing.TB) (keys, caFile string) {
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
	cert, key := WriteKeyPair(t, *leaf, dir)
	return "tls_cert = " + cert + "\ntls_key = " + key + "\n", caFile
}

func writeKeyPair(cert tls.Certificate, dir string) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	keyDER, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return "", "", err
	}
	if err = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err == nil {
		err = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	}
	return certFile, keyFile, err
}

// POPServer is a Dovecot serving POP3 on loopback (STLS offered, plain
// logins allowed in the clear too) for one mailbox, which the test fills
// with Put.
type POPServer struct {
	*testenv.Proc
	*Mailbox
	User, Pass string
}

// Mailbox is the maildir of the mailbox alice.
type Mailbox struct {
	Maildir  string
	uid, gid int
	n        atomic.Int64
}

// Dovecot starts Dovecot's POP3 server on a free port of 127.0.0.1, with
// extra appended to its configuration; see DovecotWith.
func Dovecot(t testing.TB, extra string) *POPServer {
	t.Helper()
	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return DovecotWith(t, DovecotOptions{Addr: addr, Extra: extra, Ready: testenv.Dialable("tcp", addr)})
}

// DovecotOptions say where Dovecot runs.
type DovecotOptions struct {
	Addr  string   // IPv4 address and port it listens on
	Extra string   // appended to its configuration
	Wrap  []string // the command runs under this (ip netns exec NS)
	Ready func() bool
}

// DovecotWith starts Dovecot's POP3 server for the mailbox alice,
// password secret (USER/PASS, APOP, AUTH PLAIN, LOGIN and CRAM-MD5). The
// mailbox belongs to nobody, as Dovecot will not serve one as root.
func DovecotWith(t testing.TB, o DovecotOptions) *POPServer {
	t.Helper()
	bin := testenv.Need(t, "dovecot", "dovecot-pop3d")
	testenv.NeedRoot(t, "Dovecot runs its mail processes as another user")
	dir := testenv.ShortDir(t)
	m, err := DovecotSetup(dir, o.Addr, o.Extra)
	if err != nil {
		testenv.Unavailable(t, "%v", err)
	}
	s := &POPServer{Mailbox: m, User: "alice", Pass: "secret"}
	p := &testenv.Proc{Dir: dir, Addr: o.Addr, LogFile: filepath.Join(dir, "dovecot.out")}
	p.Args = append(append([]string{}, o.Wrap...), bin, "-F", "-c", filepath.Join(dir, "dovecot.conf"))
	p.Ready = o.Ready
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot.log:\n%s", b)
		}
	})
	p.Start(t)
	s.Proc = p
	return s
}

// Put delivers a mail into the mailbox; mails are listed in the order put.
func (s *POPServer) Put(t testing.TB, mail []byte) {
	t.Helper()
	if err := s.Mailbox.Put(mail); err != nil {
		t.Fatal(err)
	}
}

// Put delivers a mail into the mailbox; mails are listed in the order put.
func (m *Mailbox) Put(mail []byte) error {
	name := fmt.Sprintf("%d.%06d.test", time.Now().Unix()+m.n.Add(1), m.n.Load())
	tmp := filepath.Join(m.Maildir, "tmp", name)
	if err := os.WriteFile(tmp, mail, 0o600); err != nil {
		return err
	}
	os.Chown(tmp, m.uid, m.gid)
	return os.Rename(tmp, filepath.Join(m.Maildir, "new", name))
}

// DovecotSetup writes, in dir, the configuration (dir/dovecot.conf) of a
// Dovecot serving POP3 on addr for the mailbox alice, password secret,
// with extra appended, and makes the mailbox. Run as root: the mailbox
// belongs to nobody, as Dovecot will not serve one as root.
func DovecotSetup(dir, addr, extra string) (*Mailbox, error) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	os.Chmod(dir, 0o755)
	m := &Mailbox{Maildir: filepath.Join(dir, "mail", "alice"), uid: uid, gid: gid}
	for _, d := range []string{"", "new", "cur", "tmp"} {
		os.MkdirAll(filepath.Join(m.Maildir, d), 0o700)
		os.Chown(filepath.Join(m.Maildir, d), uid, gid)
	}
	os.Chmod(filepath.Join(dir, "mail"), 0o755)
	cert, err := selfSigned()
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := writeKeyPair(cert, dir)
	if err != nil {
		return nil, err
	}
	os.WriteFile(filepath.Join(dir, "passwd"), []byte("alice:{PLAIN}secret\n"), 0o644)
	host, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf(dovecotConf, dir, certFile, keyFile, port, uid, gid, extra, host)
	os.MkdirAll(filepath.Join(dir, "run"), 0o755)
	return m, os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644)
}

const dovecotConf = `base_dir = %[1]s/run
state_dir = %[1]s/run
protocols = pop3
listen = %[8]s
log_path = %[1]s/dovecot.log
ssl = yes
ssl_cert = <%[2]s
ssl_key = <%[3]s
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 apop
passdb {
  driver = passwd-file
  args = scheme=PLAIN %[1]s/passwd
}
userdb {
  driver = static
  args = uid=%[5]d gid=%[6]d home=%[1]s/mail/%%u
}
mail_location = maildir:%[1]s/mail/%%u
service pop3-login {
  inet_listener pop3 {
    port = %[4]s
  }
  inet_listener pop3s {
    port = 0
  }
  chroot =
}
service anvil {
  chroot =
}
pop3_uidl_format = %%08Xu%%08Xv
%[7]s
`

// Count is the number of mails in the mailbox.
func (s *POPServer) Count() int {
	n := 0
	for _, d := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(s.Maildir, d))
		n += len(ents)
	}
	return n
}

// DovecotLog is what Dovecot logged.
func (s *POPServer) DovecotLog() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
	return string(b)
}
