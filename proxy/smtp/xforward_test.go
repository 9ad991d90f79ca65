package smtp

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// step is what a client sends at once, and how many replies it waits for.
type step struct {
	send    string
	replies int
}

// dialog sends each step and gives its replies.
func dialog(t *testing.T, addr string, steps ...step) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	readReply := func() string {
		var b strings.Builder
		for {
			l, err := br.ReadString('\n')
			b.WriteString(l)
			if err != nil || len(l) >= 4 && l[3] == ' ' {
				return b.String()
			}
		}
	}
	readReply() // the greeting
	var out []string
	for _, st := range steps {
		c.Write([]byte(st.send))
		var r []string
		for range st.replies {
			r = append(r, readReply())
		}
		out = append(out, strings.Join(r, ""))
	}
	return out
}

// TestXFORWARDFromATrustedMTA: to an MTA in trusted_mtas EHLO offers
// XFORWARD, and the client it names (address, HELO) stands for the mail:
// the access log, the Received line. XFORWARD inside DATA's content, or
// inside a BDAT chunk, is content; pipelined with MAIL and RCPT it
// works; the next mail without one is the MTA's own.
func TestXFORWARDFromATrustedMTA(t *testing.T) {
	e := newEnv(t, "trusted_mtas = 127.0.0.1")
	e.start()
	chunk := "Subject: two\r\n\r\nXFORWARD ADDR=6.6.6.6\r\n"
	r := dialog(t, e.addr,
		step{"EHLO mta.test\r\n", 1},
		// Pipelined: two XFORWARDs, MAIL, RCPT and DATA at once.
		step{"XFORWARD NAME=client.example ADDR=192.0.2.9 PROTO=ESMTP\r\nXFORWARD HELO=helo.client.example SOURCE=REMOTE\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n", 5},
		step{"Subject: one\r\n\r\nXFORWARD ADDR=6.6.6.6\r\nbody\r\n.\r\n", 1},
		step{"MAIL FROM:<a@example.com>\r\n", 1}, step{"RCPT TO:<b@example.com>\r\n", 1},
		step{"BDAT " + strconv.Itoa(len(chunk)) + " LAST\r\n" + chunk, 1},
		step{"QUIT\r\n", 1})
	if !strings.Contains(r[0], "250-XFORWARD NAME ADDR PROTO HELO SOURCE\r\n") {
		t.Fatalf("EHLO: %q", r[0])
	}
	if !strings.HasPrefix(r[1], "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 ") || !strings.Contains(r[1], "354 ") {
		t.Fatalf("XFORWARD pipelined: %q", r[1])
	}
	if !strings.HasPrefix(r[2], "250 ") || !strings.HasPrefix(r[5], "250 ") {
		t.Fatalf("the mails: %q %q", r[2], r[5])
	}
	mails := e.sink.Mails()
	if len(mails) != 2 {
		t.Fatalf("%d mails", len(mails))
	}
	if m := string(mails[0].Data); !strings.Contains(m, "Received: from helo.client.example ([192.0.2.9])") || !strings.Contains(m, "XFORWARD ADDR=6.6.6.6\r\nbody") {
		t.Fatalf("the first mail:\n%s", m)
	}
	if m := string(mails[1].Data); !strings.Contains(m, "Received: from mta.test ([127.0.0.1])") || !strings.Contains(m, "\r\nXFORWARD ADDR=6.6.6.6\r\n") {
		t.Fatalf("the second mail, with no XFORWARD:\n%s", m)
	}
	b, _ := os.ReadFile(filepath.Join(e.logDir, "access.log"))
	if !strings.Contains(string(b), " 192.0.2.9 SMTP/250 ") || !strings.Contains(string(b), " 127.0.0.1 SMTP/250 ") {
		t.Fatalf("access log:\n%s", b)
	}
}

