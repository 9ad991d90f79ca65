package jsnorm

import (
	"bytes"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// clamscanViews runs clamscan over one page a script and returns, by
// the script's name, the javascript view it wrote.
func clamscanViews(t *testing.T, scripts map[string]string) map[string]string {
	t.Helper()
	pages := map[string][]byte{}
	for name, s := range scripts {
		pages[name+".html"] = []byte("<html><body>\n<script>" + s + "</script>\n</body></html>\n")
	}
	views := map[string]string{}
	for name, v := range testenv.ClamscanView(t, pages, "javascript") {
		views[strings.TrimSuffix(name, ".html")] = v
	}
	return views
}

// ours is the view of a page of one script as the engine gives it the
// text: up to the end of </script> and the white space after it (the
// page's line feed), zero bytes dropped, line feeds spaces.
func ours(s string) string {
	s = strings.ReplaceAll(s+"</script>\n", "\x00", "")
	return string(AppendScript(nil, []byte(strings.ReplaceAll(s, "\n", " "))))
}

// sameAsClamscan compares, script by script.
func sameAsClamscan(t *testing.T, scripts map[string]string) {
	t.Helper()
	views := clamscanViews(t, scripts)
	names := make([]string, 0, len(scripts))
	for n := range scripts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		want, ok := views[n]
		if !ok {
			t.Errorf("%s: clamscan wrote no view", n)
			continue
		}
		if got := ours(scripts[n]); got != want {
			t.Errorf("%s: %q\n got %q\nwant %q", n, scripts[n], got, want)
		}
	}
}

// TestScriptsAsClamscanNormalisesThem: the forms ClamAV's normaliser
// acts on, each held to clamscan's javascript view of the same page.
func TestScriptsAsClamscanNormalisesThem(t *testing.T) {
	sameAsClamscan(t, map[string]string{
		"empty":          "",
		"number-at-end":  "x=5",
		"name-at-end":    "alert(1);foo",
		"line-comment":   "a = 1 // comment here\nb = 2",
		"block-comment":  "a = 1 /* x */ b /*/ c */ d",
		"less-than":      "a<b; if (a>c) {}",
		"case":           "Var X = 1; VAR y; var Z; z; Z",
		"escapes":        `var s = 'it\'s'; var t = "a\x41\u0042c\n\t\0z\q"`,
		"eval":           `eval("var q=1"); q; function f(){ q }`,
		"numbers":        "x = 1.5 + 1e5 + 0.0000001 + 123456789.0 + 3. + 1.5e3 + 2.5E-3 + 1.5ex",
		"big-numbers":    "x = 4294967297 + 99999999999999999999 + 1e400 + 0x1F + .5",
		"unescape":       "document.write(unescape('%3C%73cript%u0041%zz%4'))",
		"declarations":   "var a, b, c; function g(p, q) { var r, s; return p }",
		"fold":           `x = "a" + "b" + 'c' + d + "e" + "f"`,
		"members":        "var document = 1; window.document.write(document)",
		"nested":         "function outer(a) { function inner(b) { return a + b } return inner(a) } outer(1)",
		"anonymous":      "var f = function(a, b) { return a * b }; f(2, 3)",
		"objects":        "var o = {a: 1, b: [1, 2, {c: 3}]}, p = 4; q = o.a",
		"brackets":       "var x = [4, y, u], z; x[0] = z",
		"eval-names":     `var n = 1; eval("var m = n + 1; eval('m')")`,
		"eval-unescape":  `eval(unescape("%76%61%72%20%7a%3d%31%3b"))`,
		"eval-cut":       `eval("a=b"); eval("c")`,
		"open-string":    `x = "never closed`,
		"open-paren":     `alert((1 + 2`,
		"extra-close":    "} } x = 1",
		"keywords":       "if (typeof x == 'undefined') { return null } else { throw new Error(true) }",
		"operators":      "a >>>= b; c !== d; e === f; g <<= 1; h && i || !j; k ? l : m; n++; --o",
		"regex":          "var r = /ab+c/gi; s.replace(/\\//g, '')",
		"backslash-name": `a\u0041b = 1; c\x = 2`,
		"script-name":    "var script = 1",
		"quote-escaped":  `x = "a\\"; y = "b"`,
		"upper-string":   `x = "ABC DEF"`,
		"high-bytes":     "x = \"caf\xc3\xa9\"; y\xc3\xa9 = 1",
		"dean-edwards":   `eval(function(p,a,c,k,e,r){e=String;if(!''.replace(/^/,String)){while(c--)r[c]=k[c]||c;k=[function(e){return r[e]}];e=function(){return'\\w+'};c=1};while(c--)if(k[c])p=p.replace(new RegExp('\\b'+e(c)+'\\b','g'),k[c]);return p}('0 1=\'2\';3(1)',4,4,'var|x|evil|alert'.split('|'),0,{}))`,
		"packer-named":   `function unpack(p,a,c,k,e,d){return p} var x = 1; unpack('0(1)',62,2,'alert|bad'.split('|'),0,{})`,
		"scriptasylum":   `dF('%2A%3Bsmvbsu%2A%3B4')`,
		"semicolon-eat":  `eval("x"); y`,
	})
}

