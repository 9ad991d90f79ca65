package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/scanner"
)

func scanEICAR(t *testing.T, dir string) (scanner.Verdict, error) {
	p := filepath.Join(dir, "obj")
	os.WriteFile(p, []byte(eicar.String), 0o644)
	f, _ := os.Open(p)
	defer f.Close()
	eps, _ := scanner.ParseEndpoints("./fsavd-socket-0", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return scanner.NewFsavd(&scanner.Pool{Endpoints: eps}, false).Scan(ctx, &scanner.Object{File: f, Path: p, Size: int64(len(eicar.String))})
}

func fsavdPID(t *testing.T, dir string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(cmd), "fsavd\x00-socket\x00"+filepath.Join(dir, "fsavd-socket-0")) {
			return pid
		}
	}
	return 0
}

// TestMasterRunsTheBundledFsavd: fsavd_start = yes starts fsavd, which
// answers on its socket, is restarted when killed, and stops with the
// master.
func TestMasterRunsTheBundledFsavd(t *testing.T) {
	d := setup(t, "", "")
	d.dir = testenv.ShortDir(t) // a socket path must stay short
	d.conf = filepath.Join(d.dir, "fsigk.ini")
	d.write("fsavd_start = yes", "")
	d.start()
	if v, err := scanEICAR(t, d.dir); err != nil || v.Status != scanner.Infected {
		t.Fatalf("scan: %+v %v", v, err)
	}
	pid := fsavdPID(t, d.dir)
	if pid == 0 {
		t.Fatal("no fsavd process")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	d.waitContains("WARNING [main] fsavd stopped; restarting it")
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := scanEICAR(t, d.dir)
		if err == nil && v.Status == scanner.Infected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fsavd not back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.signal(syscall.SIGTERM)
	if code := d.exitCode(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if p := fsavdPID(t, d.dir); p != 0 {
		t.Fatalf("fsavd %d outlived the master", p)
	}
}

// TestBundledFsavdWithBadSignatures: a signature file that does not load
// makes every scan fail with M16, and SIGHUP after the file is fixed
// brings scanning back; a bad file at reload keeps the loaded set.
func TestBundledFsavdWithBadSignatures(t *testing.T) {
	d := setup(t, "", "")
	d.dir = testenv.ShortDir(t)
	d.conf = filepath.Join(d.dir, "fsigk.ini")
	sigs := filepath.Join(d.dir, "sigs")
	os.Mkdir(sigs, 0o755)
	os.WriteFile(filepath.Join(sigs, "local.ndb"), []byte("Good:0:*:41424344\nBad:0:*:4142zz\n"), 0o644)
	d.write("fsavd_start = yes\nfsavd_signatures = ./sigs", "")
	d.start()
	d.waitContains("CRITICAL [fsavd] signatures not loaded; every scan will fail", "local.ndb:2:")
	_, err := scanEICAR(t, d.dir)
	if m, ok := catalogText(err); !ok || m != "vsc_start() error" {
		t.Fatalf("scan with no signatures: %v", err)
	}
	os.WriteFile(filepath.Join(sigs, "local.ndb"), []byte("Good:0:*:41424344\n"), 0o644)
	d.signal(syscall.SIGHUP)
	d.waitContains("INFO [fsavd] signatures reloaded")
	if v, err := scanEICAR(t, d.dir); err != nil || v.Status != scanner.Infected {
		t.Fatalf("after the fix: %+v %v", v, err)
	}
	os.WriteFile(filepath.Join(sigs, "local.ndb"), []byte("Broken:0:*:zz\n"), 0o644)
	d.signal(syscall.SIGHUP)
	d.waitContains("WARNING [fsavd] signatures not reloaded; the loaded set stays", "local.ndb:1:")
	if v, err := scanEICAR(t, d.dir); err != nil || v.Status != scanner.Infected {
		t.Fatalf("after a bad reload: %+v %v", v, err)
	}
}

func catalogText(err error) (string, bool) {
	var se *scanner.Error
	if errors.As(err, &se) && se.Msg != nil {
		return se.Msg.Text, true
	}
	return "", false
}
