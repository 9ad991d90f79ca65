package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/daemontest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// downSettings writes settings of an HTTP and an SMTP service, SMTP on
// smtpPort, with extra global keys.
func downSettings(t *testing.T, dir string, smtpPort int, global string) string {
	t.Helper()
	ini := fmt.Sprintf("base_dir = %s\nconsole = no\n%s\n[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\n[smtp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\nparent_server_host = 127.0.0.1\nparent_server_port = %d\n",
		dir, global, testenv.FreePort(t), smtpPort, testenv.FreePort(t))
	conf := filepath.Join(dir, "fsigk.ini")
	os.WriteFile(conf, []byte(ini), 0o644)
	return conf
}

// runFor runs fsigkd -f until it ends (20 s at most): its exit code and
// output.
func runFor(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	out := &daemontest.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		return 0, out.String()
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("fsigkd did not end:\n%s", out.String())
		return 0, ""
	}
}

// TestStartFailsWhenAServiceCannotBind: an enabled service whose port is
// taken fails the start (exit 1, M01 and the reason logged): the command
// returned 0 and systemd would have been told ready, the service missing.
func TestStartFailsWhenAServiceCannotBind(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := testenv.ShortDir(t)
	conf := downSettings(t, dir, taken.Addr().(*net.TCPAddr).Port, "")
	code, out := runFor(t, binary(t), "-f", "-c", conf)
	if code != 1 || !strings.Contains(out, "not every enabled service could start") || !strings.Contains(out, "Address already in use") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestBindRetryServesTheRest: with bind_retry = yes the start serves the
// services that could bind; fsigkd status exits 4 and shows the other
// down; it is tried again every minute and serves once its port is free.
// (A minute's wait: the test is slow by nature.)
func TestBindRetryServesTheRest(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a minute for the retry")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := taken.Addr().(*net.TCPAddr).Port
	dir := testenv.ShortDir(t)
	conf := downSettings(t, dir, port, "bind_retry = yes")
	out := daemontest.Daemon(t, binary(t), "-f", "-c", conf)
	status := func() (int, string) {
		b, err := exec.Command(binary(t), "status", "-c", conf).Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(b)
		}
		return 0, string(b)
	}
	if code, text := status(); code != 4 || !strings.Contains(text, "smtp") || !strings.Contains(text, "down:") {
		t.Fatalf("status with smtp down: exit %d\n%s", code, text)
	}
	taken.Close()
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(time.Second) {
		if code, _ := status(); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp never came up:\n%s", out.String())
		}
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		t.Errorf("smtp does not answer: %v", err)
	} else {
		c.Close()
	}
	if !strings.Contains(out.String(), "the service could bind at last and serves") {
		t.Errorf("the retry's success is not logged:\n%s", out.String())
	}
}

// TestServiceUpMetric: /metrics has fsigkd_service_up for every enabled
// service, 0 for the one that could not bind (with bind_retry = yes), the
// documented counters at 0 before any traffic, and the process metrics
// of the master, the bundled fsavd and each worker.
func TestServiceUpMetric(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := testenv.ShortDir(t)
	cport := testenv.FreePort(t)
	conf := downSettings(t, dir, taken.Addr().(*net.TCPAddr).Port, fmt.Sprintf("bind_retry = yes\nconsole = yes\nconsole_port = %d", cport))
	daemontest.Daemon(t, binary(t), "-f", "-c", conf)
	addr := fmt.Sprintf("127.0.0.1:%d", cport)
	// Every documented counter from the start, at 0 (a worker writes its
	// counts each second).
	waitFor(t, func() bool {
		fams := scrape(t, addr)
		return value(fams, "fsigkd_objects_total", "service", "http") == 0 &&
			value(fams, "fsigkd_verdicts_total", "service", "http", "verdict", "infected") == 0 &&
			value(fams, "fsigkd_request_seconds", "service", "http") == 0
	})
	if code, body := get(t, "http://"+addr+"/readyz"); code != 503 || body != "not ready: smtp down\n" {
		t.Errorf("/readyz with smtp down: %d %q", code, body)
	}
	fams := scrape(t, addr)
	if v := value(fams, "fsigkd_service_up", "service", "smtp"); v != 0 {
		t.Errorf("smtp (down): %v", v)
	}
	if v := value(fams, "fsigkd_service_up", "service", "http"); v != 1 {
		t.Errorf("http (up): %v", v)
	}
	if v := value(fams, "fsigkd_build_info", "service", "master"); v != 1 {
		t.Errorf("fsigkd_build_info: %v", v)
	}
	// The standard process and Go runtime metrics for every process,
	// labelled (the others' runtime figures are written each second).
	waitFor(t, func() bool {
		return value(scrape(t, addr), "go_goroutines", "process", "fsavd") > 0
	})
	fams = scrape(t, addr)
	for _, who := range [][]string{{"process", "master"}, {"process", "fsavd"}, {"process", "worker", "service", "http"}} {
		for _, m := range []string{"process_resident_memory_bytes", "process_open_fds", "go_goroutines", "go_memstats_heap_inuse_bytes", "go_threads"} {
			if v := value(fams, m, who...); v <= 0 {
				t.Errorf("%s %v: %v", m, who, v)
			}
		}
		if fams["go_gc_duration_seconds"] == nil || fams["go_info"] == nil {
			t.Errorf("go_gc_duration_seconds or go_info missing")
		}
	}
}

