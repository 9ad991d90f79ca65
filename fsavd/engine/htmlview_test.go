package engine

import (
	"archive/zip"
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHTMLViewsAsClamscanReadsThem: signatures of target 3 (HTML) and of
// target 0 are found in HTML pages as clamscan finds them, in the page
// without its comments (tags lowered, white space in and between them
// made one space or none, quotes made double, character references
// decoded, a script's white space dropped) and in its text (a link's
// address kept); not in a text that is no HTML, nor as text (target 7)
// in a page; an HTML marker past the first 1,024 bytes of a text still
// makes a page, as one in the first bytes of binary data.
func TestHTMLViewsAsClamscanReadsThem(t *testing.T) {
	hx := func(s string) string { return hex.EncodeToString([]byte(s)) }
	sigs := map[string]string{
		"Test.Plain":    "evil-html-mark",
		"Test.Entity":   "entity-mark",
		"Test.Comment":  "comment-mark",
		"Test.Script":   "<script>evil(",
		"Test.TagSpace": `<a href=x>`,
		"Test.Quotes":   `<img src="pic.gif">`,
		"Test.InScript": `vara="single";x`,
		"Test.Link":     `http://evil.example/x click`,
		"Test.Words":    "split word",
		"Test.Named":    `"quoted-mark"`,
		"Test.Late":     "late-page-mark",
		"Test.Binary":   "binary-page-mark",
		"Test.Upper":    "&lt;upper-entity",
	}
	dir := htmlSigs(t, sigs, "Test.Generic:0:*:"+hx("generic-html-mark"), "Test.Text:7:*:"+hx("seven-in-html"))
	page := func(body string) []byte { return []byte("<html><body>" + body + "</body></html>\n") }
	objects := map[string][]byte{
		"plain":       page("EVIL-HTML-MARK"),
		"numeric-ref": page("&#69;NTITY-MARK"),
		"hex-ref":     page("entity&#x2d;mark"),
		"comment":     page("COMMENT<!-- x -->-MARK"),
		"script":      page("<SCRIPT>EVIL()</SCRIPT>"),
		"tag-spaces":  page("<A   HREF = x>link</a>"),
		"quotes":      page("<IMG SRC='PIC.GIF'>"),
		"in-script":   page("<script>var A = 'Single';  x</script>"),
		"link-text":   page(`<a href="http://evil.example/x">Click</a>`),
		"words":       page("SPLIT<b>WORD</b>"),
		"named-ref":   page("&quot;Quoted-Mark&quot;"),
		"upper-name":  page("&LT;UPPER-ENTITY"),
		"generic":     page("GENERIC-HTML-MARK"),
		"seven":       page("SEVEN-IN-HTML"),
		"not-html":    []byte("just text EVIL-HTML-MARK\n"),
		"late":        append(bytes.Repeat([]byte("some text "), 200), "<script>x</script> LATE-PAGE-MARK\n"...),
		"binary-head": append([]byte("\x01\x02\x03<html>"), " BINARY-PAGE-MARK\n"...),
	}
	sameAsClamscan(t, dir, objects, 15)
}

// TestHTMLViewsOfAwkwardPagesAsClamscanReadsThem: the same, for the
// forms a page's writer (or an attacker) may give its tags: a comment
// that holds a tag, attribute values unquoted with references, quoted
// with spaces and with the other quote inside, a tag split over lines,
// a style sheet, bytes from 0x80, a lone '<', references without their
// ';', one beyond 0xFFFF, a quote after a backslash (which ends the
// value: ClamAV escapes nothing).
func TestHTMLViewsOfAwkwardPagesAsClamscanReadsThem(t *testing.T) {
	sigs := map[string]string{
		"Test.CommentTag": "evil-after</script>",
		"Test.Unquoted":   "<a href=x&y>",
		"Test.Spaced":     `<a title="a b" href=z>`,
		"Test.Inner":      `<a title="it"s">`,
		"Test.Lines":      `<a href="x">`,
		"Test.Style":      "<style>body{color:red}</style>",
		"Test.Bytes":      "caf\xc3\xa9 mb-mark",
		"Test.Less":       "a < b less-mark",
		"Test.NoSemi":     "&amp plain-mark",
		"Test.NumNoSemi":  "a x num-mark",
		"Test.Astral":     "&#xf600;astral-mark",
		"Test.Backslash":  `title="a\" b"`,
	}
	dir := htmlSigs(t, sigs)
	page := func(body string) []byte { return []byte("<html><body>" + body + "</body></html>\n") }
	objects := map[string][]byte{
		"comment-tag": page("<!-- <script>EVIL-AFTER</script> -->"),
		"unquoted":    page("<A HREF=x&amp;y>l</a>"),
		"spaced":      page(`<A TITLE="a b" HREF=z>l</a>`),
		"inner":       page(`<a title="it's">l</a>`),
		"lines":       page("<A\r\nHREF\n=\n'X'>l</a>"),
		"style":       page("<STYLE>BODY { COLOR : RED }</STYLE>"),
		"bytes":       page("caf\xc3\xa9 MB-MARK"),
		"less":        page("a < b LESS-MARK"),
		"no-semi":     page("&amp PLAIN-MARK"),
		"num-no-semi": page("&#65 x NUM-MARK"),
		"astral":      page("&#x1F600;ASTRAL-MARK"),
		"backslash":   page(`<a title="a\"b" href=z>l</a>`),
	}
	sameAsClamscan(t, dir, objects, 10)
}

// htmlSigs is a directory of an .ndb file of target 3 signatures of the
// texts sigs gives by name, and the lines more.
func htmlSigs(t *testing.T, sigs map[string]string, more ...string) string {
	for name, s := range sigs {
		more = append(more, name+":3:*:"+hex.EncodeToString([]byte(s)))
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.ndb"), []byte(strings.Join(more, "\n")+"\n"), 0o644)
	return dir
}

// FuzzHTMLViews: no page, however written, makes the normaliser fail or
// its views grow past a few times the page.
func FuzzHTMLViews(f *testing.F) {
	f.Add([]byte("<html><A HREF='x'>&lt;&#x41;&#65&LT;<!-- c --><script>a = 'b'</script><style>X { }</style>\xe3\x80\x82\xa1C"))
	f.Add([]byte("<a title=\"a b\" href=\"z\"><img src=p>&Mu;&#99999999999999999999;"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tags, text, _ := htmlViews(data, nil, nil)
		if len(tags)+len(text) > 4*len(data)+64 {
			t.Fatalf("%d bytes made %d and %d", len(data), len(tags), len(text))
		}
		isHTML(data)
	})
}

// TestHTMLTypingIsLinear: a text of nothing but "<a " (each a start
// that looks for an href in all that follows) is typed in one pass, not
// searched to its end from every one of them.
func TestHTMLTypingIsLinear(t *testing.T) {
	data := bytes.Repeat([]byte("<a "), 1<<20)
	start := time.Now()
	if isHTML(data) {
		t.Fatal("typed HTML")
	}
	if d := time.Since(start); d > 5*time.Second { // searched from each, it takes hours
		t.Fatalf("3 MiB of \"<a \" typed in %v", d)
	}
	if !isHTML(append(data, " href=x"...)) {
		t.Fatal("an href at the end not seen")
	}
}

// TestDataURIsAsClamscanReadsThem: a file carried in a page's data:
// address (base64 or percent-encoded, quoted either way, a zip in one)
// is found as clamscan finds it, under the same name; a clean picture
// so carried is clean. (The walk reads more forms than ClamAV: see
// unpack's TestDataURIsOpenedAsABrowserOpensThem.)
func TestDataURIsAsClamscanReadsThem(t *testing.T) {
	e := "a planted mark: no engine's own test signature\x00\x01"
	b64 := base64.StdEncoding.EncodeToString
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, _ := zw.Create("inner/planted.bin")
	w.Write([]byte(e))
	zw.Close()
	page := func(body string) []byte { return []byte("<html><body>" + body + "</body></html>\n") }
	objects := map[string][]byte{
		"href-base64":  page(`<a href="data:application/octet-stream;base64,` + b64([]byte(e)) + `" download="x.com">get</a>`),
		"img-single":   page(`<img src='data:image/png;base64,` + b64([]byte(e)) + `'>`),
		"percent":      page(`<a href=data:text/plain,` + url.PathEscape(e) + `>x</a>`),
		"zip":          page(`<a href="data:application/zip;base64,` + b64(zipped.Bytes()) + `">z</a>`),
		"clean-image":  page(`<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">`),
		"clean-text":   page(`<a href="data:text/plain,hello%20world">x</a>`),
		"no-data-uris": page(`<a href="https://example.org/eicar.com">x</a>`),
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.ndb"), []byte("Test.Planted:0:*:"+hex.EncodeToString([]byte(e))+"\n"), 0o644)
	sameAsClamscan(t, dir, objects, 4)
}

// TestPageAsItIsReadWhereClamscanDoesNot is a listed difference from
// ClamAV: a text ClamAV types as HTML by its first 1,024 bytes is not
// read as it is at all (its DCONF option HTMLSKIPRAW, on as shipped):
// neither its hash nor a signature of its bytes as written finds it,
// only its normalised views do. The engine reads such a page as it is
// too, so that a page known by its hash, or a signature of a page's
// bytes as written (upper case), finds it, bare and in a container; a
// signature written for ClamAV's views finds the same pages in both. A
// text whose marker lies further is read as it is by both.
func TestPageAsItIsReadWhereClamscanDoesNot(t *testing.T) {
	page := []byte("<html><body>some text PAYLOAD-RAW more text</body></html>\n")
	late := append(bytes.Repeat([]byte("some words "), 200), " PAYLOAD-RAW <script>x</script>\n"...)
	sum := md5.Sum(page)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.ndb"), []byte("Test.Raw:0:*:"+hex.EncodeToString([]byte("PAYLOAD-RAW"))+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "p.hdb"), []byte(hex.EncodeToString(sum[:])+":"+strconv.Itoa(len(page))+":Test.PageHash\n"), 0o644)
	corpus := t.TempDir()
	objects := map[string][]byte{"page": page, "page-in-zip": ordered{{"p.htm", string(page)}}.zip(t, zip.Deflate), "late": late}
	for name, b := range objects {
		os.WriteFile(filepath.Join(corpus, name), b, 0o644)
	}
	theirs := clamscanFinds(t, dir, corpus, "--allmatch")
	if len(theirs) != 1 || theirs["late"] != "Test.Raw" {
		t.Fatalf("clamscan found %v: want the late page's bytes alone", theirs)
	}
	db, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := New(db)
	for name, want := range map[string]string{"page": "Test.PageHash,Test.Raw", "page-in-zip": "Test.PageHash,Test.Raw", "late": "Test.Raw"} {
		if got := named(e, objects[name], all); got != want {
			t.Errorf("%s: the engine says %q, want %q", name, got, want)
		}
	}
	if got := named(e, bytes.Replace(page, []byte("body"), []byte("BODY"), 1), all); got != "Test.Raw" {
		t.Errorf("a page known by no hash: the engine says %q, want Test.Raw", got)
	}
}
