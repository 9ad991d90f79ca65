package fsavd

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// maxHeld bounds the descriptors a session holds between the message
// that brought them and the SCANFD that uses them; past it, what comes
// is closed on arrival (a client sends one per SCANFD and waits for its
// answer).
const maxHeld = 4

// fdReader reads a Unix connection and keeps, in order, the descriptors
// that come with its bytes (SCM_RIGHTS), for SCANFD.
type fdReader struct {
	c   *net.UnixConn
	oob []byte
	fds []int
	// await, when set, is called before each read: it sends the held
	// reply and waits for the next command (sendwait.Conn's Await).
	await func() error
}

func newFDReader(c *net.UnixConn, await func() error) *fdReader {
	return &fdReader{c: c, oob: make([]byte, unix.CmsgSpace(4*maxHeld)), await: await}
}

// Read reads p and keeps the descriptors that came with it. A failed
// recvmsg counts -1 bytes through ReadMsgUnix (ECONNRESET when the
// client closed with an answer unread): that is 0 here, as io.Reader
// requires and bufio checks with a panic.
func (r *fdReader) Read(p []byte) (int, error) {
	if r.await != nil {
		if err := r.await(); err != nil {
			return 0, err
		}
	}
	n, oobn, _, _, err := r.c.ReadMsgUnix(p, r.oob)
	if oobn > 0 {
		r.keep(r.oob[:oobn])
	}
	return max(n, 0), err
}

// keep takes the descriptors of control messages.
func (r *fdReader) keep(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if len(r.fds) < maxHeld {
				r.fds = append(r.fds, fd)
			} else {
				unix.Close(fd)
			}
		}
	}
}

// take gives the oldest descriptor held, as a file named name; nil when
// none came.
func (r *fdReader) take(name string) *os.File {
	if r == nil || len(r.fds) == 0 {
		return nil
	}
	fd := r.fds[0]
	r.fds = r.fds[1:]
	return os.NewFile(uintptr(fd), name)
}

// close closes the descriptors no SCANFD took.
func (r *fdReader) close() {
	if r == nil {
		return
	}
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = nil
}
