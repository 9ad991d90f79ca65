package unpack

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
)

// TestUUEncodeRoundTrip: the test corpus's encoder and our decoder agree.
func TestUUEncodeRoundTrip(t *testing.T) {
	data := []byte(strings.Repeat("0123456789", 13) + "x")
	blocks := uuBlocks([]byte("note\n" + eicar.UUEncode("f.bin", data)))
	if len(blocks) != 1 || string(blocks[0].data) != string(data) || blocks[0].name != "f.bin" {
		t.Fatalf("%+v", blocks)
	}
}

// TestLenientBase64 holds the fast form to what it decodes: lines, stray
// characters, padding in the middle (pieces), a lone trailing character,
// and a body larger than the piece buffer.
func TestLenientBase64(t *testing.T) {
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for in, want := range map[string]string{
		"aGVsbG8=":         "hello",
		"aGVs\r\nbG8=":     "hello",
		"aGVs*bG8":         "hello",
		"aGVsbG8=aGVsbG8=": "hellohello",
		"aGVsbG8=x":        "hello",
		"":                 "",
		"====":             "",
		lined(big):         string(big),
		"YQ==Yg==Yw==":     "abc",
	} {
		if got := string(lenientBase64([]byte(in))); got != want {
			t.Errorf("%.40q: %.40q, want %.40q", in, got, want)
		}
	}
}

func BenchmarkLenientBase64(b *testing.B) {
	raw := make([]byte, 1<<20)
	in := []byte(lined(raw))
	b.SetBytes(int64(len(in)))
	for i := 0; i < b.N; i++ {
		lenientBase64(in)
	}
}

// lined is data in base64, in lines of 76 characters, as mail carries it.
func lined(data []byte) string {
	var b strings.Builder
	for s := base64.StdEncoding.EncodeToString(data); len(s) > 0; {
		n := min(76, len(s))
		b.WriteString(s[:n] + "\r\n")
		s = s[n:]
	}
	return b.String()
}

// FuzzMailboxMessages: the messages of any input are pieces of it, in
// order, at most as many as asked.
func FuzzMailboxMessages(f *testing.F) {
	f.Add([]byte("From a Mon Dec  7 10:00:00 2026\nFrom: a\n\nhi\nFrom b\nSubject: x\n\nho\n"), 3)
	f.Add([]byte(">From a\r\nTo: b\r\n\r\nFrom c\r\n"), 1)
	f.Add([]byte("\x01\x01\x01\x01\nFrom: a\n\nhi\n\x01\x01\x01\x01\n\x01\x01\x01\x01\r\nTo: b\r\n"), 3)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max = (max%8+8)%8 + 1
		msgs := mailboxMessages(data, max)
		if len(msgs) > max {
			t.Fatalf("%d messages, asked %d", len(msgs), max)
		}
		at := 0
		for _, m := range msgs {
			i := bytes.Index(data[at:], m)
			if i < 0 {
				t.Fatalf("%q is no piece of the input after %d", m, at)
			}
			at += i + len(m)
		}
		isMail(data)
	})
}

// FuzzRTFObjects: any document's objects are read within its bytes: no
// object is longer than the document, nothing panics.
func FuzzRTFObjects(f *testing.F) {
	f.Add([]byte(`{\rtf1{\object{\*\objdata 0105000002000000080000005061636b6167650000000000000000000a000000020061000000}}}`))
	f.Add([]byte(`{\rt{\*\objdata\bin5 abcde{\*\x 41}4{4}1\par 42}`))
	f.Fuzz(func(t *testing.T, d []byte) {
		for _, nested := range []bool{false, true} {
			obj, end := rtfHexData(d, 0, nested)
			if len(obj) > len(d) || end > len(d) {
				t.Fatalf("%d bytes, end %d, of %d", len(obj), end, len(d))
			}
			if _, native, ok := ole1Native(obj); ok {
				packageFile(native)
			}
		}
		Scan(d, Options{Archives: true}, Limits{}, nil)
	})
}

// TestRTFObjectsAreBounded: a document of a hundred thousand objects is
// walked up to the files limit and said to be past it; one of a long
// run of digits, in about the time its size asks.
func TestRTFObjectsAreBounded(t *testing.T) {
	many := `{\rtf1` + strings.Repeat(`{\*\objdata 41}`, 100000) + "}"
	d := Scan([]byte(many), Options{Archives: true}, Limits{MaxFiles: 50}, nil)
	if len(d) != 1 || d[0].Name != "Heuristics.Limits.Exceeded.Files" {
		t.Fatalf("%+v", d)
	}
	took := func(n int) time.Duration {
		doc := []byte(`{\rtf1{\*\objdata ` + strings.Repeat("4{\\*\\x}1", n) + "}}")
		start := time.Now()
		Scan(doc, Options{Archives: true}, Limits{}, nil)
		return time.Since(start)
	}
	if a, b := took(1<<16), took(1<<18); b > 8*a+50*time.Millisecond {
		t.Errorf("4x the digits took %v against %v", b, a)
	}
}

// FuzzNSIS: any data after an NSIS installer's first header is walked
// within the limits, whatever its lengths and blocks say.
func FuzzNSIS(f *testing.F) {
	head := func(total uint32) []byte {
		h := append([]byte{0, 0, 0, 0}, nsisMagic...)
		h = append(h, 0x20, 0x0f, 0, 0)
		return append(h, byte(total), byte(total>>8), byte(total>>16), byte(total>>24))
	}
	f.Add(append(head(100), 0xbc, 2, 0, 0x80, 0xed, 0x56, 0x3d))
	f.Add(append(head(100), 0x5d, 0, 0, 0x80, 0, 1, 2, 3))
	f.Add(append(head(1<<31), '1', 0, 5, 0x62))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := append([]byte("MZ stub "), data...)
		Scan(d, Options{Archives: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, nil)
	})
}

// TestRTFBinLengthPastTheEnd: a \bin whose length is the largest number
// there is (i+n overflowed) reads to the document's end.
func TestRTFBinLengthPastTheEnd(t *testing.T) {
	for _, n := range []string{"9223372036854775807", "9223372036854775000", "100"} {
		doc := []byte(`{\rtf1{\*\objdata \bin` + n + ` 0105000002000000}}`)
		p := bytes.Index(doc, []byte(`\objdata`)) + len(`\objdata`)
		if out, _ := rtfHexData(doc, p, false); len(out) > len(doc) {
			t.Errorf("%s: %d bytes", n, len(out))
		}
	}
}
