package deploy

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDebianPackage: scripts/package builds a package lintian passes;
// installed, it makes the user fsigk and its directories, its settings
// pass fsigkd check, its unit passes systemd-analyze verify, and the
// gateway runs as fsigk with the installed paths and serves its metrics;
// removed, its program goes and its settings stay; purged, nothing of it
// is left, its user neither.
func TestDebianPackage(t *testing.T) {
	testenv.NeedRoot(t, "installs a package")
	testenv.Need(t, "dpkg-deb", "dpkg")
	lintian := testenv.Need(t, "lintian", "lintian")
	if exec.Command("dpkg", "-s", "fsigkd").Run() == nil {
		testenv.Unavailable(t, "a package fsigkd is installed here already: this test would replace it")
	}
	// The packaged settings' fixed ports must be free, or another
	// gateway (a benchmark's) would answer for the installed one.
	for _, port := range []string{"9012", "9080", "9025", "9021", "9110", "1344"} {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second); err == nil {
			c.Close()
			testenv.Unavailable(t, "127.0.0.1:%s, a port of the packaged settings, is in use", port)
		}
	}
	dist := t.TempDir()
	cmd := exec.Command("../scripts/package")
	cmd.Env = append(os.Environ(), "DIST="+dist, "VERSION=1.0~test")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// The package's path is the script's standard output, its last line:
	// what the build says (go build -v with GOFLAGS) goes to standard
	// error, and is not taken for the path.
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/package: %v\n%s%s", err, out, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deb := strings.TrimSpace(lines[len(lines)-1])
	if filepath.Base(deb) != "fsigkd_1.0~test_"+strings.TrimSpace(run(t, "dpkg", "--print-architecture"))+".deb" {
		t.Fatalf("the package is %q", deb)
	}
	if out, err := exec.Command(lintian, "--fail-on", "error,warning", deb).CombinedOutput(); err != nil {
		t.Fatalf("lintian: %v\n%s", err, out)
	}

	t.Cleanup(func() { exec.Command("dpkg", "-P", "fsigkd").Run() })
	installed := run(t, "dpkg", "-i", deb)
	// md5sums shipped: dpkg checks every installed file against them.
	if out, err := exec.Command("dpkg", "--verify", "fsigkd").CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("dpkg --verify: %v %s", err, out)
	}
	if !strings.Contains(run(t, "dpkg-deb", "-I", deb), " md5sums") {
		t.Error("the package has no md5sums")
	}
	// Enabled, as other daemons' packages are, even where systemd does
	// not run (a container, a chroot, an image build): it starts at the
	// next boot.
	if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/fsigkd.service"); err != nil {
		t.Errorf("the unit is not enabled: %v", err)
	}
	// As installed, the engine detects EICAR alone: the package says so.
	if !strings.Contains(installed, "fsigkd: WARNING: as installed, the bundled engine has no signatures: it detects the EICAR test file and nothing else.") {
		t.Errorf("the install does not say what the gateway detects:\n%s", installed)
	}
	if _, err := os.Stat("/usr/sbin/clamd"); err == nil && !strings.Contains(installed, "clamav-daemon is installed: to scan with its signatures, set av_engine = clamd") {
		t.Errorf("the install does not say how to use the clamd it found:\n%s", installed)
	}
	if _, err := user.Lookup("fsigk"); err != nil {
		t.Fatalf("no user fsigk: %v", err)
	}
	for _, d := range []string{"/var/lib/fsigk", "/var/log/fsigk", "/var/spool/fsigk"} {
		if st, err := os.Stat(d); err != nil || st.Mode().Perm() != 0o750 {
			t.Fatalf("%s: %v %v", d, st, err)
		}
	}
	if st, _ := os.Stat("/etc/fsigk/fsigk.ini"); st == nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("/etc/fsigk/fsigk.ini: %v", st)
	}
	run(t, "/usr/sbin/fsigkd", "check", "-c", "/etc/fsigk/fsigk.ini")
	contents := run(t, "dpkg-deb", "-c", deb) // what dpkg installs may leave out man pages (path-exclude)
	for _, page := range []string{"./usr/share/man/man8/fsigkd.8.gz", "./usr/share/man/man5/fsigk.ini.5.gz", "./usr/share/lintian/overrides/fsigkd"} {
		if !strings.Contains(contents, page) {
			t.Errorf("the package lacks %s", page)
		}
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		// --man=no: an image may leave man pages out (dpkg path-exclude);
		// the package's own are checked above.
		run(t, sa, "verify", "--man=no", "/lib/systemd/system/fsigkd.service")
	}

	// The gateway as the unit runs it: as fsigk, with the installed
	// paths (systemd makes /run/fsigk, RuntimeDirectory=).
	stop := func() {}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		os.MkdirAll("/run/fsigk", 0o750)
		run(t, "chown", "fsigk:fsigk", "/run/fsigk")
		gw := exec.Command("setpriv", "--reuid=fsigk", "--regid=fsigk", "--init-groups", "/usr/sbin/fsigkd", "-f", "-c", "/etc/fsigk/fsigk.ini")
		gw.Stdout, gw.Stderr = os.Stderr, os.Stderr
		if err := gw.Start(); err != nil {
			t.Fatal(err)
		}
		stop = func() { gw.Process.Signal(os.Interrupt); gw.Wait(); os.RemoveAll("/run/fsigk") }
		t.Cleanup(stop)
	}
	var body string
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if resp, err := http.Get("http://127.0.0.1:9012/metrics"); err == nil {
			b := new(strings.Builder)
			buf := make([]byte, 64<<10)
			n, _ := resp.Body.Read(buf)
			b.Write(buf[:n])
			resp.Body.Close()
			// The installed gateway's own: its five services (the tests
			// beside this one run no console).
			if body = b.String(); strings.Count(body, "fsigkd_workers{") == 5 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the installed gateway serves no metrics:\n%s", body)
		}
	}
	var status string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := exec.Command("/usr/sbin/fsigkd", "status", "-c", "/etc/fsigk/fsigk.ini").CombinedOutput()
		if status = string(out); err == nil || time.Now().After(deadline) {
			break
		}
	}
	for _, svc := range []string{"http", "smtp", "ftp", "pop", "icap"} {
		if !strings.Contains(status, "\n"+svc+" ") {
			t.Errorf("status lacks %s:\n%s", svc, status)
		}
	}
	if !strings.Contains(status, "WARNING: the bundled fsavd has no signatures") {
		t.Errorf("status does not say that the installed engine detects EICAR alone:\n%s", status)
	}
	stop()

	run(t, "dpkg", "-r", "fsigkd")
	if _, err := os.Stat("/usr/sbin/fsigkd"); !os.IsNotExist(err) {
		t.Fatalf("removed, the program stays: %v", err)
	}
	if _, err := os.Stat("/etc/fsigk/fsigk.ini"); err != nil {
		t.Fatalf("removed, the settings went: %v", err)
	}
	run(t, "dpkg", "-P", "fsigkd")
	for _, p := range []string{"/etc/fsigk", "/var/lib/fsigk", "/var/log/fsigk", "/var/spool/fsigk", "/lib/systemd/system/fsigkd.service"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("purged, %s stays: %v", p, err)
		}
	}
	if _, err := user.Lookup("fsigk"); err == nil {
		t.Error("purged, the user fsigk stays")
	}
}
