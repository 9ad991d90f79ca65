package supervisor

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/ipc"
)

func semIDs(t *testing.T, d *daemon) []int {
	t.Helper()
	st, err := ipc.ReadState(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, s := range st.Services {
		for _, sem := range s.Sems {
			ids = append(ids, sem.ID)
		}
	}
	return ids
}

// TestServeStatusAndStop: workers serve with slots from 0, `fsigkd status`
// reads the semaphores, SIGTERM drains and removes what the master made.
func TestServeStatusAndStop(t *testing.T) {
	d := setup(t, "", "")
	d.start()
	a, b := d.dial("http"), d.dial("http")
	if s, _ := ask(a, "slot"); s != "0" {
		t.Fatalf("first connection slot %s", s)
	}
	if s, _ := ask(b, "slot"); s != "1" {
		t.Fatalf("second connection slot %s", s)
	}
	if s, _ := ask(d.dial("smtp"), "hello"); s != "hello" {
		t.Fatalf("smtp echo %q", s)
	}
	out, code := d.fsigkd("status", "-c", d.conf)
	if code != 0 {
		t.Fatalf("status: %d %s", code, out)
	}
	var httpLine string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "http ") {
			httpLine = l
		}
	}
	f := strings.Fields(httpLine)
	if len(f) != 5 || f[2] != "2" || f[3] != "4" || f[4] != "127.0.0.1:"+strconv.Itoa(d.ports["http"]) {
		t.Fatalf("status http line %q in\n%s", httpLine, out)
	}
	ids := semIDs(t, d)
	if len(ids) != 2 {
		t.Fatalf("semaphore sets %v", ids)
	}
	a.Close()
	b.Close()
	d.signal(syscall.SIGTERM)
	d.expectNotify("STOPPING=1")
	if code := d.exitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, id := range ids {
		if _, err := ipc.Lookup(id); err == nil {
			t.Errorf("semaphore set %d left behind", id)
		}
	}
	if _, err := os.Stat(filepath.Join(d.dir, "fsigkd.pid")); !os.IsNotExist(err) {
		t.Error("pid file left behind")
	}
}

// TestWorkerKilledIsRestarted: M17 then M19, a new worker within the
// second, a client that came meanwhile served, the other service untouched.
func TestWorkerKilledIsRestarted(t *testing.T) {
	d := setup(t, "", "")
	d.start()
	pid, smtpPID := d.workerPID("http"), d.workerPID("smtp")
	syscall.Kill(pid, syscall.SIGKILL)
	// This client connects while no worker accepts: it waits in the
	// backlog and is served by the new worker.
	c := d.dial("http")
	got, err := ask(c, "pid")
	if err != nil {
		t.Fatal(err)
	}
	newPID, _ := strconv.Atoi(got)
	if newPID == pid || newPID == 0 {
		t.Fatalf("served by pid %d after killing %d", newPID, pid)
	}
	st, _ := ipc.ReadState(d.dir)
	want := fmt.Sprintf("WARNING [http:supervisor] child(0) stopped.(sig=17[SIGCHLD], si_code=2[CLD_KILLED],status=9, childid=1, cur_pid=%d,pid=%d", st.MasterPID, pid)
	d.waitLine(want)
	d.waitLine("WARNING [http:supervisor] Error recovery: restarting service...")
	if d.count(strings.Replace(want, "CLD_KILLED", "CLD_DUMPED", 1)) != 0 || strings.Contains(d.errorLog(), "core dumped") {
		t.Error("a kill reported as a core dump")
	}
	if p := d.workerPID("smtp"); p != smtpPID {
		t.Errorf("smtp worker changed from %d to %d", smtpPID, p)
	}
}

// TestWorkerCrashDumpsCore: a worker killed by SIGSEGV dumps core (the Go
// runtime aborts with SIGABRT after printing the traceback): M17 with
// CLD_DUMPED, M18, M19, and a core file in base_dir.
func TestWorkerCrashDumpsCore(t *testing.T) {
	pattern, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
	var rl syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_CORE, &rl)
	if rl.Max == 0 || strings.HasPrefix(string(pattern), "|") {
		testenv.Unavailable(t, "no core dumps here (core_pattern %q, hard RLIMIT_CORE %d)", pattern, rl.Max)
	}
	d := setup(t, "core_dump = yes", "")
	d.start()
	pid := d.workerPID("http")
	syscall.Kill(pid, syscall.SIGSEGV)
	st, _ := ipc.ReadState(d.dir)
	d.waitLine(fmt.Sprintf("WARNING [http:supervisor] child(0) stopped.(sig=17[SIGCHLD], si_code=3[CLD_DUMPED],status=6, childid=1, cur_pid=%d,pid=%d", st.MasterPID, pid))
	d.waitLine(fmt.Sprintf("WARNING [http:supervisor] core dumped(child proxy process). Please send core file(core or core.xxx) on the installation directory and diag.tar.gz to support center. (child=0,sig=17[SIGCHLD], si_code=3[CLD_DUMPED],status=6(SIGABRT),childid=1,cur_pid=%d,pid=%d)", st.MasterPID, pid))
	d.waitLine("WARNING [http:supervisor] Error recovery: restarting service...")
	cores, _ := filepath.Glob(filepath.Join(d.dir, "core*"))
	if len(cores) == 0 {
		t.Error("no core file in base_dir")
	}
	if p := d.workerPID("http"); p == pid {
		t.Error("not restarted")
	}
}

