// Package enginetest starts the real engines for tests, from Debian's
// packages: clamd (with a database of EICAR and one test signature of
// ours), spamd, rspamd, and c-icap with its virus_scan service over that
// clamd; and the bundled fsavd in the test's own process. Each runs in a
// temp directory on Unix sockets and loopback ports, and is stopped when
// the test ends. A missing program skips the test with the package to
// install, unless CI is set: there it fails.
package enginetest

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/fsavd"
	"github.com/fsigkd/fsigkd/fsavd/engine"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestString is what the test signature of ours matches; TestName is
// the name it is loaded under (clamd adds ".UNOFFICIAL").
const (
	TestString = "fsigkd-test-signature-3b1f9c"
	TestName   = "Fsigkd.Test.Signature"
)

// NDB is a .ndb file with EICAR and the test signature.
func NDB() string {
	return "Eicar-Test-Signature:0:*:" + hex.EncodeToString([]byte(eicar.String)) + "\n" +
		TestName + ":0:*:" + hex.EncodeToString([]byte(TestString)) + "\n"
}

// Clamd starts clamd on a Unix socket and a loopback port with a database
// of EICAR and the test signature. streamMax is StreamMaxLength ("" for
// clamd's default).
func Clamd(t testing.TB, streamMax string) *testenv.Proc {
	t.Helper()
	bin := testenv.Need(t, "clamd", "clamav-daemon")
	dir := testenv.ShortDir(t)
	os.Mkdir(filepath.Join(dir, "db"), 0o755)
	os.WriteFile(filepath.Join(dir, "db", "test.ndb"), []byte(NDB()), 0o644)
	p := &testenv.Proc{Dir: dir, Sock: filepath.Join(dir, "clamd.sock"), Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), LogFile: filepath.Join(dir, "clamd.out")}
	_, port, _ := net.SplitHostPort(p.Addr)
	conf := fmt.Sprintf("Foreground yes\nLocalSocket %s\nTCPSocket %s\nTCPAddr 127.0.0.1\nDatabaseDirectory %s/db\nLogFile %s/clamd.log\nPidFile %s/clamd.pid\nMaxThreads 4\n",
		p.Sock, port, dir, dir, dir)
	if streamMax != "" {
		conf += "StreamMaxLength " + streamMax + "\n"
	}
	os.WriteFile(filepath.Join(dir, "clamd.conf"), []byte(conf), 0o644)
	p.Args = []string{bin, "-c", filepath.Join(dir, "clamd.conf")}
	p.Ready = func() bool { return testenv.Dialable("unix", p.Sock)() && testenv.Dialable("tcp", p.Addr)() }
	p.Start(t)
	return p
}

// Spamd starts spamd on a Unix socket, local tests only (no network).
func Spamd(t testing.TB) *testenv.Proc {
	t.Helper()
	bin := testenv.Need(t, "spamd", "spamd")
	dir := testenv.ShortDir(t)
	os.Chmod(dir, 0o755)
	p := &testenv.Proc{Dir: dir, Sock: filepath.Join(dir, "spamd.sock"), LogFile: filepath.Join(dir, "spamd.out")}
	p.Args = []string{bin, "--local", "--socketpath=" + p.Sock, "--pidfile=" + filepath.Join(dir, "spamd.pid"),
		"--nouser-config", "--max-children=2", "--min-children=1", "--syslog=stderr"}
	if os.Geteuid() == 0 {
		p.Args = append(p.Args, "--username=nobody")
	}
	p.Ready = testenv.Dialable("unix", p.Sock)
	p.Start(t)
	return p
}

// CICAP starts c-icap with virus_scan (service "avscan") over clamdSock.
func CICAP(t testing.TB, clamdSock string) *testenv.Proc {
	t.Helper()
	bin := testenv.Need(t, "c-icap", "c-icap")
	mods := CICAPModules()
	if mods == "" {
		testenv.Unavailable(t, "c-icap's virus_scan module not installed: apt-get install libc-icap-mod-virus-scan")
	}
	dir := testenv.ShortDir(t)
	p := &testenv.Proc{Dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), LogFile: filepath.Join(dir, "c-icap.out")}
	os.WriteFile(filepath.Join(dir, "c-icap.conf"), []byte(CICAPConfig(dir, p.Addr, clamdSock, mods, 4)), 0o644)
	p.Args = []string{bin, "-N", "-f", filepath.Join(dir, "c-icap.conf")}
	p.Ready = testenv.Dialable("tcp", p.Addr)
	p.Start(t)
	return p
}

