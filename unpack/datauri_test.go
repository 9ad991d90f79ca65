package unpack

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/chromedp/chromedp"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/browsertest"
	"github.com/fsigkd/fsigkd/internal/bytesearch"
)

// smugglingPages are pages that carry EICAR in a data: address, each
// written another way (HTML smuggling): what a browser decodes from each
// must be what the walk decodes.
func smugglingPages() map[string][]byte {
	b64 := base64.StdEncoding.EncodeToString([]byte(eicar.String))
	pct := url.PathEscape(eicar.String)
	// Some base64 letters as references, as an attribute may hold them.
	refs := strings.NewReplacer("X", "&#x58;", "5", "&#53", "O", "&#79;").Replace(b64)
	spaced := b64[:20] + "\n  " + b64[20:40] + "\t" + b64[40:60] + " " + b64[60:]
	page := func(body string) []byte {
		return []byte("<!DOCTYPE html><html><head><title>t</title></head><body><p>a page</p>\n" + body + "\n</body></html>")
	}
	utf16le := func(s []byte) []byte {
		out := []byte{0xff, 0xfe}
		for _, u := range utf16.Encode([]rune(string(s))) {
			out = append(out, byte(u), byte(u>>8))
		}
		return out
	}
	return map[string][]byte{
		"href-double-quoted.html":            page(`<a href="data:application/octet-stream;base64,` + b64 + `">get</a>`),
		"src-single-quoted.html":             page(`<img src='data:image/png;base64,` + b64 + `'>`),
		"href-unquoted.html":                 page(`<a href=data:application/octet-stream;base64,` + b64 + `>get</a>`),
		"scheme-upper-case.html":             page(`<a href="DATA:APPLICATION/OCTET-STREAM;BASE64,` + b64 + `">get</a>`),
		"base64-spaced.html":                 page(`<a href="data:;base64,` + spaced + `">get</a>`),
		"percent-encoded.html":               page(`<a href="data:text/plain,` + pct + `">get</a>`),
		"base64-percent.html":                page(`<a href="data:;base64,` + strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(b64) + `">get</a>`),
		"scheme-references.html":             page(`<a href="&#100;ata&colon;;base64,` + b64 + `">get</a>`),
		"scheme-hex-refs.html":               page(`<a href="&#x64;&#x61;&#x74;&#x61;&#x3a;;base64,` + b64 + `">get</a>`),
		"scheme-tab-reference.html":          page(`<a href="da&#9;ta:;base64,` + b64 + `">get</a>`),
		"scheme-line-broken.html":            page("<a href=\"dat\na:;base64," + b64 + "\">get</a>"),
		"scheme-spaced-throughout.html":      page("<a href=\"d\n\na\tt\r\na\n\n\n:;base64," + b64 + "\">get</a>"),
		"scheme-named-tab-before-colon.html": page(`<a href="data&Tab;:;base64,` + b64 + `">get</a>`),
		"scheme-newline-refs.html":           page(`<a href="d&#10;at&NewLine;a&#x0d;:;base64,` + b64 + `">get</a>`),
		"scheme-ref-no-semi.html":            page(`<a href="&#100ata:;base64,` + b64 + `">get</a>`),
		"scheme-refs-zeros.html":             page(`<a href="&#0000000000000000100;&#x000000000000000061;ta&#000000000000000058;;base64,` + b64 + `">get</a>`),
		"body-references.html":               page(`<a href="data:;base64,` + refs + `">get</a>`),
		"leading-space.html":                 page(`<a href="  data:;base64,` + b64 + `">get</a>`),
		"object-data.html":                   page(`<object data="data:application/octet-stream;base64,` + b64 + `"></object>`),
		"iframe-src.html":                    page(`<iframe src="data:text/plain;base64,` + b64 + `"></iframe>`),
		"css-inline-url.html":                page(`<div id=d style="width:9px;height:9px;background-image:url(data:image/png;base64,` + b64 + `)"></div>`),
		"css-quoted-url.html":                page(`<div id=d style='width:9px;height:9px;background-image:url("data:image/png;base64,` + b64 + `")'></div>`),
		"download-named.html":                page(`<a download="setup.exe" href="data:application/octet-stream;base64,` + b64 + `">get</a>`),
		"utf16-page.html":                    utf16le(page(`<a href="data:;base64,` + b64 + `">get</a>`)),
		"base64-newline-meta.html":           page(`<a href="data:application/octet-stream;bas` + "\n" + `e64,` + b64 + `">get</a>`),
		// A page in a frame's srcdoc: its quotes written as references.
		"srcdoc-quot.html":  page(`<iframe srcdoc="<a download=&quot;setup.exe&quot; href=&quot;data:;base64,` + b64 + `&quot;>x</a>"></iframe>`),
		"srcdoc-apos.html":  page(`<iframe srcdoc="<img src=&#39;data:image/png;base64,` + b64 + `&#39;>"></iframe>`),
		"srcdoc-plain.html": page(`<iframe srcdoc="<a href='data:text/plain,` + pct + `'>x</a>"></iframe>`),
	}
}

