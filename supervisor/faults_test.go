package supervisor

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/ipc"
)

// TestReloadStartsNewWorkersFirst: SIGHUP with new settings starts new
// workers, drains the old ones (a session under way finishes on the old
// worker), logs no crash; a bad file keeps everything as it runs.
func TestReloadStartsNewWorkersFirst(t *testing.T) {
	d := setup(t, "", "")
	d.start()
	held := d.dial("http")
	oldPID, _ := ask(held, "pid")
	d.httpKeys = "pre_spawn = 6"
	d.write("", "")
	d.signal(syscall.SIGHUP)
	d.expectNotify("RELOADING=1")
	d.expectNotify("READY=1")
	// The old worker takes no new client once it has handled its SIGTERM,
	// a moment after READY=1: until then it may still take one, and serve it.
	for deadline := time.Now().Add(5 * time.Second); strconv.Itoa(d.workerPID("http")) == oldPID; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("new connections still go to the old worker")
		}
	}
	if p, _ := ask(held, "pid"); p != oldPID {
		t.Fatalf("the session under way moved from %s to %s", oldPID, p)
	}
	out, _ := d.fsigkd("status", "-c", d.conf)
	if !strings.Contains(out, " 6      127.0.0.1:"+strconv.Itoa(d.ports["http"])) {
		t.Errorf("status after reload:\n%s", out)
	}
	held.Close()
	d.waitGone(oldPID)
	if strings.Contains(d.errorLog(), "stopped.(sig=17") {
		t.Fatalf("a drained worker was logged as a crash:\n%s", d.errorLog())
	}

	before := d.workerPID("http")
	os.WriteFile(d.conf, []byte("[http]\nport = none\n"), 0o644)
	d.signal(syscall.SIGHUP)
	d.waitContains("CRITICAL [main:reload] settings not reloaded; the running ones stay", d.conf+":2: port:")
	if p := d.workerPID("http"); p != before {
		t.Fatalf("a bad file replaced the worker %d with %d", before, p)
	}
}

// TestStaleSemaphoresRemovedAtStart: a master killed with SIGKILL leaves
// its semaphore sets; the next start removes them.
func TestStaleSemaphoresRemovedAtStart(t *testing.T) {
	d := setup(t, "", "")
	d.start()
	ids := semIDs(t, d)
	workers := []int{d.workerPID("http"), d.workerPID("smtp")}
	d.signal(syscall.SIGKILL)
	d.exitCode()
	for _, pid := range workers { // they follow the master (PDEATHSIG)
		for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("worker %d outlived its master", pid)
			}
		}
	}
	for _, id := range ids {
		if _, err := ipc.Lookup(id); err != nil {
			t.Fatalf("set %d gone before the restart: the test proves nothing", id)
		}
	}
	d.start()
	d.waitContains("INFO [main:start] removed semaphore sets left by an earlier run", `"sets": 2`)
	for _, id := range ids {
		if _, err := ipc.Lookup(id); err == nil {
			t.Errorf("stale set %d still there", id)
		}
	}
}

// TestLogsReopenOnSIGUSR1: after logrotate moves error.log, SIGUSR1 makes
// the master and workers write to a new one.
func TestLogsReopenOnSIGUSR1(t *testing.T) {
	d := setup(t, "", "")
	d.start()
	logDir := filepath.Join(d.dir, "log")
	os.Rename(filepath.Join(logDir, "error.log"), filepath.Join(logDir, "error.log.1"))
	d.signal(syscall.SIGUSR1)
	// Wait for the new file, then make the master log something.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(logDir, "error.log")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("error.log not reopened")
		}
	}
	syscall.Kill(d.workerPID("smtp"), syscall.SIGKILL)
	d.waitLine("WARNING [smtp:supervisor] Error recovery: restarting service...")
}

