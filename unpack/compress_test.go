package unpack

import (
	"bytes"
	"math/rand/v2"
	"os/exec"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/forms"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestCompressAsGzipReadsIt: 3 MiB of words, runs and random bytes,
// compressed by compress with code widths up to 10, 12 and 16 bits (the
// smaller ones clearing their table again and again), come back as gzip
// -d gives them back, byte for byte; a program in a .tar.Z is found
// inside, its clean twin clean.
func TestCompressAsGzipReadsIt(t *testing.T) {
	compress := testenv.Need(t, "compress", "ncompress")
	gz := testenv.Need(t, "gzip", "gzip")
	file := wordsRunsAndNoise(3, 3<<20)
	for _, bits := range []string{"10", "12", "16"} {
		z := forms.Made(t, map[string][]byte{"f": file}, "f.Z", "sh", "-c", compress+" -b"+bits+" -c f > f.Z")
		c := exec.Command(gz, "-dc")
		c.Stdin = bytes.NewReader(z)
		want, err := c.Output()
		if err != nil || !bytes.Equal(want, file) {
			t.Fatalf("-b%s: gzip -d: %v, %d bytes", bits, err, len(want))
		}
		got, err := unlzw(z, 64<<20)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("-b%s: %v, %d bytes back of %d", bits, err, len(got), len(want))
		}
	}
	tarZ := func(payload string) []byte {
		return forms.Made(t, map[string][]byte{"a.exe": []byte("MZ a program " + payload)}, "a.tar.Z", "sh", "-c", "tar cf - a.exe | "+compress+" -c > a.tar.Z")
	}
	if d := Scan(tarZ(eicar.String), Options{Archives: true}, Limits{}, matchEICAR); len(d) != 1 || d[0].Path != "unpacked/a.exe" {
		t.Errorf("%+v", d)
	}
	if d := Scan(tarZ("and nothing else"), Options{Archives: true}, Limits{}, matchEICAR); len(d) != 0 {
		t.Errorf("clean: %+v", d)
	}
}

// matchEICAR is a match that finds EICAR in an object's bytes.
func matchEICAR(b []byte, found func(string) bool) {
	if bytes.Contains(b, []byte(eicar.String)) {
		found("Eicar")
	}
}

func FuzzCompress(f *testing.F) {
	f.Add([]byte{0x1f, 0x9d, 0x90, 0x4d, 0xb4, 0x80, 0x80, 0x23})
	f.Fuzz(func(t *testing.T, d []byte) {
		if !isCompress(d) {
			return
		}
		if out, _ := unlzw(d, 1<<20); len(out) > 1<<20+1 {
			t.Fatalf("%d bytes", len(out))
		}
	})
}

// wordsRunsAndNoise is n bytes of a test file for a compressor's every
// step: words (matches near and far), runs of one byte up to 600 long
// (longer than bzip2's first run-length coding takes), random bytes;
// the same for the same seed.
func wordsRunsAndNoise(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	words := []string{"alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta\t"}
	var b bytes.Buffer
	for b.Len() < n {
		switch r.IntN(20) {
		case 0:
			b.Write(bytes.Repeat([]byte{byte(r.IntN(256))}, r.IntN(600)))
		case 1:
			for range r.IntN(200) {
				b.WriteByte(byte(r.IntN(256)))
			}
		default:
			b.WriteString(words[r.IntN(len(words))])
		}
	}
	return b.Bytes()
}
