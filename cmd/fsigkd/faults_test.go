package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/daemontest"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestFullTempDirSaysTryLater: temp_dir a 1 MiB tmpfs, objects of 2 MiB.
// SMTP answered 554 with the spool file's path (a permanent failure that
// makes senders bounce); now each service says "try later" and shows no
// path: SMTP 451 4.3.1, HTTP 503, FTP 451. The full disk is logged with
// M09's words as a warning, once a minute per service, not once a client.
func TestFullTempDirSaysTryLater(t *testing.T) {
	small := smallTmpfs(t)
	g := gateway(t, 4, map[string]string{"global": "temp_dir = " + small + "\ntemp_min_free = 0"})

	big := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 33000)
	for i := 0; i < 3; i++ {
		reply := smtpSend(t, g.addr("smtp"), "Subject: big\r\n\r\n"+big)
		if !strings.HasPrefix(reply, "451 4.3.1 ") || strings.Contains(reply, "/") {
			t.Fatalf("SMTP, full spool: %q", reply)
		}
	}
	c, err := net.Dial("tcp", g.addr("http"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET http://%s/big HTTP/1.1\r\nHost: x\r\n\r\n", g.origin)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.HasPrefix(line, "HTTP/1.1 503 ") {
		t.Errorf("HTTP, full spool: %q", line)
	}
	// FTP by hand: curl reports the reset of the data connection it
	// opened before the control connection's answer.
	if r := ftpRetr(t, g.addr("ftp"), g.ftp.Addr, "big.bin"); !strings.HasPrefix(r, "451 ") || strings.Contains(r, "/") {
		t.Errorf("FTP, full spool: %q", r)
	}
	time.Sleep(300 * time.Millisecond)
	log, _ := os.ReadFile(filepath.Join(g.dir, "state", "log", "error.log"))
	lines := 0
	for _, l := range strings.Split(string(log), "\n") {
		if strings.Contains(l, "not enough diskspace in temporary directory ["+small+"]") {
			lines++
			if !strings.Contains(l, " WARNING [") {
				t.Errorf("not a warning: %s", l)
			}
		}
	}
	if lines < 1 || lines > 3 {
		t.Errorf("%d M09 lines for 5 failures in 3 services:\n%s", lines, log)
	}
	// Files are kept, emptied, for reuse (see package spool): one that
	// still holds bytes was not given back.
	left, _ := filepath.Glob(filepath.Join(small, "fsigkd-*"))
	for _, f := range left {
		if st, err := os.Stat(f); err == nil && st.Size() > 0 {
			t.Errorf("spool file left with %d bytes: %s", st.Size(), f)
		}
	}
}

// smtpSend sends one mail by hand and returns the reply to its end.
func smtpSend(t *testing.T, addr, msg string) string {
	c, br := dialText(t, addr)
	defer c.Close()
	read := func() string { return lastLine(br) }
	read()
	for _, cmd := range []string{"EHLO c", "MAIL FROM:<a@example.com>", "RCPT TO:<b@example.com>", "DATA"} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		if r := read(); r[0] != '2' && r[0] != '3' {
			return r
		}
	}
	fmt.Fprintf(c, "%s\r\n.\r\n", msg)
	return read()
}

// ftpRetr logs in through the proxy, asks for file, and returns the final
// reply to RETR.
func ftpRetr(t *testing.T, proxyAddr, server, file string) string {
	c, br := dialText(t, proxyAddr)
	defer c.Close()
	read := func() string { return lastLine(br) }
	read()
	for _, cmd := range []string{"USER anonymous@" + server, "TYPE I"} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		read()
	}
	fmt.Fprintf(c, "PASV\r\n")
	r := read()
	var h1, h2, h3, h4, p1, p2 int
	fmt.Sscanf(r[strings.IndexByte(r, '(')+1:], "%d,%d,%d,%d,%d,%d", &h1, &h2, &h3, &h4, &p1, &p2)
	d, err := net.Dial("tcp", fmt.Sprintf("%d.%d.%d.%d:%d", h1, h2, h3, h4, p1*256+p2))
	if err == nil {
		defer d.Close()
	}
	fmt.Fprintf(c, "RETR %s\r\n", file)
	for {
		r := read()
		if !strings.HasPrefix(r, "150") {
			return r
		}
	}
}

// workerPID is the pid of service's worker, from fsigkd status.
func (g *gw) workerPID(t *testing.T, service string) int {
	out, _ := exec.Command(binary(t), "status", "-c", g.conf).Output()
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == service {
			var pid int
			fmt.Sscan(f[1], &pid)
			return pid
		}
	}
	t.Fatalf("no %s worker in:\n%s", service, out)
	return 0
}