// TestSemaphoresExhausted: in a private IPC namespace with room for six
// semaphores, the second service's set of four cannot be made: M06, and
// (bind_retry = yes) that service stays down while the first serves.
func TestSemaphoresExhausted(t *testing.T) {
	needRoot(t, "a private IPC namespace with a small kernel.sem")
	d := setup(t, "bind_retry = yes", "") // the rest serves
	d.start("unshare", "--ipc", "sh", "-c", `echo "250 6 32 128" > /proc/sys/kernel/sem && exec "$@"`, "sh")
	d.waitLine("CRITICAL [smtp:start] semget=No space left on device(28) semget failure. Childnum(pre_spawn=4) may be large. If needed, maximum semaphore number(SEMMNI) can be increased by adding a line like 'kernel.sem=250 128000 32 512' in '/etc/sysctl.conf' and running 'sysctl -p'.")
	if s, _ := ask(d.dial("http"), "up"); s != "up" {
		t.Fatal("http not serving")
	}
}

// TestTempDirTooSmall: a 2 MB tmpfs as temp_dir: M09, no start.
func TestTempDirTooSmall(t *testing.T) {
	needRoot(t, "mounting a small tmpfs")
	small := filepath.Join(t.TempDir(), "small")
	os.Mkdir(small, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	defer exec.Command("umount", small).Run()
	d := setup(t, "temp_dir = "+small, "")
	d.run()
	if code := d.exitCode(); code != 1 {
		t.Fatalf("exit code %d", code)
	}
	d.waitLine(fmt.Sprintf("CRITICAL [main:start] not enough diskspace in temporary directory [%s]. (2048 kB free?)(ret=0)", small))
}

// TestOnAccessScannerInTempDir: a fanotify permission watch that denies
// opening any file holding EICAR, as on-access scanners do: M10, no start.
func TestOnAccessScannerInTempDir(t *testing.T) {
	needRoot(t, "a fanotify permission watch")
	d := setup(t, "", "")
	tmp := filepath.Join(d.dir, "tmp")
	os.MkdirAll(tmp, 0o750)
	stop := blockEICAR(t, tmp)
	defer stop()
	d.run()
	if code := d.exitCode(); code != 1 {
		t.Fatalf("exit code %d", code)
	}
	d.waitLine(fmt.Sprintf("CRITICAL [main:start] Realtime virus scan seems to be enabled. Please stop realtime virus scan, or exclude scanning for temporary directory(%s)", tmp))
}

// blockEICAR is a small on-access scanner: it denies opening files in dir
// that hold the EICAR string.
func blockEICAR(t *testing.T, dir string) (stop func()) {
	t.Helper()
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_CONTENT|unix.FAN_CLOEXEC, unix.O_RDONLY|unix.O_LARGEFILE)
	if err != nil {
		t.Fatalf("fanotify_init: %v", err)
	}
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD, unix.FAN_OPEN_PERM|unix.FAN_EVENT_ON_CHILD, unix.AT_FDCWD, dir); err != nil {
		unix.Close(fd)
		t.Fatalf("fanotify_mark: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(fd, buf)
			if err != nil {
				return
			}
			for off := 0; off+int(unsafe.Sizeof(unix.FanotifyEventMetadata{})) <= n; {
				ev := (*unix.FanotifyEventMetadata)(unsafe.Pointer(&buf[off]))
				verdict := uint32(unix.FAN_ALLOW)
				content := make([]byte, 256)
				if m, _ := unix.Pread(int(ev.Fd), content, 0); bytes.Contains(content[:max(m, 0)], []byte(eicar.String)) {
					verdict = unix.FAN_DENY
				}
				resp := unix.FanotifyResponse{Fd: ev.Fd, Response: verdict}
				unix.Write(fd, (*[unsafe.Sizeof(resp)]byte)(unsafe.Pointer(&resp))[:])
				unix.Close(int(ev.Fd))
				off += int(ev.Event_len)
			}
		}
	}()
	return func() {
		unix.FanotifyMark(fd, unix.FAN_MARK_REMOVE, unix.FAN_OPEN_PERM|unix.FAN_EVENT_ON_CHILD, unix.AT_FDCWD, dir)
		unix.Close(fd)
	}
}

