package chunked

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

func read(body string) (string, *Reader, error) {
	r := NewReader(bufio.NewReader(strings.NewReader(body)))
	b, err := io.ReadAll(r)
	return string(b), r, err
}

// TestWholeBodies: chunks with extensions and white space before them, a
// trailer, and the zero chunk's extension kept (ICAP's ieof).
func TestWholeBodies(t *testing.T) {
	for body, want := range map[string]string{
		"5\r\nhello\r\n0\r\n\r\n":                            "hello",
		"5;name=v\r\nhello\r\n6 \t;x\r\n world\r\n0\r\n\r\n": "hello world",
		"A\r\n0123456789\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n":     "0123456789",
		"0\r\n\r\n": "",
	} {
		got, _, err := read(body)
		if err != nil || got != want {
			t.Errorf("%q: %q, %v", body, got, err)
		}
	}
	if _, r, err := read("4\r\nabcd\r\n0; ieof\r\n\r\n"); err != nil || r.LastExt != "ieof" {
		t.Errorf("ieof: %q %v", r.LastExt, err)
	}
}

// TestSmugglingForms: every size line or chunk end that some reader
// would read another way is refused as a break of the coding, not read
// one way here and another way by the server behind.
func TestSmugglingForms(t *testing.T) {
	for name, body := range map[string]string{
		"sign":                "+5\r\nhello\r\n0\r\n\r\n",
		"negative zero":       "-0\r\n\r\n",
		"0x prefix":           "0x5\r\nhello\r\n0\r\n\r\n",
		"sixteen digits":      "0000000000000005\r\nhello\r\n0\r\n\r\n",
		"empty size":          ";ext\r\nhello\r\n0\r\n\r\n",
		"leading space":       " 5\r\nhello\r\n0\r\n\r\n",
		"bare CR in size":     "5\rx\r\nhello\r\n0\r\n\r\n",
		"NUL in size":         "5\x00\r\nhello\r\n0\r\n\r\n",
		"no CRLF after chunk": "5\r\nhelloX\r\n0\r\n\r\n",
		"size line too long":  "5;" + strings.Repeat("e", 5000) + "\r\nhello\r\n0\r\n\r\n",
		"trailer without end": "0\r\n" + strings.Repeat("T: x\r\n", 101) + "\r\n",
		"not hex":             "g\r\nhello\r\n0\r\n\r\n",
	} {
		_, _, err := read(body)
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v, want a break of the coding", name, err)
		}
	}
}

// TestCutShort: an input that ends anywhere before the zero chunk's
// blank line is cut short, never a whole body; the chunk boundary
// included, which a reader that takes a clean EOF there for the end
// would pass as whole.
func TestCutShort(t *testing.T) {
	for name, body := range map[string]string{
		"at a chunk boundary":   "5\r\nhello\r\n",
		"inside a chunk":        "5\r\nhel",
		"before a chunk's CRLF": "5\r\nhello",
		"inside a size line":    "5\r\nhello\r\n1",
		"in the trailer":        "5\r\nhello\r\n0\r\nT: x\r\n",
		"before the last line":  "5\r\nhello\r\n0\r\n",
		"nothing":               "",
	} {
		_, _, err := read(body)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: %v, want cut short", name, err)
		}
	}
}

// TestMore: after a preview's zero chunk, More reads what follows.
func TestMore(t *testing.T) {
	r := NewReader(bufio.NewReader(strings.NewReader("3\r\nabc\r\n0\r\n\r\n3\r\ndef\r\n0; ieof\r\n\r\n")))
	a, err := io.ReadAll(r)
	if err != nil || string(a) != "abc" || r.LastExt != "" {
		t.Fatalf("preview %q %v %q", a, err, r.LastExt)
	}
	r.More()
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "def" || r.LastExt != "ieof" {
		t.Fatalf("rest %q %v %q", b, err, r.LastExt)
	}
}

// FuzzReader: no input panics the reader or makes it give more bytes
// than its sizes say; a body it reads whole, written again as one chunk,
// reads the same.
func FuzzReader(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "0; ieof\r\n\r\n", "+5\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n", "1;a=b\r\nx\r\n0\r\nT: y\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		got, _, err := read(string(data))
		if len(got) > len(data) {
			t.Fatalf("%d bytes out of %d in", len(got), len(data))
		}
		if err != nil || got == "" {
			return
		}
		again, _, err := read(strconv.FormatInt(int64(len(got)), 16) + "\r\n" + got + "\r\n0\r\n\r\n")
		if err != nil || again != got {
			t.Fatalf("re-chunked: %q %v", again, err)
		}
	})
}

// BenchmarkRead: a 1 MiB body in 4 KiB chunks, as an ICAP client or a
// server sends one.
func BenchmarkRead(b *testing.B) {
	var body strings.Builder
	chunk := strings.Repeat("x", 4096)
	for range 256 {
		body.WriteString("1000\r\n" + chunk + "\r\n")
	}
	body.WriteString("0\r\n\r\n")
	src := body.String()
	buf := make([]byte, 32<<10)
	b.SetBytes(1 << 20)
	for b.Loop() {
		r := NewReader(bufio.NewReaderSize(strings.NewReader(src), 64<<10))
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
	}
}