// TestDataURIsOpenedAsABrowserOpensThem: for each way of writing a data:
// address, Chromium loads the page and fetches every data: address it
// holds (links, pictures, objects, frames, style sheets' urls; in frames'
// srcdoc pages too); each body
// it gets is a member the walk gives, and EICAR is found in every page
// (in one, ";bas\ne64", as base64 where Chromium reads the text as it
// is, and the URL standard's parser as base64: both are given).
func TestDataURIsOpenedAsABrowserOpensThem(t *testing.T) {
	pages := smugglingPages()
	base := browsertest.ServePages(t, pages)
	ctx := browsertest.Start(t, chromedp.UserDataDir(t.TempDir()))
	const fetchAll = `(async () => {
		const urls = [];
		const docs = [document];
		for (const f of document.querySelectorAll('iframe[srcdoc]')) {
			await new Promise(r => f.contentDocument && f.contentDocument.readyState === 'complete' ? r() : f.addEventListener('load', r));
			docs.push(f.contentDocument);
		}
		for (const e of docs.flatMap(d => [...d.querySelectorAll('*')])) {
			for (const a of ['href', 'src', 'data']) {
				if (typeof e[a] === 'string' && e[a].toLowerCase().startsWith('data:')) urls.push(e[a]);
			}
			const m = getComputedStyle(e).backgroundImage.match(/^url\("(.*)"\)$/);
			if (m && m[1].startsWith('data:')) urls.push(m[1]);
		}
		const out = [];
		for (const u of urls) {
			try {
				const b = new Uint8Array(await (await fetch(u)).arrayBuffer());
				let s = '';
				for (const c of b) s += String.fromCharCode(c);
				out.push(btoa(s));
			} catch (e) { out.push('failed: ' + e); }
		}
		return out;
	})()`
	for name, data := range pages {
		tctx, tcancel := context.WithTimeout(ctx, 30*time.Second)
		if err := chromedp.Do(tctx, chromedp.Navigate(base+"/"+name)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		bodies, err := chromedp.Run(tctx, chromedp.Evaluate[[]string](fetchAll, chromedp.EvalAwaitPromise))
		tcancel()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ours := walked(data)
		if len(bodies) == 0 {
			t.Errorf("%s: the browser found no data: address", name)
		}
		for _, b := range bodies {
			got, err := base64.StdEncoding.DecodeString(b)
			if err != nil {
				t.Errorf("%s: the browser: %s", name, b)
				continue
			}
			if !containsMember(ours, got) {
				t.Errorf("%s: the browser decoded %q, the walk %q", name, got, ours)
			}
		}
		// Found, in a member (twice where the address is read both as
		// written and with its references resolved).
		if d := eicarFound(data); len(d) == 0 || len(d) > 2 || d[0].Path == "" {
			t.Errorf("%s: %+v", name, d)
		}
	}
	for _, name := range []string{"download-named.html", "srcdoc-quot.html"} {
		if _, ok := walked(pages[name])["setup.exe"]; !ok {
			t.Errorf("%s: the download attribute does not name the member: %q", name, walked(pages[name]))
		}
	}
}

func containsMember(members map[string][]byte, b []byte) bool {
	for _, m := range members {
		if bytes.Equal(m, b) {
			return true
		}
	}
	return false
}

// TestDataURIsNotMadeUp: what only looks like a data: address gives no
// member: a word ending in "data:", an address without its comma, a
// reference that is no letter of the scheme.
func TestDataURIsNotMadeUp(t *testing.T) {
	for name, text := range map[string]string{
		"a word before":  `metadata:;base64,WDVPIVA=`,
		"no comma":       `<a href="data:text/plain">x</a>`,
		"other ref":      `<a href="&#101;ata:,x">x</a>`,
		"nothing at all": `no address here: none`,
	} {
		if got := walked([]byte(text)); len(got) != 0 {
			t.Errorf("%s: %q", name, got)
		}
	}
}

// TestDataURIsInMailAndNested: a mail's HTML part (quoted-printable)
// holding a data: address, and a data: page holding another: each found
// where it is, the nesting bounded by the depth limit.
func TestDataURIsInMailAndNested(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString([]byte(eicar.String))
	inner := `<html><body><a href="data:;base64,` + b64 + `">x</a></body></html>`
	outer := `<html><body><iframe src="data:text/html;base64,` + base64.StdEncoding.EncodeToString([]byte(inner)) + `"></iframe></body></html>`
	if d := eicarFound([]byte(outer)); len(d) != 1 || d[0].Path != "data-uri-1/data-uri-1" {
		t.Errorf("nested: %+v", d)
	}
	var qp strings.Builder
	for i := 0; i < len(inner); i += 60 {
		qp.WriteString(strings.ReplaceAll(inner[i:min(i+60, len(inner))], "=", "=3D") + "=\r\n")
	}
	mail := "From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/html; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp.String()
	d := Scan([]byte(mail), Options{MIME: true}, Limits{}, func(b []byte, found func(string) bool) {
		if bytes.Equal(b, []byte(eicar.String)) {
			found("EICAR")
		}
	})
	if len(d) != 1 || !strings.HasSuffix(d[0].Path, "/data-uri-1") {
		t.Errorf("mail: %+v", d)
	}
	deep := inner
	for range 10 {
		deep = `<iframe src="data:text/html;base64,` + base64.StdEncoding.EncodeToString([]byte(deep)) + `"></iframe>`
	}
	d = eicarFound([]byte(deep))
	if len(d) != 1 || d[0].Name != "Heuristics.Limits.Exceeded.Depth" {
		t.Errorf("deep: %+v", d)
	}
}

// TestDataURIsAreBounded: a text of many addresses gives at most the
// file limit's members, and says so; texts made of what the search looks
// for are searched in linear time (by the time four times the text takes).
func TestDataURIsAreBounded(t *testing.T) {
	var many strings.Builder
	for i := range 50 {
		fmt.Fprintf(&many, `<img src="data:,%d">`, i)
	}
	d := Scan([]byte(many.String()), Options{Archives: true}, Limits{MaxFiles: 20}, nil)
	if len(d) != 1 || d[0].Name != "Heuristics.Limits.Exceeded.Files" {
		t.Errorf("many: %+v", d)
	}
	for _, filler := range []string{":", "&#", "&#100;&#97;&#116;&#97;", "d&#97;t&#97;", "&#100;&#97;&#116;&#97;:", "(data:", "(data:,",
		// Crowded with what starts like one anchor ("&co") between
		// places of another: each place asked for in turn.
		strings.Repeat("&co;", 200) + "a:",
		// References with long runs of leading zeros, which are read
		// whole: "d" and then the colon, and a reference never ended.
		"&#" + strings.Repeat("0", 5000) + "100;ata&#" + strings.Repeat("0", 5000) + "58;", "&#" + strings.Repeat("0", 100000),
		// Lines of base64, joined into one run; lines that each stop
		// short of joining (one shorter than the line before).
		strings.Repeat("QUJD", 19) + "\n", strings.Repeat("QUJD", 19) + "\n" + strings.Repeat("QUJD", 18) + "QU\n"} {
		// Linear: four times the text takes about four times as long
		// (the quicker of two tries each; quadratic would be sixteen).
		took := func(size int) time.Duration {
			text := []byte(strings.Repeat(filler, size/len(filler)))
			best := time.Duration(1 << 62)
			for range 2 {
				start := time.Now()
				walked(text)
				best = min(best, time.Since(start))
			}
			return best
		}
		if one, four := took(1<<20), took(4<<20); four > 8*one+20*time.Millisecond {
			t.Errorf("%q: %v for 1 MiB, %v for 4 MiB", filler, one, four)
		}
	}
}

// FuzzDataURIs: no text makes the search panic, read outside it, or
// give a member larger than the text.
func FuzzDataURIs(f *testing.F) {
	for _, p := range smugglingPages() {
		f.Add(p)
	}
	f.Add([]byte(`&#x64;&#x61;&#x74;&#x61;&#x3a;,%4`))
	f.Add([]byte("data:;base64,===="))
	f.Fuzz(func(t *testing.T, text []byte) {
		for _, u := range carriedIn(text, 100, nil) {
			if len(u.data) > 2*len(text)+8 {
				t.Fatalf("%d bytes from %d", len(u.data), len(text))
			}
		}
	})
}

// aheadOf searches d ahead as the bundled engine's follow does while a
// download is spooled: in windows of size bytes, each from a little
// before where the last ended.
func aheadOf(d []byte, size int) *Ahead {
	a := NewAhead()
	for a.Upto < len(d) {
		base := max(0, a.Upto-16-a.WantedLen())
		window := d[base:min(len(d), base+size)]
		wanted := a.Wanted()
		for i := 0; len(wanted) > 0; {
			k, which := bytesearch.NewSet(wanted...).Index(window[i:])
			if k < 0 {
				break
			}
			p := base + i + k
			i += k + 1
			for j, w := range wanted {
				if which&(1<<j) != 0 && p >= a.Upto-len(w)+1 {
					a.Saw(window, base, p, w)
				}
			}
			wanted = a.Wanted()
		}
		a.LookForBase64(window, base)
		a.Upto = base + len(window)
	}
	return a
}

// sameCarried tells whether two walks gave the same files.
func sameCarried(a, b []carried) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name || !bytes.Equal(a[i].data, b[i].data) {
			return false
		}
	}
	return true
}

