package fsavd

import (
	"bufio"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFDReaderPeerReset: a client that closes with an answer of ours
// unread makes the next read fail with ECONNRESET, where the raw
// recvmsg says -1 bytes. The reader says 0 and the error: a negative
// count made bufio panic, and every such close logged a panic of the
// session (seen when the gateway stopped mid-scan).
func TestFDReaderPeerReset(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "fsavd"), os.NewFile(uintptr(fds[1]), "client")
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("200 an answer the client never reads\n")); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	r := newFDReader(c.(*net.UnixConn), nil)
	n, err := r.Read(make([]byte, 64))
	if n < 0 || err == nil {
		t.Fatalf("read after the peer's reset: %d, %v", n, err)
	}
	// And through the bufio.Reader the session reads lines with.
	if _, err := bufio.NewReader(newFDReader(c.(*net.UnixConn), nil)).ReadString('\n'); err == nil {
		t.Fatal("a line read after the peer's reset")
	}
}