// TestXFORWARDFromAnyoneElse: a client not in trusted_mtas is not offered
// XFORWARD, and one it sends is refused (5xx) as a command the server
// does not take.
func TestXFORWARDFromAnyoneElse(t *testing.T) {
	for _, keys := range []string{"", "trusted_mtas = 192.0.2.0/24"} {
		e := newEnv(t, keys)
		e.start()
		r := dialog(t, e.addr, step{"EHLO mta.test\r\n", 1}, step{"XFORWARD ADDR=192.0.2.9\r\n", 1}, step{"QUIT\r\n", 1})
		if strings.Contains(r[0], "XFORWARD") || !strings.HasPrefix(r[1], "5") {
			t.Fatalf("%q: %q", keys, r)
		}
	}
}

// TestPostfixContentFilterWithXFORWARD: Postfix with the relay as its
// content_filter (smtp_send_xforward_command = yes): its client's address
// (127.0.0.5, while Postfix connects from 127.0.0.1) is what the relay
// logs and scans for; EICAR from it is refused, and Postfix bounces it
// back rather than lose it.
func TestPostfixContentFilterWithXFORWARD(t *testing.T) {
	swaks := testenv.Need(t, "swaks", "swaks")
	e := newEnv(t, "trusted_mtas = 127.0.0.1")
	e.start()
	pf := servertest.StartPostfix(t, servertest.PostfixOptions{RelayHost: e.sink.Addr,
		Main:   "content_filter = fsigkd:[127.0.0.1]:" + e.addr[strings.LastIndexByte(e.addr, ':')+1:] + "\n",
		Master: "fsigkd unix - - n - 10 smtp -o smtp_send_xforward_command=yes -o smtp_tls_security_level=none\n"})
	host, port, _ := net.SplitHostPort(pf.Addr)
	send := func(body string) {
		out, err := exec.Command(swaks, "--server", host, "--port", port, "--local-interface", "127.0.0.5", "--from", "a@example.com",
			"--to", "b@example.net", "--helo", "far.client.example", "--body", body).CombinedOutput()
		if err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
	}
	send("Hello.")
	pf.WaitLog(t, "relay=127.0.0.1")
	e.waitMails(1)
	if m := string(e.sink.Mails()[0].Data); !strings.Contains(m, "Received: from far.client.example ([127.0.0.5])") {
		t.Fatalf("%s", m)
	}
	b, _ := os.ReadFile(filepath.Join(e.logDir, "access.log"))
	if !strings.Contains(string(b), " 127.0.0.5 SMTP/250 ") {
		t.Fatalf("access log:\n%s", b)
	}
	send(eicar.String)
	pf.WaitLog(t, "554 5.7.1 Infected by Eicar-Test-Signature")
	pf.WaitLog(t, "sender non-delivery notification")
	// The sink is also Postfix's relay for its own bounce (from <>):
	// of the sender's mails, only the clean one came.
	n := 0
	for _, m := range e.sink.Mails() {
		if m.From == "a@example.com" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d of the sender's mails reached the next hop", n)
	}
}

// waitMails waits (20 s at most) for the sink to hold n mails.
func (e *env) waitMails(n int) {
	e.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); len(e.sink.Mails()) < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("the next hop has %d mails, not %d", len(e.sink.Mails()), n)
		}
	}
}

// FuzzXforwardFeed: whatever the MTA sends, in whatever pieces, reaches
// the server byte for byte unless it holds an XFORWARD command line; the
// reader never stalls on a line longer than its bound.
func FuzzXforwardFeed(f *testing.F) {
	f.Add([]byte("EHLO x\r\nMAIL FROM:<a@b>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n"), uint8(3))
	f.Add([]byte("BDAT 5 LAST\r\nabcdeRSET\r\n"), uint8(1))
	f.Add([]byte("STARTTLS\r\n\x16\x03\x01\x00"), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		x := &xforwardConn{Conn: nopConn{}}
		step := int(cut)%16 + 1
		for i := 0; i < len(in); i += step {
			x.feed(in[i:min(i+step, len(in))])
		}
		if !strings.Contains(strings.ToUpper(string(in)), "XFORWARD") && string(x.out)+string(x.in) != string(in) {
			t.Fatalf("%q came out as %q (+%q held)", in, x.out, x.in)
		}
		if len(x.in) > maxXforwardLine+16 {
			t.Fatalf("%d bytes held", len(x.in))
		}
	})
}