// TestRandomScriptsAsClamscanNormalisesThem: scripts made of the pieces
// the normaliser reacts to, put together at random (seeded: the same
// scripts every run), held to clamscan. ('<' and '!' are left out: they
// may make the page's reader miss the </script>, which the engine's
// tests of pages hold to clamscan.)
func TestRandomScriptsAsClamscanNormalisesThem(t *testing.T) {
	pieces := []string{
		"var ", "function ", "a", "b", "Foo", "x1", "$", "_", "(", ")", "{", "}", "[", "]",
		",", ";", ".", "=", "+", "==", "\"s\"", "'T'", "\"\\x41\"", "1", "2.5", "1e3", " ",
		"\n", "// c\n", "/* c */", "eval(", "unescape(", "\"%41\"", ">", "\\u0041",
		"return ", "this", "null",
	}
	r := rand.New(rand.NewSource(1))
	scripts := map[string]string{}
	for i := 0; i < 200; i++ {
		var b strings.Builder
		for n := 5 + r.Intn(40); n > 0; n-- {
			b.WriteString(pieces[r.Intn(len(pieces))])
		}
		scripts[fmt.Sprintf("r%03d", i)] = b.String()
	}
	sameAsClamscan(t, scripts)
}

// TestScriptViewEndsAsClamscanWritesIt: the "</script>" ClamAV adds
// when the view does not end so, or when its 64 KiB buffer holds fewer
// than nine bytes at the end.
func TestScriptViewEndsAsClamscanWritesIt(t *testing.T) {
	scripts := map[string]string{}
	for _, n := range []int{65536 - 17, 65536 - 16, 65536 - 12, 65536 - 8, 65536 - 3} {
		// "<script>" + x="...pad..." + "</script>": a view of n+... bytes.
		pad := strings.Repeat("a", n-len(`<script>x=""</script>`))
		scripts[fmt.Sprintf("pad%d", n)] = `x="` + pad + `"`
		scripts[fmt.Sprintf("padq%d", n)] = `x="` + pad + `"; /* */`
	}
	sameAsClamscan(t, scripts)
}

func TestAppendScriptSeparatesScripts(t *testing.T) {
	v := AppendScript(nil, []byte("a=1</script>"))
	v = AppendScript(v, []byte("b=2</script>"))
	if want := "<script>a=1</script>\n<script>b=2</script>"; string(v) != want {
		t.Fatalf("got %q, want %q", v, want)
	}
}

// TestManyEvalsCannotMakeItQuadratic: a script of a hundred thousand
// evals (each a replacement in ClamAV's token list, which it moves
// whole) is read in bounded work; the decoders stop past the bound.
func TestManyEvalsCannotMakeItQuadratic(t *testing.T) {
	for _, unit := range []string{`eval("x");`, `function(p,a,c,k,e,r){}('0',1,1,'a'.split('|'),0,{});`, `dF('%41%42%431');`, `unescape("%41")+`} {
		script := bytes.Repeat([]byte(unit), 100000)
		script = append(script, "</script>"...)
		done := make(chan []byte)
		go func() { done <- AppendScript(nil, script) }()
		select {
		case v := <-done:
			if !bytes.HasPrefix(v, []byte("<script>")) {
				t.Fatalf("%s: view %q...", unit, v[:min(len(v), 40)])
			}
		case <-time.After(30 * time.Second): // quadratic, it takes hours
			t.Fatalf("%s: not done in time", unit)
		}
	}
}

// FuzzAppendScript: no script makes the normaliser fail, or write more
// than a bound of its size (names renamed up to eight times longer, and
// what the decoders write bounded by their work).
func FuzzAppendScript(f *testing.F) {
	f.Add([]byte(`var a = "x" + 'y'; function f(b) { return eval("b+1") } unescape("%41")</script>`))
	f.Add([]byte(`eval(function(p,a,c,k,e,r){}('0 1 0 1',62,2,'aa|bb'.split('|'),0,{}))`))
	f.Add([]byte(`dF('%2A%3Bsmvbsu%2A%3B4'); x = "open \x41\u00`))
	f.Fuzz(func(t *testing.T, script []byte) {
		v := AppendScript(nil, script)
		if bound := 32*len(script) + decodeWork + 64; len(v) > bound {
			t.Fatalf("%d bytes made %d", len(script), len(v))
		}
	})
}
