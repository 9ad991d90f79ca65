// Package daemontest runs the real fsigkd master for tests: started, read
// while it runs, and stopped when the test ends.
package daemontest

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Output collects a process's output while a test reads it.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String is what was written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Daemon starts a fsigkd master (args: the command line, such as "ip netns
// exec gw fsigkd -f -c FILE"), waits until it serves, and stops it with
// SIGTERM when the test ends, showing its output if the test failed.
func Daemon(t testing.TB, args ...string) *Output {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	out := &Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("fsigkd:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "INFO [main] serving"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("fsigkd did not start:\n%s", out.String())
		}
	}
	return out
}
