package http

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/scanner"
)

// TestWithRealClamd: the same proxy with clamd behind it (FILDES).
func TestWithRealClamd(t *testing.T) {
	clamd := enginetest.Clamd(t, "")
	e := newEnv(t, "")
	eps, _ := scanner.ParseEndpoints(clamd.Sock, "")
	e.p.Scanner = scanner.NewClamd(&scanner.Pool{Endpoints: eps}, false)
	e.serve("/e.gz", gzipped([]byte(eicar.String)), "Content-Encoding", "gzip")
	e.serve("/zip", zipped(t, "a/b.txt", []byte("x "+enginetest.TestString)))
	e.serve("/clean", []byte("clean"))
	if code, body := e.get("/e.gz"); code != 403 || !strings.Contains(string(body), "Eicar-Test-Signature.UNOFFICIAL") {
		t.Fatalf("gzip EICAR: %d %s", code, body)
	}
	if code, _ := e.get("/zip"); code != 403 {
		t.Fatalf("test signature in a zip: %d", code)
	}
	if code, body := e.get("/clean"); code != 200 || string(body) != "clean" {
		t.Fatalf("clean: %d %q", code, body)
	}
}

// TestReceiverThatStopsReadingIsDropped: M07 after sendfile_timeout.
func TestReceiverThatStopsReadingIsDropped(t *testing.T) {
	e := newEnv(t, "")
	e.p.Global.SendfileTimeout = time.Second
	e.serve("/big", make([]byte, 32<<20))
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	u := strings.TrimPrefix(e.origin.URL, "http://")
	c.Write([]byte("GET http://" + u + "/big HTTP/1.1\r\nHost: " + u + "\r\n\r\n"))
	bufio.NewReader(c).ReadString('\n') // the status line, then nothing more is read
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, l := range e.obs.All() {
			if strings.HasPrefix(l.Message, "sendfile timeout: No data can be sent for 1 seconds. There may be a temporary network problem between receiver. / URL=["+e.url("/big")+"], n=0, written=") &&
				strings.Contains(l.Message, ", filelen=33554432, writesize=") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no M07: %v", e.obs.All())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{
		"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReader(strings.NewReader(string(b)))
		req, err := ReadRequest(br, Limits{})
		if err != nil {
			return
		}
		if req.Chunked && req.ContentLength >= 0 {
			t.Fatal("both chunked and a length")
		}
		n := 0
		for _, fl := range req.Header {
			if strings.EqualFold(fl.Name, "Content-Length") {
				n++
			}
		}
		if n > 1 {
			t.Fatal("two Content-Length fields accepted")
		}
		buf := make([]byte, 4096)
		r := bodyReader(br, req.Chunked, req.ContentLength)
		for i := 0; i < 1000; i++ {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
	})
}

func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.0 204 No Content\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReader(strings.NewReader(string(b)))
		resp, err := ReadResponse(br, 1024, "GET")
		if err == nil && resp.Chunked && resp.ContentLength >= 0 {
			t.Fatal("both chunked and a length")
		}
	})
}
