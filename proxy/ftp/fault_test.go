package ftp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/proxy"
	"github.com/fsigkd/fsigkd/scanner"
)

// fakeFTP is a small FTP server for the faults vsftpd will not produce: a
// NOOP answered with an error, a transfer broken off, an upload it stops
// reading.
func fakeFTP(t *testing.T, file []byte, finalReply, noopReply string) string {
	return servertest.Fake(t, "tcp", "127.0.0.1:0", func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		fmt.Fprintf(c, "220 fake\r\n")
		var dl net.Listener
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			verb := strings.ToUpper(strings.TrimSpace(strings.SplitN(line, " ", 2)[0]))
			switch verb {
			case "USER":
				fmt.Fprintf(c, "230 in\r\n")
			case "PASV":
				// A small receive buffer set before the handshake, so
				// that the window stays small whatever the host's
				// tcp_rmem lets the kernel grow it to.
				lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
					return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
				}}
				dl, _ = lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
				fmt.Fprintf(c, "227 Entering Passive Mode (%s)\r\n", FormatHostPort(dl.Addr().(*net.TCPAddr)))
			case "RETR":
				fmt.Fprintf(c, "150 here\r\n")
				d, err := dl.Accept()
				if err == nil {
					d.Write(file)
					d.Close()
				}
				fmt.Fprintf(c, "%s\r\n", finalReply)
			case "STOR":
				// Takes the data connection and reads nothing: a receiver
				// that stalls, until the proxy gives up on it.
				fmt.Fprintf(c, "150 go ahead\r\n")
				d, err := dl.Accept()
				if err == nil {
					d.(*net.TCPConn).SetReadBuffer(4096)
					time.Sleep(6 * time.Second) // long past sendfile_timeout, also under -race
					d.Close()
				}
				fmt.Fprintf(c, "%s\r\n", finalReply)
			case "NOOP":
				fmt.Fprintf(c, "%s\r\n", noopReply)
			case "QUIT":
				fmt.Fprintf(c, "221 bye\r\n")
				return
			default:
				fmt.Fprintf(c, "502 no\r\n")
			}
		}
	})
}

// slowScanner takes its time, so that the keep-alives run.
type slowScanner struct{ d time.Duration }

func (s slowScanner) Scan(ctx context.Context, _ *scanner.Object) (scanner.Verdict, error) {
	time.Sleep(s.d)
	return scanner.Verdict{}, nil
}

func retrVia(t *testing.T, e *env, server string) (first, last Reply, all []string) {
	c := dialControl(t, e.addr)
	c.cmd("USER anonymous@" + server)
	r := c.cmd("PASV")
	a, _ := ParseHostPort(r.Text())
	fmt.Fprintf(c.c, "RETR f\r\n")
	go func() {
		if d, err := net.Dial("tcp", a.String()); err == nil {
			buf := make([]byte, 1<<16)
			for {
				if _, err := d.Read(buf); err != nil {
					break
				}
			}
			d.Close()
		}
	}()
	first = c.read()
	if first.Code != 150 {
		return first, first, first.Lines // refused before any 150
	}
	last = c.read()
	return first, last, first.Lines
}

func TestNoopErrorIsLogged(t *testing.T) {
	e := newEnv(t, "noop_interval = 1\nprogress_interval = 300ms")
	e.p.Scanner = slowScanner{d: 2500 * time.Millisecond}
	e.start()
	server := fakeFTP(t, []byte("data"), "226 done", "500 NOOP not understood")
	first, last, lines := retrVia(t, e, server)
	if first.Code != 150 || last.Code != 226 {
		t.Fatalf("replies %q then %q", first.Raw(), last.Raw())
	}
	if len(lines) < 3 {
		t.Errorf("no 150- progress lines while scanning: %q", lines)
	}
	if len(e.obs.FilterMessage("NOOP command reply error [500 NOOP not understood]").All()) == 0 {
		t.Fatalf("no M12: %v", e.obs.All())
	}
}

func TestServerBreaksOffTransfer(t *testing.T) {
	e := newEnv(t, "")
	e.start()
	server := fakeFTP(t, []byte("half a fi"), "426 Connection closed; transfer aborted.", "200 ok")
	_, last, _ := retrVia(t, e, server)
	if last.Code != 451 {
		t.Fatalf("a broken transfer ended with %q", last.Raw())
	}
}

// TestServerThatStopsReadingAnUpload: a server that takes no more of a
// scanned upload for sendfile_timeout gets M07, the client the server's
// last word or a 451, never a success.
func TestServerThatStopsReadingAnUpload(t *testing.T) {
	e := newEnv(t, "")
	e.p.Global.SendfileTimeout = time.Second
	e.start()
	server := fakeFTP(t, nil, "226 stored", "200 ok")
	c := dialControl(t, e.addr)
	c.cmd("USER anonymous@" + server)
	a, err := ParseHostPort(c.cmd("PASV").Text())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c.c, "STOR big\r\n")
	if r := c.read(); r.Code != 150 {
		t.Fatalf("STOR: %q", r.Raw())
	}
	d, err := net.Dial("tcp", a.String())
	if err != nil {
		t.Fatal(err)
	}
	d.Write(make([]byte, 32<<20))
	d.Close()
	r := c.read()
	if r.Code != 451 {
		t.Errorf("an upload the server stopped reading ended with %q", r.Raw())
	}
	m := e.obs.FilterMessageSnippet("sendfile timeout: No data can be sent for 1 seconds. There may be a temporary network problem between receiver. / URL=[ftp://").All()
	if len(m) != 1 || !strings.Contains(m[0].Message, "/big], n=0, written=") || !strings.Contains(m[0].Message, ", filelen=33554432, writesize=") {
		t.Errorf("no M07 for the upload: %v %s", e.obs.All(), e.kit.AccessLog())
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"USER a@b:21", "PORT 127,0,0,1,4,1", "EPRT |2|::1|2000|", "RETR x y", "\xff\xf4ABOR"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCommand(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(c.Verb+c.Arg, "\r\n\x00") {
			t.Fatal("control byte through")
		}
		ParseHostPort(c.Arg)
		ParseEPRT(c.Arg)
		proxy.ParseUser(c.Arg, 21)
	})
}

func FuzzReadReply(f *testing.F) {
	f.Add("220-a\r\n b\r\n220 c\r\n")
	f.Add("227 Entering Passive Mode (127,0,0,1,4,1)\r\n")
	f.Add("229 (|||2000|)\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ReadReply(bufio.NewReader(strings.NewReader(s)), 4096)
		if err != nil {
			return
		}
		if r.Code < 100 || r.Code > 599 {
			t.Fatalf("code %d", r.Code)
		}
		ParseHostPort(r.Text())
		ParseEPSV(r.Text())
	})
}
