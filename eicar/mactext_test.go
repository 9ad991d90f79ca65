package eicar

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestEncodersAreReadByTheRealDecoders: what BinHex and YEnc write,
// macutils' hexbin and python3-yenc read back byte for byte (every byte
// value, the run marker 0x90 and the escaped ones among them), so the
// corpus holds what a Mac's or a news reader's decoder reads.
func TestEncodersAreReadByTheRealDecoders(t *testing.T) {
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	hexbin := testenv.Need(t, "hexbin", "macutils")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f.hqx"), []byte(BinHex("g.bin", data)), 0o644)
	c := exec.Command(hexbin, "-d", "f.hqx")
	c.Dir = dir
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("hexbin: %v %s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "g.bin.data")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("hexbin read back %d bytes (%v), same: %v", len(got), err, bytes.Equal(got, data))
	}
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import yenc").Run() != nil {
		testenv.Need(t, "python3-yenc module (python3 -c 'import yenc')", "python3-yenc")
	}
	c = exec.Command(py, "-c", `import sys, yenc
d = yenc.Decoder()
d.feed(b"".join(l for l in sys.stdin.buffer.read().split(b"\r\n") if not l.startswith(b"=y")))
sys.stdout.buffer.write(d.getDecoded())`)
	c.Stdin = bytes.NewReader([]byte(YEnc("g.bin", data)))
	got, err := c.Output()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("python3-yenc read back %d bytes (%v), same: %v", len(got), err, bytes.Equal(got, data))
	}
}
