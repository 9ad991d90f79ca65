package smtp

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/servertest"
)

// waitKept waits (5 s at most) until the proxy keeps a next hop's
// session: a client's Logout comes a little after its QUIT's reply, and
// the next client may come first (it then gets a new session).
func (e *env) waitKept() {
	e.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		e.p.hops.mu.Lock()
		n := 0
		for _, l := range e.p.hops.idle {
			n += len(l)
		}
		e.p.hops.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("no next hop's session kept")
		}
	}
}

// TestNextHopSessionKeptForTheNextClient: clients that each send one
// mail in a session of their own are relayed over one session to the next
// hop, a refused (infected) mail between them included; once it was kept
// unused for hopKeep, a new one is made.
func TestNextHopSessionKeptForTheNextClient(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	for i, msg := range []string{"Subject: 1\r\n\r\none\r\n", "Subject: 2\r\n\r\n" + eicar.String + "\r\n", "Subject: 3\r\n\r\nthree\r\n"} {
		err := e.send("a@example.com", []string{"b@example.com"}, msg)
		if want := map[bool]int{false: 250, true: 554}[i == 1]; code(err) != want {
			t.Fatalf("mail %d: %v", i+1, err)
		}
		e.waitKept()
	}
	time.Sleep(hopKeep + time.Second)
	if err := e.send("a@example.com", []string{"b@example.com"}, "Subject: 4\r\n\r\nfour\r\n"); err != nil {
		t.Fatal(err)
	}
	m := e.sink.Mails()
	if len(m) != 3 || m[0].Peer != m[1].Peer || m[2].Peer == m[1].Peer {
		t.Fatalf("%d mails, from %v", len(m), func() (p []string) {
			for _, x := range m {
				p = append(p, x.Peer)
			}
			return
		}())
	}
}

// TestKeptSessionClosedByPostfixIsNotTaken: a real Postfix that ends an
// idle session after a second (its 421 and close come while the session
// is kept): the next client's mail goes over a new session, and is taken.
func TestKeptSessionClosedByPostfixIsNotTaken(t *testing.T) {
	var pf *servertest.Postfix
	e := newEnvVia(t, "", func(sink string) string {
		pf = servertest.StartPostfix(t, servertest.PostfixOptions{RelayHost: sink, Main: "smtpd_timeout = 1s\n"})
		return pf.Addr
	})
	e.start()
	for i := range 2 {
		if err := e.send("a@example.com", []string{"b@example.net"}, "Subject: s\r\n\r\nbody\r\n"); err != nil {
			t.Fatalf("mail %d: %v", i+1, err)
		}
		if i == 0 {
			pf.WaitLog(t, "timeout after END-OF-MESSAGE")
		}
	}
	e.waitMails(2)
}

