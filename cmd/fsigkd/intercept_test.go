package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/daemontest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/tlsca"
)

// TestShippedSampleInterceptsWithOneSetting: the sample settings as
// shipped (deploy/fsigk.ini) pass HTTPS through as a tunnel, an EICAR
// download over it unscanned; the same settings with tls_intercept = yes
// and nothing else changed block it, and serve a clean file, to a client
// that trusts the gateway's CA (made at the first start). Both runs get
// the same changes for the test's own surroundings alone: their
// directory and port, the other services off (their ports are the
// machine's), loopback servers and the origin's port allowed, and the
// test origin's root trusted (it stands for a public site on 443).
func TestShippedSampleInterceptsWithOneSetting(t *testing.T) {
	sample, err := os.ReadFile("../../deploy/fsigk.ini")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sample), "\ntls_intercept = no\n") {
		t.Fatal("the sample no longer ships tls_intercept = no")
	}
	dir := testenv.ShortDir(t)
	rootPEM, rootKey := filepath.Join(dir, "root.pem"), filepath.Join(dir, "root.key")
	if _, err := tlsca.Ensure(rootPEM, rootKey, "test origin root"); err != nil {
		t.Fatal(err)
	}
	root, err := tlsca.Load(rootPEM, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := root.Leaf("localhost")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*leaf}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/eicar.com" {
			io.WriteString(w, eicar.String)
			return
		}
		io.WriteString(w, "a clean file")
	}))
	_, originPort, _ := net.SplitHostPort(ln.Addr().String())
	pool := func(file string) *x509.CertPool {
		p := x509.NewCertPool()
		var b []byte
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if b, err = os.ReadFile(file); err == nil {
				break
			}
		}
		p.AppendCertsFromPEM(b)
		return p
	}
	for _, intercept := range []bool{false, true} {
		run := filepath.Join(dir, fmt.Sprint(intercept))
		port := testenv.FreePort(t)
		surroundings := fmt.Sprintf("\nbase_dir = %s\nconsole = no\n[http]\nport = %d\ndeny_servers =\nconnect_ports = 443, %s\ntls_ca_file = %s\n"+
			"[smtp]\nenable = no\n[ftp]\nenable = no\n[pop]\nenable = no\n[icap]\nenable = no\n", run, port, originPort, rootPEM)
		ini := string(sample)
		if intercept {
			ini = strings.Replace(ini, "\ntls_intercept = no\n", "\ntls_intercept = yes\n", 1)
		}
		// The global keys go first: appended after [icap] they would be
		// its own.
		ini = strings.Replace(ini, "\n[http]\n", surroundings[:strings.Index(surroundings, "[http]")]+"\n[http]\n", 1) + surroundings[strings.Index(surroundings, "[http]"):]
		conf := filepath.Join(dir, fmt.Sprintf("fsigk-%v.ini", intercept))
		os.MkdirAll(run, 0o755)
		os.WriteFile(conf, []byte(ini), 0o644)
		out := daemontest.Daemon(t, binary(t), "-f", "-c", conf)
		proxyURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
		roots := pool(rootPEM)
		if intercept {
			roots = pool(filepath.Join(run, tlsca.CertFile))
		}
		cl := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}}}
		get := func(path string) (int, string) {
			var resp *http.Response
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				if resp, err = cl.Get("https://localhost:" + originPort + path); err == nil || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				t.Fatalf("intercept %v, %s: %v\n%s", intercept, path, err, out)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		code, body := get("/eicar.com")
		switch {
		case !intercept && (code != 200 || body != eicar.String):
			t.Errorf("as shipped: %d %q, want EICAR passed through the tunnel unscanned", code, body)
		case intercept && (code != 403 || strings.Contains(body, eicar.String)):
			t.Errorf("with tls_intercept = yes: %d, want the block page", code)
		}
		if code, body := get("/clean"); code != 200 || body != "a clean file" {
			t.Errorf("intercept %v, a clean file: %d %q", intercept, code, body)
		}
		cl.CloseIdleConnections() // the daemon's stop need not wait for them
	}
}