// TestOutOfDescriptorsWhileServing: the daemon under a low RLIMIT_NOFILE
// with more clients than descriptors: M13 as a warning, no crash, and
// service again once the clients leave.
func TestOutOfDescriptorsWhileServing(t *testing.T) {
	d := setup(t, "", "")
	d.httpKeys = "pre_spawn = 60"
	d.write("", "")
	d.start("prlimit", "--nofile=24:24")
	var clients []net.Conn
	m13 := "WARNING [http:accept] System call=Too many open files(24) main/accept_loop/accept"
	for deadline := time.Now().Add(15 * time.Second); d.count(m13) == 0 && time.Now().Before(deadline); {
		// Once the backlog is full the kernel drops the handshake: a
		// short timeout, and another try while the worker is stuck.
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(d.ports["http"]), time.Second)
		if err != nil {
			continue
		}
		clients = append(clients, c)
		c.Write([]byte("hello\n")) // served, or waiting
	}
	d.waitLine("WARNING [http:accept] System call=Too many open files(24) main/accept_loop/accept")
	for _, c := range clients {
		c.Close()
	}
	c := d.dial("http")
	if s, err := ask(c, "again"); s != "again" {
		t.Fatalf("after the clients left: %q %v", s, err)
	}
}

// TestOutOfDescriptorsAtStart: with too few descriptors to start, M13 as
// CRITICAL and no start. The limit at which the master runs out depends
// on the runtime, so the test raises it until the daemon gets past its log
// files and must then hit the limit before it serves.
func TestOutOfDescriptorsAtStart(t *testing.T) {
	for n := 6; n <= 30; n++ {
		d := setup(t, "", "")
		d.run("prlimit", fmt.Sprintf("--nofile=%d:%d", n, n))
		code := d.exitCode()
		out := d.out.String()
		if strings.Contains(out, "CRITICAL [") && strings.Contains(out, "System call=Too many open files(24) ") {
			if code != 1 {
				t.Fatalf("exit code %d after M13", code)
			}
			t.Logf("with %d descriptors:\n%s", n, out)
			return
		}
		if code == 0 || strings.Contains(out, "INFO [main] serving") {
			t.Fatalf("started with %d descriptors without logging M13 first:\n%s", n, out)
		}
	}
	t.Fatal("never reached M13 up to 30 descriptors")
}

// TestStopWhileDrainingRemovesEverySemaphore: a stop that comes while the
// worker of the settings before a reload still drains a session removes
// that worker's semaphore set too, once it ends.
func TestStopWhileDrainingRemovesEverySemaphore(t *testing.T) {
	d := setup(t, "", "")
	d.start()
	held := d.dial("http")
	if _, err := ask(held, "pid"); err != nil {
		t.Fatal(err)
	}
	d.httpKeys = "pre_spawn = 6"
	d.write("", "")
	d.signal(syscall.SIGHUP)
	d.expectNotify("RELOADING=1")
	d.expectNotify("READY=1")
	ids := semIDs(t, d)
	if len(ids) != 3 {
		t.Fatalf("semaphore sets after the reload %v, want the old and new http sets and smtp's", ids)
	}
	d.signal(syscall.SIGTERM)
	d.expectNotify("STOPPING=1")
	held.Close()
	if code := d.exitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, id := range ids {
		if _, err := ipc.Lookup(id); err == nil {
			t.Errorf("semaphore set %d left behind", id)
		}
	}
}

