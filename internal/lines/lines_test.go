package lines

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("a\r\nb\n"+strings.Repeat("x", 100)+"\nshort"), 16)
	for _, want := range []string{"a", "b"} {
		if l, err := Read(br, 50); l != want || err != nil {
			t.Fatalf("%q %v, want %q", l, err, want)
		}
	}
	if _, err := Read(br, 50); !errors.Is(err, ErrTooLong) {
		t.Fatalf("a long line: %v", err)
	}
	// A line longer than the reader's buffer, within the bound.
	long := strings.Repeat("y", 40)
	br = bufio.NewReaderSize(strings.NewReader(long+"\r\nnext\n"), 16)
	for _, want := range []string{long, "next"} {
		if l, err := Read(br, 50); l != want || err != nil {
			t.Fatalf("%q %v, want %q", l, err, want)
		}
	}
	br = bufio.NewReader(strings.NewReader("cut"))
	if _, err := Read(br, 50); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a cut line: %v", err)
	}
}
