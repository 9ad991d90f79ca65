package http

import (
	"bytes"
	"fmt"
	"html"
	"time"

	"github.com/fsigkd/fsigkd/proxy"
)

// block answers 403 with the block page: a refusal, logged TCP_DENIED
// as Squid logs what its rules deny.
func (s *session) block(tr *proxy.Transfer, url, name, reason string) {
	tr.Rec.Status, tr.Rec.Result = 403, "TCP_DENIED"
	page := s.p.page.Render(url, name, reason)
	tr.Rec.Bytes = int64(len(page))
	s.writePage(403, "Forbidden", page, false)
}

// writeError answers a plain error page.
func (s *session) writeError(code int, reason, text string, closeAfter bool) {
	body := fmt.Sprintf("<!DOCTYPE html>\n<html><head><title>%d %s</title></head><body><h1>%d %s</h1><p>%s</p></body></html>\n",
		code, reason, code, reason, html.EscapeString(text))
	s.writePage(code, reason, []byte(body), closeAfter)
}

func (s *session) writePage(code int, reason string, body []byte, closeAfter bool) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\nCache-Control: no-store\r\n", code, reason, len(body))
	if closeAfter {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	s.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	s.c.Write(b.Bytes())
	s.c.SetWriteDeadline(time.Time{})
	s.pageBytes = int64(len(body)) // for the access log of the request
}
