package mailpath

import "testing"

func TestFormat(t *testing.T) {
	for in, want := range map[string]string{
		"":                   "<>",
		"a@b.example":        "<a@b.example>",
		"a b@c.example":      `<"a b"@c.example>`,
		`"a\"b"@c.example`:   `<"a\"b"@c.example>`,
		"a>x@c.example":      `<"a>x"@c.example>`,
		"user@[127.0.0.1]":   "<user@[127.0.0.1]>",
		"user@[IPv6:::1]":    "<user@[IPv6:::1]>",
		"héllo@exämple.test": "<héllo@exämple.test>",
		"x..y@c.example":     `<"x..y"@c.example>`,
		// What a quoted local part holds stays in it, whether it comes
		// quoted or as go-smtp gives it unquoted: no second address, no
		// parameter.
		`"evil>,<x@outside.example> NOTIFY=SUCCESS"@local.example`: `<"evil>,<x@outside.example> NOTIFY=SUCCESS"@local.example>`,
		`evil>,<x@outside.example> NOTIFY=SUCCESS@local.example`:   `<"evil>,<x@outside.example> NOTIFY=SUCCESS"@local.example>`,
		`a> ORCPT=rfc822;x@y@local.example`:                        `<"a> ORCPT=rfc822;x@y"@local.example>`,
	} {
		if got, err := Format(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"a@b> SIZE=1", "a\r\nRSET@b", "noat", "a@", "a@b..c", "a@[nope]", "a@b\x00c"} {
		if got, err := Format(bad); err == nil {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}

func FuzzFormat(f *testing.F) {
	for _, s := range []string{"a@b", `"x y"@z`, "a>b@c", "@", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		p, err := Format(addr)
		if err != nil {
			return
		}
		// One path: angle brackets at its ends only, outside quotes, and
		// no control character.
		if p[0] != '<' || p[len(p)-1] != '>' {
			t.Fatalf("%q: %q", addr, p)
		}
		quoted := false
		for i := 1; i < len(p)-1; i++ {
			switch c := p[i]; {
			case c < ' ' || c == 0x7f:
				t.Fatalf("%q: control byte in %q", addr, p)
			case c == '\\' && quoted:
				i++
			case c == '"':
				quoted = !quoted
			case (c == '>' || c == '<' || c == ' ' || c == ',') && !quoted:
				t.Fatalf("%q: %q ends the path early", addr, p)
			}
		}
	})
}
