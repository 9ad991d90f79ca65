package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/packtest"
)

// TestSkipListFileReloadedOnSIGHUP: a skip list kept in a file (relative
// to base_dir) is read again on SIGHUP; a bad line in it keeps the running
// settings and is named by file and line.
func TestSkipListFileReloadedOnSIGHUP(t *testing.T) {
	list := filepath.Join(t.TempDir(), "trusted.txt")
	os.WriteFile(list, []byte("# hosts we trust\nexample.com\n"), 0o644)
	g := gateway(t, 4, map[string]string{"http": "skip_hosts = @" + list})
	fetchLogged(t, g, "/first", "DETECT-STAT:CLEAN:")

	os.WriteFile(list, []byte("# hosts we trust\nexample.com\n127.0.0.1\n"), 0o644)
	signalMaster(t, g, syscall.SIGHUP)
	// The new worker serves once the old one has stopped taking clients.
	waitFor(t, func() bool { return fetchHas(t, g, "/second", "DETECT-STAT:SKIPPED:skip_hosts:") })

	os.WriteFile(list, []byte("example.com\nnot a host\n"), 0o644)
	signalMaster(t, g, syscall.SIGHUP)
	waitFor(t, func() bool {
		return strings.Contains(g.out.String(), "settings not reloaded") && strings.Contains(g.out.String(), "skip_hosts: "+list+":2: ")
	})
	fetchLogged(t, g, "/third", "DETECT-STAT:SKIPPED:skip_hosts:")
}

// waitFor waits 10 s at most for ok; what says (if given) what was seen
// instead, for the failure.
func waitFor(t *testing.T, ok func() bool, what ...func() string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			seen := ""
			for _, w := range what {
				seen += "\n" + w()
			}
			t.Fatal("not within 10 s" + seen)
		}
	}
}

// fetch gets path from the origin through the gateway's HTTP proxy,
// reading the answer whole.
func (g *gw) fetch(t *testing.T, path string) {
	t.Helper()
	c, err := net.Dial("tcp", g.addr("http"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET http://%s%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", g.origin, path)
	io.ReadAll(c)
}

// logHas tells whether the access log has a line for path holding want.
func (g *gw) logHas(path, want string) bool { return g.logCount(path, want) > 0 }

// fetchHas fetches path and tells whether its access-log line, once
// written, has want.
func fetchHas(t *testing.T, g *gw, path, want string) bool {
	g.fetch(t, path)
	time.Sleep(100 * time.Millisecond)
	return g.logHas(path, want)
}

// fetchLogged fetches path and waits for its access-log line with want.
func fetchLogged(t *testing.T, g *gw, path, want string) {
	t.Helper()
	g.fetch(t, path)
	waitFor(t, func() bool { return g.logHas(path, want) })
}

func signalMaster(t *testing.T, g *gw, sig syscall.Signal) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.dir, "state", "fsigkd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
}

// TestVerdictCacheAfterASignatureReload: an object judged clean is judged
// by the kept verdict the second time; after new signatures that name it
// are loaded (SIGHUP), it is scanned again and blocked at once, not after
// the next version check.
func TestVerdictCacheAfterASignatureReload(t *testing.T) {
	sigs := t.TempDir()
	os.WriteFile(filepath.Join(sigs, "local.ndb"), []byte("Local.Other:0:*:6e6f7468696e672d6c696b652d74686973\n"), 0o644)
	g := gateway(t, 4, map[string]string{"global": "fsavd_signatures = " + sigs})
	fetchLogged(t, g, "/marked", "DETECT-STAT:CLEAN:")
	waitFor(t, func() bool { return fetchHas(t, g, "/marked", "verdict%20cached") })

	os.WriteFile(filepath.Join(sigs, "local.ndb"), []byte(enginetest.NDB()), 0o644)
	signalMaster(t, g, syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Count(g.out.String(), "signatures reloaded") >= 1 })
	start := time.Now()
	waitFor(t, func() bool { return fetchHas(t, g, "/marked", "DETECT-STAT:INFECTED:"+enginetest.TestName) })
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("blocked only after %s", d)
	}
}

// largeObject is 9 MiB (past the spool's 4 MiB segment, whose sum is
// read back), the same bytes every time; marked, the test signature sits
// past its first 4 MiB, which are the clean one's, and the sizes match.
func largeObject(marked bool) []byte {
	b := bytes.Repeat([]byte("large clean object "), 9<<20/19)
	if marked {
		copy(b[6<<20:], " "+enginetest.TestString+" ")
	}
	return b
}

