package unpack

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"

	"context"

	"github.com/chromedp/chromedp"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/browsertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// smuggledFile is what the scripts below carry: EICAR in a file of a
// few hundred bytes.
var smuggledFile = []byte("MZ a program " + eicar.String + strings.Repeat(" and its data", 40))

// scriptPages are pages whose script decodes a file from a base64
// string, each written another way; each script leaves what it decoded
// in window.payload.
func scriptPages() map[string][]byte {
	b64 := base64.StdEncoding.EncodeToString(smuggledFile)
	url := base64.RawURLEncoding.EncodeToString(smuggledFile)
	pieces := func(s string, n int) (out []string) {
		for i := 0; i < len(s); i += n {
			out = append(out, s[i:min(i+n, len(s))])
		}
		return
	}
	page := func(script string) []byte {
		return []byte("<!DOCTYPE html><html><body><p>a page</p><script>\n" + script + "\n</script></body></html>")
	}
	return map[string][]byte{
		"one-string.html":   page(`window.payload = atob('` + b64 + `');`),
		"joined-lines.html": page("var s = " + joinQuoted(pieces(b64, 76), []string{"'", "\""}, " +\n    ") + ";\nwindow.payload = atob(s);"),
		"mixed-quotes.html": page("var s = " + joinQuoted(pieces(b64, 40), []string{"`", "'"}, " + ") + ";\nwindow.payload = atob(s);"),
		"short-pieces.html": page("var s = " + joinQuoted(pieces(b64, 12), []string{"'"}, "+") + ";\nwindow.payload = atob(s);"),
		"array-join.html":   page(`var p = ["` + strings.Join(pieces(b64, 64), `", "`) + `"];` + "\nwindow.payload = atob(p.join(''));"),
		"url-safe.html": page(`var u = '` + url + `';` + "\n" +
			`window.payload = atob(u.replace(/-/g, '+').replace(/_/g, '/'));`),
		"hex.html": page(`var h = "` + hex.EncodeToString(smuggledFile) + `";` + "\n" +
			`window.payload = h.match(/../g).map(x => String.fromCharCode(parseInt(x, 16))).join('');`),
		"hex-upper-joined.html": page("var h = " + joinQuoted(pieces(strings.ToUpper(hex.EncodeToString(smuggledFile)), 80), []string{"'"}, " +\n ") + ";\n" +
			`window.payload = h.match(/../g).map(x => String.fromCharCode(parseInt(x, 16))).join('');`),
		"blob-download.html": page(`const bytes = Uint8Array.from(atob("` + b64 + `"), c => c.charCodeAt(0));` + "\n" +
			`const a = document.createElement('a'); a.href = URL.createObjectURL(new Blob([bytes])); a.download = 'invoice.exe';` + "\n" +
			`window.payload = String.fromCharCode(...bytes);`),
	}
}

// joinQuoted writes pieces as string literals, quoted in turn with
// quotes, joined with sep.
func joinQuoted(pieces, quotes []string, sep string) string {
	var b strings.Builder
	for i, p := range pieces {
		if i > 0 {
			b.WriteString(sep)
		}
		q := quotes[i%len(quotes)]
		b.WriteString(q + p + q)
	}
	return b.String()
}

// TestBase64StringsReadAsAScriptReadsThem: Chromium runs each page's
// script; what it decodes is a member the walk gives, and EICAR is found
// in each page.
func TestBase64StringsReadAsAScriptReadsThem(t *testing.T) {
	pagesBuildTheFile(t, scriptPages())
}

