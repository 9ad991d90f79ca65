package http

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	gohttp "net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/forms"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/tlsca"
)

// testCA is a root of the tests' own, standing for a public CA: the
// origins' certificates are issued by it, and tls_ca_file trusts it.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), "roots.pem")
	os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return &testCA{cert: cert, key: key, file: file}
}

// issue makes a server certificate for names (addresses too), valid from
// notBefore to notAfter, signed by ca (nil: by itself).
func (ca *testCA) issue(t *testing.T, names []string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: notBefore, NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// origin serves handler over TLS with cert; its port.
func origin(t *testing.T, cert tls.Certificate, clientAuth tls.ClientAuthType, handler gohttp.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: clientAuth}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// files serves each path's body, and keeps what uploads brought.
func files(bodies map[string][]byte, got map[string][]byte) gohttp.Handler {
	return gohttp.HandlerFunc(func(w gohttp.ResponseWriter, r *gohttp.Request) {
		b, _ := io.ReadAll(r.Body)
		if got != nil {
			got[r.URL.Path] = b
		}
		w.Write(bodies[r.URL.Path])
	})
}

// httpsClient is a client of the proxy that trusts roots, naming the
// server serverName in its ClientHello when set.
func (e *env) httpsClient(roots *x509.CertPool, serverName string) *gohttp.Client {
	pu, _ := url.Parse("http://" + e.addr)
	return &gohttp.Client{Timeout: 20 * time.Second, Transport: &gohttp.Transport{
		Proxy: gohttp.ProxyURL(pu), DisableCompression: true,
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName},
	}}
}

// connectPorts is the connect_ports line that lets CONNECT reach srvs.
func connectPorts(srvs ...*httptest.Server) string {
	line := "\nconnect_ports = 443"
	for _, srv := range srvs {
		line += ", " + srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	}
	return line
}

// gatewayCA is the CA the gateway made under its base_dir, as a pool.
func (e *env) gatewayCA(t *testing.T) (*x509.CertPool, string) {
	t.Helper()
	file := filepath.Join(e.p.Global.BaseDir, tlsca.CertFile)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool, file
}

