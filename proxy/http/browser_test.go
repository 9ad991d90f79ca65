package http

import (
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/browsertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestChromiumThroughHTTPS: Chromium, with the gateway's CA in its NSS
// database (certutil) and the proxy set, loads a page over HTTPS as the
// origin serves it, and gets the block page for EICAR: a browser takes
// the leaf certificates the gateway makes.
func TestChromiumThroughHTTPS(t *testing.T) {
	certutil := testenv.Need(t, "certutil", "libnss3-tools")
	root := newTestCA(t)
	srv := origin(t, root.issue(t, []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), tls.NoClientCert,
		files(map[string][]byte{
			"/":          []byte("<!DOCTYPE html><html><head><title>origin</title></head><body><p id=p>a page over HTTPS</p></body></html>"),
			"/eicar.com": []byte(eicar.String),
		}, nil))
	e := newEnv(t, "tls_intercept = yes\ntls_ca_file = "+root.file+connectPorts(srv))
	_, caFile := e.gatewayCA(t)
	home := t.TempDir()
	db := "sql:" + filepath.Join(home, ".pki", "nssdb")
	os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700)
	for _, args := range [][]string{{"-N", "-d", db, "--empty-password"}, {"-A", "-d", db, "-t", "C,,", "-n", "fsigkd", "-i", caFile}} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v %s", args, err, out)
		}
	}
	ctx := browsertest.Start(t, chromedp.Env("HOME="+home), chromedp.UserDataDir(filepath.Join(home, "profile")),
		chromedp.ProxyServer("http://"+e.addr), chromedp.Flag("proxy-bypass-list", "<-loopback>"))
	load := func(url, sel string) string {
		t.Helper()
		tctx, tcancel := context.WithTimeout(ctx, 30*time.Second)
		defer tcancel()
		if err := chromedp.Do(tctx, chromedp.Navigate(url)); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		s, err := chromedp.Run(tctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		return s
	}
	if got := load(srv.URL+"/", "#p"); got != "a page over HTTPS" {
		t.Errorf("the page: %q", got)
	}
	if got := load(srv.URL+"/eicar.com", "body"); !strings.Contains(got, "Eicar-Test-Signature") {
		t.Errorf("EICAR: %.300q", got)
	}
	e.waitLog(srv.URL+"/", "DETECT-STAT:INFECTED:Eicar-Test-Signature")
}
