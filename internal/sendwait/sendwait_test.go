package sendwait

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair is a connected pair of Unix stream sockets, the shape of the
// worker's connection to the engine.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

// readable tells whether c has bytes waiting, without reading them.
func readable(t *testing.T, c net.Conn) bool {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	rc.Control(func(fd uintptr) {
		n, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	})
	return n == 1
}

// An echo peer answers each request line at once: its answer often comes
// before Send's write returns. Waited for after the write, such an answer
// would be missed by the edge-triggered poller and waited for until the
// deadline; Send arms the wait before it writes.
func TestAnswerBeforeTheWaitIsNotMissed(t *testing.T) {
	a, b := pair(t)
	go func() {
		r := bufio.NewReader(b)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			b.Write(line)
		}
	}()
	r := bufio.NewReader(a)
	for i := range 20000 {
		a.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if err := Send(a, []byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > 2*time.Second {
			t.Fatalf("exchange %d: the answer was waited for until the deadline", i)
		}
		line, err := r.ReadString('\n')
		if err != nil || line != "ping\n" {
			t.Fatalf("exchange %d: %q, %v", i, line, err)
		}
	}
}

// Send returns only once the answer has begun to arrive.
func TestSendWaitsForTheAnswer(t *testing.T) {
	a, b := pair(t)
	go func() {
		buf := make([]byte, 5)
		io.ReadFull(b, buf)
		time.Sleep(80 * time.Millisecond)
		b.Write([]byte("pong\n"))
	}()
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if err := Send(a, []byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 70*time.Millisecond {
		t.Fatalf("Send returned after %v, before the answer", d)
	}
	if !readable(t, a) {
		t.Fatal("Send returned with nothing to read")
	}
}

// A request larger than the socket takes at once is written whole, the
// rest the usual way.
func TestShortWriteFinished(t *testing.T) {
	a, b := pair(t)
	req := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, len(req))
		io.ReadFull(b, buf)
		b.Write([]byte("done\n"))
		got <- buf
	}()
	a.SetDeadline(time.Now().Add(10 * time.Second))
	if err := Send(a, req); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(<-got, req) {
		t.Fatal("the request arrived changed")
	}
	line, err := bufio.NewReader(a).ReadString('\n')
	if err != nil || line != "done\n" {
		t.Fatalf("%q, %v", line, err)
	}
}

// A silent peer: Send gives up at the read deadline, and the read after
// it fails on the same deadline, as a read alone would.
func TestSilentPeerEndsAtTheDeadline(t *testing.T) {
	a, _ := pair(t)
	a.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	if err := Send(a, []byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Send waited %v past a 100 ms deadline", d)
	}
	_, err := a.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after the deadline: %v", err)
	}
}

// A peer that closes without answering ends the wait; the read says EOF.
func TestPeerClosesWithoutAnswer(t *testing.T) {
	a, b := pair(t)
	go func() {
		io.ReadFull(b, make([]byte, 5))
		b.Close()
	}()
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := Send(a, []byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
}

// A write to a peer long gone fails, and says so.
func TestWriteToClosedPeerFails(t *testing.T) {
	a, b := pair(t)
	b.Close()
	a.SetDeadline(time.Now().Add(5 * time.Second))
	if err := Send(a, []byte("ping\n")); err == nil {
		t.Fatal("a write to a closed peer succeeded")
	}
}

// A connection that is no socket of this process (net.Pipe, TLS) is
// written the usual way.
func TestOtherConnectionsWritten(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.Copy(b, b)
	if err := Send(a, []byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(a).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("%q, %v", line, err)
	}
}

// TCP, the shape of the HTTP proxy's connection to a server.
func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			c.Write(line)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for range 1000 {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := Send(c, []byte("GET / HTTP/1.1\n")); err != nil {
			t.Fatal(err)
		}
		if line, err := r.ReadString('\n'); err != nil || line != "GET / HTTP/1.1\n" {
			t.Fatalf("%q, %v", line, err)
		}
	}
}

// Ask with bytes of an earlier answer still buffered writes without the
// wait: the answer may be among them, and a silent peer would otherwise
// hold it until the deadline.
func TestAskWithAnswerBuffered(t *testing.T) {
	a, b := pair(t)
	b.Write([]byte("one\ntwo\n"))
	br := bufio.NewReader(a)
	if line, _ := br.ReadString('\n'); line != "one\n" {
		t.Fatalf("%q", line)
	}
	a.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	if err := Ask(a, br, []byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Ask waited %v with the answer buffered", d)
	}
	if line, _ := br.ReadString('\n'); line != "two\n" {
		t.Fatalf("%q", line)
	}
}
