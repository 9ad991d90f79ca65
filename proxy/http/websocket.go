package http

import (
	"bytes"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/proxy"
)

// WebSocket (RFC 6455): a GET asking to upgrade to a WebSocket is sent on
// with its Upgrade and Connection fields (the only upgrade passed on; any
// other is dropped as a hop-by-hop field), and when the server agrees
// (101) the two connections are relayed both ways, as a CONNECT tunnel
// is. A WebSocket's messages are no files and are not scanned; the access
// log says "websocket, relayed unscanned". Inside an intercepted HTTPS
// connection this is what a browser's wss:// needs. A server that refuses
// answers as for any request, and its answer is scanned.

// isWebSocket tells whether req asks to become a WebSocket.
func isWebSocket(req *Request) bool {
	return req.Method == "GET" && req.Header.hasToken("Connection", "upgrade") &&
		strings.EqualFold(strings.TrimSpace(req.Header.Get("Upgrade")), "websocket") &&
		!req.Chunked && req.ContentLength <= 0
}

// switched answers a server's 101: for a WebSocket asked for, the head
// goes to the client and the connections are relayed; a switch nobody
// asked for is the server's fault. The session ends either way.
func (s *session) switched(req *Request, resp *Response, t target, tr *proxy.Transfer) {
	up := s.up
	s.up = nil // the connection is the tunnel's, or broken
	defer up.c.Close()
	if !isWebSocket(req) || !strings.EqualFold(strings.TrimSpace(resp.Header.Get("Upgrade")), "websocket") {
		tr.Rec.Status = 502
		s.log.Info("a server switched protocols unasked", zap.String("url", t.url))
		s.writeError(502, "Bad Gateway", "The server's response could not be read.", true)
		return
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "HTTP/1.1 101 %s\r\n", resp.Reason)
	resp.Header.write(&head)
	head.WriteString("\r\n")
	if _, err := s.c.Write(head.Bytes()); err != nil {
		return
	}
	tr.Rec.Result, tr.Rec.Detail = "TCP_TUNNEL", "websocket, relayed unscanned"
	// What either side sent ahead, already in a reader's buffer, goes first.
	if n := s.br.Buffered(); n > 0 {
		b, _ := s.br.Peek(n)
		if _, err := up.c.Write(b); err != nil {
			return
		}
	}
	if n := up.br.Buffered(); n > 0 {
		b, _ := up.br.Peek(n)
		if _, err := s.c.Write(b); err != nil {
			return
		}
	}
	s.relay(tr, up.c)
}