// TestKeptSessionThatBreaksIsReplaced: a next hop that hangs up on the
// first command of a kept session (it looked open): the mail is relayed
// over a new session, and the client never knows.
func TestKeptSessionThatBreaksIsReplaced(t *testing.T) {
	var mu sync.Mutex
	greetings, mails := 0, 0
	next := servertest.ScriptedSMTP(t, func(stage, line string) string {
		mu.Lock()
		defer mu.Unlock()
		switch stage {
		case "GREETING":
			greetings++
			return "220 next.test ESMTP"
		case "EHLO":
			return "250-next.test\r\n250 PIPELINING"
		case "MAIL FROM":
			mails++
			if mails == 2 {
				return "" // the kept session's first command: hung up
			}
			return "250 2.1.0 Ok"
		case "DATA":
			return "354 go on"
		case "QUIT":
			return "221 bye"
		}
		return "250 2.0.0 Ok"
	})
	e := newEnvVia(t, "", func(string) string { return next })
	e.start()
	for i := range 2 {
		if err := e.send("a@example.com", []string{"b@example.com"}, "Subject: s\r\n\r\nbody\r\n"); err != nil {
			t.Fatalf("mail %d: %v", i+1, err)
		}
		if i == 0 {
			e.waitKept()
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if greetings != 2 || mails != 3 {
		t.Fatalf("%d sessions, %d MAIL commands", greetings, mails)
	}
}

// TestKeptSessionToldOfEachClient: a next hop's session kept between two
// clients from other addresses, with a real Postfix taking XCLIENT from
// the relay: each mail is Postfix's from its own client, over one
// session; a third mail from the second client is not told again.
func TestKeptSessionToldOfEachClient(t *testing.T) {
	var pf *servertest.Postfix
	e := newEnvVia(t, "forward_client = xclient", func(sink string) string {
		pf = servertest.StartPostfix(t, servertest.PostfixOptions{RelayHost: sink,
			Main: "smtpd_authorized_xclient_hosts = 127.0.0.0/8\nmynetworks = 127.0.0.0/8\n"})
		return pf.Addr
	})
	e.start()
	for i, from := range []string{"127.0.0.7", "127.0.0.8", "127.0.0.8"} {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		nc, err := d.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		c := gosmtp.NewClient(nc)
		if err := c.Hello("client-" + strings.ReplaceAll(from, ".", "-") + ".test"); err != nil {
			t.Fatal(err)
		}
		if err := c.SendMail("a@example.com", []string{"b@example.net"}, strings.NewReader("Subject: "+from+"\r\n\r\nbody\r\n")); err != nil {
			t.Fatalf("mail %d: %v", i+1, err)
		}
		c.Quit()
		e.waitKept()
	}
	e.waitMails(3)
	for _, m := range e.sink.Mails() {
		first, _, _ := strings.Cut(string(m.Data), "\r\n\t")
		subject := m.Data[bytes.Index(m.Data, []byte("Subject: "))+9:]
		if from := string(subject[:bytes.IndexByte(subject, '\r')]); !strings.Contains(first, "["+from+"]") {
			t.Errorf("a mail from %s as Postfix took it: %s", from, first)
		}
	}
	// (StartPostfix's look at its port is a session without a command.)
	pf.WaitLog(t, "disconnect from unknown[127.0.0.8]") // the kept session ended
	log := pf.Log()
	if n := strings.Count(log, "]: connect from localhost[127.0.0.1]") - strings.Count(log, "lost connection after CONNECT"); n != 1 {
		t.Errorf("%d sessions to Postfix", n)
	}
	if !strings.Contains(log, "ehlo=3 xclient=0/2 mail=3") {
		t.Errorf("the next hop was not told of each client once (Postfix counts XCLIENT as a failed command, and an EHLO after each)")
	}
}

// TestNextHopThatStopsReadingHoldsNoStop: a next hop that takes a mail
// and then reads nothing more (its session kept by the relay): a stop of
// the relay does not wait on its QUIT past quitWait.
func TestNextHopThatStopsReadingHoldsNoStop(t *testing.T) {
	next := servertest.Fake(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		io.WriteString(c, "220 next.test ESMTP\r\n")
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch strings.ToUpper(strings.Fields(line + " x")[0]) {
			case "EHLO":
				io.WriteString(c, "250-next.test\r\n250 PIPELINING\r\n")
			case "DATA":
				io.WriteString(c, "354 go on\r\n")
				for l, err := br.ReadString('\n'); err == nil && l != ".\r\n"; l, err = br.ReadString('\n') {
				}
				io.WriteString(c, "250 2.0.0 Ok\r\n")
				time.Sleep(time.Minute) // reads nothing more
				return
			default:
				io.WriteString(c, "250 2.0.0 Ok\r\n")
			}
		}
	})
	e := newEnvVia(t, "", func(string) string { return next })
	e.start()
	if err := e.send("a@example.com", []string{"b@example.com"}, "Subject: s\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	e.waitKept()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e.p.Shutdown(ctx)
	if took := time.Since(start); took > quitWait+time.Second {
		t.Fatalf("the stop took %v", took)
	}
}

// TestOpenSeesWhatTheNextHopDid: the look at a kept session's socket
// takes one the next hop left as it was, and not one it wrote to (its
// 421 for the idle time) or closed; nor one with a reply still read
// ahead. (TestKeptSessionClosedByPostfixIsNotTaken passes by the retry
// too: this holds the look itself.)
func TestOpenSeesWhatTheNextHopDid(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func() (*upstream, net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return newUpstream(c, time.Second), s
	}
	settle := func() { time.Sleep(50 * time.Millisecond) } // the bytes or the FIN reach our side
	up, _ := pair()
	if !open(up) {
		t.Error("a session left as it was is not taken")
	}
	up, s := pair()
	io.WriteString(s, "421 4.4.2 next.test Error: timeout exceeded\r\n")
	settle()
	if open(up) {
		t.Error("a session the next hop said 421 on is taken")
	}
	up, s = pair()
	s.Close()
	settle()
	if open(up) {
		t.Error("a session the next hop closed is taken")
	}
	up, s = pair()
	io.WriteString(s, "250 one\r\n250 two\r\n")
	settle()
	up.read() // the first; the second is read ahead into the buffer
	if open(up) {
		t.Error("a session with a reply read ahead is taken")
	}
}
