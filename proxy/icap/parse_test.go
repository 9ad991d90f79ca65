package icap

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

const goodRespmod = "RESPMOD icap://icap.test/avscan ICAP/1.0\r\nHost: icap.test\r\nAllow: 204\r\nPreview: 4\r\nEncapsulated: req-hdr=0, res-hdr=25, res-body=50\r\n\r\n" +
	"GET /x HTTP/1.1\r\nA: b\r\n\r\n" + "HTTP/1.1 200 OK\r\nC: d\r\n\r\n" + "4\r\nabcd\r\n0; ieof\r\n\r\n"

func TestReadRequest(t *testing.T) {
	br := bufio.NewReader(strings.NewReader(goodRespmod))
	r, err := ReadRequest(br, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "RESPMOD" || r.Path != "/avscan" || r.Preview != 4 || r.Body != "res-body" ||
		string(r.ReqHdr) != "GET /x HTTP/1.1\r\nA: b\r\n\r\n" || string(r.ResHdr) != "HTTP/1.1 200 OK\r\nC: d\r\n\r\n" {
		t.Fatalf("%+v", r)
	}
	ch := newChunks(br)
	b, err := io.ReadAll(ch)
	if err != nil || string(b) != "abcd" || !ch.ieof() {
		t.Fatalf("body %q %v ieof %v", b, err, ch.ieof())
	}
}

// TestFramingAttacks: each malformed head is refused with 400 (or 501
// for a method not served), never guessed at.
func TestFramingAttacks(t *testing.T) {
	for name, in := range map[string]string{
		"no Encapsulated":                 "RESPMOD icap://h/avscan ICAP/1.0\r\nHost: h\r\n\r\n",
		"Encapsulated twice":              "RESPMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: null-body=0\r\nEncapsulated: null-body=0\r\n\r\n",
		"offsets going back":              "RESPMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: res-hdr=10, res-body=5\r\n\r\n",
		"body not last":                   "RESPMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: res-body=0, res-hdr=5\r\n\r\n",
		"unknown entity":                  "RESPMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: evil-hdr=0, res-body=5\r\n\r\n",
		"heads larger than the limit":     "RESPMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: res-hdr=0, res-body=999999\r\n\r\n",
		"heads cut short":                 "RESPMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: res-hdr=0, res-body=50\r\n\r\nHTTP/1.1 200 OK\r\n",
		"not ICAP":                        "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"not an icap URI":                 "RESPMOD http://h/avscan ICAP/1.0\r\nEncapsulated: null-body=0\r\n\r\n",
		"header without a colon":          "RESPMOD icap://h/avscan ICAP/1.0\r\nno colon\r\nEncapsulated: null-body=0\r\n\r\n",
		"bad Preview":                     "RESPMOD icap://h/avscan ICAP/1.0\r\nPreview: -1\r\nEncapsulated: null-body=0\r\n\r\n",
		"REQMOD carrying a response":      "REQMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: res-hdr=0, res-body=19\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"RESPMOD carrying a request body": "RESPMOD icap://h/avscan ICAP/1.0\r\nEncapsulated: req-hdr=0, req-body=18\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"a head line too long":            "RESPMOD icap://h/avscan ICAP/1.0\r\nX: " + strings.Repeat("a", 70000) + "\r\n\r\n",
	} {
		_, err := ReadRequest(bufio.NewReader(strings.NewReader(in)), 64<<10)
		if b, ok := err.(*BadRequest); !ok || b.Code != 400 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ReadRequest(bufio.NewReader(strings.NewReader("PUT icap://h/x ICAP/1.0\r\n\r\n")), 64<<10); err.(*BadRequest).Code != 501 {
		t.Errorf("unknown method: %v", err)
	}
	for name, body := range map[string]string{
		"chunk size not hex":        "zz\r\nabc\r\n0\r\n\r\n",
		"chunk longer than sent":    "10\r\nabc",
		"chunk without its CRLF":    "3\r\nabcX\r\n0\r\n\r\n",
		"negative chunk size":       "-3\r\nabc\r\n0\r\n\r\n",
		"chunk size past the bound": "fffffffffffffff\r\n",
	} {
		if _, err := io.ReadAll(newChunks(bufio.NewReader(strings.NewReader(body)))); err == nil {
			t.Errorf("%s: read without an error", name)
		}
	}
}

// TestBadFramingIsAnswered: on the wire, a malformed request gets its 400
// and the connection is closed.
func TestBadFramingIsAnswered(t *testing.T) {
	e := newEnv(t, "")
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "RESPMOD icap://%s/avscan ICAP/1.0\r\nEncapsulated: res-hdr=0, res-body=zz\r\n\r\n", e.addr)
	br := bufio.NewReader(c)
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "ICAP/1.0 400 ") {
		t.Fatalf("answer %q", l)
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("the connection was not closed cleanly: %v", err)
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte(goodRespmod))
	f.Add([]byte("OPTIONS icap://h/avscan ICAP/1.0\r\nHost: h\r\n\r\n"))
	f.Add([]byte("REQMOD icap://h/reqmod ICAP/1.0\r\nEncapsulated: req-hdr=0, req-body=18\r\n\r\nGET / HTTP/1.1\r\n\r\n1\r\na\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(strings.NewReader(string(data)))
		r, err := ReadRequest(br, 4096)
		if err != nil {
			return
		}
		if len(r.ReqHdr)+len(r.ResHdr) > 4096 {
			t.Fatalf("heads past the limit: %d", len(r.ReqHdr)+len(r.ResHdr))
		}
		io.Copy(io.Discard, io.LimitReader(newChunks(br), 1<<20))
	})
}