// TestVerdictCacheOfLargeObjects: a large object is answered from the
// cache from its third download (the first is not summed, the second is
// summed and kept); one of the same size and the same first 4 MiB but a
// detection further on is scanned and blocked, never given the clean
// one's verdict; its own verdict is then kept too.
func TestVerdictCacheOfLargeObjects(t *testing.T) {
	sigs := t.TempDir()
	os.WriteFile(filepath.Join(sigs, "local.ndb"), []byte(enginetest.NDB()), 0o644)
	g := gateway(t, 4, map[string]string{"global": "fsavd_signatures = " + sigs})
	fetchLogged(t, g, "/large", "DETECT-STAT:CLEAN:")
	waitFor(t, func() bool { return fetchHas(t, g, "/large", "verdict%20cached") })
	if n := g.logCount("/large", "DETECT-STAT:CLEAN:"); n < 3 {
		t.Fatalf("the large object was answered from the cache after %d downloads", n-1)
	}
	fetchLogged(t, g, "/large-marked", "DETECT-STAT:INFECTED:"+enginetest.TestName)
	if g.logHas("/large-marked", "verdict%20cached") {
		t.Fatal("an object that starts like a cached one was given its verdict")
	}
	waitFor(t, func() bool { return fetchHas(t, g, "/large-marked", "verdict%20cached") })
	if g.logHas("/large-marked", "DETECT-STAT:CLEAN:") {
		t.Fatal("the marked object was passed")
	}
}

// logCount counts the access-log lines for path holding want.
func (g *gw) logCount(path, want string) int {
	b, _ := os.ReadFile(filepath.Join(g.dir, "state", "log", "access.log"))
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, path+" ") && strings.Contains(l, want) {
			n++
		}
	}
	return n
}

// followedObject is a 20 MiB download the engine follows as it is
// spooled (proxy.FollowFrom), by name: the test file past the first
// 8 MiB, across a border of the engine's 4 MiB steps, in a uuencoded
// block at 16 MiB, in a gzip coding (decoded, so scanned afresh), or
// nothing; and its Content-Encoding.
func followedObject(name string) ([]byte, string) {
	b := bytes.Repeat([]byte("followed clean text "), 20<<20/20)
	switch name {
	case "at-12m":
		copy(b[12<<20:], eicar.String)
	case "across-a-step":
		copy(b[16<<20-30:], eicar.String)
	case "uuencoded":
		copy(b[16<<20:], "\n"+eicar.UUEncode("e.com", []byte(eicar.String)))
	case "gzip":
		copy(b[19<<20:], eicar.String)
		return packtest.Gzip(b), "gzip"
	}
	return b, ""
}

// TestFollowedDownloads: large downloads, followed by the engine as they
// are spooled, are judged as any other: the test file found wherever it
// lies past the first steps, a clean one passed.
func TestFollowedDownloads(t *testing.T) {
	g := gateway(t, 4, nil)
	for _, name := range []string{"at-12m", "across-a-step", "uuencoded", "gzip"} {
		fetchLogged(t, g, "/followed/"+name, "DETECT-STAT:INFECTED:")
	}
	fetchLogged(t, g, "/followed/clean", "DETECT-STAT:CLEAN:")
}

// TestFollowsLeaveNothingOpen: followed downloads, clean, blocked and
// broken off by the server at 12 MiB of 20, leave no descriptor open in
// the worker or in fsavd (each follow holds a connection and the spool
// file's descriptor) beyond the engine connections the pool keeps idle.
func TestFollowsLeaveNothingOpen(t *testing.T) {
	g := gateway(t, 4, nil)
	fetchLogged(t, g, "/followed/clean", "DETECT-STAT:CLEAN:")
	worker, fsavd := g.workerPID(t, "http"), fsavdPID(t, g)
	w0, f0 := openFDs(t, worker), openFDs(t, fsavd)
	for range 12 {
		g.fetch(t, "/followed/at-12m")
		g.fetch(t, "/followed/clean")
		g.fetch(t, "/followed-broken")
	}
	if n := g.logCount("/followed/at-12m", "DETECT-STAT:INFECTED:"); n != 12 {
		t.Fatalf("%d of 12 blocked", n)
	}
	// The pool keeps a few idle connections: at most 2 more than after
	// the first download (a leak would be one a download, 36 here).
	waitFor(t, func() bool { return openFDs(t, worker) <= w0+2 && openFDs(t, fsavd) <= f0+2 })
}

// fsavdPID is the pid of the gateway's fsavd.
func fsavdPID(t *testing.T, g *gw) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if args := strings.Split(string(b), "\x00"); len(args) > 1 && args[1] == "fsavd" && strings.Contains(string(b), g.dir) {
			pid, _ := strconv.Atoi(strings.Split(p, "/")[2])
			return pid
		}
	}
	t.Fatal("no fsavd of this gateway")
	return 0
}

// openFDs counts the descriptors process pid has open.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}
