package pop3

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/proxytest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/scanner"
)

// fakeServer is a POP3 server that logs anyone in and answers RETR with
// retr (given the connection, after the +OK line is due): a fault Dovecot
// cannot be made to give.
func fakeServer(t *testing.T, retr func(c net.Conn)) string {
	return servertest.Fake(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		io.WriteString(c, "+OK fake ready\r\n")
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch verb := strings.ToUpper(strings.Fields(l + " x")[0]); verb {
			case "CAPA", "UIDL":
				io.WriteString(c, "-ERR not here\r\n")
			case "STAT":
				io.WriteString(c, "+OK 1 50\r\n")
			case "LIST":
				if len(strings.Fields(l)) > 1 {
					io.WriteString(c, "+OK 1 50\r\n")
				} else {
					io.WriteString(c, "+OK\r\n1 50\r\n.\r\n")
				}
			case "RETR", "TOP":
				retr(c)
			case "QUIT":
				io.WriteString(c, "+OK bye\r\n")
				return
			default:
				io.WriteString(c, "+OK\r\n")
			}
		}
	})
}

// fakeEnv is the proxy with fakeServer as its parent server.
func fakeEnv(t *testing.T, keys string, retr func(c net.Conn)) (*env, *client) {
	e := newEnv(t, keys)
	addr := fakeServer(t, retr)
	host, port, _ := net.SplitHostPort(addr)
	e.p.Svc.ParentServerHost = host
	e.p.Svc.ParentServerPort = atoi(port)
	e.start()
	cl := dial(t, e.addr)
	cl.ok("USER x")
	cl.ok("PASS y")
	return e, cl
}

