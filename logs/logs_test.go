package logs

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/metrics"
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

// TestSyslog: with Syslog set, each error-log line also reaches syslog,
// without the time stamp, at the priority of its level (the socket a
// test's own, as /dev/log is the system's).
func TestSyslog(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log.sock")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	lg, err := Open(Options{Dir: t.TempDir(), Syslog: true, SyslogAddr: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer lg.Close()
	Emit(lg.Error.Named("main:start"), catalog.M21())
	lg.Error.Named("main").Info("serving")
	buf := make([]byte, 4096)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []struct {
		pri  string
		text string
	}{{"<26>", "CRITICAL [main:start] " + catalog.M21().Text}, {"<30>", "INFO [main] serving"}} {
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got := string(buf[:n])
		if !strings.HasPrefix(got, want.pri) || !strings.HasSuffix(strings.TrimSpace(got), want.text) || !strings.Contains(got, "fsigkd[") {
			t.Errorf("syslog got %q, want %s ... %q", got, want.pri, want.text)
		}
	}
}

// TestAccessJSON: access_log_format = json writes one object a line with
// the fields named and unescaped.
func TestAccessJSON(t *testing.T) {
	dir := t.TempDir()
	lg, err := Open(Options{Dir: dir, AccessJSON: true})
	if err != nil {
		t.Fatal(err)
	}
	lg.Access(&Access{Start: time.Unix(1700000000, 123e6), Elapsed: 42 * time.Millisecond, Client: "10.0.0.5", Result: "TCP_MISS", Status: 403,
		Bytes: 1234, Method: "GET", URL: "http://example.com/a b.zip", Detect: "INFECTED", Name: "Eicar-Test-Signature", Action: "DENY",
		Service: "http", Slot: 3, PID: 4127, Files: 2, Checks: 1})
	lg.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil || !strings.HasSuffix(string(b), "}\n") || strings.Count(string(b), "\n") != 1 {
		t.Fatalf("%q: %v", b, err)
	}
	for k, want := range map[string]any{"time": 1700000000.123, "url": "http://example.com/a b.zip", "status": 403.0, "detect": "INFECTED",
		"name": "Eicar-Test-Signature", "action": "DENY", "service": "http", "pid": 4127.0, "user": ""} {
		if rec[k] != want {
			t.Errorf("%s = %v, want %v", k, rec[k], want)
		}
	}
}

// TestParseAccessReadsBothFormats: a record written in either format reads
// back the same, escapes and all.
func TestParseAccessReadsBothFormats(t *testing.T) {
	a := Access{Start: time.UnixMilli(1795904093372), Elapsed: 12 * time.Millisecond, Client: "10.0.0.5", Result: "SMTP",
		Status: 554, Bytes: 270, Method: "DATA", URL: "mail:<b@example.com>", User: "a@example.com", Server: "127.0.0.1",
		Detect: "INFECTED", Name: "Eicar-Test-Signature", File: "docs.zip/a b:c.txt", Quarantine: "20261128-221453-11560c20",
		Action: "DENY", Service: "smtp", Slot: 3, PID: 42, Files: 1, Checks: 1, ScanTime: 2 * time.Millisecond, Detail: "verdict cached; 100%"}
	for name, line := range map[string]string{"native": a.Format(), "json": a.JSON()} {
		got, err := ParseAccess(line)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !got.Start.Equal(a.Start) || got.Client != a.Client || got.Status != a.Status || got.URL != a.URL || got.Name != a.Name ||
			got.File != a.File || got.Quarantine != a.Quarantine || got.Action != a.Action || got.Service != a.Service ||
			got.PID != a.PID || got.Checks != a.Checks || got.Detail != a.Detail || got.Detect != a.Detect || got.Elapsed != a.Elapsed {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, a)
		}
	}
	if _, err := ParseAccess("garbage line"); err == nil {
		t.Fatal("garbage parsed")
	}
}

func FuzzParseAccess(f *testing.F) {
	f.Add((&Access{Start: time.Unix(1, 0), Detect: "CLEAN", Service: "http"}).Format())
	f.Add(`{"time":1,"detect":"CLEAN"}`)
	f.Fuzz(func(t *testing.T, line string) { ParseAccess(line) })
}

// TestFullLogIsSaidElsewhere: a log that cannot take its lines (here
// /dev/full, as a full log_dir answers) went silent: nothing said that
// logging had stopped. Now each lost line is counted in
// fsigkd_log_lines_lost_total, the loss is said on standard error at
// once (not once a line), and when lines are taken again the error log
// says how many were lost.
func TestFullLogIsSaidElsewhere(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, Level: "info"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	full, err := os.OpenFile("/dev/full", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		testenv.Unavailable(t, "no /dev/full: %v", err)
	}
	stderr := captureStderr(t)
	working := l.access.f
	l.access.mu.Lock()
	l.access.f = full
	l.access.mu.Unlock()
	lostBefore := counted("fsigkd_log_lines_lost_total", "access")
	for i := 0; i < 5; i++ {
		l.Access(&Access{URL: "http://example.com/lost"})
	}
	if n := counted("fsigkd_log_lines_lost_total", "access") - lostBefore; n != 5 {
		t.Errorf("%v lines counted lost, want 5", n)
	}
	l.access.mu.Lock()
	l.access.f = working // the space is back
	l.access.mu.Unlock()
	l.Access(&Access{URL: "http://example.com/kept"})
	said := stderr()
	if strings.Count(said, "access.log: No space left on device; its lines are lost") != 1 {
		t.Errorf("the loss was not said once on standard error:\n%s", said)
	}
	if !strings.Contains(said, "access.log again; 5 lines lost since ") {
		t.Errorf("the end of the loss was not said:\n%s", said)
	}
	errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	if !strings.Contains(string(errLog), "WARNING [logs] access.log: 5 lines lost since ") ||
		!strings.Contains(string(errLog), ": No space left on device") {
		t.Errorf("the error log does not say what was lost:\n%s", errLog)
	}
	acc, _ := os.ReadFile(filepath.Join(dir, "access.log"))
	if strings.Contains(string(acc), "/lost") || !strings.Contains(string(acc), "/kept") {
		t.Errorf("access log:\n%s", acc)
	}
}

// counted is this process's count of a metric with label log=name.
func counted(metric, name string) float64 {
	for _, c := range metrics.Take().Counters {
		if c.Name == metric && c.Labels["log"] == name {
			return c.Value
		}
	}
	return 0
}

// captureStderr sends os.Stderr to a pipe until the returned function
// is called, which gives what was written.
func captureStderr(t *testing.T) func() string {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	got := make(chan string)
	go func() { b, _ := io.ReadAll(r); got <- string(b) }()
	var once sync.Once
	var out string
	stop := func() string {
		once.Do(func() { os.Stderr = old; w.Close(); out = <-got })
		return out
	}
	t.Cleanup(func() { stop() })
	return stop
}