// TestPrivilegedPortWithoutCapabilitySaysSo: a port below 1024 bound
// without the capability logs M01 byte for byte and a second line with
// the real cause (M01's hint speaks of another service running).
func TestPrivilegedPortWithoutCapabilitySaysSo(t *testing.T) {
	testenv.NeedRoot(t, "runs the gateway as nobody, without capabilities")
	setpriv := testenv.Need(t, "setpriv", "util-linux")
	dir := testenv.ShortDir(t)
	os.Chmod(dir, 0o777)
	ini := fmt.Sprintf("base_dir = %s\nconsole = no\nfsavd_start = no\n[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = 81\n", dir)
	conf := filepath.Join(dir, "fsigk.ini")
	os.WriteFile(conf, []byte(ini), 0o644)
	bin := filepath.Join(dir, "fsigkd")
	b, _ := os.ReadFile(binary(t))
	os.WriteFile(bin, b, 0o755)
	code, out := runFor(t, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", bin, "-f", "-c", conf)
	if code != 1 || !strings.Contains(out, "Permission denied") || !strings.Contains(out, "the real cause: binding a port below 1024 needs root or the CAP_NET_BIND_SERVICE capability") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestStopAndReloadCommands: fsigkd reload has the running master take
// its settings (a file that does not load is refused, the gateway
// untouched); fsigkd stop stops it and returns once it has ended; both
// say when no gateway runs.
func TestStopAndReloadCommands(t *testing.T) {
	dir := testenv.ShortDir(t)
	conf := downSettings(t, dir, testenv.FreePort(t), "")
	out := daemontest.Daemon(t, binary(t), "-f", "-c", conf)
	run := func(args ...string) (int, string) {
		b, err := exec.Command(binary(t), args...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(b)
		}
		return 0, string(b)
	}
	if code, text := run("reload", "-c", conf); code != 0 || !strings.Contains(text, "reload asked") {
		t.Fatalf("reload: %d %s", code, text)
	}
	waitFor(t, func() bool { return strings.Contains(out.String(), "reload") }, out.String)
	good, _ := os.ReadFile(conf)
	os.WriteFile(conf, append(good, "\n[http]\npre_spawn = none\n"...), 0o644)
	if code, text := run("reload", "-c", conf); code != 1 || !strings.Contains(text, "keeps its own") {
		t.Errorf("reload of a bad file: %d %s", code, text)
	}
	os.WriteFile(conf, good, 0o644)
	if code, text := run("stop", "-c", conf); code != 0 || !strings.Contains(text, "stopped master pid") {
		t.Fatalf("stop: %d %s", code, text)
	}
	if code, _ := run("status", "-c", conf); code != 3 {
		t.Errorf("status after stop: %d", code)
	}
	if code, _ := run("stop", "-c", conf); code != 3 {
		t.Errorf("stop with none running: %d", code)
	}
}

// TestCheckLoadsTheSignaturesAsTheEngine: a malformed .ndb line passed
// check and then failed every scan; check now loads the files as the
// bundled engine will, and names the file and line.
func TestCheckLoadsTheSignaturesAsTheEngine(t *testing.T) {
	dir := testenv.ShortDir(t)
	sigs := filepath.Join(dir, "sigs")
	os.MkdirAll(sigs, 0o755)
	os.WriteFile(filepath.Join(sigs, "a.ndb"), []byte("Good.Sig:0:*:6869\nBad.Sig:0:*:zz-not-hex\n"), 0o644)
	conf := filepath.Join(dir, "fsigk.ini")
	os.WriteFile(conf, []byte("base_dir = "+dir+"\nfsavd_signatures = "+sigs+"\n"), 0o644)
	b, err := exec.Command(binary(t), "check", "-c", conf).CombinedOutput()
	if err == nil || !strings.Contains(string(b), "a.ndb:2:") {
		t.Fatalf("check of a bad .ndb: %v\n%s", err, b)
	}
	os.WriteFile(filepath.Join(sigs, "a.ndb"), []byte("Good.Sig:0:*:6869\n"), 0o644)
	if b, err := exec.Command(binary(t), "check", "-c", conf).CombinedOutput(); err != nil {
		t.Fatalf("check of a good .ndb: %v\n%s", err, b)
	}
}
