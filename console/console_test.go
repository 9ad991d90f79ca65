package console

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/metrics"
)

func global(t *testing.T, keys string) conf.Global {
	t.Helper()
	cfg, _, err := conf.Parse(filepath.Join(t.TempDir(), "fsigk.ini"), []byte(keys), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Global
}

// TestOffLoopbackNeedsPasswordAndTLS: check refuses a console off
// loopback without a password and TLS, and Start refuses it again.
func TestOffLoopbackNeedsPasswordAndTLS(t *testing.T) {
	for _, keys := range []string{"console_bind = 0.0.0.0\n", "console_bind = 192.0.2.1\nconsole_password = " + hash(t, "a good password") + "\n"} {
		if _, _, err := conf.Parse("fsigk.ini", []byte(keys), nil); err == nil || !strings.Contains(err.Error(), "console_bind") {
			t.Errorf("%q: %v", keys, err)
		}
	}
	g := global(t, "")
	g.ConsoleBind = "0.0.0.0"
	if _, err := Start(g, &metrics.Totals{Dir: t.TempDir()}, nil, nil); err != ErrBare {
		t.Fatalf("Start off loopback, bare: %v", err)
	}
	if _, _, err := conf.Parse("fsigk.ini", []byte("console_password = plain\n"), nil); err == nil || !strings.Contains(err.Error(), "bcrypt") {
		t.Fatalf("a plain password: %v", err)
	}
}

func hash(t *testing.T, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestPasswordAndTLS: with a password every path asks for it; with a
// certificate the console is HTTPS only.
func TestPasswordAndTLS(t *testing.T) {
	cert, key := selfSigned(t)
	g := global(t, "console_port = 1\n")
	g.ConsolePort = 0
	g.ConsolePassword = hash(t, "a good password")
	g.ConsoleTLSCert, g.ConsoleTLSKey = cert, key
	srv, err := Start(g, &metrics.Totals{Dir: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	url := "https://" + srv.Addr().String() + "/metrics"
	for _, c := range []struct {
		user, pass string
		want       int
	}{{"", "", 401}, {"admin", "wrong", 401}, {"root", "a good password", 401}, {"admin", "a good password", 200}} {
		req, _ := http.NewRequest("GET", url, nil)
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s/%s: %d, want %d", c.user, c.pass, resp.StatusCode, c.want)
		}
	}
	if resp, err := http.Get("http://" + srv.Addr().String() + "/metrics"); err == nil && resp.StatusCode == 200 {
		t.Fatal("served over plain HTTP")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (cert, key string) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fsigkd console"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(priv)
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, key
}

// TestWrongPasswordsDoNotHoldTheConsole: a stream of wrong passwords gets
// 401 (or 503 while a check runs), and the right one is answered without
// a bcrypt check once it passed.
func TestWrongPasswordsDoNotHoldTheConsole(t *testing.T) {
	g := global(t, "")
	g.ConsolePort = 0
	h, _ := bcrypt.GenerateFromPassword([]byte("a good password"), 11) // a check costs ~100 ms
	g.ConsolePassword = string(h)
	srv, err := Start(g, &metrics.Totals{Dir: t.TempDir()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	get := func(pass string) int {
		req, _ := http.NewRequest("GET", "http://"+srv.Addr().String()+"/metrics", nil)
		req.SetBasicAuth("admin", pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("a good password"); code != 200 {
		t.Fatalf("right password: %d", code)
	}
	start := time.Now()
	for i := 0; i < 20; i++ {
		if code := get("a good password"); code != 200 {
			t.Fatalf("again: %d", code)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("20 requests with a remembered password took %s", d)
	}
	if code := get("wrong"); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
}
