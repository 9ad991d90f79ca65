package http

import (
	"bufio"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	gohttp "net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// wsAccept is the Sec-WebSocket-Accept a server answers key with.
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsEcho is a WebSocket origin: /ws upgrades and then echoes every byte
// (the gateway reads no frames, so bytes stand for them); /refused
// answers 403 with a body.
func wsEcho() gohttp.Handler {
	return gohttp.HandlerFunc(func(w gohttp.ResponseWriter, r *gohttp.Request) {
		if r.URL.Path != "/ws" || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			w.WriteHeader(403)
			io.WriteString(w, "no socket here")
			return
		}
		c, brw, err := w.(gohttp.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		brw.Flush()
		io.Copy(c, brw)
	})
}

// wsDial asks for an upgrade on c with target as the request line's
// target; the response, and a reader for what follows it.
func wsDial(t *testing.T, c net.Conn, target, host string) (*gohttp.Response, *bufio.Reader) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", target, host)
	br := bufio.NewReader(c)
	resp, err := gohttp.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, br
}

// wsEchoes checks that what is written on c comes back through br.
func wsEchoes(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	for _, m := range []string{"hello", strings.Repeat("x", 200000)} {
		go c.Write([]byte(m))
		got := make([]byte, len(m))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != m {
			t.Fatalf("echo of %d bytes: %v", len(m), err)
		}
	}
}

// TestWebSocketRelayed: a WebSocket is relayed both ways, over plain HTTP
// (absolute target) and inside an intercepted HTTPS connection (wss://),
// its server's 101 with the accept key reaching the client unchanged; an
// upgrade the server refuses gets the server's answer; the access log
// says the socket was relayed unscanned.
func TestWebSocketRelayed(t *testing.T) {
	plain := httptest.NewServer(wsEcho())
	t.Cleanup(plain.Close)
	root := newTestCA(t)
	secure := origin(t, root.issue(t, []string{"127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), tls.NoClientCert, wsEcho())
	e := newEnv(t, "tls_intercept = yes\ntls_ca_file = "+root.file+connectPorts(secure))
	pool, _ := e.gatewayCA(t)
	host := func(u string) string { return u[strings.Index(u, "//")+2:] }

	t.Run("plain", func(t *testing.T) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		resp, br := wsDial(t, c, plain.URL+"/ws", host(plain.URL))
		if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept("dGhlIHNhbXBsZSBub25jZQ==") {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
		wsEchoes(t, c, br)
	})
	t.Run("refused", func(t *testing.T) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		resp, _ := wsDial(t, c, plain.URL+"/refused", host(plain.URL))
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 403 || string(b) != "no socket here" {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	})
	t.Run("wss", func(t *testing.T) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", host(secure.URL))
		br := bufio.NewReader(c)
		if resp, err := gohttp.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		resp, tbr := wsDial(t, tc, "/ws", host(secure.URL))
		if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept("dGhlIHNhbXBsZSBub25jZQ==") {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
		wsEchoes(t, tc, tbr)
	})
	e.waitLog(plain.URL+"/ws", "websocket", "https://"+host(secure.URL)+"/ws")
}
