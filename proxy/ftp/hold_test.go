package ftp

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"

	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
)

// TestClientGoneEndsTheDownload: a client that closes its control
// connection while the gateway fetches a file from a slow server (vsftpd
// at 256 KiB/s, 64 MiB: minutes) held its slot and spool file until the
// whole file had come. Now the download is given up within a second or
// two, its spool file emptied, and the access log says why.
func TestClientGoneEndsTheDownload(t *testing.T) {
	e := newEnv(t, "")
	e.srv = servertest.VSFTPD(t, "anon_max_rate=262144")
	e.start()
	big := make([]byte, 64<<20)
	rand.Read(big)
	put(t, e, "slow.bin", big)
	c := e.loggedIn()
	d := passive(t, c)
	fmt.Fprintf(c.c, "RETR slow.bin\r\n")
	waitSpooled(t, e, 1)
	c.c.Close()
	d.Close()
	start := time.Now()
	e.kit.WaitLog(t, "/slow.bin", "client%20gone")
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("given up %s after the client left", took)
	}
	if n := proxytest.SpoolBytes(e.p.Spool.Path); n != 0 {
		t.Errorf("the spool still holds %d bytes", n)
	}
}

// TestClientGoneDuringTheScan: a client that leaves while its file is
// scanned gets nothing sent, and its session ends when the scan does.
func TestClientGoneDuringTheScan(t *testing.T) {
	e := newEnv(t, "progress_interval = 300ms")
	e.p.Scanner = slowScanner{d: 3 * time.Second}
	e.start()
	server := fakeFTP(t, []byte("data"), "226 done", "200 ok")
	c := dialControl(t, e.addr)
	c.cmd("USER anonymous@" + server)
	d := passive(t, c)
	fmt.Fprintf(c.c, "RETR f\r\n")
	time.Sleep(500 * time.Millisecond)
	c.c.Close()
	e.kit.WaitLog(t, "/f ", "client%20gone")
	d.SetReadDeadline(time.Now().Add(time.Second))
	if n, _ := d.Read(make([]byte, 16)); n > 0 {
		t.Error("the file was sent to a client that had gone")
	}
}

// passive opens a passive data connection through the proxy, closed
// when the test ends.
func passive(t *testing.T, c *control) net.Conn {
	t.Helper()
	a, err := ParseHostPort(c.cmd("PASV").Text())
	if err != nil {
		t.Fatal(err)
	}
	d, err := net.Dial("tcp", a.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// waitSpooled waits for the spool to hold at least n MiB.
func waitSpooled(t *testing.T, e *env, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); proxytest.SpoolBytes(e.p.Spool.Path) < n<<20; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			files, _ := filepath.Glob(filepath.Join(e.p.Spool.Path, "*"))
			t.Fatalf("nothing spooled: %v", files)
		}
	}
}

// TestNewFormatsOverFTP: what the walk now opens is refused over FTP as
// over HTTP: a zip in Deflate64 (made by 7-Zip) with EICAR inside is
// refused (550) to curl, its clean twin arrives byte for byte.
func TestNewFormatsOverFTP(t *testing.T) {
	sz := testenv.Need(t, "7zz", "7zip")
	e := newEnv(t, "").withServer()
	build := func(content []byte) []byte {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "f.bin"), content, 0o644)
		c := exec.Command(sz, "a", "-bd", "-tzip", "-mm=Deflate64", "a.zip", "f.bin")
		c.Dir = dir
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("7zz: %v %s", err, out)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "a.zip"))
		return b
	}
	bad := build(append([]byte(eicar.String), bytes.Repeat([]byte(" padding"), 500)...))
	good := build(bytes.Repeat([]byte("a harmless file "), 500))
	put(t, e, "bad.zip", bad)
	put(t, e, "good.zip", good)
	if out, err := e.curl(e.url("bad.zip")); err == nil || !strings.Contains(string(out), "550") {
		t.Errorf("a Deflate64 zip with EICAR: %v %.200s", err, out)
	}
	if out, err := e.curl(e.url("good.zip")); err != nil || !bytes.Equal(out, good) {
		t.Errorf("the clean Deflate64 zip: %v, %d bytes of %d", err, len(out), len(good))
	}
}