// TestFullLogDirIsSeen: log_dir a small tmpfs, filled. The gateway went
// on serving and nothing anywhere said that logging had stopped. Now it
// still serves, and the loss is said on standard error (the journal) at
// once, shown by fsigkd status with the room left, and, once there is
// room again, told in the error log with the count of lines lost.
func TestFullLogDirIsSeen(t *testing.T) {
	small := smallTmpfs(t)
	g := gateway(t, 4, map[string]string{"global": "log_dir = " + small})
	if err := g.served(t, "http", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(small, "filler")
	exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k").Run() // until the disk is full
	// The logs' last pages hold a few lines more; then lines are lost.
	for i := 0; !strings.Contains(g.out.String(), "access.log: No space left on device; its lines are lost until it can"); i++ {
		if i == 300 {
			t.Fatalf("nothing said of the full log_dir:\n%s", g.out.String())
		}
		if err := g.served(t, "http", 5*time.Second); err != nil {
			t.Fatalf("not served with log_dir full: %v", err)
		}
	}
	var status string
	waitFor(t, func() bool { // the workers' counts are written each second
		out, _ := exec.Command(binary(t), "status", "-c", g.conf).CombinedOutput()
		status = string(out)
		return strings.Contains(status, " lost since the gateway started (access ")
	}, func() string { return status })
	if !strings.Contains(status, "logs   "+small+": 0 MiB free; ") {
		t.Errorf("status does not show the full log_dir:\n%s", status)
	}
	os.Remove(filler)
	if err := g.served(t, "http", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(small, "error.log"))
		return strings.Contains(string(b), "WARNING [logs] access.log: ") && strings.Contains(string(b), " lost since ")
	})
}

// smallTmpfs mounts a 1 MiB tmpfs for the test (root only), unmounted
// when it ends.
func smallTmpfs(t *testing.T) string {
	t.Helper()
	testenv.NeedRoot(t, "mounting a small tmpfs")
	small := filepath.Join(testenv.ShortDir(t), "small")
	os.Mkdir(small, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", small).Run() })
	return small
}

// TestKilledWorkersSpoolIsRemoved: a worker killed while it spools a
// download left its files until the next start of the master; now the
// master removes them as soon as the worker has ended, and a stop leaves
// none.
func TestKilledWorkersSpoolIsRemoved(t *testing.T) {
	g := gateway(t, 4, nil)
	tmp := filepath.Join(g.dir, "state", "tmp")
	pid := g.workerPID(t, "http")
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", g.addr("http"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET http://%s/stall HTTP/1.1\r\nHost: x\r\n\r\n", g.origin)
	}
	mine := filepath.Join(tmp, fmt.Sprintf("fsigkd-http-%d-*", pid))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if f, _ := filepath.Glob(mine); len(f) == 3 {
			break
		}
		if time.Now().After(deadline) {
			f, _ := filepath.Glob(filepath.Join(tmp, "*"))
			t.Fatalf("the worker is not spooling: %v", f)
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if f, _ := filepath.Glob(mine); len(f) == 0 {
			break
		}
		if time.Now().After(deadline) {
			f, _ := filepath.Glob(mine)
			t.Fatalf("a killed worker's spool files stay: %v", f)
		}
	}
	if err := g.served(t, "http", 10*time.Second); err != nil {
		t.Fatalf("not served after the worker's restart: %v", err)
	}
}