// pagesBuildTheFile: Chromium runs each page's script, which leaves
// smuggledFile in window.payload; that file is a member the walk gives,
// and EICAR is found in each page, which does not hold the file as it
// is.
func pagesBuildTheFile(t *testing.T, pages map[string][]byte) {
	base := browsertest.ServePages(t, pages)
	ctx := browsertest.Start(t, chromedp.UserDataDir(t.TempDir()))
	for name, data := range pages {
		if bytes.Contains(data, smuggledFile) {
			t.Fatalf("%s: the file stands in the page as it is", name)
		}
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := chromedp.Do(tctx, chromedp.Navigate(base+"/"+name)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := chromedp.Run(tctx, chromedp.Evaluate[string](`btoa(window.payload)`))
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		decoded, _ := base64.StdEncoding.DecodeString(got)
		if !bytes.Equal(decoded, smuggledFile) {
			t.Fatalf("%s: the script built %q", name, decoded)
		}
		if !containsMember(walked(data), decoded) {
			t.Errorf("%s: the walk gives %q", name, walked(data))
		}
		if d := eicarFound(data); len(d) == 0 || d[0].Path == "" {
			t.Errorf("%s: %+v", name, d)
		}
	}
}

// TestBase64StringsNotMadeUp: what is no file's base64 gives no member:
// hashes and tokens, a rule of dashes, a letter repeated, lines of prose
// and of short base64 (keys of 32 characters, one a line).
func TestBase64StringsNotMadeUp(t *testing.T) {
	for name, text := range map[string]string{
		"integrity": `<script src="x.js" integrity="sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC"></script>`,
		"dashes":    strings.Repeat("-", 400),
		"a letter":  strings.Repeat("w", 400) + strings.Repeat("=", 300),
		"prose":     strings.Repeat("A line of ordinary words that runs on to the end of it\n", 40),
		"keys":      strings.Repeat("kJ8s0dQ2mZ7xR4vB1nC6tY9wE3uA5pLq\n", 40),
	} {
		if got := walked([]byte(text)); len(got) != 0 {
			t.Errorf("%s: %d members", name, len(got))
		}
	}
}

// base64LineForms are texts carrying a file as base64 in lines, each way a
// decoder that passes over white space reads as one string: what the
// lines hold between the markers.
func base64LineForms(file []byte) map[string]string {
	b64 := base64.StdEncoding.EncodeToString(file)
	lines := func(n int, eol, indent string) string {
		var b strings.Builder
		for i := 0; i < len(b64); i += n {
			b.WriteString(indent + b64[i:min(i+n, len(b64))] + eol)
		}
		return b.String()
	}
	return map[string]string{
		"PEM, lines of 64": "-----BEGIN CERTIFICATE-----\n" + lines(64, "\n", "") + "-----END CERTIFICATE-----\n",
		"lines of 76, CRLF (base64 -w76, .NET's InsertLineBreaks)": "payload follows\r\n" + lines(76, "\r\n", "") + "end\r\n",
		"a PowerShell here-string, indented":                       "$b = @\"\n" + lines(76, "\n", "    ") + "\"@\n[IO.File]::WriteAllBytes('a.exe', [Convert]::FromBase64String($b))\n",
		"a script's template literal, tabs":                        "const s = `\n" + lines(60, "\n", "\t") + "`;\nconst bytes = atob(s);\n",
	}
}

// TestBase64LinesReadAsDecodersReadThem: a file given as base64 in lines
// (a certificate's, an encoder's, a PowerShell here-string's, a script's
// template literal: each read as one string by decoders that pass over
// white space) was read a line at a time, each too short to be a file.
// Lines of 40 characters or more are now joined: Python's b64decode reads
// each form back as the walk does; the file is a member of each.
func TestBase64LinesReadAsDecodersReadThem(t *testing.T) {
	py := testenv.Need(t, "python3", "python3")
	for name, text := range base64LineForms(smuggledFile) {
		c := exec.Command(py, "-c", `import sys, base64, re
t = sys.stdin.read()
m = max(re.findall(r"(?m)(?:^[ \t]*[A-Za-z0-9+/=]{4,}\r?\n)+", t), key=len)
sys.stdout.buffer.write(base64.b64decode(re.sub(r"\s", "", m)))`)
		c.Stdin = strings.NewReader(text)
		out, err := c.Output()
		if err != nil || !bytes.Equal(out, smuggledFile) {
			t.Errorf("%s: Python reads %d bytes, %v", name, len(out), err)
		}
		got := walked([]byte(text))
		found := false
		for _, m := range got {
			found = found || bytes.Equal(m, smuggledFile)
		}
		if !found {
			t.Errorf("%s: %d members, none the file", name, len(got))
		}
	}
}

// FuzzBase64Runs: no text makes the search panic or give a run that is
// not made of the text's own characters.
func FuzzBase64Runs(f *testing.F) {
	for _, p := range scriptPages() {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		base64Runs(text, nil, base64Piece-1, nil, func(run []byte) bool {
			if len(run) > len(text) {
				t.Fatalf("a run of %d from %d bytes", len(run), len(text))
			}
			return true
		})
	})
}

// BenchmarkBase64RunsMailLines: a mail body of lines of one letter, as
// smtp-source writes them (10 KiB), is a run of base64 characters that
// no file's base64 is: looked at, never copied. Before the run's pieces
// were kept apart, joining them cost three times the look.
func BenchmarkBase64RunsMailLines(b *testing.B) {
	var d []byte
	for i := 1; i <= 128; i++ {
		d = append(d, byte('0'+i%10))
		d = append(d, bytes.Repeat([]byte("X"), 78)...)
		d = append(d, "\r\n"...)
	}
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		base64Runs(d, nil, 0, nil, func([]byte) bool { return true })
	}
}
