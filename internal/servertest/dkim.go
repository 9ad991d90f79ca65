package servertest

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// DKIM signs and verifies mail with dkimpy (Debian's python3-dkim), the
// signer and verifier of many mail servers, under a key made for the
// test: the verifier is given the key's DNS record, so nothing is looked
// up.
type DKIM struct {
	python, dir string
}

// NewDKIM makes a key (RSA 2048, selector "sel", domain example.com).
func NewDKIM(t testing.TB) *DKIM {
	t.Helper()
	py := "/usr/bin/python3" // Debian's, with its packages
	if _, err := os.Stat(py); err != nil {
		py = testenv.Need(t, "python3", "python3")
	}
	if out, err := exec.Command(py, "-c", "import dkim").CombinedOutput(); err != nil {
		testenv.Unavailable(t, "dkimpy not installed: apt-get install python3-dkim (%s)", out)
	}
	d := &DKIM{python: py, dir: t.TempDir()}
	ossl := testenv.Need(t, "openssl", "openssl")
	key := filepath.Join(d.dir, "key.pem")
	if out, err := exec.Command(ossl, "genrsa", "-out", key, "2048").CombinedOutput(); err != nil {
		t.Fatalf("openssl genrsa: %v %s", err, out)
	}
	// The public key as its DNS record gives it (p=, DER, base64).
	if out, err := exec.Command(ossl, "rsa", "-in", key, "-pubout", "-outform", "DER", "-out", filepath.Join(d.dir, "pub.der")).CombinedOutput(); err != nil {
		t.Fatalf("openssl rsa: %v %s", err, out)
	}
	return d
}

// Record is the key's DNS record (of sel._domainkey.example.com).
func (d *DKIM) Record(t testing.TB) string {
	t.Helper()
	der, err := os.ReadFile(filepath.Join(d.dir, "pub.der"))
	if err != nil {
		t.Fatal(err)
	}
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
}

// Sign is msg signed over From, To, Subject and Date (relaxed/relaxed).
func (d *DKIM) Sign(t testing.TB, msg string) string {
	t.Helper()
	return d.run(t, dkimSign, msg)
}

// Verify says whether msg (as a next hop received it) verifies.
func (d *DKIM) Verify(t testing.TB, msg []byte) bool {
	t.Helper()
	return strings.TrimSpace(d.run(t, dkimVerify, string(msg))) == "pass"
}

func (d *DKIM) run(t testing.TB, script, stdin string) string {
	cmd := exec.Command(d.python, "-c", script, filepath.Join(d.dir, "key.pem"), filepath.Join(d.dir, "pub.der"))
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dkimpy: %v", err)
	}
	return string(out)
}

const dkimSign = `import sys, dkim
key = open(sys.argv[1], 'rb').read()
msg = sys.stdin.buffer.read()
sig = dkim.sign(msg, b'sel', b'example.com', key, canonicalize=(b'relaxed', b'relaxed'),
                include_headers=[b'from', b'to', b'subject', b'date'])
sys.stdout.buffer.write(sig + msg)
`

const dkimVerify = `import sys, base64, dkim
record = b'v=DKIM1; k=rsa; p=' + base64.b64encode(open(sys.argv[2], 'rb').read())
ok = dkim.verify(sys.stdin.buffer.read(), dnsfunc=lambda name, timeout=5: record)
print('pass' if ok else 'fail')
`
