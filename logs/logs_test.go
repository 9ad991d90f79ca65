package logs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/catalog"
)

func TestErrorLineShape(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, Level: "info"})
	if err != nil {
		t.Fatal(err)
	}
	Emit(l.Error.Named("http").Named("accept"), catalog.M20(syscall.ECONNRESET, 7))
	Emit(l.Error.Named("main"), catalog.M21())
	l.Error.Named("main").Debug("not shown at info")
	l.Close()
	raw, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	want := []string{
		`WARNING [http:accept] accept=Connection reset by peer(104) main/accept_loop/accept(s=7)`,
		`CRITICAL [main] LICENSE_ERROR#ret=-1#msg=License Expired`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines: %q", len(lines), lines)
	}
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4} `)
	for i, line := range lines {
		if !stamp.MatchString(line) {
			t.Errorf("line %d has no time stamp: %q", i, line)
		}
		if got := stamp.ReplaceAllString(line, ""); got != want[i] {
			t.Errorf("line %d:\n got %q\nwant %q", i, got, want[i])
		}
	}
}

func TestReopenAfterRotation(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, Level: "info"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Error.Info("before")
	os.Rename(filepath.Join(dir, "error.log"), filepath.Join(dir, "error.log.1"))
	l.Error.Info("still to the old file")
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Error.Info("after")
	old, _ := os.ReadFile(filepath.Join(dir, "error.log.1"))
	cur, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	if !strings.Contains(string(old), "still to the old file") || strings.Contains(string(old), "after") {
		t.Errorf("rotated file: %q", old)
	}
	if !strings.Contains(string(cur), "after") || strings.Contains(string(cur), "before") {
		t.Errorf("new file: %q", cur)
	}
}

func TestAccessLine(t *testing.T) {
	a := &Access{
		Start: time.Unix(1700000000, 123e6), Elapsed: 42 * time.Millisecond, Client: "10.0.0.5",
		Result: "TCP_MISS", Status: 403, Bytes: 1234, Method: "GET", URL: "http://example.com/a b",
		Server: "93.184.216.34", ContentType: "application/zip",
		Detect: "INFECTED", Name: "Eicar-Test-Signature", File: "x.zip/eicar.com", Action: "DENY",
		Service: "http", Slot: 3, PID: 99, Files: 2, Checks: 1, ScanTime: 5 * time.Millisecond, Detail: "a:b",
	}
	want := "1700000000.123 42 10.0.0.5 TCP_MISS/403 1234 GET http://example.com/a%20b - DIRECT/93.184.216.34 application/zip " +
		"DETECT-STAT:INFECTED:Eicar-Test-Signature:x.zip/eicar.com::: ACTION:DENY: PROXY-STAT:http:3:99:93.184.216.34:2:1:5:a%3Ab:\n"
	if got := a.Format(); got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
	clean := (&Access{Start: time.Unix(1, 0), Service: "smtp", URL: "mail:<a@b>", Detect: "CLEAN"}).Format()
	if !strings.Contains(clean, " NONE/- - DETECT-STAT:CLEAN::::: ACTION:NONE: PROXY-STAT:smtp:0:0::0:0:0::") {
		t.Errorf("defaults: %q", clean)
	}
}
