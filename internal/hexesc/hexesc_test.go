package hexesc

import "testing"

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		in   string
		mark byte
		want string
	}{
		{"a%20b", '%', "a b"},
		{"x+2By+3D", '+', "x+y="},
		{"100%", '%', "100%"},     // a mark at the end
		{"5%zzb", '%', "5%zzb"},   // not hex
		{"%4", '%', "%4"},         // one digit left
		{"plain", '+', "plain"},   // nothing to undo
		{"%25%2541", '%', "%%41"}, // undone once
	} {
		if got := Decode(c.in, c.mark); got != c.want {
			t.Errorf("Decode(%q, %q) = %q, want %q", c.in, c.mark, got, c.want)
		}
	}
}
