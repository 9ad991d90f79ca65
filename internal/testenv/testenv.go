// Package testenv is what every test that runs a real program needs: the
// program found (or the test skipped, or under CI failed, naming the
// Debian package), root, short temp directories for Unix sockets, free
// loopback ports, and Proc, a started program stopped when its test ends.
package testenv

import (
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Need skips (or, under CI, fails) a test when program is not installed.
func Need(t testing.TB, program, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, program)); err == nil {
			return filepath.Join(dir, program)
		}
	}
	Unavailable(t, "%s not installed: apt-get install %s", program, pkg)
	return ""
}

// Unavailable ends a test that cannot run here: skipped, saying why,
// unless CI is set; there it fails, since CI installs what the tests need
// and must run them all.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI must run this test, and: "+format, args...)
	}
	t.Skipf(format, args...)
}

// NeedRoot skips a test that needs root (mounts, namespaces, fanotify),
// unless CI is set: there it fails, since CI runs as root and must run it.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root: %s", why)
	}
}

// OpenFile writes data to a file called name in a directory of the
// test's own and opens it for reading; it is closed when the test ends.
func OpenFile(t testing.TB, name string, data []byte) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// ShortDir is a temp directory with a short name: Unix socket paths are
// limited to 108 bytes.
func ShortDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "fsk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// FreePort is a loopback port nothing listens on, for a server a test
// starts. It is taken below the kernel's ephemeral range (32768 and up by
// default): a port the kernel picked for us, closed, could be picked
// again for any outgoing connection of the tests run beside this one
// before the server binds it ("address already in use").
func FreePort(t testing.TB) int {
	for range 1000 {
		port := 20000 + mrand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// Proc is a started engine or server.
type Proc struct {
	Cmd     *exec.Cmd
	Dir     string
	Sock    string   // its Unix socket, if any
	Addr    string   // its TCP address, if any
	Args    []string // its command line
	LogFile string   // where its output goes
	// Ready says when a started process serves.
	Ready func() bool

	t    testing.TB
	done chan struct{}
}

// Start starts the process, waits until Ready says it serves (failing
// the test if it exits or does not within 90 s), and stops it when the
// test ends.
func (p *Proc) Start(t testing.TB) {
	t.Helper()
	p.t = t
	p.start()
	t.Cleanup(p.Stop)
}

func (p *Proc) start() {
	p.t.Helper()
	p.Cmd = exec.Command(p.Args[0], p.Args[1:]...)
	out, _ := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	p.Cmd.Stdout, p.Cmd.Stderr = out, out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.Cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() { p.Cmd.Wait(); out.Close(); close(p.done) }()
	deadline := time.Now().Add(90 * time.Second)
	for !p.Ready() {
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.LogFile)
			p.t.Fatalf("%s exited at start (%v):\n%s", p.Args[0], p.Cmd.ProcessState, b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.LogFile)
			p.t.Fatalf("%s did not start:\n%s", p.Args[0], b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the engine (its whole process group) and waits for it.
func (p *Proc) Stop() {
	if p.Cmd == nil || p.Cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	if p.Sock != "" {
		os.Remove(p.Sock)
	}
}

// Restart starts the engine again after Stop.
func (p *Proc) Restart() { p.Stop(); p.start() }

// Freeze stops the engine's processes (SIGSTOP) so that it hangs;
// Thaw lets them go on.
func (p *Proc) Freeze() { syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGSTOP) }

// Thaw undoes Freeze.
func (p *Proc) Thaw() { syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGCONT) }

// Log is what the engine wrote.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogFile)
	return string(b)
}

// Dialable says whether something accepts connections at addr.
func Dialable(network, addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout(network, addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}