// TestAheadKeepsWhatTheScanFinds: the places a download's follow keeps
// (only those that may start a scheme, as each window shows them) lead
// the scan to every file it finds without them, for every smuggling
// page, padded so that windows of several sizes cut its references, and
// on random bytes (where it keeps next to none of the thousands of pairs
// such data holds).
func TestAheadKeepsWhatTheScanFinds(t *testing.T) {
	for name, p := range smugglingPages() {
		for _, pad := range []int{0, 1, 7, 30} {
			if pad > 0 && hasBOM16(p) {
				continue // a UTF-16 page by its first bytes
			}
			d := append(bytes.Repeat([]byte(" "), pad), p...)
			want := carriedIn(d, 100, nil)
			if len(want) == 0 {
				t.Fatalf("%s: nothing carried", name)
			}
			for _, size := range []int{40, 97, 256, 1 << 16} {
				if got := carriedIn(d, 100, aheadOf(d, size)); !sameCarried(got, want) {
					t.Errorf("%s, padded %d, windows of %d: %d files, want %d", name, pad, size, len(got), len(want))
				}
			}
		}
	}
	random := make([]byte, 8<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	a := aheadOf(random, 256<<10)
	if len(a.URIs) > 4 {
		t.Errorf("%d places kept in random bytes", len(a.URIs))
	}
}

func FuzzAheadKeepsWhatTheScanFinds(f *testing.F) {
	for _, p := range smugglingPages() {
		f.Add(p, uint16(97))
	}
	f.Add([]byte(`x&#0000000100;ata&#x3a;,%45ICAR`), uint16(40))
	f.Fuzz(func(t *testing.T, d []byte, size uint16) {
		s := int(size)%4096 + 40
		if want, got := carriedIn(d, 100, nil), carriedIn(d, 100, aheadOf(d, s)); !sameCarried(got, want) {
			t.Fatalf("windows of %d: %d files, want %d", s, len(got), len(want))
		}
	})
}
