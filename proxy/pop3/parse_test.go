package pop3

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/internal/lines"
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
		st := &lines.DotStuffer{W: &wire}
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