// TestWorkerThatKeepsDyingBacksOff: a service that cannot start is
// retried with a growing delay, never in a tight loop; the other runs.
func TestWorkerThatKeepsDyingBacksOff(t *testing.T) {
	d := setup(t, "restart_max_delay = 1", "")
	os.Setenv("FSIGKD_TEST_ECHO_FAIL", "smtp")
	defer os.Unsetenv("FSIGKD_TEST_ECHO_FAIL")
	d.run()
	m19 := "WARNING [smtp:supervisor] Error recovery: restarting service..."
	for deadline := time.Now().Add(30 * time.Second); d.count(m19) < 6; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d restarts", d.count(m19))
		}
	}
	// After the first and second deaths the worker is restarted at once,
	// then after 0.1, 0.2, 0.4 s...: the gaps between the log lines can
	// only be longer than those delays, never shorter (a loop without
	// back-off: milliseconds).
	at := d.times(m19)
	for i, min := range map[int]time.Duration{2: 100 * time.Millisecond, 3: 200 * time.Millisecond, 4: 400 * time.Millisecond, 5: 800 * time.Millisecond} {
		if gap := at[i].Sub(at[i-1]); gap < min {
			t.Errorf("restart %d came %s after the one before, less than the back-off %s", i+1, gap, min)
		}
	}
	if s, _ := ask(d.dial("http"), "still"); s != "still" {
		t.Fatal("http does not serve while smtp fails")
	}
}

// TestBindFailure: a port taken fails the start as shipped (exit 1, M01
// byte for byte): a start that does not serve every enabled service says
// so in its exit status.
func TestBindFailure(t *testing.T) {
	d := setup(t, "", "")
	hold, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(d.ports["smtp"]))
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	d.run()
	if code := d.exitCode(); code != 1 {
		t.Fatalf("exit code %d", code)
	}
	p := d.ports["smtp"]
	d.waitLine(fmt.Sprintf("CRITICAL [smtp:start] bind=Address already in use(98) (addr=127.0.0.1, port=%d). # Please check whether other service(mail/web server,etc...) is already running on port %d.", p, p))
}

// TestBindFailureWithRetry: with bind_retry = yes the other services
// serve, and status shows the one down, and why, exiting 4.
func TestBindFailureWithRetry(t *testing.T) {
	d := setup(t, "bind_retry = yes", "")
	hold, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(d.ports["smtp"]))
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	d.start()
	p := d.ports["smtp"]
	d.waitLine(fmt.Sprintf("CRITICAL [smtp:start] bind=Address already in use(98) (addr=127.0.0.1, port=%d). # Please check whether other service(mail/web server,etc...) is already running on port %d.", p, p))
	if s, _ := ask(d.dial("http"), "up"); s != "up" {
		t.Fatal("http not serving")
	}
	out, code := d.fsigkd("status", "-c", d.conf)
	if code != 4 || !strings.Contains(out, "\nsmtp   -        -      -      down: bind=Address already in use(98)") {
		t.Errorf("status: %d\n%s", code, out)
	}
}

// TestAllSlotsBusy: with pre_spawn connections open, M02, and the next
// client waits in the backlog until one closes.
func TestAllSlotsBusy(t *testing.T) {
	d := setup(t, "", "")
	d.start()
	var held []net.Conn
	for i := 0; i < 4; i++ {
		c := d.dial("http")
		if s, _ := ask(c, "slot"); s != strconv.Itoa(i) {
			t.Fatalf("connection %d in slot %s", i, s)
		}
		held = append(held, c)
	}
	extra := d.dial("http")
	extra.Write([]byte("slot\n"))
	d.waitLine("WARNING [http:accept] Maximum connections: warning: Client connections reached maximum connections(4). More request will be blocked/rejected. If there is many warnings, please increase 'Maximum Connections' settings(pre_spawn value of virusgw.ini) of this service. (8 will be good value as start line).")
	out, _ := d.fsigkd("status", "-c", d.conf)
	if !strings.Contains(out, "\nhttp ") || !strings.Contains(out, " 4      4 ") {
		t.Errorf("status does not show 4 of 4 slots busy:\n%s", out)
	}
	held[2].Close()
	buf := make([]byte, 16)
	n, err := extra.Read(buf)
	if err != nil || strings.TrimSpace(string(buf[:n])) != "2" {
		t.Fatalf("waiting client got %q, %v; want the freed slot 2", buf[:n], err)
	}
}

// TestLicenseExpired: M21 and no start.
func TestLicenseExpired(t *testing.T) {
	d := setup(t, "license = EVAL-20200131-test", "")
	d.run()
	if code := d.exitCode(); code == 0 {
		t.Fatal("started with an expired licence")
	}
	d.waitLine("CRITICAL [main:start] LICENSE_ERROR#ret=-1#msg=License Expired")
}

// TestBadSettingsRefused: a bad value stops start-up with file:line, exit
// 1 (a bad file; 2 is bad usage).
func TestBadSettingsRefused(t *testing.T) {
	d := setup(t, "sendfile_timeout = never", "")
	d.run()
	if code := d.exitCode(); code != 1 {
		t.Fatalf("exit code %d", code)
	}
	if want := d.conf + ":4: sendfile_timeout:"; !strings.Contains(d.out.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, d.out.String())
	}
}

// TestLifecycleLines: the start (with the version and the command line),
// the moment every service accepts, and the stop, as an operator's grep
// finds them.
func TestLifecycleLines(t *testing.T) {
	d := setup(t, "", "")
	d.start()
	d.waitContains("INFO [main] ### START ### fsigkd test ", "-c "+d.conf)
	d.waitLine("INFO [main] Starting to accept connection on each proxy process.")
	d.signal(syscall.SIGTERM)
	if code := d.exitCode(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	d.waitLine("INFO [main] ### STOP ###")
}
