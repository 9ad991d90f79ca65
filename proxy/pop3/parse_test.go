package pop3

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/dotstuff"
)

func TestParseCommand(t *testing.T) {
	for line, want := range map[string]Command{
		"retr 1":           {Verb: "RETR", Arg: "1"},
		"PASS two  spaces": {Verb: "PASS", Arg: "two  spaces"},
		"CAPA":             {Verb: "CAPA"},
		"AUTH PLAIN =":     {Verb: "AUTH", Arg: "PLAIN ="},
	} {
		if got, err := ParseCommand(line); err != nil || got != want {
			t.Errorf("%q: %+v %v", line, got, err)
		}
	}
	for _, bad := range []string{"", "RE", "NOOP\rDELE 1", "USER a\x00b", "R\xe9TR 1", "TOOLONGVERB x", " RETR 1"} {
		if _, err := ParseCommand(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for line, want := range map[string]Status{
		"+OK":                 {OK: true},
		"+OK 2 320":           {OK: true, Text: "2 320"},
		"-ERR [IN-USE] later": {Text: "[IN-USE] later"},
		"+ok lower":           {OK: true, Text: "lower"},
	} {
		if got, err := ParseStatus(line); err != nil || got != want {
			t.Errorf("%q: %+v %v", line, got, err)
		}
	}
	for _, bad := range []string{"", "+", "+ base64", "+OKAY", "OK", "-ERROR"} {
		if _, err := ParseStatus(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestUnstuffEndings: the terminating line is "." alone, with CRLF or a
// bare LF; a dot line that is not alone is content.
func TestUnstuffEndings(t *testing.T) {
	for in, want := range map[string]string{
		"a\r\n.\r\nNEXT":       "a\r\n",
		"a\n.\nNEXT":           "a\n",
		"..\r\n.x\r\n.\r\n":    ".\r\nx\r\n",
		".\r\n":                "",
		"a\r\n. \r\n.\r\n":     "a\r\n \r\n",
		"x.\r\n.\r\n":          "x.\r\n",
		"a\r\n..\r\n\r\n.\r\n": "a\r\n.\r\n\r\n",
	} {
		var b bytes.Buffer
		if _, err := Unstuff(&b, bufio.NewReader(strings.NewReader(in))); err != nil || b.String() != want {
			t.Errorf("%q: %q %v", in, b.String(), err)
		}
	}
	for _, cut := range []string{"", "a\r\n", "a\r\n.", "a\r\n.\r"} {
		if _, err := Unstuff(&bytes.Buffer{}, bufio.NewReader(strings.NewReader(cut))); err != ErrBrokenOff {
			t.Errorf("%q: %v, want ErrBrokenOff", cut, err)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"RETR 1", "USER a@b:110", "AUTH PLAIN AGFsaWNl", "NOOP\rDELE 1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := ParseCommand(line)
		if err != nil {
			return
		}
		if strings.ContainsAny(c.Line(), "\r\n\x00") {
			t.Fatalf("%q passed with a control byte", line)
		}
		again, err := ParseCommand(c.Line())
		if err != nil || again != c {
			t.Fatalf("%q: %+v, then %+v %v", line, c, again, err)
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"+OK", "-ERR x", "+ ", "+OKAY"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		st, err := ParseStatus(line)
		if err != nil {
			return
		}
		if again, err := ParseStatus(st.String()); err != nil || again != st {
			t.Fatalf("%q: %+v, then %+v %v", line, st, again, err)
		}
	})
}

// FuzzStuffing: whatever a mail holds, stuffed and unstuffed it comes back
// as it was (a last line without its end gets CRLF), and no content ends
// the response early.
func FuzzStuffing(f *testing.F) {
	for _, s := range []string{"", ".\r\n", "a\r\n.\r\nb", "..\n.\n", ".", "x\r\n.\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, mail []byte) {
		var wire bytes.Buffer
		st := &dotstuff.Writer{W: &wire}
		st.Write(mail)
		st.Close()
		wire.WriteString("+OK next\r\n")
		br := bufio.NewReader(&wire)
		var back bytes.Buffer
		if _, err := Unstuff(&back, br); err != nil {
			t.Fatalf("%q: %v", mail, err)
		}
		want := mail
		if len(mail) > 0 && mail[len(mail)-1] != '\n' {
			want = append(append([]byte{}, mail...), "\r\n"...)
		}
		if !bytes.Equal(back.Bytes(), want) {
			t.Fatalf("%q came back as %q", mail, back.Bytes())
		}
		if rest, _ := br.ReadString('\n'); rest != "+OK next\r\n" {
			t.Fatalf("%q: the response ended early; then %q", mail, rest)
		}
	})
}

// FuzzUnstuffUpTo: a response read up to a limit, its part stuffed again
// and its rest relayed, is the response as the server sent it, whatever
// the limit and wherever it falls (inside a line, on a dot), and the
// reading never goes on past the limit by more than one read.
func FuzzUnstuffUpTo(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", "..\n.x\r\n.\n", "abc\r\n..\r\ndef\r\n.\r\n", ".\r\n"} {
		f.Add([]byte(s), uint16(1))
	}
	f.Fuzz(func(t *testing.T, wire []byte, limit uint16) {
		input := append(wire, "+OK next\r\n"...)
		br := bufio.NewReaderSize(bytes.NewReader(input), 16)
		var part bytes.Buffer
		n, rest, err := UnstuffUpTo(&part, br, int64(limit))
		if err != nil {
			return // cut off: no terminating line in wire
		}
		if n > int64(limit)+16 {
			t.Fatalf("read %d bytes for a limit of %d", n, limit)
		}
		var again bytes.Buffer
		st := &dotstuff.Writer{W: &again}
		st.Write(part.Bytes())
		if rest == nil {
			st.Close()
		} else if _, err := rest.Relay(&again); err != nil {
			return // cut off after the limit
		}
		// The part stuffed again is the wire's own bytes when the server
		// stuffed as RFC 1939 says; compare what both unstuff to.
		var want, got bytes.Buffer
		whole := bufio.NewReaderSize(bytes.NewReader(input), 16)
		Unstuff(&want, whole)
		if _, err := Unstuff(&got, bufio.NewReader(bytes.NewReader(again.Bytes()))); err != nil || !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("wire %q, limit %d: relayed %q", wire, limit, again.Bytes())
		}
		// What follows the response is left as it was.
		next, _ := io.ReadAll(br)
		wantNext, _ := io.ReadAll(whole)
		if !bytes.Equal(next, wantNext) {
			t.Fatalf("wire %q, limit %d: after the response %q, want %q", wire, limit, next, wantNext)
		}
	})
}