// nopConn is a connection that takes writes and gives nothing.
type nopConn struct{ net.Conn }

func (nopConn) Write(p []byte) (int, error) { return len(p), nil }

// TestXforwardDataEndAcrossReads: a mail's content is passed as it is,
// an XFORWARD line inside it included, however the reads cut it (the
// line holding the dot alone split anywhere); the XFORWARD after the
// content's end is answered, not passed.
func TestXforwardDataEndAcrossReads(t *testing.T) {
	content := "line\r\nXFORWARD ADDR=192.0.2.1\r\n.\r\n"
	after := "XFORWARD ADDR=192.0.2.9\r\n"
	for cut := 1; cut < len(content)+len(after); cut++ {
		x := &xforwardConn{Conn: nopConn{}}
		x.Write([]byte("220 ready\r\n"))
		x.feed([]byte("DATA\r\n"))
		x.Write([]byte("354 go ahead\r\n"))
		in := content + after
		x.feed([]byte(in[:cut]))
		x.feed([]byte(in[cut:]))
		a, said := x.take()
		if string(x.out) != "DATA\r\n"+content || !said || a.Addr != "192.0.2.9" {
			t.Fatalf("cut at %d: passed %q, said %v %q", cut, x.out, said, a.Addr)
		}
	}
}

// TestEveryMailOfASessionToldToPostfix: Postfix forgets what XFORWARD
// said at the end of each mail transaction (its smtpd resets it with the
// transaction), and keeps what XCLIENT said for the session. Two mails
// from one client in one session, through the relay to a real Postfix
// that takes XFORWARD (then XCLIENT) from it: Postfix logs both as the
// client's (XFORWARD: orig_client), or takes both from it (XCLIENT: its
// Received line), never one as the relay's.
func TestEveryMailOfASessionToldToPostfix(t *testing.T) {
	for _, verb := range []string{"xforward", "xclient"} {
		t.Run(verb, func(t *testing.T) {
			var pf *servertest.Postfix
			e := newEnvVia(t, "trusted_mtas = 127.0.0.1\nforward_client = "+verb, func(sink string) string {
				pf = servertest.StartPostfix(t, servertest.PostfixOptions{RelayHost: sink,
					Main: "smtpd_authorized_" + verb + "_hosts = 127.0.0.0/8\nmynetworks = 127.0.0.0/8 192.0.2.0/24\n"})
				return pf.Addr
			})
			e.start()
			mail := "XFORWARD NAME=client.example ADDR=192.0.2.9 HELO=helo.client.example PROTO=ESMTP\r\n" +
				"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
			r := dialog(t, e.addr, step{"EHLO mta.test\r\n", 1},
				step{mail, 4}, step{"Subject: one\r\n\r\nbody\r\n.\r\n", 1},
				step{mail, 4}, step{"Subject: two\r\n\r\nbody\r\n.\r\n", 1},
				step{"QUIT\r\n", 1})
			if !strings.HasPrefix(r[2], "250 ") || !strings.HasPrefix(r[4], "250 ") {
				t.Fatalf("%q", r)
			}
			e.waitMails(2)
			for _, m := range e.sink.Mails() {
				// Postfix's Received line, the first: who it took the mail from.
				first, _, _ := strings.Cut(string(m.Data), "\r\n\t")
				if verb == "xclient" && !strings.Contains(first, "[192.0.2.9]") {
					t.Errorf("a mail as Postfix took it:\n%s", m.Data)
				}
			}
			if verb != "xforward" {
				return
			}
			if n := pf.WaitLogCount("orig_client=unknown[192.0.2.9]", 2); n != 2 {
				t.Errorf("Postfix logged the client for %d mails of 2", n)
			}
		})
	}
}
