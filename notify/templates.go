package notify

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// Fields are what a notice template may use.
type Fields struct {
	Service    string // http, smtp, ftp
	Name       string // the detection
	Object     string // URL, ftp://server/file, or the mail's subject
	Client     string
	Action     string
	Sender     string
	Recipients []string
	Time       string
}

// The built-in templates. A template's first line is "Subject: ...", then
// a blank line, then the body.
var builtin = map[string]string{
	"admin": `Subject: [fsigkd] {{.Service}}: {{.Name}} in {{.Object}}

Detection: {{.Name}}
Service: {{.Service}}
Object: {{.Object}}
Client: {{.Client}}
{{- if .Sender}}
Sender: <{{.Sender}}>{{end}}
{{- if .Recipients}}
Recipients: {{range $i, $r := .Recipients}}{{if $i}}, {{end}}<{{$r}}>{{end}}{{end}}
Action: {{.Action}}
Time: {{.Time}}
`,
	"recipient": `Subject: Virus found in a mail to you

A mail to you from <{{.Sender}}> carried {{.Name}} and was deleted by the
gateway. Time: {{.Time}}.
`,
	"sender": `Subject: Your mail was not delivered: virus found

Your mail to {{range $i, $r := .Recipients}}{{if $i}}, {{end}}<{{$r}}>{{end}} carried {{.Name}} and
was not delivered. Time: {{.Time}}.
`,
}

// Templates are the notice templates: admin.txt, recipient.txt and
// sender.txt from notice_templates, the built-in ones for those missing.
type Templates struct {
	t map[string]*template.Template
}

// LoadTemplates reads dir ("" for the built-in templates only).
func LoadTemplates(dir string) (*Templates, error) {
	ts := &Templates{t: map[string]*template.Template{}}
	for name, text := range builtin {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name+".txt"))
			switch {
			case err == nil:
				text = string(b)
			case !errors.Is(err, os.ErrNotExist):
				return nil, err
			}
		}
		t, err := template.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			return nil, fmt.Errorf("notice template %s: %v", name, err)
		}
		if _, _, err := render(t, Fields{Recipients: []string{"x"}}); err != nil {
			return nil, fmt.Errorf("notice template %s: %v", name, err)
		}
		ts.t[name] = t
	}
	return ts, nil
}

// Render fills template kind (admin, recipient, sender).
func (ts *Templates) Render(kind string, f Fields) (Notice, error) {
	if f.Time == "" {
		f.Time = time.Now().Format(time.RFC1123Z)
	}
	subject, body, err := render(ts.t[kind], f)
	return Notice{Subject: subject, Body: body}, err
}

func render(t *template.Template, f Fields) (string, string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, f); err != nil {
		return "", "", err
	}
	text := strings.ReplaceAll(b.String(), "\r\n", "\n")
	first, body, _ := strings.Cut(text, "\n")
	subject, ok := strings.CutPrefix(first, "Subject:")
	if !ok {
		return "", "", errors.New(`the first line must be "Subject: ..."`)
	}
	body = strings.TrimPrefix(body, "\n")
	return strings.TrimSpace(subject), strings.ReplaceAll(body, "\n", "\r\n"), nil
}
