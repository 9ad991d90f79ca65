package unpack

import (
	"encoding/hex"
	"testing"
)

// TestRTFDecompressedAsSpecified: the worked example of MS-OXRTFCP
// whose reference reaches into its own output (a run). (Literals, and
// the tnef tool's reading, are tested with TNEF.)
func TestRTFDecompressedAsSpecified(t *testing.T) {
	for want, in := range map[string]string{
		"{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}": "1a0000001c0000004c5a4675e2d44b51410004205758595a0d6e7d010eb0",
	} {
		b, _ := hex.DecodeString(in)
		got, err := rtfDecompress(b, 1<<20)
		if err != nil || string(got) != want {
			t.Errorf("%q, %v; want %q", got, err, want)
		}
	}
}

// The tests' writer of compressed RTF (internal/forms) counts on the
// dictionary's initial text being this long.
func TestRTFPrebufLength(t *testing.T) {
	if len(rtfPrebuf) != 207 {
		t.Fatalf("%d bytes", len(rtfPrebuf))
	}
}
