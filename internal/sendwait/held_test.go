package sendwait

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// held is the server's end of a pair, its replies held.
func held(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	srv, cli := pair(t)
	hc, ok := Hold(srv).(*Conn)
	if !ok {
		t.Fatal("a Unix socket was not held")
	}
	return hc, cli
}

// A reply is held until the server reads, and then goes out before the
// server's read returns with the client's next command.
func TestReplyHeldUntilTheNextRead(t *testing.T) {
	srv, cli := held(t)
	if _, err := srv.Write([]byte("250 ok\r\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if readable(t, cli) {
		t.Fatal("the reply went out before the server read")
	}
	got := make(chan string, 1)
	go func() {
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(srv).ReadString('\n')
		got <- line
	}()
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(cli)
	if line, err := r.ReadString('\n'); err != nil || line != "250 ok\r\n" {
		t.Fatalf("the client heard %q, %v", line, err)
	}
	cli.Write([]byte("QUIT\r\n"))
	if line := <-got; line != "QUIT\r\n" {
		t.Fatalf("the server read %q", line)
	}
}

// A command and reply session of many exchanges, the client answering at
// once: no reply is held past the read that should send it, and no
// command is missed by the wait (armed before the reply leaves).
func TestManyExchangesNoneMissed(t *testing.T) {
	srv, cli := held(t)
	const n = 20000
	go func() {
		r := bufio.NewReader(srv)
		srv.Write([]byte("220 ready\n"))
		for {
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			srv.Write([]byte("250 " + line))
		}
	}()
	cli.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(cli)
	if line, err := r.ReadString('\n'); err != nil || line != "220 ready\n" {
		t.Fatalf("greeting %q, %v", line, err)
	}
	for i := range n {
		cmd := fmt.Sprintf("NOOP %d\n", i)
		cli.Write([]byte(cmd))
		if line, err := r.ReadString('\n'); err != nil || line != "250 "+cmd {
			t.Fatalf("exchange %d: %q, %v", i, line, err)
		}
	}
}

// A reply written in pieces (a multi-line reply, a line at a time) goes
// out whole with the next read.
func TestPiecesGoTogether(t *testing.T) {
	srv, cli := held(t)
	for _, l := range []string{"250-a\r\n", "250-b\r\n", "250 c\r\n"} {
		srv.Write([]byte(l))
	}
	srv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	go srv.Read(make([]byte, 1))
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 64)
	n, err := io.ReadAtLeast(cli, b, 21)
	if err != nil || string(b[:n]) != "250-a\r\n250-b\r\n250 c\r\n" {
		t.Fatalf("%q, %v", b[:n], err)
	}
}

// The last reply before a close (QUIT's, a 421) is sent by the close.
func TestCloseSendsTheHeldReply(t *testing.T) {
	srv, cli := held(t)
	srv.Write([]byte("221 bye\r\n"))
	srv.Close()
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	all, err := io.ReadAll(cli)
	if err != nil || string(all) != "221 bye\r\n" {
		t.Fatalf("%q, %v", all, err)
	}
}

// While the server waits for the client, a write from elsewhere (the
// session set's 421 to an evicted client) goes out at once.
func TestWriteWhileWaitingGoesAtOnce(t *testing.T) {
	srv, cli := held(t)
	srv.Write([]byte("250 ok\r\n"))
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	done := make(chan error, 1)
	go func() {
		_, err := srv.Read(make([]byte, 16))
		done <- err
	}()
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(cli)
	if line, _ := r.ReadString('\n'); line != "250 ok\r\n" {
		t.Fatalf("%q", line)
	}
	if _, err := srv.Write([]byte("421 idle too long\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "421 idle too long\r\n" {
		t.Fatalf("the 421 while the server waited: %q, %v", line, err)
	}
	srv.Close()
	if err := <-done; err == nil {
		t.Fatal("the wait survived the close")
	}
}

// A write longer than any reply is not held.
func TestLongWriteNotHeld(t *testing.T) {
	srv, cli := held(t)
	big := bytes.Repeat([]byte("x"), maxHeld+1)
	go srv.Write(big)
	cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(big))
	if _, err := io.ReadFull(cli, got); err != nil {
		t.Fatalf("a long write was held: %v", err)
	}
}

// A reply that cannot be sent (the client is gone) fails the read that
// sends it, and every write after.
func TestHeldReplyFailureReported(t *testing.T) {
	srv, cli := held(t)
	cli.Close()
	srv.Write([]byte("250 ok\r\n"))
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := srv.Read(make([]byte, 8)); err == nil {
		t.Fatal("a read after a reply to a closed client succeeded")
	}
	if _, err := srv.Write([]byte("250 ok\r\n")); err == nil {
		t.Fatal("a write after a failed reply succeeded")
	}
}

// Connections that are no socket of this process are left as they are.
func TestHoldLeavesOthers(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Hold(a) != a {
		t.Fatal("a pipe was wrapped")
	}
	if !strings.Contains(fmt.Sprintf("%T", Hold(struct{ net.Conn }{a})), "struct") {
		t.Fatal("a wrapper without a socket was wrapped")
	}
}
