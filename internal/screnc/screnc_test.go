package screnc

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestSample: the start of the encoder's best-known sample reads
// "MsgBox ".
func TestSample(t *testing.T) {
	b := Blocks([]byte(`#@~^DgAAAA==\ko$K6,J4+sVKJdgQAAA==^#~@`), 0, 1<<20)
	if len(b) != 1 || !bytes.HasPrefix(b[0], []byte(`MsgBox "`)) {
		t.Fatalf("%q", b)
	}
}

// TestRoundTrip: what Encode writes reads back byte for byte: line
// breaks and the characters escaped, tabs, control characters, bytes
// from 0x80 with the next; several blocks in one text, between other
// text; a block cut short gives what it holds.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		script := make([]byte, n*7)
		const alphabet = "Set o = CreateObject(\"WScript.Shell\")\r\n\t<>@x\x01\x7f\x80"
		for i := range script {
			script[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if n > 0 && script[len(script)-1] >= 0x80 {
			script[len(script)-1] = 'x' // a lead byte goes with a second
		}
		text := append([]byte("<script language=\"VBScript.Encode\">"), Encode(script)...)
		text = append(text, "</script> and "...)
		text = append(text, Encode([]byte("second one"))...)
		got := Blocks(text, 0, 1<<20)
		if len(got) != 2 || !bytes.Equal(got[0], script) || string(got[1]) != "second one" {
			t.Fatalf("%q: read back %q", script, got)
		}
	}
	cut := Encode([]byte("a script cut short"))
	if got := Blocks(cut[:len(cut)-20], 0, 1<<20); len(got) != 1 || !bytes.HasPrefix([]byte("a script cut short"), got[0]) {
		t.Fatalf("%q", got)
	}
}

// TestBounded: a block whose length says 4 GiB decodes no further than
// the text and the limit; a text of nothing but marks decodes at most
// maxBlocks of them.
func TestBounded(t *testing.T) {
	huge := []byte("#@~^/////w==" + string(bytes.Repeat([]byte("x"), 1000)))
	if got := Blocks(huge, 0, 100); len(got) != 1 || len(got[0]) != 100 {
		t.Fatalf("%d blocks, %d bytes", len(got), len(got[0]))
	}
	marks := bytes.Repeat([]byte("#@~^AAAAAA=="), 5000)
	if got := Blocks(marks, 0, 1<<20); len(got) != maxBlocks {
		t.Fatalf("%d blocks", len(got))
	}
}

func FuzzBlocks(f *testing.F) {
	f.Add(Encode([]byte("WScript.Echo 1\r\n")))
	f.Fuzz(func(t *testing.T, d []byte) {
		total := 0
		for _, b := range Blocks(d, 0, 4096) {
			total += len(b)
		}
		if total > len(d)+4096 {
			t.Fatalf("%d bytes from %d", total, len(d))
		}
	})
}
