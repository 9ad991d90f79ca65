package engine

import (
	"encoding/hex"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// ourScriptView is the engine's javascript view of a page.
func ourScriptView(page []byte) string {
	_, _, scripts := htmlViews(page, nil, nil)
	return string(scriptView(nil, page, scripts))
}

// TestPageScriptsAsClamscanFindsThem: where a page's scripts begin and
// end, as ClamAV's reader of pages hands them to its normaliser, held
// byte for byte to the javascript view clamscan writes: scripts with
// attributes, in capitals, several, one never closed, a '<' or an HTML
// comment inside one (which hide its </script> from ClamAV's reader, so
// that the script goes on), a closing tag with arguments, carriage
// returns, zero bytes, and scripts in a page's comment or style sheet.
func TestPageScriptsAsClamscanFindsThem(t *testing.T) {
	pages := map[string]string{
		"attributes":    `<html><script type="text/javascript" language='JavaScript'>var A = 1;</script></html>`,
		"capitals":      "<HTML><SCRIPT>Var B = 'X'</SCRIPT></HTML>",
		"several":       "<html><script>a=1</script><p>x</p><script src=x.js></script>\n<script>\nb = 2\n</script>\n</html>",
		"never-closed":  "<html><script>var c = 1; d(c)\n</body></html>",
		"less-than":     "<html><script>if (a <b) x=1; y=2<</script><p>after</p><script>z=3</script></html>",
		"comment":       "<html><script><!-- hide\nvar e = 1; //--></script>more</html>",
		"closing-args":  "<html><script>f = 1</script foo>text</html>",
		"closing-ws":    "<html><script>g = 1</script \n>text</html>",
		"crlf":          "<html>\r\n<script>\r\nvar h = 'a\r\nb'\r\n</script>\r\n</html>\r\n",
		"nul":           "<html><script>va\x00r i = \"j\x00k\"</script></html>",
		"hidden":        "<html><!-- <script>var k = 1</script> --><script>l=2</script></html>",
		"in-style":      "<html><style>p{}</style><script>m=1</script><style><script>n=2</script></style></html>",
		"trailing-ws":   "<html><script>o = \"open</script>  \t \n\n  <p>p</p></html>",
		"uppercase-end": "<html><script>p = 1</SCRIPT></html>",
		"eval":          `<html><script>eval("var q = 1; r(q)")</script></html>`,
	}
	objects := map[string][]byte{}
	for name, p := range pages {
		objects[name+".html"] = []byte(p)
	}
	views := testenv.ClamscanView(t, objects, "javascript")
	for name, p := range objects {
		want, ok := views[name]
		if !ok {
			t.Errorf("%s: clamscan wrote no javascript view", name)
			continue
		}
		if got := ourScriptView(p); got != want {
			t.Errorf("%s: %q\n got %q\nwant %q", name, p, got, want)
		}
	}
}

// TestRandomPagesScriptsAsClamscanFindsThem: pages made at random
// (seeded) of the pieces a page's reader reacts to inside and around
// scripts (tags opened and closed in either case and with arguments, a
// lone '<', HTML comments, style sheets, carriage returns, zero bytes,
// an eval), their javascript view held byte for byte to clamscan's.
// (A run of 1,500 found none different.)
func TestRandomPagesScriptsAsClamscanFindsThem(t *testing.T) {
	pieces := []string{"<script>", "</script>", "<SCRIPT type=x>", "</script >", "<", ">", "!", "-", "<!--", "-->",
		"a", "var b", " ", "\n", "\r\n", "'s'", "\"d\"", "x=1;", "</p>", "<p>", "eval(\"c\")", "\x00", "<style>", "</style>"}
	r := rand.New(rand.NewSource(11))
	pages := map[string][]byte{}
	for i := range 300 {
		var b strings.Builder
		b.WriteString("<html><body>")
		for n := 5 + r.Intn(30); n > 0; n-- {
			b.WriteString(pieces[r.Intn(len(pieces))])
		}
		b.WriteString("</body></html>\n")
		pages[fmt.Sprintf("pg%04d.html", i)] = []byte(b.String())
	}
	views := testenv.ClamscanView(t, pages, "javascript")
	scripts := 0
	for name, p := range pages {
		want := views[name] // none: no script
		if want != "" {
			scripts++
		}
		if got := ourScriptView(p); got != want {
			t.Errorf("%s: %q\n got %q\nwant %q", name, p, got, want)
		}
	}
	if scripts < 100 {
		t.Fatalf("only %d pages with a script", scripts)
	}
}

// TestScriptSignaturesAsClamscanFindsThem: signatures written against
// the normalised scripts (renamed names, strings joined, unescape and
// eval decoded, a packer unpacked) find the same pages in the engine as
// in clamscan, as HTML (target 3), any file (0) and text (7); written
// against the script as it is, target 7 finds nothing in a page.
func TestScriptSignaturesAsClamscanFindsThem(t *testing.T) {
	hx := func(s string) string { return hex.EncodeToString([]byte(s)) }
	dir := htmlSigs(t, map[string]string{
		"Test.JS.Renamed": `var n000="payload-one";function n001(n002){`,
		"Test.JS.Joined":  `document.write("<iframe src=http://evil.example/>")`,
		"Test.JS.Eval":    `var n000=window.createobject("wscript.shell")`,
	},
		"Test.JS.Any:0:*:"+hx(`"unescaped-payload-mark"`),
		"Test.JS.Text:7:*:"+hx(`n000.run("cmd /c evil-script-text")`),
		"Test.JS.Packed:3:*:"+hx(`alert("packed-evil-mark")`),
		"Test.JS.Raw7:7:*:"+hx(`RAW-SEVEN-SCRIPT`),
	)
	page := func(script string) []byte {
		return []byte("<html><body><p>hello</p>\n<script type=\"text/javascript\">\n" + script + "\n</script>\n</body></html>\n")
	}
	objects := map[string][]byte{
		"renamed.html": page("var Secret = 'PAYLOAD-' + \"ONE\";\nfunction Go(Arg) { return Secret + Arg }"),
		"joined.html":  page(`document.write("<ifr" + 'ame src=' + "http://evil.example/>")`),
		"eval.html":    page(`eval("var sh = window.createObject(\"WScript.Shell\")")`),
		"any.html":     page(`x = unescape("%22unescaped%2Dpayload%2dmark%22")`),
		"text.html":    page(`var w = 1; w.run("cmd /c " + "evil-script-text")`),
		"packed.html":  page(`eval(function(p,a,c,k,e,d){while(c--)if(k[c])p=p.replace(new RegExp('\\b'+c.toString(a)+'\\b','g'),k[c]);return p}('0("1")',10,2,'alert|packed-evil-mark'.split('|'),0,{}))`),
		"raw7.html":    page(`x = "RAW-SEVEN-SCRIPT"`),
		"clean.html":   page(`var ok = "nothing to see"; function f(a) { return a }`),
	}
	sameAsClamscan(t, dir, objects, 6)
}

// FuzzScriptView: no page, however its scripts are written, makes the
// normaliser fail, or its view grow past a bound of the page's size (a
// name renamed is up to eight times longer; what the decoders write is
// bounded by their work, a few MiB and some bytes for each token).
func FuzzScriptView(f *testing.F) {
	f.Add([]byte(`<script>eval("var a=1;" + 'b'); unescape("%41%u0042")</script>`))
	f.Add([]byte(`<script>eval(function(p,a,c,k,e,r){}('0 1',62,2,'a|b'.split('|'),0,{}))</script>`))
	f.Add([]byte(`<script>dF('%2A%3Bsmvbsu%2A%3B4')</script><script>x="open`))
	f.Fuzz(func(t *testing.T, page []byte) {
		_, _, scripts := htmlViews(page, nil, nil)
		v := scriptView(nil, page, scripts)
		if bound := 32*len(page) + 8<<20; len(v) > bound {
			t.Fatalf("%d bytes of page made a view of %d", len(page), len(v))
		}
	})
}
