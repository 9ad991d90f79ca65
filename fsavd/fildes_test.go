package fsavd_test

import (
	"bufio"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// fdClient is a raw client of the server's Unix socket that can pass
// descriptors.
type fdClient struct {
	t  *testing.T
	c  *net.UnixConn
	br *bufio.Reader
}

func dialFD(t *testing.T) *fdClient {
	t.Helper()
	c, err := net.Dial("unix", enginetest.FsavdSocket(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fc := &fdClient{t: t, c: c.(*net.UnixConn), br: bufio.NewReader(c)}
	if g := fc.line(); !strings.HasPrefix(g, "DBVERSION\t") {
		t.Fatalf("greeting %q", g)
	}
	return fc
}

func (fc *fdClient) line() string {
	l, _ := fc.br.ReadString('\n')
	return strings.TrimRight(l, "\n")
}

// send writes cmd with the descriptors of files in the same message.
func (fc *fdClient) send(cmd string, files ...*os.File) {
	fc.t.Helper()
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := fc.c.WriteMsgUnix([]byte(cmd+"\n"), oob, nil); err != nil {
		fc.t.Fatal(err)
	}
}

// answer reads the result lines of a scan up to its OK.
func (fc *fdClient) answer() []string {
	var got []string
	for {
		l := fc.line()
		if l == "OK\tScan ok." || l == "" {
			return got
		}
		got = append(got, l)
	}
}

// TestScanFDScansTheDescriptorNotThePath: the file passed is scanned,
// whatever is (or is not) at the name given; the results carry the name.
func TestScanFDScansTheDescriptorNotThePath(t *testing.T) {
	fc := dialFD(t)
	fc.send("CONFIGURE\tSCANFD\t1")
	if r := fc.line(); !strings.HasPrefix(r, "OK\t") {
		t.Fatalf("CONFIGURE SCANFD: %q", r)
	}
	bad := testenv.OpenFile(t, "e.com", []byte(eicar.String))
	os.Remove(bad.Name()) // removed by name: the descriptor still reads it
	fc.send("SCANFD\t/spool/object-1", bad)
	if got := fc.answer(); len(got) != 1 || !strings.HasPrefix(got[0], "INFECTED\t/spool/object-1\tEicar-Test-Signature\t") {
		t.Fatalf("EICAR by descriptor: %q", got)
	}
	// A clean file at the name does not make the descriptor's file clean.
	good := testenv.OpenFile(t, "g.txt", []byte("hello"))
	fc.send("SCANFD\t"+good.Name(), bad)
	if got := fc.answer(); len(got) != 1 || !strings.HasPrefix(got[0], "INFECTED\t"+good.Name()+"\t") {
		t.Fatalf("EICAR by descriptor, clean file at its name: %q", got)
	}
	fc.send("SCANFD\tclean", good)
	if got := fc.answer(); len(got) != 1 || got[0] != "CLEAN\tclean" {
		t.Fatalf("clean by descriptor: %q", got)
	}
}

// TestScanFDRefusals: a SCANFD the server cannot honour is a
// SCAN_FAILURE, never CLEAN: without the option, without a descriptor,
// with one that is not a regular file.
func TestScanFDRefusals(t *testing.T) {
	fc := dialFD(t)
	bad := testenv.OpenFile(t, "e.com", []byte(eicar.String))
	before := openFDs(t)
	for range 20 {
		fc.send("SCANFD\tx", bad)
		if got := fc.answer(); len(got) != 1 || !strings.HasPrefix(got[0], "SCAN_FAILURE\tx\t") {
			t.Fatalf("SCANFD before CONFIGURE SCANFD 1: %q", got)
		}
	}
	if n := openFDs(t) - before; n > 0 {
		t.Fatalf("refused SCANFDs left %d descriptors open", n)
	}
	fc.send("CONFIGURE\tSCANFD\t1")
	fc.line()
	fc.send("SCANFD\tnone")
	if got := fc.answer(); len(got) != 1 || !strings.HasPrefix(got[0], "SCAN_FAILURE\tnone\t") {
		t.Fatalf("SCANFD without a descriptor: %q", got)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	w.Write([]byte(eicar.String))
	fc.send("SCANFD\tpipe", r)
	if got := fc.answer(); len(got) != 1 || !strings.HasPrefix(got[0], "SCAN_FAILURE\tpipe\t") {
		t.Fatalf("SCANFD of a pipe: %q", got)
	}
}

// TestScanFDDescriptorFloodIsBounded: a client that sends descriptors
// without SCANFDs to use them does not make the server hold them: past a
// few, they are closed as they come, and all at the session's end.
func TestScanFDDescriptorFloodIsBounded(t *testing.T) {
	fc := dialFD(t)
	fc.send("CONFIGURE\tSCANFD\t1")
	fc.line()
	f := testenv.OpenFile(t, "g.txt", []byte("hello"))
	before := openFDs(t)
	for range 200 {
		fc.send("PING", f, f, f) // ERROR each: the descriptors wait
		if r := fc.line(); !strings.HasPrefix(r, "ERROR\t") {
			t.Fatalf("PING: %q", r)
		}
	}
	if held := openFDs(t) - before; held > 8 {
		t.Fatalf("the server holds %d descriptors a client sent", held)
	}
	// The oldest one held is still the one a SCANFD takes.
	fc.send("SCANFD\tfirst")
	if got := fc.answer(); len(got) != 1 || got[0] != "CLEAN\tfirst" {
		t.Fatalf("SCANFD after the flood: %q", got)
	}
	fc.c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t) > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := openFDs(t); n > before {
		t.Fatalf("%d descriptors left open after the session", n-before)
	}
}

// openFDs counts this process's open descriptors (the server runs in it).
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		testenv.Unavailable(t, "no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestFollowFD: a file passed with FOLLOWFD is searched as GROWN says it
// grows, and SCANFOLLOWED judges it whole: the test file written across
// two stretches is found and named as FOLLOWFD named it. Without CONFIGURE
// FOLLOW the descriptor is not kept; SCANFOLLOWED with nothing followed is
// a failure, not a verdict.
func TestFollowFD(t *testing.T) {
	fc := dialFollow(t)
	f, err := os.Create(t.TempDir() + "/growing")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := strings.Repeat(".", 20000) + eicar.String + strings.Repeat(" ", 20)
	fc.send("FOLLOWFD\tgrowing download", f)
	written := 0
	for _, upto := range []int{10000, 20010, len(data)} {
		f.WriteString(data[written:upto])
		written = upto
		fc.send("GROWN\t" + strconv.Itoa(upto))
	}
	fc.send("SCANFOLLOWED")
	if got := fc.answer(); len(got) != 1 || !strings.HasPrefix(got[0], "INFECTED\tgrowing download\t") {
		t.Fatalf("followed: %q", got)
	}
	fc.send("SCANFOLLOWED")
	if got := fc.answer(); len(got) != 1 || !strings.HasPrefix(got[0], "SCAN_FAILURE\t") {
		t.Fatalf("nothing followed: %q", got)
	}

	plain := dialFD(t)
	plain.send("FOLLOWFD\tnot asked for", f)
	plain.send("SCANFOLLOWED")
	if got := plain.answer(); len(got) != 1 || !strings.HasPrefix(got[0], "SCAN_FAILURE\t") {
		t.Fatalf("without CONFIGURE FOLLOW: %q", got)
	}
}

// TestFollowCommandsOutOfOrder: the follow's commands sent out of order
// or with nonsense get no verdict of a file that was not followed whole:
// GROWN before any FOLLOWFD, or past the file's end, or not a number, or
// backwards; FOLLOWFD without a descriptor; a second FOLLOWFD, which
// replaces the first (its file is the one judged). The session serves on.
func TestFollowCommandsOutOfOrder(t *testing.T) {
	fc := dialFollow(t)
	fc.send("GROWN\t1000")
	fc.send("FOLLOWFD\tno descriptor")
	fc.send("SCANFOLLOWED")
	if got := fc.answer(); len(got) != 1 || !strings.HasPrefix(got[0], "SCAN_FAILURE\t") {
		t.Fatalf("nothing followed: %q", got)
	}
	first, second := testenv.OpenFile(t, "first", []byte(eicar.String)), testenv.OpenFile(t, "second", []byte("clean and short"))
	fc.send("FOLLOWFD\tfirst", first)
	fc.send("GROWN\t68")
	fc.send("FOLLOWFD\tsecond", second)
	for _, g := range []string{"GROWN\t99999999", "GROWN\tx", "GROWN\t-5", "GROWN\t3"} {
		fc.send(g)
	}
	fc.send("SCANFOLLOWED")
	if got := fc.answer(); len(got) != 1 || got[0] != "CLEAN\tsecond" {
		t.Fatalf("the second file followed: %q", got)
	}
	fc.send("CONFIGURE\tSCANFD\t1")
	fc.line()
	fc.send("SCANFD\tafter", first)
	if got := fc.answer(); len(got) != 1 || !strings.HasPrefix(got[0], "INFECTED\tafter\t") {
		t.Fatalf("the session after: %q", got)
	}
}

// TestFollowWhatIsNoRegularFile: a descriptor of a device that never ends
// (/dev/zero), told to have grown to an exabyte, is not read on: GROWN
// returns at once, and SCANFOLLOWED fails (not a regular file), as SCANFD
// of it does. A regular file said to be far longer than it is is read
// as far as it goes.
func TestFollowWhatIsNoRegularFile(t *testing.T) {
	fc := dialFollow(t)
	zero, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer zero.Close()
	fc.send("FOLLOWFD\tzero", zero)
	fc.send("GROWN\t1000000000000000000")
	fc.send("SCANFOLLOWED")
	if got := fc.answer(); len(got) != 1 || !strings.HasPrefix(got[0], "SCAN_FAILURE\tzero\t") {
		t.Fatalf("/dev/zero followed: %q", got)
	}
	short := testenv.OpenFile(t, "short", []byte("some text "+eicar.String))
	fc.send("FOLLOWFD\tshort", short)
	fc.send("GROWN\t1000000000000000000")
	fc.send("SCANFOLLOWED")
	if got := fc.answer(); len(got) != 1 || !strings.HasPrefix(got[0], "INFECTED\tshort\t") {
		t.Fatalf("a file said to be longer: %q", got)
	}
}

// dialFollow is a client that said it sends files to follow.
func dialFollow(t *testing.T) *fdClient {
	t.Helper()
	fc := dialFD(t)
	fc.send("CONFIGURE\tFOLLOW\t1")
	if r := fc.line(); !strings.HasPrefix(r, "OK\t") {
		t.Fatalf("CONFIGURE FOLLOW: %q", r)
	}
	return fc
}
