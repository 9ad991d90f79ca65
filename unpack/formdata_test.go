package unpack

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
)

// formOf is a multipart/form-data body without its header, as a server
// reads an upload: a preamble, then a part whose content is base64.
func formOf(preamble, boundary string, content []byte) []byte {
	return []byte(preamble + "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString(content) + "\r\n--" + boundary + "--\r\n")
}

// walkedEICAR tells whether a walk of d shows EICAR itself somewhere.
func walkedEICAR(d []byte) bool {
	found := false
	Walk(d, Options{MIME: true}, Limits{}, func(b []byte, where string) bool {
		found = found || bytes.Contains(b, []byte(eicar.String))
		return found // stop once seen
	})
	return found
}

// TestFormUploadPreambleHidesNothing: the parts of an upload without its
// header were walked only when its first line was the delimiter; a
// preamble before it (which Go's mime/multipart, as PHP, skips) left a
// base64 part undecoded. Every form of it is walked now: a preamble, a
// decoy delimiter-like line with a header before the real one, a
// preamble that mentions Content-Type. The server's own reader is asked
// first that it reads EICAR out of each.
func TestFormUploadPreambleHidesNothing(t *testing.T) {
	const b = "----WebKitFormBoundaryQ2x"
	for name, pre := range map[string]string{
		"no preamble":        "",
		"a line of preamble": "hello\r\n",
		"a long preamble":    strings.Repeat("padding text, nothing to see\r\n", 1000),
		"a decoy delimiter":  "--decoy\r\nContent-Type: text/plain\r\n\r\nnot a part\r\n",
		"many decoys":        strings.Repeat("--decoy1\r\nContent-Type: text/plain\r\n\r\n--decoy2\r\nContent-Type: x\r\n", 50),
		"content-type prose": "Content-Type: said in the preamble\r\n",
	} {
		body := formOf(pre, b, []byte(eicar.String))
		r := multipart.NewReader(bytes.NewReader(body), b)
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("%s: the server's reader finds no part: %v", name, err)
		}
		raw, _ := io.ReadAll(p)
		if dec, _ := base64.StdEncoding.DecodeString(string(raw)); string(dec) != eicar.String {
			t.Fatalf("%s: the server's reader does not read EICAR: %q", name, raw)
		}
		if !walkedEICAR(body) {
			t.Errorf("%s: the base64 part was not decoded", name)
		}
		if walkedEICAR(formOf(pre, b, []byte("a harmless file"))) {
			t.Errorf("%s: EICAR seen in the clean twin", name)
		}
	}
}

// BenchmarkFormCandidates: a preamble full of delimiter-like lines that
// never come again, before 32 MiB, costs one pass over the body, not one
// a line.
func BenchmarkFormCandidates(b *testing.B) {
	var pre strings.Builder
	for i := 0; pre.Len() < preambleMax; i++ {
		pre.WriteString("--x" + strings.Repeat("y", i%60) + string(rune('a'+i%26)) + "\r\nContent-Type: a\r\n")
	}
	body := append([]byte(pre.String()), bytes.Repeat([]byte("z"), 32<<20)...)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		multipartBody(body)
	}
}
