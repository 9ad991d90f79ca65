package unpack

import (
	"bytes"
	"testing"

	"github.com/fsigkd/fsigkd/internal/forms"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// TestNSISFilesComeBackWhole: a file of 3 MiB (words and runs of one
// byte, so that every step of bzip2 is taken, over four of its 900k
// blocks) in makensis's installers of each compressor, solid and not,
// is walked as nsis-file-1 byte for byte.
func TestNSISFilesComeBackWhole(t *testing.T) {
	makensis := testenv.Need(t, "makensis", "nsis")
	file := wordsRunsAndNoise(7, 3<<20)
	for _, c := range []string{"zlib", "lzma", "bzip2"} {
		for _, solid := range []string{"", "/SOLID "} {
			script := "OutFile setup.exe\nSetCompressor " + solid + c + "\nSection\nSetOutPath $TEMP\nFile f.bin\nSectionEnd\n"
			setup := forms.Made(t, map[string][]byte{"f.bin": file, "s.nsi": []byte(script)}, "setup.exe", makensis, "-V1", "s.nsi")
			var got []byte
			Walk(setup, Options{Archives: true}, Limits{}, func(data []byte, where string) bool {
				if where == "nsis-file-1" {
					got = bytes.Clone(data)
				}
				return false
			})
			if !bytes.Equal(got, file) {
				t.Errorf("%s%s: %d bytes back of %d", solid, c, len(got), len(file))
			}
		}
	}
}

func FuzzNSISBzip2(f *testing.F) {
	f.Add([]byte{0x31, 0, 0, 0, 0x80, 0, 0x80, 0, 0x17})
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		z := newNSISBzip2(b)
		buf := make([]byte, 4096)
		for n < 64<<20 {
			k, err := z.Read(buf)
			n += k
			if err != nil {
				return
			}
		}
	})
}
