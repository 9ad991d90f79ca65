package pop3

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/proxytest"
)

// endless is a server's RETR that sends a mail without end, until its
// connection fails; it counts what it wrote, and says when it stopped.
type endless struct {
	wrote   atomic.Int64
	stopped chan struct{}
}

func newEndless() *endless { return &endless{stopped: make(chan struct{})} }

func (e *endless) retr(c net.Conn) {
	defer close(e.stopped)
	io.WriteString(c, "+OK coming\r\nFrom: a@example.com\r\nSubject: endless\r\n\r\n")
	line := []byte(strings.Repeat("x", 998) + "\r\n")
	block := bytes.Repeat(line, 64)
	for {
		c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		n, err := c.Write(block)
		e.wrote.Add(int64(n))
		if err != nil {
			c.Close()
			return
		}
	}
}

// waitStopped waits for the server to find its connection closed.
func (e *endless) waitStopped(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-e.stopped:
	case <-time.After(within):
		t.Fatalf("the server is still sending after %v (%d bytes): the proxy goes on reading", within, e.wrote.Load())
	}
}

// TestEndlessMailFillsNoDisk: a server that streams a mail without end
// is spooled up to max_scan_size and no further. Refused
// (oversize_action = block), the client gets -ERR and the session ends,
// closing the server's connection.
func TestEndlessMailFillsNoDisk(t *testing.T) {
	srv := newEndless()
	e, cl := fakeEnv(t, "max_scan_size = 1M\noversize_action = block", srv.retr)
	if st := cl.cmd("RETR 1"); !strings.HasPrefix(st, "-ERR [SYS/PERM]") {
		t.Fatalf("RETR: %q", st)
	}
	if used := proxytest.SpoolBytes(e.p.Spool.Path); used > 2<<20 {
		t.Errorf("the spool holds %d bytes for a 1 MiB limit", used)
	}
	if _, err := cl.br.ReadString('\n'); err == nil {
		t.Errorf("the session goes on with the server mid-mail")
	}
	srv.waitStopped(t, 10*time.Second)
	e.waitLog("mail%20over%20max_scan_size;%20the%20rest%20of%20the%20mail%20not%20read")
}

// TestEndlessMailPassedUnscanned: with oversize_action = pass, what
// passes max_scan_size goes to the client as the server sends it, not
// to the disk: a mail of 3 MiB arrives byte for byte, marked unscanned;
// an endless one streams to the client (the spool stays at the limit)
// and ends when the client goes.
func TestEndlessMailPassedUnscanned(t *testing.T) {
	t.Run("large", func(t *testing.T) {
		mail := "From: a@example.com\r\nSubject: large\r\n\r\n" + strings.Repeat(".dotted line\r\n", 3<<20/14) + "end\r\n"
		_, cl := fakeEnv(t, "max_scan_size = 1M", func(c net.Conn) {
			var b bytes.Buffer
			b.WriteString("+OK big\r\n")
			for _, l := range strings.SplitAfter(mail, "\r\n") {
				if strings.HasPrefix(l, ".") {
					b.WriteString(".")
				}
				b.WriteString(l)
			}
			b.WriteString(".\r\n")
			c.Write(b.Bytes())
		})
		got := string(cl.multi("RETR 1"))
		if want := "X-Virus-Status: unscanned(fsigkd)\r\n" + mail; got != want {
			t.Fatalf("got %d bytes, want %d, the mail byte for byte after the mark", len(got), len(want))
		}
		cl.ok("NOOP")
	})
	t.Run("endless", func(t *testing.T) {
		srv := newEndless()
		e, cl := fakeEnv(t, "max_scan_size = 1M", srv.retr)
		if st := cl.cmd("RETR 1"); st != "+OK coming" {
			t.Fatalf("RETR: %q", st)
		}
		if n, err := io.CopyN(io.Discard, cl.br, 8<<20); err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
		if used := proxytest.SpoolBytes(e.p.Spool.Path); used > 2<<20 {
			t.Errorf("the spool holds %d bytes for a 1 MiB limit", used)
		}
		cl.c.Close()
		srv.waitStopped(t, 10*time.Second)
	})
}

// TestClientGoneEndsTheFetch: a client that leaves while its mail is
// fetched ends the fetch (and frees its slot and spool file) within a
// second or two, not when the server has sent everything.
func TestClientGoneEndsTheFetch(t *testing.T) {
	stopped := make(chan struct{})
	e, cl := fakeEnv(t, "", func(c net.Conn) {
		defer close(stopped)
		io.WriteString(c, "+OK slow\r\nFrom: a@example.com\r\n\r\n")
		for {
			c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.WriteString(c, "a slow line\r\n"); err != nil {
				c.Close()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	io.WriteString(cl.c, "RETR 1\r\n")
	time.Sleep(300 * time.Millisecond)
	cl.c.Close()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the fetch goes on after the client left")
	}
	e.waitLog("ACTION:NONE:", "client%20gone")
}

// TestUnkeptMailIsNotReplaced: with quarantine on and the quarantine
// unwritable, an infected mail is not replaced (the client would delete
// the only copy after it): the client is told to try again, and the mail
// stays on the server.
func TestUnkeptMailIsNotReplaced(t *testing.T) {
	e := newEnv(t, "quarantine = yes")
	blocker := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(blocker, nil, 0o600)
	e.p.Global.QuarantineDir = filepath.Join(blocker, "quarantine") // under a file: never made
	e.withDovecot("")
	e.srv.Put(t, []byte(infectedMails(t)["base64 attachment"]))
	cl := e.login()
	if st := cl.cmd("RETR 1"); !strings.HasPrefix(st, "-ERR [SYS/TEMP]") {
		t.Fatalf("RETR: %q", st)
	}
	if st := cl.ok("STAT"); !strings.HasPrefix(st, "+OK 1 ") {
		t.Fatalf("STAT: %q: the mail is gone from the server", st)
	}
	e.waitLog("ACTION:NONE:", "not%20kept%20in%20the%20quarantine")
}

// TestEndlessMailWithNoSpool: with the spool failing, a mail is read into
// nothing to keep the session in step, but only so far: one without end
// gets the client -ERR [SYS/TEMP] and ends the session, rather than
// holding it as long as the server sends. (max_scan_size is past what the
// spool holds in memory, InlineSize: a mail within it needs no disk.)
func TestEndlessMailWithNoSpool(t *testing.T) {
	srv := newEndless()
	e := newEnv(t, "max_scan_size = 1M")
	e.p.Spool.Path = filepath.Join(t.TempDir(), "gone") // never made: every spool file fails
	addr := fakeServer(t, srv.retr)
	host, port, _ := net.SplitHostPort(addr)
	e.p.Svc.ParentServerHost, e.p.Svc.ParentServerPort = host, atoi(port)
	e.start()
	cl := dial(t, e.addr)
	cl.ok("USER x")
	cl.ok("PASS y")
	if st := cl.cmd("RETR 1"); !strings.HasPrefix(st, "-ERR [SYS/TEMP] Insufficient system storage") {
		t.Fatalf("RETR: %q", st)
	}
	if _, err := cl.br.ReadString('\n'); err == nil {
		t.Errorf("the session goes on with the server mid-mail")
	}
	srv.waitStopped(t, 10*time.Second)
}
