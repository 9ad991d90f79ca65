package icap

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/proxytest"
)

// endlessRespmod starts a RESPMOD allowing 204 (preview -1: none) whose body
// never ends: a goroutine sends 64 KiB chunks until the connection fails,
// at once without a preview, else after the preview when more is called.
// It returns the connection and a reader of the answer.
func endlessRespmod(t *testing.T, addr string, preview int) (c net.Conn, br *bufio.Reader, more func()) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	reqHdr := "GET http://origin.test/endless HTTP/1.1\r\nHost: origin.test\r\n\r\n"
	resHdr := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"
	head := fmt.Sprintf("RESPMOD icap://%s/respmod ICAP/1.0\r\nHost: %s\r\nAllow: 204\r\n", addr, addr)
	if preview >= 0 {
		head += fmt.Sprintf("Preview: %d\r\n", preview)
	}
	head += fmt.Sprintf("Encapsulated: req-hdr=0, res-hdr=%d, res-body=%d\r\n\r\n", len(reqHdr), len(reqHdr)+len(resHdr))
	br = bufio.NewReader(c)
	if _, err := io.WriteString(c, head+reqHdr+resHdr); err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	send := func() {
		for {
			c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
				return
			}
		}
	}
	if preview >= 0 {
		// The preview, then the rest only when asked.
		fmt.Fprintf(c, "%x\r\n%s\r\n0\r\n\r\n", preview, chunk[:preview])
		return c, br, func() { go send() }
	}
	go send()
	return c, br, nil
}

func answerHead(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	var out strings.Builder
	for {
		l, err := br.ReadString('\n')
		out.WriteString(l)
		if err != nil {
			t.Fatalf("answer: %v after %q", err, out.String())
		}
		if l == "\r\n" {
			return out.String()
		}
	}
}

// TestEndlessBodyFillsNoDisk: a body without end (an ICAP client
// relaying an endless origin) is spooled up to max_scan_size and no
// further. With oversize_action = block the client gets the block page
// and the connection ends; with pass its message comes back as it
// arrives, unscanned, the spool staying at the limit; in a preview
// larger than the limit, the block page answers the preview and the
// connection goes on.
func TestEndlessBodyFillsNoDisk(t *testing.T) {
	t.Run("block", func(t *testing.T) {
		e := newEnv(t, "max_scan_size = 1M\noversize_action = block")
		_, br, _ := endlessRespmod(t, e.addr, -1)
		head := answerHead(t, br)
		if !strings.HasPrefix(head, "ICAP/1.0 200") || !strings.Contains(head, "res-hdr=0") {
			t.Fatalf("answer:\n%s", head)
		}
		if got, _ := br.ReadString('\n'); !strings.HasPrefix(got, "HTTP/1.1 403") {
			t.Fatalf("encapsulated: %q", got)
		}
		if used := proxytest.SpoolBytes(e.p.Spool.Path); used > 2<<20 {
			t.Errorf("the spool holds %d bytes for a 1 MiB limit", used)
		}
		io.Copy(io.Discard, br) // the connection ends
		e.waitLog("over%20max_scan_size", "ACTION:DENY")
	})
	t.Run("pass", func(t *testing.T) {
		e := newEnv(t, "max_scan_size = 1M")
		c, br, _ := endlessRespmod(t, e.addr, -1)
		if head := answerHead(t, br); !strings.HasPrefix(head, "ICAP/1.0 200") {
			t.Fatalf("answer:\n%s", head)
		}
		answerHead(t, br) // the response's own head
		got, err := io.CopyN(io.Discard, br, 8<<20)
		if err != nil {
			t.Fatalf("the message came back for %d bytes: %v", got, err)
		}
		if used := proxytest.SpoolBytes(e.p.Spool.Path); used > 2<<20 {
			t.Errorf("the spool holds %d bytes for a 1 MiB limit", used)
		}
		c.Close()
		e.waitLog("over%20max_scan_size%20passed%20unscanned")
	})
	t.Run("in a preview", func(t *testing.T) {
		e := newEnv(t, "max_scan_size = 1K\noversize_action = block\npreview_size = 4096")
		c, br, _ := endlessRespmod(t, e.addr, 4096)
		head := answerHead(t, br)
		if !strings.HasPrefix(head, "ICAP/1.0 200") {
			t.Fatalf("answer:\n%s", head)
		}
		// The block page, and the connection still serves.
		var body strings.Builder
		for !strings.HasSuffix(body.String(), "\r\n0\r\n\r\n") {
			l, err := br.ReadString('\n')
			body.WriteString(l)
			if err != nil {
				t.Fatalf("block page: %v after %q", err, body.String())
			}
		}
		fmt.Fprintf(c, "OPTIONS icap://%s/avscan ICAP/1.0\r\nHost: %s\r\nEncapsulated: null-body=0\r\n\r\n", e.addr, e.addr)
		if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "ICAP/1.0 200") {
			t.Fatalf("OPTIONS after the preview's answer: %q", l)
		}
	})
	t.Run("passed in a preview", func(t *testing.T) {
		e := newEnv(t, "max_scan_size = 1K\npreview_size = 4096")
		c, br, more := endlessRespmod(t, e.addr, 4096)
		if head := answerHead(t, br); !strings.HasPrefix(head, "ICAP/1.0 100") {
			t.Fatalf("answer to the preview:\n%s", head)
		}
		more()
		if head := answerHead(t, br); !strings.HasPrefix(head, "ICAP/1.0 200") {
			t.Fatalf("answer:\n%s", head)
		}
		answerHead(t, br) // the response's own head
		if got, err := io.CopyN(io.Discard, br, 8<<20); err != nil {
			t.Fatalf("the message came back for %d bytes: %v", got, err)
		}
		if used := proxytest.SpoolBytes(e.p.Spool.Path); used > 2<<20 {
			t.Errorf("the spool holds %d bytes for a 1 KiB limit", used)
		}
		c.Close()
	})
}
