package unpack

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// binhexOf is data as macutils' binhex writes it (a data fork named
// name).
func binhexOf(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	bin := testenv.Need(t, "binhex", "macutils")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, name), data, 0o644)
	c := exec.Command(bin, "-d", name)
	c.Dir = dir
	out, err := c.Output()
	if err != nil {
		t.Fatalf("binhex: %v", err)
	}
	return out
}

// yencOf is data as python3-yenc encodes it, with the =ybegin and =yend
// lines a poster writes (testdata/mkyenc.py).
func yencOf(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	py := "/usr/bin/python3" // the system's, where python3-yenc installs
	if err := exec.Command(py, "-c", "import yenc").Run(); err != nil {
		testenv.Need(t, "python3-yenc module (python3 -c 'import yenc')", "python3-yenc")
	}
	c := exec.Command(py, "testdata/mkyenc.py", name)
	c.Stdin = bytes.NewReader(data)
	out, err := c.Output()
	if err != nil {
		t.Fatalf("mkyenc: %v", err)
	}
	return out
}

// TestBinHexAndYEncDecodedAsReadersDo: every byte value, made by the real
// encoders, comes back whole, in a text among other lines.
func TestBinHexAndYEncDecodedAsReadersDo(t *testing.T) {
	data := append(bytes.Repeat(func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}(), 40), bytes.Repeat([]byte{7}, 300)...) // a run, for BinHex's RLE
	text := append([]byte("Hello,\r\nthe file follows.\r\n\r\n"), binhexOf(t, "f.bin", data)...)
	files, broken := binhexBlocks(text)
	if broken || len(files) != 1 || files[0].name != "f.bin" || !bytes.Equal(files[0].data, data) {
		t.Errorf("BinHex: broken %v, %d files, %q, same: %v", broken, len(files), files[0].name, len(files) == 1 && bytes.Equal(files[0].data, data))
	}
	y := append([]byte("a news post\r\n"), yencOf(t, "f.bin", data)...)
	blocks := yencBlocks(y)
	if len(blocks) != 1 || blocks[0].name != "f.bin" || !bytes.Equal(blocks[0].data, data) {
		t.Errorf("yEnc: %d blocks", len(blocks))
	}
}

// TestBinHexAndYEncHoldingEICAR: EICAR BinHexed or yEncoded in a text
// (a file fetched, a text part) is found at its name; a cut BinHex is
// damaged, never clean; the clean twins are clean.
func TestBinHexAndYEncHoldingEICAR(t *testing.T) {
	match := func(b []byte, found func(string) bool) {
		if bytes.Contains(b, []byte(eicar.String)) {
			found("Eicar")
		}
	}
	for name, text := range map[string][]byte{
		"BinHex in a text": append([]byte("See below.\n"), binhexOf(t, "e.com", []byte(eicar.String))...),
		"yEnc in a text":   append([]byte("See below.\n"), yencOf(t, "e.com", []byte(eicar.String))...),
	} {
		d := Scan(text, Options{Archives: true, MIME: true}, Limits{}, match)
		if len(d) != 1 || d[0].Name != "Eicar" || d[0].Path != "e.com" {
			t.Errorf("%s: %+v", name, d)
		}
	}
	for name, text := range map[string][]byte{
		"BinHex": binhexOf(t, "r.txt", []byte("a harmless file")),
		"yEnc":   yencOf(t, "r.txt", []byte("a harmless file")),
	} {
		if d := Scan(text, Options{Archives: true, MIME: true}, Limits{}, match); len(d) != 0 {
			t.Errorf("%s, clean: %+v", name, d)
		}
	}
	cut := binhexOf(t, "e.com", bytes.Repeat([]byte("a long harmless file "), 100))
	cut = cut[:len(cut)/2]
	if d := Scan(cut, Options{Archives: true, MIME: true}, Limits{}, match); len(d) != 1 || d[0].Name != "Heuristics.Broken.Archive" {
		t.Errorf("a BinHex cut short: %+v", d)
	}
}

// FuzzBinHexAndYEnc feeds both block readers a text as it comes.
func FuzzBinHexAndYEnc(f *testing.F) {
	f.Add([]byte("(This file must be converted with BinHex 4.0)\n:#@9TBf&b,Q0[E3\"849K868&$33#3\"83!!!!!*6\"B08mK8#9!39\"E0&a3@PJe0#K\n3ALNh3d-T0hdN48P$39)Y8e4\"6N4\"8N3Y38j859C*8P96,94&8e3Y4NP-45%N5#Y\n)+Ue@!!!:\n"))
	f.Add([]byte("=ybegin line=128 size=4 name=a\r\n\x8b\x8c=}\x8d\r\n=yend size=4\r\n"))
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(d, Options{Archives: true, MIME: true}, Limits{MaxFileSize: 1 << 20, MaxTotal: 4 << 20}, func([]byte, func(string) bool) {})
	})
}
