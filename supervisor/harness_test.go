package supervisor

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/fsavd"
	"github.com/fsigkd/fsigkd/internal/daemontest"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/worker"
)

func TestMain(m *testing.M) {
	if os.Getenv("FSIGKD_TEST_DAEMON") == "1" {
		os.Exit(daemonMain(os.Args[1:], worker.Registry{"http": newEcho, "smtp": newEcho, "ftp": newEcho}))
	}
	os.Exit(m.Run())
}

// daemonMain is what this test binary does as the daemon: the part of
// cmd/fsigkd's command line the supervisor's tests use, on the
// supervisor's entry points.
func daemonMain(args []string, reg worker.Registry) int {
	if len(args) > 0 {
		switch args[0] {
		case "worker":
			return Worker(reg)
		case "fsavd":
			return fsavd.Main(args[1:])
		}
	}
	cmd := "run"
	if len(args) > 0 && args[0] == "status" {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("fsigkd", flag.ContinueOnError)
	fg := fs.Bool("f", false, "")
	file := fs.String("c", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, warnings, err := conf.Load(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsigkd:", err)
		return 1
	}
	if cmd == "status" {
		return Status(os.Stdout, os.Stderr, cfg.Global.BaseDir, cfg.File, cfg.Global.LogDir)
	}
	return Run(args, "test", cfg, warnings, reg, *fg)
}

// needRoot skips a test that needs root, unless CI is set.
var needRoot = testenv.NeedRoot

// daemon is a real fsigkd master (this test binary, run as the daemon)
// with the echo service in its workers.
type daemon struct {
	t      *testing.T
	dir    string
	conf   string
	cmd    *exec.Cmd
	out    *daemontest.Output
	notify *net.UnixConn
	ports  map[string]int
	done   chan struct{}
	// httpKeys go into the [http] section written by write.
	httpKeys string
}

// setup writes a settings file: global lines, then [http] and [smtp]
// enabled on free ports, then extra (sections or keys appended).
func setup(t *testing.T, global, extra string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{t: t, dir: dir, conf: filepath.Join(dir, "fsigk.ini"), out: &daemontest.Output{}, ports: map[string]int{}}
	d.ports["http"], d.ports["smtp"] = testenv.FreePort(t), testenv.FreePort(t)
	d.write(global, extra)
	return d
}

func (d *daemon) write(global, extra string) {
	// console = no: tests run side by side, and the console's port is one.
	ini := fmt.Sprintf("base_dir = %s\nshutdown_grace = 5\nfsavd_start = no\n%s\nconsole = no\n[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\npre_spawn = 4\n"+d.httpKeys+"\n[smtp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\npre_spawn = 4\n%s\n",
		d.dir, global, d.ports["http"], d.ports["smtp"], extra)
	if err := os.WriteFile(d.conf, []byte(ini), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// command is the daemon's command line, to be run by start (or wrapped).
func (d *daemon) command(wrap ...string) *exec.Cmd {
	args := append(wrap, os.Args[0], "-f", "-c", d.conf)
	cmd := exec.Command(args[0], args[1:]...)
	sock := filepath.Join(d.dir, "notify.sock")
	if d.notify == nil {
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
		if err != nil {
			d.t.Fatal(err)
		}
		d.notify = c
		d.t.Cleanup(func() { c.Close() })
	}
	cmd.Env = append(os.Environ(), "FSIGKD_TEST_DAEMON=1", "NOTIFY_SOCKET="+sock)
	cmd.Stdout, cmd.Stderr = d.out, d.out
	return cmd
}

// start runs the daemon and waits for READY=1.
func (d *daemon) start(wrap ...string) {
	d.t.Helper()
	d.run(wrap...)
	d.expectNotify("READY=1")
}

// run starts the daemon without waiting.
func (d *daemon) run(wrap ...string) {
	d.t.Helper()
	d.cmd = d.command(wrap...)
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.done) }()
	d.t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(15 * time.Second):
				d.cmd.Process.Kill()
			}
		}
		if d.t.Failed() {
			d.t.Logf("daemon output:\n%s", d.out.String())
		}
	})
}

// exitCode waits for the daemon to end by itself.
func (d *daemon) exitCode() int {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.t.Fatalf("daemon did not exit; output:\n%s", d.out.String())
	}
	return d.cmd.ProcessState.ExitCode()
}

func (d *daemon) expectNotify(want string) {
	d.t.Helper()
	buf := make([]byte, 256)
	deadline := time.Now().Add(20 * time.Second)
	for {
		d.notify.SetReadDeadline(deadline)
		n, err := d.notify.Read(buf)
		if err != nil {
			d.t.Fatalf("waiting for %s: %v\noutput:\n%s", want, err, d.out.String())
		}
		if string(buf[:n]) == want {
			return
		}
	}
}

func (d *daemon) signal(sig syscall.Signal) {
	d.cmd.Process.Signal(sig)
}

// errorLog is error.log as it is now.
func (d *daemon) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "log", "error.log"))
	return string(b)
}

var linePrefix = regexp.MustCompile(`^\S+ (CRITICAL|WARNING|INFO|DEBUG) \[([^\]]+)\] `)

// waitLine waits until error.log has a line whose level, location and
// message are exactly want ("LEVEL [location] message"), and returns how
// many such lines there are.
func (d *daemon) waitLine(want string) int {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := d.count(want)
		if n > 0 {
			return n
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no line %q in error.log:\n%s", want, d.errorLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitContains waits until error.log has a line holding all of parts.
func (d *daemon) waitContains(parts ...string) string {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, line := range strings.Split(d.errorLog(), "\n") {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return line
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no line with %q in error.log:\n%s", parts, d.errorLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// times are the time stamps of the lines of error.log that are exactly want.
func (d *daemon) times(want string) []time.Time {
	var out []time.Time
	for _, line := range strings.Split(d.errorLog(), "\n") {
		stamp, rest, _ := strings.Cut(line, " ")
		if rest == want {
			if t, err := time.Parse(logs.TimeLayout, stamp); err == nil {
				out = append(out, t)
			}
		}
	}
	return out
}

// count is how many lines of error.log are exactly want, after the time.
func (d *daemon) count(want string) int {
	n := 0
	for _, line := range strings.Split(d.errorLog(), "\n") {
		if m := linePrefix.FindStringIndex(line); m != nil && strings.SplitN(line, " ", 2)[1] == want {
			n++
		}
	}
	return n
}

func (d *daemon) dial(service string) net.Conn {
	d.t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(d.ports[service]), 5*time.Second)
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// waitGone waits for the worker pid (as the echo service says it) to end.
func (d *daemon) waitGone(pid string) {
	d.t.Helper()
	n, _ := strconv.Atoi(pid)
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(n, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			d.t.Fatalf("worker %s did not drain", pid)
		}
	}
}

// workerPID asks the service's worker for its pid over a new connection.
func (d *daemon) workerPID(service string) int {
	d.t.Helper()
	c := d.dial(service)
	defer c.Close()
	s, err := ask(c, "pid")
	if err != nil {
		d.t.Fatal(err)
	}
	pid, _ := strconv.Atoi(s)
	return pid
}

// fsigkd runs a subcommand (check, status) of the daemon binary.
func (d *daemon) fsigkd(args ...string) (string, int) {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "FSIGKD_TEST_DAEMON=1")
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}