// TestRenamedSpoolFileIsNotReused: a spool file kept for reuse that
// another program moved away (an on-access scanner, a temp cleaner) was
// handed out again and again, and the engine, scanning by name, failed
// every object of the service with an M14 each. Now a kept file that is
// no longer under its name is dropped and a new one made, whether the
// file was renamed or the whole directory replaced; every object is
// scanned (the verdict cache is off), and nothing is said of it. (The
// objects are past what the spool holds in memory, so that they reach
// their files.)
func TestRenamedSpoolFileIsNotReused(t *testing.T) {
	sigs := t.TempDir()
	os.WriteFile(filepath.Join(sigs, "test.ndb"), []byte(enginetest.NDB()), 0o644)
	g := gateway(t, 1, map[string]string{"global": "fsavd_signatures = " + sigs + "\nverdict_cache = 0"})
	tmp := filepath.Join(g.dir, "state", "tmp")
	elsewhere := t.TempDir()
	moves := map[string]func(){
		"renamed in place": func() {
			files, _ := filepath.Glob(filepath.Join(tmp, "fsigkd-http-*"))
			for _, f := range files {
				os.Rename(f, filepath.Join(tmp, "moved-"+filepath.Base(f)))
			}
		},
		"moved to another directory": func() {
			files, _ := filepath.Glob(filepath.Join(tmp, "fsigkd-http-*"))
			for _, f := range files {
				os.Rename(f, filepath.Join(elsewhere, filepath.Base(f)))
			}
		},
		"directory replaced": func() {
			os.Rename(tmp, filepath.Join(elsewhere, "old-tmp"))
			os.Mkdir(tmp, 0o700)
		},
	}
	for _, name := range []string{"renamed in place", "moved to another directory", "directory replaced"} {
		fetchLogged(t, g, "/marked-spooled", "DETECT-STAT:INFECTED:"+enginetest.TestName)
		files, _ := filepath.Glob(filepath.Join(tmp, "fsigkd-http-*"))
		if len(files) == 0 {
			t.Fatalf("%s: no spool file kept to move", name)
		}
		moves[name]()
		before := g.logCount("/marked-spooled", "DETECT-STAT:INFECTED:"+enginetest.TestName)
		for i := 0; i < 3; i++ {
			g.fetch(t, "/marked-spooled")
		}
		waitFor(t, func() bool {
			return g.logCount("/marked-spooled", "DETECT-STAT:INFECTED:"+enginetest.TestName) == before+3
		})
		if err := g.served(t, "http", 5*time.Second); err != nil {
			t.Fatalf("%s: a clean object is not served: %v", name, err)
		}
	}
	log, _ := os.ReadFile(filepath.Join(g.dir, "state", "log", "error.log"))
	if strings.Contains(string(log), "open=") || strings.Contains(string(log), "stat=") {
		t.Fatalf("M14 for a file moved while kept:\n%s", log)
	}
}

// TestOutOfDescriptorsKeepsTheLogReadable: the daemon under a low
// RLIMIT_NOFILE, loaded past it. Before, 15 s of this wrote 20,789 lines:
// M14 for files that had not vanished, a spurious M25, M13 once a try.
// Now a shortage is M13, once a minute per place, no M14, no M25; and
// clients are served again once the load is gone.
func TestOutOfDescriptorsKeepsTheLogReadable(t *testing.T) {
	prlimit := testenv.Need(t, "prlimit", "util-linux")
	g := gateway(t, 200, nil, prlimit, "--nofile=90", "--")
	var wg sync.WaitGroup
	stop := time.Now().Add(4 * time.Second)
	for i := 0; i < 120; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				c, err := net.DialTimeout("tcp", g.addr("http"), time.Second)
				if err != nil {
					continue
				}
				c.SetDeadline(time.Now().Add(2 * time.Second))
				fmt.Fprintf(c, "GET http://%s/big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", g.origin)
				bufio.NewReader(c).ReadString('\n')
				c.Close()
			}
		}()
	}
	wg.Wait()
	if err := g.served(t, "http", 10*time.Second); err != nil {
		t.Fatalf("not served after the load: %v", err)
	}
	log, _ := os.ReadFile(filepath.Join(g.dir, "state", "log", "error.log"))
	count := func(s string) int { return strings.Count(string(log), s) }
	m13 := count("System call=Too many open files(24)")
	t.Logf("%d lines in all, %d M13", strings.Count(string(log), "\n"), m13)
	if count("open=") > 0 {
		t.Errorf("M14 (a vanished file) for a shortage of descriptors:\n%s", log)
	}
	if count("cannot connect") > 0 || count("fsavd") > 0 && strings.Contains(string(log), "connect=") {
		t.Errorf("the engine was said down:\n%s", log)
	}
	if m13 == 0 || m13 > 8 {
		t.Errorf("%d M13 lines:\n%s", m13, log)
	}
	if n := strings.Count(string(log), "\n"); n > 40 {
		t.Errorf("%d lines in the error log:\n%s", n, log)
	}
}

// lastLine reads a reply (SMTP or FTP: lines with a dash after the code
// go on) and returns its last line, or the read error's text.
func lastLine(br *bufio.Reader) string {
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return err.Error()
		}
		if len(l) < 4 || l[3] != '-' {
			return strings.TrimSpace(l)
		}
	}
}