func atoi(s string) (n int) {
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestServerDiesMidRetr: a server that breaks off a mail gives the
// client -ERR, never a short mail that looks whole.
func TestServerDiesMidRetr(t *testing.T) {
	_, cl := fakeEnv(t, "", func(c net.Conn) {
		io.WriteString(c, "+OK 5000 octets\r\nFrom: a@example.com\r\nSubject: cut\r\n\r\nthe first half")
		c.Close()
	})
	if st := cl.cmd("RETR 1"); !strings.HasPrefix(st, "-ERR") {
		t.Fatalf("RETR: %q", st)
	}
	if _, err := cl.br.ReadString('\n'); err != io.EOF {
		t.Errorf("the session goes on after the server broke off: %v", err)
	}
}

// TestSlowMailKeepsTheClient: a mail not ready within progress_interval
// reaches the client as its status line and X-Fsigkd-Progress lines, and
// then whole; one whose server then dies leaves the client without the
// terminating line.
func TestSlowMailKeepsTheClient(t *testing.T) {
	mail := "From: a@example.com\r\nSubject: slow\r\n\r\nbody\r\n"
	t.Run("delivered", func(t *testing.T) {
		_, cl := fakeEnv(t, "progress_interval = 100ms", func(c net.Conn) {
			io.WriteString(c, "+OK coming\r\n"+mail[:20])
			time.Sleep(450 * time.Millisecond)
			io.WriteString(c, mail[20:]+".\r\n")
		})
		if st := cl.cmd("RETR 1"); st != "+OK coming" {
			t.Fatalf("RETR: %q", st)
		}
		// The folded field: its first line, one " <n>s" line per interval
		// after the first (at least three in 450 ms at 100 ms), then the
		// mail whole.
		got := string(cl.body())
		head, rest, _ := strings.Cut(got, "\r\n")
		progress := regexp.MustCompile(`^( \d+s\r\n)+`).FindString(rest)
		if head != "X-Fsigkd-Progress: the gateway fetches and scans this mail;" || strings.Count(progress, "\r\n") < 3 || rest[len(progress):] != mail {
			t.Fatalf("mail:\n%q", got)
		}
		cl.ok("NOOP")
	})
	t.Run("server dies", func(t *testing.T) {
		_, cl := fakeEnv(t, "progress_interval = 100ms", func(c net.Conn) {
			io.WriteString(c, "+OK coming\r\n"+mail[:20])
			time.Sleep(300 * time.Millisecond)
			c.Close()
		})
		if st := cl.cmd("RETR 1"); st != "+OK coming" {
			t.Fatalf("RETR: %q", st)
		}
		var b bytes.Buffer
		if _, err := Unstuff(&b, cl.br); err != ErrBrokenOff {
			t.Fatalf("a mail the server broke off looked whole to the client: %q", b.String())
		}
	})
}

// TestOverMaxScanSize: oversize_action pass delivers the mail marked
// unscanned; block refuses it and keeps it on the server.
func TestOverMaxScanSize(t *testing.T) {
	big := "From: a@example.com\r\nSubject: big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 200)
	t.Run("pass", func(t *testing.T) {
		e := newEnv(t, "max_scan_size = 1K").withDovecot("")
		e.srv.Put(t, []byte(big))
		if got := string(e.login().multi("RETR 1")); got != "X-Virus-Status: unscanned(fsigkd)\r\n"+big {
			t.Fatalf("RETR: %.200q", got)
		}
		e.waitLog("over%20max_scan_size")
	})
	t.Run("block", func(t *testing.T) {
		e := newEnv(t, "max_scan_size = 1K\noversize_action = block").withDovecot("")
		e.srv.Put(t, []byte(big))
		cl := e.login()
		if st := cl.cmd("RETR 1"); !strings.HasPrefix(st, "-ERR") {
			t.Fatalf("RETR: %q", st)
		}
		cl.ok("STAT")
	})
}

// TestScanFailureNeverReplaces: with the engine down the client gets -ERR
// (it tries later) and the mail stays on the server: replacing it would
// have the client delete the only copy. With scan_failure = pass it is
// delivered marked unscanned.
func TestScanFailureNeverReplaces(t *testing.T) {
	mail := infectedMails(t)["base64 attachment"]
	for _, policy := range []string{"block", "pass"} {
		t.Run(policy, func(t *testing.T) {
			e := newEnv(t, "scan_failure = "+policy)
			eps, _ := scanner.ParseEndpoints(filepath.Join(t.TempDir(), "none"), "")
			e.p.Scanner = scanner.NewFsavd(&scanner.Pool{Endpoints: eps}, false)
			e.withDovecot("")
			e.srv.Put(t, []byte(mail))
			cl := e.login()
			if policy == "block" {
				if st := cl.cmd("RETR 1"); !strings.HasPrefix(st, "-ERR [SYS/TEMP]") {
					t.Fatalf("RETR: %q", st)
				}
				cl.ok("DELE 1") // what a client may do; the proxy does not stop it
				cl.ok("RSET")
				cl.ok("QUIT")
				if e.srv.Count() != 1 {
					t.Error("the mail is gone")
				}
				return
			}
			if got := string(cl.multi("RETR 1")); got != "X-Virus-Status: unscanned(fsigkd)\r\n"+mail {
				t.Fatalf("RETR: %.200q", got)
			}
		})
	}
}

// TestLineAttacks: a command with a CR or NUL inside (two commands for
// the server, one for the proxy) is refused, an overlong line ends the
// session, and a command the proxy does not know is not relayed.
func TestLineAttacks(t *testing.T) {
	e := newEnv(t, "").withDovecot("")
	e.srv.Put(t, []byte(cleanMail))
	cl := e.login()
	for _, l := range []string{"NOOP\rDELE 1", "NOOP\x00DELE 1", "DELE\t1\rQUIT"} {
		if st := cl.cmd(l); st != "-ERR Syntax error." {
			t.Errorf("%q: %q", l, st)
		}
	}
	if st := cl.cmd("XTND XMIT"); st != "-ERR Unknown command." {
		t.Errorf("unknown command: %q", st)
	}
	if st := cl.cmd("LANG"); st != "-ERR Unknown command." {
		t.Errorf("LANG (a multi-line answer the proxy does not read): %q", st)
	}
	cl.ok("QUIT")
	if e.srv.Count() != 1 {
		t.Fatal("a smuggled DELE reached the server")
	}
	cl = e.login()
	if st := cl.cmd("NOOP " + strings.Repeat("a", MaxLine)); st != "-ERR Command line too long." {
		t.Errorf("overlong line: %q", st)
	}
	if _, err := cl.br.ReadString('\n'); err != io.EOF {
		t.Errorf("the session goes on after an overlong line: %v", err)
	}
}

// TestServerLineAttacks: a server's overlong status line or list line
// ends the session with -ERR, not a buffer without bound.
func TestServerLineAttacks(t *testing.T) {
	long := strings.Repeat("x", 2*MaxLine)
	e, cl := fakeEnv(t, "", func(c net.Conn) { io.WriteString(c, "+OK "+long+"\r\n") })
	if st := cl.cmd("RETR 1"); !strings.HasPrefix(st, "-ERR") {
		t.Fatalf("RETR: %.80q", st)
	}
	_ = e
}

// TestForwardModeServersAllowed: USER name@server reaches only the
// servers allow_servers and deny_servers let through; by default not the
// gateway itself.
func TestForwardModeServersAllowed(t *testing.T) {
	e := newEnv(t, "deny_servers = self, 127.0.0.0/8").withDovecot("")
	cl := dial(t, e.addr)
	if !strings.HasPrefix(cl.Greeting, "+OK fsigkd") {
		t.Fatalf("greeting: %q", cl.Greeting)
	}
	if st := cl.cmd("RETR 1"); st != errLoginFst {
		t.Errorf("before login: %q", st)
	}
	if st := cl.cmd("USER alice@" + e.srv.Addr); !strings.HasPrefix(st, "-ERR [SYS/PERM]") {
		t.Fatalf("USER to a denied server: %q", st)
	}
	if st := cl.cmd("USER alice"); !strings.HasPrefix(st, "-ERR") {
		t.Fatalf("USER without a server: %q", st)
	}
	if st := cl.cmd("USER alice@10.0.0.1@" + e.srv.Addr); !strings.HasPrefix(st, "-ERR") {
		t.Fatalf("USER naming two hops: %q", st)
	}
}

// TestSpamIsTagged: with fsasd_service, spam (GTUBE) gets the tag and the
// X-Spam fields, and is delivered, not deleted.
func TestSpamIsTagged(t *testing.T) {
	e := newEnv(t, "fsasd_service = yes")
	e.p.Spam = proxytest.Spamd(t)
	e.withDovecot("")
	e.srv.Put(t, []byte("From: a@example.com\r\nTo: alice@example.com\r\nSubject: offer\r\n\r\n"+eicar.GTUBE+"\r\n"))
	got := string(e.login().multi("RETR 1"))
	if !strings.Contains(got, "Subject: [SPAM] offer\r\n") || !strings.Contains(got, "X-Spam-Flag: YES\r\n") {
		t.Fatalf("RETR:\n%s", got)
	}
	e.waitLog("ACTION:CHANGE_SUBJECT")
}

// TestStopTellsIdleClients: at a stop a client waiting between commands
// is told so at once, and its server session ends without QUIT (so the
// server deletes nothing it was asked to).
func TestStopTellsIdleClients(t *testing.T) {
	e := newEnv(t, "").withDovecot("")
	e.srv.Put(t, []byte(cleanMail))
	cl := e.login()
	cl.ok("DELE 1")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go e.p.Shutdown(ctx)
	if l := cl.line(); !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
		t.Fatalf("at the stop: %q", l)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("an idle client waited %v", d)
	}
	time.Sleep(200 * time.Millisecond)
	if e.srv.Count() != 1 {
		t.Error("a DELE without QUIT was carried out")
	}
}
