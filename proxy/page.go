package proxy

import (
	"bytes"
	"fmt"
	"html"
	"html/template"
	"os"
	"time"

	"github.com/fsigkd/fsigkd/outcome"
)

// defaultPage is the block page of the HTTP proxy and the ICAP server;
// block_page replaces it. Fields: .URL, .Name (the detection, empty when
// the object was blocked for another reason), .Reason, .Time.
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

// Refusal is what the block page says of a refused web object (an HTTP
// download or upload, an ICAP message): the name of what was found, or
// the reason it was refused without one.
func Refusal(out Outcome) (name, reason string) {
	switch out.Kind {
	case outcome.Oversize:
		return "", "The object is larger than this gateway scans."
	case outcome.NotScanned:
		return "", "The object could not be scanned, and this gateway does not pass what it has not scanned."
	case outcome.Infected, outcome.Riskware, outcome.Suspected, outcome.Encrypted, outcome.Blocked:
		return out.Name, ""
	case outcome.Clean, outcome.Skipped:
	}
	return "", ""
}

// BlockPage is the page a blocked web object is replaced with.
type BlockPage struct{ t *template.Template }

// LoadBlockPage reads block_page ("": the built-in page).
func LoadBlockPage(path string) (*BlockPage, error) {
	text := defaultPage
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("block_page: %v", err)
		}
		text = string(b)
	}
	t, err := template.New("block").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("block_page: %v", err)
	}
	return &BlockPage{t}, nil
}

// Render is the page for url, blocked for name (a detection) or reason.
func (p *BlockPage) Render(url, name, reason string) []byte {
	var b bytes.Buffer
	if err := p.t.Execute(&b, struct{ URL, Name, Reason, Time string }{url, name, reason, time.Now().Format(time.RFC3339)}); err != nil {
		b.Reset()
		b.WriteString("Blocked: " + html.EscapeString(name+" "+reason))
	}
	return b.Bytes()
}
