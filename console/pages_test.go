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
	"time"

	"github.com/fsigkd/fsigkd/logs"
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

// TestDetectionsFilterAndPages: the detections page lists the access
// log's detections newest first, 50 a page with links to the others,
// filtered by service and by words (all of them, in any field shown),
// the clean lines never.
func TestDetectionsFilterAndPages(t *testing.T) {
	dir := t.TempDir()
	var log strings.Builder
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 120; i++ {
		a := logs.Access{Start: start.Add(time.Duration(i) * time.Second), Client: fmt.Sprintf("10.0.0.%d", i), Result: "TCP_DENIED", Status: 403,
			Method: "GET", URL: fmt.Sprintf("http://example.com/f%d", i), Detect: "INFECTED", Name: "Eicar-Test-Signature", Action: "DENY", Service: "http"}
		if i%2 == 1 {
			a.Service, a.URL, a.User, a.Name = "smtp", "mail:<b@example.com>", "a@example.com", "Win.Test.Other"
		}
		log.WriteString(a.Format() + "\n")
		clean := a
		clean.Detect, clean.Name, clean.Action = "CLEAN", "", "NONE"
		log.WriteString(clean.Format() + "\n")
	}
	path := filepath.Join(dir, "access.log")
	os.WriteFile(path, []byte(log.String()), 0o644)
	p := NewPages(Source{Services: func() (int, []Service, error) { return 1, nil, nil }, Totals: &metrics.Totals{Dir: dir}, AccessLog: path})
	defer p.Close()
	get := func(url string) string {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", url, nil))
		return w.Body.String()
	}
	rows := func(body string) int { return strings.Count(body, `<tr class="detection">`) }
	first := get("/detections")
	if n := rows(first); n != 50 || !strings.Contains(first, "120 detections in the access log's end; page 1 of 3.") ||
		!strings.Contains(first, `href="/detections?page=2" id="next"`) || strings.Contains(first, `id="prev"`) {
		t.Fatalf("page 1: %d rows\n%s", n, first)
	}
	if !strings.Contains(first, "10.0.0.119") || strings.Contains(first, "10.0.0.69<") {
		t.Error("page 1 is not the newest 50")
	}
	last := get("/detections?page=3")
	if n := rows(last); n != 20 || !strings.Contains(last, `href="/detections?page=2" id="prev"`) || !strings.Contains(last, ">10.0.0.0<") {
		t.Fatalf("page 3: %d rows", n)
	}
	smtp := get("/detections?service=smtp")
	if n := rows(smtp); n != 50 || strings.Contains(smtp, "<td>http</td>") || !strings.Contains(smtp, "60 detections") ||
		!strings.Contains(smtp, `href="/detections?page=2&amp;service=smtp" id="next"`) {
		t.Fatalf("service=smtp: %d rows\n%s", n, smtp)
	}
	words := get("/detections?q=eicar+10.0.0.4")
	if n := rows(words); n != 6 { // 10.0.0.4, 40-48 even: 4, 40, 42, 44, 46, 48
		t.Fatalf("q=eicar 10.0.0.4: %d rows\n%s", n, words)
	}
	if n := rows(get("/detections?q=nothing-like-it")); n != 0 {
		t.Fatalf("a filter nothing matches: %d rows", n)
	}
}

// TestRatesAreNotMadeUpInTheFirstMinute: a gateway younger than a
// minute shows the counts so far, not a per-minute rate extrapolated
// from a few seconds.
func TestRatesAreNotMadeUpInTheFirstMinute(t *testing.T) {
	dir := t.TempDir()
	p := NewPages(Source{Services: func() (int, []Service, error) {
		return 1, []Service{{Name: "http", PID: 2, Total: 4}}, nil
	}, Totals: &metrics.Totals{Dir: dir}})
	defer p.Close()
	time.Sleep(100 * time.Millisecond) // the first sample is taken
	snap := metrics.Snapshot{Service: "http", PID: os.Getpid(), Counters: []metrics.Sample{{Name: "fsigkd_objects_total", Value: 7}}}
	b, _ := json.Marshal(snap)
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("http.%d.json", os.Getpid())), b, 0o600)
	w := httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	body := w.Body.String()
	if !strings.Contains(body, `<td class="objects" title="over the first`) || !strings.Contains(body, `: the count so far">7</td>`) {
		t.Fatalf("the first minute's objects:\n%s", body)
	}
}
