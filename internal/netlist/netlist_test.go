package netlist

import (
	"net"
	"testing"
)

func TestParseAndContains(t *testing.T) {
	l, err := Parse("10.0.0.0/8, 192.0.2.7, ::1/128, self")
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{"10.1.2.3": true, "192.0.2.7": true, "192.0.2.8": false, "::1": true, "::ffff:10.9.9.9": true, "127.0.0.1": true /* self */} {
		if got := l.Contains(net.ParseIP(ip)); got != want {
			t.Errorf("%s: %v", ip, got)
		}
	}
	for _, bad := range []string{"not-a-cidr", "10.0.0.0/33", "1.2.3", "selfish"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if l, _ := Parse(""); l.Contains(net.ParseIP("127.0.0.1")) {
		t.Error("an empty list holds something")
	}
}