func fetch(t *testing.T, c *gohttp.Client, method, u, body string) (int, string, error) {
	t.Helper()
	req, _ := gohttp.NewRequest(method, u, strings.NewReader(body))
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestHTTPSIsScannedAsHTTPIs: with tls_intercept = yes (and the test
// origin's root trusted), a CONNECT is intercepted with a certificate of
// the CA the gateway made at start (its key 0600): EICAR downloaded or
// uploaded over HTTPS gets the block page, a clean download arrives byte
// for byte, and the access log has the https:// URLs.
func TestHTTPSIsScannedAsHTTPIs(t *testing.T) {
	root := newTestCA(t)
	got := map[string][]byte{}
	clean := randomBytes(300 << 10)
	srv := origin(t, root.issue(t, []string{"127.0.0.1", "localhost"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), tls.NoClientCert,
		files(map[string][]byte{"/eicar.com": []byte(eicar.String), "/clean.bin": clean, "/upload": []byte("stored")}, got))
	e := newEnv(t, "tls_intercept = yes\ntls_ca_file = "+root.file+connectPorts(srv))
	if fi, err := os.Stat(filepath.Join(e.p.Global.BaseDir, tlsca.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the CA's key: %v %v", fi, err)
	}
	pool, _ := e.gatewayCA(t)
	c := e.httpsClient(pool, "")
	code, body, err := fetch(t, c, "GET", srv.URL+"/eicar.com", "")
	if err != nil || code != 403 || !strings.Contains(body, "Eicar-Test-Signature") {
		t.Fatalf("EICAR over HTTPS: %d %v %.200q", code, err, body)
	}
	code, body, err = fetch(t, c, "GET", srv.URL+"/clean.bin", "")
	if err != nil || code != 200 || body != string(clean) {
		t.Fatalf("a clean download: %d %v, %d bytes of %d", code, err, len(body), len(clean))
	}
	code, _, err = fetch(t, c, "POST", srv.URL+"/upload", eicar.String)
	if err != nil || code != 403 || got["/upload"] != nil {
		t.Fatalf("EICAR uploaded over HTTPS: %d %v, reached the server: %v", code, err, got["/upload"] != nil)
	}
	e.waitLog(srv.URL+"/eicar.com", "DETECT-STAT:INFECTED:Eicar-Test-Signature", srv.URL+"/clean.bin", "DETECT-STAT:CLEAN")
}

func (e *env) waitLog(want ...string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, w := range want {
		for !strings.Contains(e.accessLog(), w) {
			if time.Now().After(deadline) {
				e.t.Fatalf("access log lacks %q:\n%s", w, e.accessLog())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestHTTPSOriginCheckedAsABrowserWould: an origin whose certificate has
// expired, names another host, is self-signed or comes from an unknown
// root gets the block page saying so, over the intercepted connection.
func TestHTTPSOriginCheckedAsABrowserWould(t *testing.T) {
	root, other := newTestCA(t), newTestCA(t)
	now := time.Now()
	for name, cert := range map[string]struct {
		cert tls.Certificate
		why  string
	}{
		"expired":      {root.issue(t, []string{"127.0.0.1"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour)), "has expired"},
		"another name": {root.issue(t, []string{"other.example"}, now.Add(-time.Hour), now.Add(time.Hour)), "issued for another name"},
		"self-signed":  {(*testCA)(nil).issue(t, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour)), "is self-signed"},
		"unknown root": {other.issue(t, []string{"127.0.0.1"}, now.Add(-time.Hour), now.Add(time.Hour)), "not signed by a trusted authority"},
	} {
		srv := origin(t, cert.cert, tls.NoClientCert, files(map[string][]byte{"/": []byte("a page")}, nil))
		e := newEnv(t, "tls_intercept = yes\ntls_ca_file = "+root.file+connectPorts(srv))
		pool, _ := e.gatewayCA(t)
		code, body, err := fetch(t, e.httpsClient(pool, ""), "GET", srv.URL+"/", "")
		if err != nil || code != 403 || !strings.Contains(body, cert.why) || strings.Contains(body, "a page") {
			t.Errorf("%s: %d %v %.300q", name, code, err, body)
		}
	}
}

// TestHTTPSBypassBlockAndRefusal: a host in tls_bypass is passed through
// (the client sees the origin's own certificate); a host in block_hosts
// is refused at the CONNECT, or, named only in the ClientHello, gets the
// block page inside; a client that refuses the gateway's certificate has
// the host passed through for it afterwards; a server asking for a
// client certificate is passed through.
func TestHTTPSBypassBlockAndRefusal(t *testing.T) {
	root := newTestCA(t)
	now := time.Now()
	cert := root.issue(t, []string{"127.0.0.1", "localhost", "bypassed.test", "blocked.test"}, now.Add(-time.Hour), now.Add(time.Hour))
	srv := origin(t, cert, tls.NoClientCert, files(map[string][]byte{"/": []byte("the origin's page")}, nil))
	mtls := origin(t, cert, tls.RequestClientCert, files(map[string][]byte{"/": []byte("the mutual TLS page")}, nil))
	e := newEnv(t, "tls_intercept = yes\ntls_ca_file = "+root.file+"\ntls_bypass = bypassed.test\nblock_hosts = blocked.test, 127.0.0.2"+connectPorts(srv, mtls))
	gw, _ := e.gatewayCA(t)
	origins := x509.NewCertPool()
	origins.AddCert(root.cert)

	// Bypassed by the name in the ClientHello: the origin's certificate.
	bypassed := e.httpsClient(origins, "bypassed.test")
	if code, body, err := fetch(t, bypassed, "GET", srv.URL+"/", ""); err != nil || code != 200 || body != "the origin's page" {
		t.Errorf("bypassed: %d %v %q", code, err, body)
	}
	bypassed.CloseIdleConnections() // the tunnel ends: its record is written
	// Blocked by the name in the ClientHello: the block page, over TLS.
	if code, body, err := fetch(t, e.httpsClient(gw, "blocked.test"), "GET", srv.URL+"/", ""); err != nil || code != 403 || !strings.Contains(body, "block_hosts=blocked.test") {
		t.Errorf("blocked by its name: %d %v %.200q", code, err, body)
	}
	// Blocked at the CONNECT.
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "CONNECT 127.0.0.2:443 HTTP/1.1\r\nHost: 127.0.0.2:443\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := readLine(bufio.NewReader(conn), 1024)
	conn.Close()
	if !strings.HasPrefix(line, "HTTP/1.1 403 ") {
		t.Errorf("CONNECT to a blocked host: %q", line)
	}
	// A client that trusts the origin's root and not the gateway's CA:
	// refused once, then passed through.
	pinned := e.httpsClient(origins, "localhost")
	if _, _, err := fetch(t, pinned, "GET", srv.URL+"/", ""); err == nil {
		t.Error("a client without the gateway's CA was intercepted")
	}
	pinned.CloseIdleConnections()
	// The gateway learns of the refusal from the client's alert, a moment
	// after the client has given up.
	for deadline := time.Now().Add(5 * time.Second); e.obs.FilterMessage(refusedMsg).Len() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if code, body, err := fetch(t, pinned, "GET", srv.URL+"/", ""); err != nil || code != 200 || body != "the origin's page" {
		t.Errorf("after its refusal: %d %v %q", code, err, body)
	}
	// Mutual TLS: passed through.
	mutual := e.httpsClient(origins, "")
	if code, body, err := fetch(t, mutual, "GET", mtls.URL+"/", ""); err != nil || code != 200 || body != "the mutual TLS page" {
		t.Errorf("a server asking for a client certificate: %d %v %q", code, err, body)
	}
	pinned.CloseIdleConnections()
	mutual.CloseIdleConnections()
	e.waitLog("DETECT-STAT:BLOCKED:block_hosts=blocked.test", "passed%20through")
	if n := e.obs.FilterMessage(refusedMsg).Len(); n != 1 {
		t.Errorf("the refusal logged %d times", n)
	}
}

// TestCurlThroughHTTPS: curl, trusting the gateway's CA (--cacert), gets
// a clean page over HTTPS and the block page for EICAR.
func TestCurlThroughHTTPS(t *testing.T) {
	curl := testenv.Need(t, "curl", "curl")
	root := newTestCA(t)
	srv := origin(t, root.issue(t, []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), tls.NoClientCert,
		files(map[string][]byte{"/eicar.com": []byte(eicar.String), "/page": []byte("a clean page")}, nil))
	e := newEnv(t, "tls_intercept = yes\ntls_ca_file = "+root.file+connectPorts(srv))
	_, caFile := e.gatewayCA(t)
	run := func(path string) string {
		out, err := exec.Command(curl, "-s", "-S", "--max-time", "20", "--cacert", caFile, "-x", "http://"+e.addr, srv.URL+path).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v %s", path, err, out)
		}
		return string(out)
	}
	if out := run("/page"); out != "a clean page" {
		t.Errorf("clean: %q", out)
	}
	if out := run("/eicar.com"); !strings.Contains(out, "Eicar-Test-Signature") {
		t.Errorf("EICAR: %.300q", out)
	}
}

const refusedMsg = "a client refused the interception certificate: the host is passed through for it"

// TestEveryFormOverHTTPS: the forms of internal/forms, downloaded and
// uploaded through an intercepted connection, are judged as over plain
// HTTP: with EICAR, the block page; clean, byte for byte.
func TestEveryFormOverHTTPS(t *testing.T) {
	root := newTestCA(t)
	all := forms.All(t)
	bodies, got := map[string][]byte{}, map[string][]byte{}
	for i, f := range all {
		bodies[fmt.Sprintf("/bad%d", i)], bodies[fmt.Sprintf("/good%d", i)] = f.Infected, f.Clean
	}
	srv := origin(t, root.issue(t, []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), tls.NoClientCert, files(bodies, got))
	e := newEnv(t, "tls_intercept = yes\ntls_ca_file = "+root.file+connectPorts(srv))
	pool, _ := e.gatewayCA(t)
	c := e.httpsClient(pool, "")
	for i, f := range all {
		if code, body, err := fetch(t, c, "GET", fmt.Sprintf("%s/bad%d", srv.URL, i), ""); err != nil || code != 403 || !strings.Contains(body, "Eicar-Test-Signature") {
			t.Errorf("%s with EICAR: %d %v", f.Name, code, err)
		}
		if code, body, err := fetch(t, c, "GET", fmt.Sprintf("%s/good%d", srv.URL, i), ""); err != nil || code != 200 || body != string(f.Clean) {
			t.Errorf("%s, clean: %d %v, %d bytes of %d", f.Name, code, err, len(body), len(f.Clean))
		}
		up := fmt.Sprintf("/up%d", i)
		if code, _, err := fetch(t, c, "POST", srv.URL+up, string(f.Infected)); err != nil || code != 403 || got[up] != nil {
			t.Errorf("%s with EICAR, uploaded: %d %v", f.Name, code, err)
		}
		if code, _, err := fetch(t, c, "POST", srv.URL+up, string(f.Clean)); err != nil || code != 200 || string(got[up]) != string(f.Clean) {
			t.Errorf("%s, clean, uploaded: %d %v", f.Name, code, err)
		}
	}
}

// TestBlockHostsOverPlainHTTP: block_hosts refuses a plain request for a
// listed host or a name under it with the block page, logged BLOCKED;
// others pass.
func TestBlockHostsOverPlainHTTP(t *testing.T) {
	e := newEnv(t, "block_hosts = 127.0.0.1")
	e.serve("/page", []byte("a page"))
	if code, body := e.get("/page"); code != 403 || !strings.Contains(string(body), "block_hosts=127.0.0.1") {
		t.Errorf("a blocked host: %d %.200q", code, body)
	}
	e.waitLog("DETECT-STAT:BLOCKED:block_hosts=127.0.0.1", "ACTION:DENY")
	other := newEnv(t, "block_hosts = example.com")
	other.serve("/page", []byte("a page"))
	if code, body := other.get("/page"); code != 200 || string(body) != "a page" {
		t.Errorf("a host not listed: %d %q", code, body)
	}
}

// TestHTTPSServerConnectionsReused: requests on one intercepted
// connection share one server connection, and new client connections
// to the same server take the one the last left idle: the server sees
// one TLS connection for five requests over three client connections.
// (Every request on a new server connection, a handshake each, was what
// the first build did.)
func TestHTTPSServerConnectionsReused(t *testing.T) {
	root := newTestCA(t)
	var mu sync.Mutex
	conns := 0
	srv := httptest.NewUnstartedServer(files(map[string][]byte{"/": []byte("a page")}, nil))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{root.issue(t, []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))}}
	srv.Config.ConnState = func(c net.Conn, st gohttp.ConnState) {
		if st == gohttp.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e := newEnv(t, "tls_intercept = yes\ntls_ca_file = "+root.file+connectPorts(srv))
	pool, _ := e.gatewayCA(t)
	kept := e.httpsClient(pool, "")
	for range 3 {
		if code, _, err := fetch(t, kept, "GET", srv.URL+"/", ""); err != nil || code != 200 {
			t.Fatalf("%d %v", code, err)
		}
	}
	// Each session ends as its client goes, and its server connection is
	// kept for the next: waited for, as a client coming sooner than that
	// finds none.
	parked := func() {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			e.p.mitm.mu.Lock()
			n := e.p.mitm.nIdle
			e.p.mitm.mu.Unlock()
			if n == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d server connections kept", n)
			}
		}
	}
	kept.CloseIdleConnections()
	parked()
	for range 2 {
		c := e.httpsClient(pool, "")
		c.Transport.(*gohttp.Transport).DisableKeepAlives = true
		if code, _, err := fetch(t, c, "GET", srv.URL+"/", ""); err != nil || code != 200 {
			t.Fatalf("%d %v", code, err)
		}
		parked()
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Errorf("the server saw %d connections for five requests", conns)
	}
}

// TestHTTPSLeafMirrorsTheServer: the certificate a client is shown says
// what the server's says (its organization, its names, an end no later
// than the server's), issued by the gateway's CA: the client sees both
// whom it reached and who intercepted.
func TestHTTPSLeafMirrorsTheServer(t *testing.T) {
	root := newTestCA(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	end := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "origin.test", Organization: []string{"Origin Corp"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: end, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"origin.test", "alt.origin.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.cert, &key.PublicKey, root.key)
	if err != nil {
		t.Fatal(err)
	}
	srv := origin(t, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, tls.NoClientCert, files(map[string][]byte{"/": []byte("a page")}, nil))
	e := newEnv(t, "tls_intercept = yes\ntls_ca_file = "+root.file+connectPorts(srv))
	pool, _ := e.gatewayCA(t)
	c := e.httpsClient(pool, "")
	var shown *x509.Certificate
	c.Transport.(*gohttp.Transport).TLSClientConfig.VerifyConnection = func(cs tls.ConnectionState) error {
		shown = cs.PeerCertificates[0]
		return nil
	}
	if code, _, err := fetch(t, c, "GET", srv.URL+"/", ""); err != nil || code != 200 {
		t.Fatalf("%d %v", code, err)
	}
	switch {
	case shown == nil:
		t.Fatal("no certificate seen")
	case len(shown.Subject.Organization) != 1 || shown.Subject.Organization[0] != "Origin Corp" || shown.Subject.CommonName != "origin.test":
		t.Errorf("subject %v", shown.Subject)
	case !slices.Contains(shown.DNSNames, "alt.origin.test") || len(shown.IPAddresses) == 0:
		t.Errorf("names %v %v", shown.DNSNames, shown.IPAddresses)
	case shown.NotAfter.After(end):
		t.Errorf("ends %v, after the server's %v", shown.NotAfter, end)
	case shown.Issuer.String() == root.cert.Subject.String():
		t.Error("issued by the server's CA, not the gateway's")
	}
}

// TestHTTPSModernSuitesOnly: towards clients, TLS 1.2 at least and
// forward-secret AEAD suites only: a client offering TLS 1.1, or TLS 1.2
// with CBC suites alone, is refused.
func TestHTTPSModernSuitesOnly(t *testing.T) {
	root := newTestCA(t)
	srv := origin(t, root.issue(t, []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), tls.NoClientCert, files(map[string][]byte{"/": []byte("a page")}, nil))
	e := newEnv(t, "tls_intercept = yes\ntls_ca_file = "+root.file+connectPorts(srv))
	pool, _ := e.gatewayCA(t)
	for name, cfg := range map[string]*tls.Config{
		"TLS 1.1":           {RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
		"TLS 1.2, CBC only": {RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}},
	} {
		c := e.httpsClient(pool, "")
		c.Transport.(*gohttp.Transport).TLSClientConfig = cfg
		if _, _, err := fetch(t, c, "GET", srv.URL+"/", ""); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	good := e.httpsClient(pool, "")
	good.Transport.(*gohttp.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS12
	if code, _, err := fetch(t, good, "GET", srv.URL+"/", ""); err != nil || code != 200 {
		t.Errorf("TLS 1.2 with the default suites: %d %v", code, err)
	}
}

// TestInterceptionThroughAParentProxy: with parent_server_host (a real
// Squid) and interception on, an HTTPS download is still looked inside:
// the origin is reached through the parent's CONNECT, its certificate
// checked here as ever (the parent sees only the name and port), EICAR
// refused with the block page and a clean page delivered; a bypassed
// host goes through the parent untouched; a host the parent cannot reach
// gets a block page that names no internals.
func TestInterceptionThroughAParentProxy(t *testing.T) {
	squid := servertest.SquidParent(t)
	curl := testenv.Need(t, "curl", "curl")
	root := newTestCA(t)
	srv := origin(t, root.issue(t, []string{"localhost"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), tls.NoClientCert,
		files(map[string][]byte{"/eicar.com": []byte(eicar.String), "/page": []byte("a clean page")}, nil))
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	phost, pport, _ := net.SplitHostPort(squid.Addr)
	dead := testenv.FreePort(t)
	e := newEnv(t, "tls_intercept = yes\ntls_ca_file = "+root.file+connectPorts(srv)+fmt.Sprintf(", %d", dead)+
		"\nparent_server_host = "+phost+"\nparent_server_port = "+pport)
	_, caFile := e.gatewayCA(t)
	run := func(url string, extra ...string) string {
		args := append([]string{"-s", "-S", "--max-time", "20", "--cacert", caFile, "-x", "http://" + e.addr}, extra...)
		out, _ := exec.Command(curl, append(args, url)...).CombinedOutput()
		return string(out)
	}
	base := "https://localhost:" + port
	if out := run(base + "/page"); out != "a clean page" {
		t.Errorf("clean through the parent: %q", out)
	}
	if out := run(base + "/eicar.com"); !strings.Contains(out, "Eicar-Test-Signature") {
		t.Errorf("EICAR through the parent: %.300q", out)
	}
	e.waitLog(base + "/eicar.com")
	if log := e.accessLog(); !strings.Contains(log, "INFECTED") {
		t.Errorf("the intercepted request was not judged:\n%s", log)
	}
	out := run(fmt.Sprintf("https://localhost:%d/x", dead))
	if !strings.Contains(out, "could not be reached") || strings.Contains(out, squid.Addr) || strings.Contains(out, "CONNECT") {
		t.Errorf("an unreachable server's page: %.300q", out)
	}
	// Squid logs a tunnel when it ends: the gateway's stop closes the
	// server connections it kept.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.p.Shutdown(ctx)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(squid.AccessLog(), "TCP_TUNNEL/200 ") || !strings.Contains(squid.AccessLog(), "CONNECT localhost:"+port); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the parent did not carry the server's TLS:\n%s", squid.AccessLog())
		}
	}
}