// TestReloadToANewPort: a reload that moves a service to another port
// serves there with a new worker while the old one finishes its session
// on the old port, which closes, with its semaphore set, once it drains.
func TestReloadToANewPort(t *testing.T) {
	d := setup(t, "", "")
	d.start()
	held := d.dial("http")
	oldPID, _ := ask(held, "pid")
	oldPort := d.ports["http"]
	d.ports["http"] = testenv.FreePort(t)
	d.write("", "")
	d.signal(syscall.SIGHUP)
	d.expectNotify("RELOADING=1")
	d.expectNotify("READY=1")
	ids := semIDs(t, d)
	if len(ids) != 3 {
		t.Fatalf("semaphore sets after the reload %v", ids)
	}
	if p := d.workerPID("http"); strconv.Itoa(p) == oldPID {
		t.Fatal("the new port is served by the old worker")
	}
	if p, _ := ask(held, "pid"); p != oldPID {
		t.Fatalf("the session under way moved from %s to %s", oldPID, p)
	}
	held.Close()
	d.waitGone(oldPID)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(oldPort))
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the old port still accepts after its worker drained")
		}
	}
	for deadline := time.Now().Add(5 * time.Second); len(semIDs(t, d)) != 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("semaphore sets %v in the state after the old worker drained, want 2", semIDs(t, d))
		}
	}
	now := semIDs(t, d)
	for _, id := range ids {
		if _, err := ipc.Lookup(id); err == nil && !slices.Contains(now, id) {
			t.Errorf("the old generation's semaphore set %d is still there", id)
		}
	}
}

// TestStopRemovesEverySpoolFile: once every worker has ended, a stop
// leaves no spool file behind, whoever wrote it.
func TestStopRemovesEverySpoolFile(t *testing.T) {
	d := setup(t, "", "")
	d.start()
	tmp := filepath.Join(d.dir, "tmp")
	left := filepath.Join(tmp, "fsigkd-http-1-123")
	if err := os.WriteFile(left, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(tmp, "not-ours")
	os.WriteFile(other, []byte("x"), 0o600)
	d.signal(syscall.SIGTERM)
	if code := d.exitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if _, err := os.Stat(left); err == nil {
		t.Fatal("a spool file outlived the stop")
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatal("a file that is not ours was removed")
	}
}

// TestImplicitTLSListener: a service with tls_port has the master bind
// that port too and hand it to the same worker, whose two ports share
// the slots (pre_spawn); status shows both; a reload that moves tls_port
// serves the new one and closes the old.
func TestImplicitTLSListener(t *testing.T) {
	certFile, keyFile := servertest.WriteKeyPair(t, servertest.SelfSigned(t), t.TempDir())
	tlsPort := testenv.FreePort(t)
	keys := func(port int) string {
		return fmt.Sprintf("tls_cert = %s\ntls_key = %s\ntls_port = %d\n", certFile, keyFile, port)
	}
	d := setup(t, "", keys(tlsPort))
	d.start()
	dialTLS := func(port int) (net.Conn, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			t.Cleanup(func() { c.Close() })
			c.SetDeadline(time.Now().Add(20 * time.Second))
		}
		return c, err
	}
	plain := d.dial("smtp")
	tc, err := dialTLS(tlsPort)
	if err != nil {
		t.Fatalf("tls_port: %v", err)
	}
	plainPID, _ := ask(plain, "pid")
	tlsPID, _ := ask(tc, "pid")
	s1, _ := ask(plain, "slot")
	s2, _ := ask(tc, "slot")
	if plainPID != tlsPID || s1 == s2 {
		t.Errorf("plain port: worker %s slot %s; tls_port: worker %s slot %s", plainPID, s1, tlsPID, s2)
	}
	if out, _ := d.fsigkd("status", "-c", d.conf); !strings.Contains(out, "+tls:"+strconv.Itoa(tlsPort)) {
		t.Errorf("status:\n%s", out)
	}
	plain.Close()
	tc.Close()

	oldPort := tlsPort
	tlsPort = testenv.FreePort(t)
	d.write("", keys(tlsPort))
	d.signal(syscall.SIGHUP)
	d.expectNotify("RELOADING=1")
	d.expectNotify("READY=1")
	tc, err = dialTLS(tlsPort)
	if err != nil {
		t.Fatalf("the new tls_port: %v", err)
	}
	if p, _ := ask(tc, "pid"); p == plainPID {
		t.Error("the new tls_port is served by the old worker")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(oldPort))
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the old tls_port still accepts after the reload")
		}
	}
}
