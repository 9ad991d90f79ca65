package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// readDiag lists an archive written by fsigkd diag: name to content.
func readDiag(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[strings.TrimPrefix(h.Name, "diag/")] = string(b)
	}
}

// TestDiagOfARunningGateway: the archive support asks for, from a live
// gateway: the sockets (netstat_anp.txt), status, the logs, the settings
// with the licence masked, the sysctl values, the engine's answer.
func TestDiagOfARunningGateway(t *testing.T) {
	g := gateway(t, 4, map[string]string{"global": "license = EVAL-20991231-secret-key"})
	if err := g.served(t, "http", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the workers write their counts every second
	out := filepath.Join(t.TempDir(), "diag.tar.gz")
	said, err := exec.Command(binary(t), "diag", "-c", g.conf, "-o", out).CombinedOutput()
	if err != nil {
		t.Fatalf("diag: %v\n%s", err, said)
	}
	files := readDiag(t, out)
	// It says what it includes, on the terminal and in the archive, each
	// file with what it holds.
	for name := range files {
		if name == "CONTENTS.txt" || strings.HasSuffix(name, ".error.txt") {
			continue
		}
		for where, list := range map[string]string{"the command's output": string(said), "CONTENTS.txt": files["CONTENTS.txt"]} {
			i := strings.Index(list, "  "+name+" ")
			if i < 0 {
				t.Errorf("%s does not list %s:\n%s", where, name, list)
				continue
			}
			if line, _, _ := strings.Cut(list[i:], "\n"); len(strings.Fields(line)) < 3 {
				t.Errorf("%s does not say what %s holds: %q", where, name, line)
			}
		}
	}
	if !strings.Contains(string(said), "logs/access.log") || !strings.Contains(string(said), "client addresses") {
		t.Errorf("the command does not say that the logs' addresses are in it:\n%s", said)
	}
	for name, want := range map[string]string{
		"system/netstat_anp.txt":   fmt.Sprintf("127.0.0.1:%d", g.ports["http"]),
		"status.txt":               "\nhttp ",
		"CONTENTS.txt":             "What this archive holds",
		"logs/error.log":           "INFO [main] serving",
		"settings/fsigk.ini":       "license = ***",
		"settings/effective.txt":   "license = ***",
		"system/sysctl.txt":        "/proc/sys/net/core/somaxconn:",
		"system/sysvipc_sem.txt":   "semid",
		"versions.txt":             "fsigkd ",
		"engine.txt":               "ping: answers",
		"system/temp_dir_free.txt": "bytes free",
		"cores.txt":                "",
		"metrics.txt":              `fsigkd_requests_total{service="http"} 1`,
		"quarantine.txt":           "",
	} {
		got, ok := files[name]
		if !ok || !strings.Contains(got, want) {
			t.Errorf("%s: %q not in:\n%.500s", name, want, got)
		}
	}
	for name, content := range files {
		if strings.Contains(content, "secret-key") {
			t.Errorf("%s shows the licence key", name)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(g.dir, "state", "metrics", "*.json")); len(left) < 3 {
		t.Errorf("diag took the workers' count files away: %v", left)
	}
}

// TestDiagOfAStoppedGateway: with nothing running, and a log missing,
// diag still writes the archive; the parts it could not collect say why.
func TestDiagOfAStoppedGateway(t *testing.T) {
	dir := testenv.ShortDir(t)
	conf := filepath.Join(dir, "fsigk.ini")
	os.WriteFile(conf, []byte("base_dir = "+dir+"/state\n[http]\nenable = yes\nport = 1\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "state"), 0o755)
	out := filepath.Join(t.TempDir(), "diag.tar.gz")
	os.WriteFile(out, []byte("an older one, world-readable"), 0o644)
	b, err := exec.Command(binary(t), "diag", "-c", conf, "-o", out).CombinedOutput()
	if err != nil || !strings.Contains(string(b), "not collected") || !strings.Contains(string(b), "mode 0600") {
		t.Fatalf("diag: %v\n%s", err, b)
	}
	// It holds client and mail addresses: its owner's alone.
	if fi, err := os.Stat(out); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("diag.tar.gz has mode %v, want 0600", fi.Mode().Perm())
	}
	files := readDiag(t, out)
	if !strings.Contains(files["status.txt"], "not running") {
		t.Errorf("status.txt: %q", files["status.txt"])
	}
	if !strings.Contains(files["logs/error.log.error.txt"], "no such file") {
		t.Errorf("the missing log does not say why: %v", files["logs/error.log.error.txt"])
	}
	if !strings.Contains(files["engine.txt"], "ping:") {
		t.Errorf("engine.txt: %q", files["engine.txt"])
	}
	if _, ok := files["system/netstat_anp.txt"]; !ok {
		t.Error("no netstat_anp.txt")
	}
}

// TestAccessLogJSON: with access_log_format = json the workers write one
// JSON object a line.
func TestAccessLogJSON(t *testing.T) {
	g := gateway(t, 4, map[string]string{"global": "access_log_format = json"})
	g.fetch(t, "/x")
	path := filepath.Join(g.dir, "state", "log", "access.log")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		if len(b) > 0 {
			var rec map[string]any
			if err := json.Unmarshal(b, &rec); err != nil || rec["service"] != "http" || rec["detect"] != "CLEAN" {
				t.Fatalf("access.log %q: %v", b, err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no access-log line")
		}
	}
}
