package smtpreply

import (
	"bufio"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	r, err := Read(bufio.NewReader(strings.NewReader("250-hello\r\n250-PIPELINING\r\n250 SIZE 10\r\n")))
	if err != nil || r.Code != 250 || r.Text() != "250-hello 250-PIPELINING 250 SIZE 10" || r.Message()[2] != "SIZE 10" {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []string{"25\r\n", "abc x\r\n", "250-a\r\n251 b\r\n", "+50 x\r\n"} {
		if _, err := Read(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q read as a reply", bad)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add("250-a\r\n250 b\r\n")
	f.Add("220 hi\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		if r, err := Read(bufio.NewReader(strings.NewReader(s))); err == nil && (r.Code < 100 || r.Code > 599 || len(r.Lines) == 0) {
			t.Fatalf("%+v", r)
		}
	})
}
