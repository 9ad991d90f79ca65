package console

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/metrics"
	"github.com/fsigkd/fsigkd/tlsca"
)

// TestDashboardSaysLogLinesWereLost: a worker that could not write its
// log lines (log_dir full) counts them; the dashboard says so, since the
// log cannot, and says nothing when none were lost.
func TestDashboardSaysLogLinesWereLost(t *testing.T) {
	dir := t.TempDir()
	p := NewPages(Source{Services: func() (int, []Service, error) { return 1, nil, nil }, Totals: &metrics.Totals{Dir: dir}})
	defer p.Close()
	get := func() string {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		return w.Body.String()
	}
	if body := get(); strings.Contains(body, `id="warning"`) {
		t.Fatalf("a warning with nothing lost:\n%s", body)
	}
	snap := metrics.Snapshot{Service: "http", PID: os.Getpid(), Counters: []metrics.Sample{
		{Name: "fsigkd_log_lines_lost_total", Labels: map[string]string{"log": "access"}, Value: 520},
		{Name: "fsigkd_log_lines_lost_total", Labels: map[string]string{"log": "error"}, Value: 12},
	}}
	b, _ := json.Marshal(snap)
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("http.%d.json", os.Getpid())), b, 0o600)
	if body := get(); !strings.Contains(body, "Logging has failed: 532 log lines lost since the gateway started (access 520, error 12).") {
		t.Fatalf("no warning of the lost lines:\n%s", body)
	}
}

// TestCAPage: the console offers the interception CA for download (DER
// and PEM) with its fingerprint and the steps for each system; with
// interception off it says so; with no CA made, it says how to make one
// and serves no file.
func TestCAPage(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := tlsca.Paths("", "", dir)
	if _, err := tlsca.Ensure(certFile, keyFile, "test"); err != nil {
		t.Fatal(err)
	}
	cert, _ := tlsca.ReadCertificate(certFile)
	on := true
	src := Source{Services: func() (int, []Service, error) { return 1, nil, nil }, Totals: &metrics.Totals{Dir: t.TempDir()},
		CA: func() (*x509.Certificate, bool) { return cert, on }}
	p := NewPages(src)
	defer p.Close()
	get := func(path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w
	}
	body := get("/ca").Body.String()
	for _, want := range []string{tlsca.Fingerprint(cert), `href="/ca.crt"`, "certutil -addstore -f Root", "update-ca-certificates", "Firefox", "iOS"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(body, `id="warning"`) {
		t.Error("a warning with interception on")
	}
	if w := get("/ca.crt"); w.Code != 200 || !bytes.Equal(w.Body.Bytes(), cert.Raw) || w.Header().Get("Content-Type") != "application/x-x509-ca-cert" {
		t.Errorf("/ca.crt: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	if block, _ := pem.Decode(get("/ca.pem").Body.Bytes()); block == nil || !bytes.Equal(block.Bytes, cert.Raw) {
		t.Error("/ca.pem is not the certificate")
	}
	on = false
	if body := get("/ca").Body.String(); !strings.Contains(body, "tls_intercept = no") {
		t.Error("no word that interception is off")
	}
	src.CA = func() (*x509.Certificate, bool) { return nil, false }
	none := NewPages(src)
	defer none.Close()
	w := httptest.NewRecorder()
	none.ServeHTTP(w, httptest.NewRequest("GET", "/ca", nil))
	if !strings.Contains(w.Body.String(), "fsigkd ca makes and prints it") {
		t.Error("no CA: the page does not say how to make one")
	}
	w = httptest.NewRecorder()
	none.ServeHTTP(w, httptest.NewRequest("GET", "/ca.crt", nil))
	if w.Code != 404 {
		t.Errorf("no CA: /ca.crt %d", w.Code)
	}
}