// TestDetachedStartReturns: fsigkd -c FILE (no -f) returns once the
// gateway serves, the bundled fsavd started; it never returned, because
// fsavd kept the launcher's readiness pipe open.
func TestDetachedStartReturns(t *testing.T) {
	bin := binary(t)
	dir := testenv.ShortDir(t)
	port := testenv.FreePort(t)
	conf := filepath.Join(dir, "fsigk.ini")
	os.WriteFile(conf, []byte(fmt.Sprintf("base_dir = %s/state\nconsole = no\n[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\n", dir, port)), 0o644)
	cmd := exec.Command(bin, "-c", conf)
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "state", "fsigkd.pid")); err == nil {
			var pid int
			fmt.Sscan(string(b), &pid)
			if pid > 0 {
				syscall.Kill(pid, syscall.SIGTERM)
				for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}
	})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("fsigkd -c returned %v", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("fsigkd -c did not return once the gateway served")
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
		t.Fatalf("not serving after it returned: %v", err)
	} else {
		c.Close()
	}
	// The detached master says so, with its pid, as the pid file has it.
	pid, _ := os.ReadFile(filepath.Join(dir, "state", "fsigkd.pid"))
	log, _ := os.ReadFile(filepath.Join(dir, "state", "log", "error.log"))
	if want := "INFO [main] Entering daemon mode. pid=" + strings.TrimSpace(string(pid)); !strings.Contains(string(log), want) {
		t.Errorf("error.log lacks %q:\n%s", want, log)
	}
}

// TestForegroundShowsFsavdLines: with -f, the bundled fsavd's lines come
// on standard error with the master's, as its error.log has them.
func TestForegroundShowsFsavdLines(t *testing.T) {
	g := gateway(t, 4, nil)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(g.out.String(), "INFO [fsavd] signatures loaded"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no fsavd line on standard error:\n%s", g.out.String())
		}
	}
}

// TestStopWithIdleClientsIsQuick: a stop with an idle client on every
// service tells SMTP and FTP clients 421, refuses new clients at once, and
// ends well under a second (it waited shutdown_grace, 30 s, for them).
func TestStopWithIdleClientsIsQuick(t *testing.T) {
	bin := binary(t)
	dir := testenv.ShortDir(t)
	hop := servertest.NewMailSink(t, nil, nil)
	_, hopPort, _ := net.SplitHostPort(hop.Addr)
	ports := map[string]int{"http": testenv.FreePort(t), "smtp": testenv.FreePort(t), "ftp": testenv.FreePort(t)}
	conf := filepath.Join(dir, "fsigk.ini")
	os.WriteFile(conf, []byte(fmt.Sprintf("base_dir = %s/state\nconsole = no\n[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\n[smtp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\nparent_server_host = 127.0.0.1\nparent_server_port = %s\n[ftp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\n",
		dir, ports["http"], ports["smtp"], hopPort, ports["ftp"])), 0o644)
	cmd := exec.Command(bin, "-f", "-c", conf)
	out := &daemontest.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() { cmd.Process.Kill(); <-done }()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "INFO [main] serving"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no start:\n%s", out.String())
		}
	}
	idle := map[string]*bufio.Reader{}
	for _, s := range []string{"smtp", "ftp"} {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[s]))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		lastLine(br) // the greeting
		if s == "smtp" {
			fmt.Fprintf(c, "EHLO c\r\n")
			lastLine(br)
		}
		idle[s] = br
	}
	h, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports["http"]))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	for s, br := range idle {
		if l := lastLine(br); !strings.HasPrefix(l, "421") {
			t.Errorf("%s: an idle client was told %q", s, l)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports["http"]), time.Second); err == nil {
		c.Close()
		t.Error("a new client was taken during the stop")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("no stop in 10 s:\n%s", out.String())
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("a stop with idle clients took %v", el)
	}
}

// dialText connects to a text protocol's server, 30 s to do it all in.
func dialText(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, bufio.NewReader(c)
}

// TestStatusReadsTheGatewayWhenTheFileHasAnError: the file on disk given a
// bad value after the start; status still reads the running gateway (from
// the file's base_dir) and says the file has an error.
func TestStatusReadsTheGatewayWhenTheFileHasAnError(t *testing.T) {
	g := gateway(t, 4, nil)
	b, _ := os.ReadFile(g.conf)
	os.WriteFile(g.conf, append(b, []byte("\n[pop]\nenable = perhaps\n")...), 0o644)
	out, err := exec.Command(binary(t), "status", "-c", g.conf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "\nhttp ") || !strings.Contains(string(out), "warning:") || !strings.Contains(string(out), "enable:") {
		t.Errorf("status: %v\n%s", err, out)
	}
}
