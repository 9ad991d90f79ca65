package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestEICAROnlyIsAWarningEverywhere: the sample's engine, the bundled
// fsavd with no signature files, detects the EICAR test file and nothing
// else, and nothing said so: an administrator believed the gateway
// protected them. Now check, the start (the error log), status, the
// console and /metrics all say it.
func TestEICAROnlyIsAWarningEverywhere(t *testing.T) {
	port := testenv.FreePort(t)
	g := gateway(t, 4, map[string]string{"global": fmt.Sprintf("console_port = %d", port)})
	const said = "the bundled fsavd has no signatures: it detects the EICAR test file and nothing else"

	out, err := exec.Command(binary(t), "check", "-c", g.conf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "warning: "+said) {
		t.Errorf("check (%v):\n%.2000s", err, out)
	}
	waitFor(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(g.dir, "state", "log", "error.log"))
		return strings.Contains(string(b), "WARNING [main:engine] "+said)
	})
	out, _ = exec.Command(binary(t), "status", "-c", g.conf).CombinedOutput()
	if !strings.Contains(string(out), "WARNING: "+said) || !strings.Contains(string(out), "engine the bundled fsavd, no signature files") {
		t.Errorf("status:\n%s", out)
	}
	console := fmt.Sprintf("127.0.0.1:%d", port)
	if v := value(scrape(t, console), "fsigkd_engine_eicar_only", "service", "master"); v != 1 {
		t.Errorf("fsigkd_engine_eicar_only = %v", v)
	}
	resp, err := http.Get("http://" + console + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), said) {
		t.Errorf("the dashboard does not say it:\n%.3000s", page)
	}
}

// TestSignaturesAgeIsSaid: with signature files, their count and date
// are said and nothing warned while they are fresh; when their newest
// file is older than signatures_max_age (the updates stopped), that is
// a warning at start and in status, and the date is in /metrics.
func TestSignaturesAgeIsSaid(t *testing.T) {
	sigs := t.TempDir()
	f := filepath.Join(sigs, "local.ndb")
	os.WriteFile(f, []byte(enginetest.NDB()), 0o644)
	port := testenv.FreePort(t)
	g := gateway(t, 4, map[string]string{"global": fmt.Sprintf("console_port = %d\nfsavd_signatures = %s\nsignatures_max_age = 2d", port, sigs)})
	out, _ := exec.Command(binary(t), "status", "-c", g.conf).CombinedOutput()
	if strings.Contains(string(out), "WARNING:") || !strings.Contains(string(out), "engine the bundled fsavd, ") {
		t.Errorf("status with fresh signatures:\n%s", out)
	}
	old := time.Now().Add(-5 * 24 * time.Hour)
	os.Chtimes(f, old, old)
	out, _ = exec.Command(binary(t), "status", "-c", g.conf).CombinedOutput()
	if !strings.Contains(string(out), "WARNING: the bundled fsavd's signatures are 5 days old (signatures_max_age 2d)") {
		t.Errorf("status with old signatures:\n%s", out)
	}
	signalMaster(t, g, syscall.SIGHUP) // a reload says it again, in the error log
	waitFor(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(g.dir, "state", "log", "error.log"))
		return strings.Contains(string(b), "WARNING [main:engine] the bundled fsavd's signatures are 5 days old")
	})
	waitFor(t, func() bool {
		v := value(scrape(t, fmt.Sprintf("127.0.0.1:%d", port)), "fsigkd_engine_signatures_updated_timestamp_seconds", "service", "master")
		return int64(v) == old.Unix()
	})
}