// CICAPModules is the directory of c-icap's modules with virus_scan, ""
// when it is not installed.
func CICAPModules() string {
	if m, _ := filepath.Glob("/usr/lib/*/c_icap/virus_scan.so"); len(m) > 0 {
		return filepath.Dir(m[0])
	}
	return ""
}

// CICAPConfig is c-icap's configuration for the avscan service (virus_scan
// over clamd at clamdSock) on addr, its files in dir, with threads per
// child process (two processes at most).
func CICAPConfig(dir, addr, clamdSock, mods string, threads int) string {
	os.Mkdir(filepath.Join(dir, "tmp"), 0o755)
	return strings.Join([]string{
		"PidFile " + dir + "/c-icap.pid",
		"CommandsSocket " + dir + "/c-icap.ctl",
		"Port " + addr,
		"ServerLog " + dir + "/server.log",
		"AccessLog " + dir + "/access.log",
		"TmpDir " + dir + "/tmp",
		"StartServers 1", "MaxServers 2", "MinSpareThreads 2", fmt.Sprintf("MaxSpareThreads %d", threads), fmt.Sprintf("ThreadsPerChild %d", threads),
		"ModulesDir " + mods, "ServicesDir " + mods,
		"Module common clamd_mod.so",
		"clamd_mod.ClamdSocket " + clamdSock,
		"Service avscan virus_scan.so",
		"virus_scan.DefaultEngine clamd",
		"virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE",
		// Its default (5M) passes larger objects unscanned.
		"virus_scan.MaxObjectSize 200M",
	}, "\n") + "\n"
}

// Rspamd starts rspamd's normal worker on a loopback port with a minimal
// configuration of our own: no Lua rules, hence no remote maps, and DNS
// pointed at loopback, so that it never reaches out. GTUBE is in its core,
// and its test variants are on (RspamdAddHeader, RspamdRewriteSubject).
func Rspamd(t testing.TB) *testenv.Proc {
	t.Helper()
	bin := testenv.Need(t, "rspamd", "rspamd")
	dir := testenv.ShortDir(t)
	os.Mkdir(filepath.Join(dir, "run"), 0o755)
	p := &testenv.Proc{Dir: dir, Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), LogFile: filepath.Join(dir, "rspamd.out")}
	conf := fmt.Sprintf(`options {
  pidfile = "%s/run/rspamd.pid";
  dns { nameserver = ["127.0.0.1:53"]; timeout = 0.1s; retransmits = 1; }
  # The GTUBE variants that ask for "add header" and "rewrite subject".
  enable_test_patterns = true;
}
logging { type = "file"; filename = "%s/rspamd.log"; level = "info"; }
worker "normal" { bind_socket = "%s"; count = 1; }
actions { reject = 15; add_header = 6; greylist = 4; }
`, dir, dir, p.Addr)
	os.WriteFile(filepath.Join(dir, "rspamd.conf"), []byte(conf), 0o644)
	p.Args = []string{bin, "-f", "-c", filepath.Join(dir, "rspamd.conf"), "--insecure"}
	if os.Geteuid() == 0 {
		p.Args = append(p.Args, "-u", "root", "-g", "root")
	}
	p.Ready = testenv.Dialable("tcp", p.Addr)
	p.Start(t)
	return p
}

// rspamd's GTUBE variants (enable_test_patterns): the action each asks
// for, whatever else the mail holds.
const (
	RspamdAddHeader      = "YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
	RspamdRewriteSubject = "ZJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
)

// FsavdSocket serves the bundled fsavd (EICAR only) in this process on a
// socket in a short directory, for the proxies' tests, and returns it.
func FsavdSocket(t testing.TB) string {
	t.Helper()
	sock := filepath.Join(testenv.ShortDir(t), "fsavd-socket-0")
	FsavdAt(t, sock, nil)
	return sock
}

// FsavdAt serves the bundled fsavd on sock until the test ends; with
// startErr it greets every client with that failure (M16).
func FsavdAt(t testing.TB, sock string, startErr error) {
	t.Helper()
	db, err := engine.Load("")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fsavd.Server{Engine: engine.New(db), StartErr: startErr}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		srv.Shutdown(ctx)
		cancel()
	})
}
