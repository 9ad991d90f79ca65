package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fsigkd/fsigkd/internal/daemontest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHealthEndpoints: /healthz and /readyz answer without the console's
// password (which /metrics asks for), saying nothing else: ready once
// every service serves and the engine answers (TestServiceUpMetric sees
// it not ready with a service down); at a stop with unready_before_stop,
// not ready first while the services still accept, then stopped.
func TestHealthEndpoints(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	cport := testenv.FreePort(t)
	dir := testenv.ShortDir(t)
	conf := downSettings(t, dir, testenv.FreePort(t), fmt.Sprintf("console = yes\nconsole_port = %d\nconsole_password = %s\nunready_before_stop = 2", cport, hash))
	daemontest.Daemon(t, binary(t), "-f", "-c", conf)
	base := fmt.Sprintf("http://127.0.0.1:%d", cport)
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := get(t, base+"/metrics"); code != 401 {
		t.Errorf("/metrics without the password: %d", code)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, body := get(t, base+"/readyz")
		if code == 200 && body == "ready\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %d %q", code, body)
		}
	}
	out, _ := exec.Command(binary(t), "status", "-c", conf).Output()
	var pid int
	fmt.Sscanf(string(out), "master pid %d", &pid)
	if pid == 0 {
		t.Fatalf("no master pid in %q", out)
	}
	syscall.Kill(pid, syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "stopping") {
		t.Errorf("/readyz in the moment before the stop: %d %q", code, body)
	}
	line := strings.Fields(strings.Split(string(out), "\n")[2])
	if c, err := net.Dial("tcp", line[len(line)-1]); err != nil {
		t.Errorf("the services stopped accepting before unready_before_stop passed: %v", err)
	} else {
		c.Close()
	}
	for deadline := time.Now().Add(20 * time.Second); alive(pid); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not stop after unready_before_stop")
		}
	}
}
