package unpack

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// scriptBytesPages are pages whose script writes the file byte by byte:
// lists of numbers and strings of escapes, each left in window.payload.
func scriptBytesPages() map[string][]byte {
	each := func(format, sep string, lineEvery int) string {
		var b strings.Builder
		for i, c := range smuggledFile {
			if i > 0 {
				b.WriteString(sep)
				if lineEvery > 0 && i%lineEvery == 0 {
					b.WriteString("\n    ")
				}
			}
			fmt.Fprintf(&b, format, c)
		}
		return b.String()
	}
	// Letters as they are, every other byte escaped, as a minifier
	// writes a binary string.
	var mixed strings.Builder
	for _, c := range smuggledFile {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			mixed.WriteByte(c)
		} else {
			fmt.Fprintf(&mixed, "\\x%02x", c)
		}
	}
	page := func(script string) []byte {
		return []byte("<!DOCTYPE html><html><body><p>a page</p><script>\n" + script + "\n</script></body></html>")
	}
	fromBytes := "window.payload = String.fromCharCode(...b);"
	return map[string][]byte{
		"uint8array.html":           page("const b = new Uint8Array([" + each("%d", ",", 0) + "]);\n" + fromBytes),
		"uint8array-lines.html":     page("const b = new Uint8Array([\n    " + each("%d", ", ", 16) + "\n]);\n" + fromBytes),
		"hex-array.html":            page("const b = [" + each("0x%02x", ", ", 0) + "];\n" + fromBytes),
		"from-char-code.html":       page("window.payload = String.fromCharCode(" + each("%d", ",", 0) + ");"),
		"x-escapes.html":            page(`window.payload = "` + each(`\x%02x`, "", 0) + `";`),
		"u-escapes.html":            page(`window.payload = '` + each(`\u%04x`, "", 0) + `';`),
		"octal-escapes.html":        page(`window.payload = "` + each(`\%03o`, "", 0) + `";`),
		"unescape.html":             page(`window.payload = unescape("` + each(`%%%02X`, "", 0) + `");`),
		"unescape-u.html":           page(`window.payload = unescape("` + each(`%%u%04X`, "", 0) + `");`),
		"mixed-escapes.html":        page(`window.payload = "` + mixed.String() + `";`),
		"u-brace-escapes.html":      page("window.payload = `" + each(`\u{%x}`, "", 0) + "`;"),
		"hex-split.html":            page(`window.payload = "` + each("%02x", " ", 0) + `".split(" ").map(x => String.fromCharCode(parseInt(x, 16))).join("");`),
		"bars-split.html":           page(`window.payload = "` + each("%d", "|", 0) + `".split("|").map(x => String.fromCharCode(+x)).join("");`),
		"semicolons-hex-upper.html": page(`window.payload = "` + each("%02X", ";", 0) + `".split(";").map(x => String.fromCharCode(parseInt(x, 16))).join("");`),
	}
}

// TestScriptBytesReadAsAScriptReadsThem: Chromium runs each page's
// script; what it builds is a member the walk gives, and EICAR is found
// in each page.
func TestScriptBytesReadAsAScriptReadsThem(t *testing.T) {
	pagesBuildTheFile(t, scriptBytesPages())
}

// TestScriptBytesNotMadeUp: what carries no file gives no member: a list
// of numbers beyond a byte's, a short list, a table of figures with
// words among them, a text with a few escapes.
func TestScriptBytesNotMadeUp(t *testing.T) {
	var big, short, table []string
	for i := range 300 {
		big = append(big, fmt.Sprint(1000+i))
		if i < 40 {
			short = append(short, fmt.Sprint(i))
		}
		table = append(table, fmt.Sprintf("%d, item %d", i%200, i))
	}
	for name, text := range map[string]string{
		"large numbers": "var a = [" + strings.Join(big, ",") + "];",
		"short list":    "var a = [" + strings.Join(short, ",") + "];",
		"a table":       strings.Join(table, "\n"),
		"few escapes":   strings.Repeat(`console.log("a line\n\tand \x41 more");`+"\n", 50),
	} {
		if got := walked([]byte(text)); len(got) != 0 {
			t.Errorf("%s: %d members: %q", name, len(got), got)
		}
	}
}

// TestScriptBytesBounded: a list of numbers that runs through megabytes
// of a text is read once, not again from each place it is looked at.
func TestScriptBytesBounded(t *testing.T) {
	list := strings.Repeat("1,", 4<<20)
	start := time.Now()
	got := walked([]byte("var a = [" + list + "1];"))
	if len(got) != 1 || time.Since(start) > 20*time.Second {
		t.Fatalf("%d members in %v", len(got), time.Since(start))
	}
}

// TestScriptBytesQuotesCannotMakeItQuadratic: a line of megabytes whose
// quotes are each preceded by an escaped backslash (\\", which ends a
// string where the look forward reads it and not where the look back
// does), with escapes between them at every place looked at, had each
// look read back to the line's start: 1 MiB took 6 s, 8 MiB minutes.
// Each form is read in a time linear in its size now.
func TestScriptBytesQuotesCannotMakeItQuadratic(t *testing.T) {
	for name, piece := range map[string]string{
		"escaped backslash, quote": `\x41\x41\\"` + strings.Repeat("a", 52),
		"escaped quote":            `\x41\x41\"` + strings.Repeat("a", 53),
		"no quote":                 `\x41\x41` + strings.Repeat("a", 56),
		"numbers and quotes":       `1,2,3,4,\x41\x41"` + strings.Repeat("a", 45),
	} {
		line := []byte(strings.Repeat(piece, (2<<20)/len(piece)))
		start := time.Now()
		walked(line)
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("%s: 2 MiB read in %v", name, d)
		}
	}
}

func FuzzScriptBytes(f *testing.F) {
	f.Add([]byte(`var a = [77,90,144,0]; var s = "\x4d\x5a\u0090\101%4D%u005A";`))
	f.Fuzz(func(t *testing.T, d []byte) {
		var at []int
		for p := 0; p < len(d); p += 7 {
			at = append(at, p)
		}
		total := 0
		scriptBytesRuns(d, at, func(kind string, b []byte) bool {
			total += len(b)
			if total > 8*len(d)+64 {
				t.Fatalf("%d bytes from %d", total, len(d))
			}
			return true
		})
	})
}
