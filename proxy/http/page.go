package http

import (
	"bytes"
	"fmt"
	"html"
	"time"

	"github.com/fsigkd/fsigkd/logs"
)

// defaultPage is the block page; block_page replaces it. Fields: .URL,
// .Name (the detection, empty when the object was blocked for another
// reason), .Reason, .Time.
const defaultPage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Blocked by the gateway</title></head>
<body>
<h1>Access blocked</h1>
<p>The gateway blocked <code>{{.URL}}</code>.</p>
{{if .Name}}<p>A virus or other threat was found: <strong>{{.Name}}</strong>.</p>{{end}}
{{if .Reason}}<p>{{.Reason}}</p>{{end}}
<p>If you think this is wrong, ask your administrator, naming the time: {{.Time}}.</p>
</body></html>
`

// block answers 403 with the block page.
func (s *session) block(rec *logs.Access, url, name, reason string) {
	rec.Status = 403
	var b bytes.Buffer
	err := s.p.page.Execute(&b, struct{ URL, Name, Reason, Time string }{url, name, reason, time.Now().Format(time.RFC3339)})
	if err != nil {
		b.Reset()
		b.WriteString("Blocked: " + html.EscapeString(name+" "+reason))
	}
	rec.Bytes = int64(b.Len())
	s.writePage(403, "Forbidden", b.Bytes(), false)
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
