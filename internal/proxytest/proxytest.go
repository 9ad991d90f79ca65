// Package proxytest equips a service for the proxies' tests: settings of
// one section, the bundled fsavd in this process as its engine, its error
// log observed, its access log in a temp directory, and a spool that must
// be empty when the test ends.
package proxytest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/fsigkd/fsigkd/spool"
)

// Kit is what a test gets besides the equipment.
type Kit struct {
	Obs           *observer.ObservedLogs // the error log
	LogDir        string                 // where access.log is
	QuarantineDir string                 // quarantine_dir
}

// AccessLog is access.log as it is now.
func (k Kit) AccessLog() string {
	b, _ := os.ReadFile(filepath.Join(k.LogDir, "access.log"))
	return string(b)
}

// WaitLog waits (5 s at most) for the access log to hold each of want: a
// record is written once the client has its answer, so a test may look
// before it is there.
func (k Kit) WaitLog(t testing.TB, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, w := range want {
		for !strings.Contains(k.AccessLog(), w) {
			if time.Now().After(deadline) {
				t.Fatalf("access log lacks %q:\n%s", w, k.AccessLog())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Common builds the equipment of service from the section's keys (after
// "enable = yes").
func Common(t testing.TB, service, keys string) (proxy.Common, Kit) {
	t.Helper()
	cfg, _, err := conf.Parse("test.ini", []byte("["+service+"]\nenable = yes\n"+keys+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The scanner as a worker builds it from the settings (the verdict
	// cache round it with the shipped verdict_cache).
	cfg.Global.AVServers = enginetest.FsavdSocket(t)
	// The mail services keep what they block: here, in the test's own
	// directory.
	cfg.Global.QuarantineDir = filepath.Join(t.TempDir(), "quarantine")
	// What a service makes under base_dir (the interception CA) goes to
	// the test's own directory, not the package's.
	cfg.Global.BaseDir = t.TempDir()
	sc, err := scanner.FromConfig(cfg.Global, nil)
	if err != nil {
		t.Fatal(err)
	}
	core, obs := observer.New(zapcore.DebugLevel)
	k := Kit{Obs: obs, LogDir: t.TempDir(), QuarantineDir: cfg.Global.QuarantineDir}
	lg, err := logs.Open(logs.Options{Dir: k.LogDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lg.Close)
	tmp := t.TempDir()
	t.Cleanup(func() {
		// Given back, a file is kept for reuse; one not given back is
		// still there after the drain.
		spool.Dir{Path: tmp}.Drain()
		if left, _ := filepath.Glob(filepath.Join(tmp, spool.Prefix+"*")); len(left) > 0 {
			t.Errorf("spool files left behind: %v", left)
		}
	})
	return proxy.Common{
		Svc: cfg.Services[service], Global: cfg.Global,
		Scanner: sc,
		Spool:   spool.Dir{Path: tmp, Hash: cfg.Global.VerdictCache > 0}, Log: zap.New(core).Named(service), Logs: lg,
		NoticeKey: []byte("a notice key for the tests only"),
		// The tests reach no DNS but the one a test starts (a signer's
		// key looked up elsewhere would wait for the resolver's timeout).
		LookupTXT: func(_ context.Context, name string) ([]string, error) {
			return nil, &net.DNSError{Err: "no DNS in the tests", Name: name, IsTemporary: true}
		},
	}, k
}

// Service is what Serve runs: a proxy.
type Service interface {
	Serve(net.Listener) error
	Shutdown(ctx context.Context) error
}

// Serve runs svc on a new port of 127.0.0.1 until the test ends, and
// returns its address.
func Serve(t testing.TB, svc Service) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go svc.Serve(ln)
	t.Cleanup(func() {
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		svc.Shutdown(ctx)
		cancel()
	})
	return ln.Addr().String()
}

// ServeTLS starts svc's implicit-TLS listener (tls_port) on a port of its
// own, beside the one Serve started, and returns its address.
func ServeTLS(t testing.TB, svc interface{ ServeTLS(net.Listener) error }) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go svc.ServeTLS(ln)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// SpoolBytes is what the spool files in dir hold now: what a service has
// written to disk for the objects under way (or kept for reuse).
func SpoolBytes(dir string) int64 {
	files, _ := filepath.Glob(filepath.Join(dir, spool.Prefix+"*"))
	var n int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// Spamd is a client of a real spamd started for the test, for a
// service's Spam.
func Spamd(t testing.TB) scanner.SpamChecker {
	t.Helper()
	eps, _ := scanner.ParseEndpoints(enginetest.Spamd(t).Sock, "")
	return scanner.NewSpamd(&scanner.Pool{Endpoints: eps})
}

// Rspamd is a client of a real rspamd started for the test (its GTUBE
// variants on, see enginetest.Rspamd), for a service's Spam.
func Rspamd(t testing.TB) scanner.SpamChecker {
	t.Helper()
	eps, _ := scanner.ParseEndpoints(enginetest.Rspamd(t).Addr, "")
	return scanner.NewRspamd(&scanner.Pool{Endpoints: eps})
}
