package unpack

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// udif lays out raw as a UDIF disk image (no tool in Debian writes one:
// 7-Zip and dmg2img, which read them, check this one) of one partition,
// its chunks of 256 sectors each written in turn as zlib, bzip2 (by the
// bzip2 program), ADC (literal runs), stored, and zeros where they are
// all zeros; typ, when set, is the type of every chunk not of zeros.
func udif(t *testing.T, raw []byte, typ uint32) []byte {
	t.Helper()
	const per = 256
	var data, mish bytes.Buffer
	type chunk struct {
		typ            uint32
		sector, count  uint64
		offset, length uint64
	}
	var chunks []chunk
	for i, sec := 0, 0; sec*dmgSector < len(raw); i, sec = i+1, sec+per {
		piece := raw[sec*dmgSector : min(len(raw), (sec+per)*dmgSector)]
		c := chunk{sector: uint64(sec), count: uint64(len(piece) / dmgSector), offset: uint64(data.Len())}
		kinds := []uint32{0x80000005, 0x80000006, 0x80000004, 1}
		c.typ = kinds[i%len(kinds)]
		if typ != 0 {
			c.typ = typ
		}
		if allZero(piece) {
			c.typ = 2
		}
		switch c.typ {
		case 0x80000005:
			w := zlib.NewWriter(&data)
			w.Write(piece)
			w.Close()
		case 0x80000006:
			cmd := exec.Command(testenv.Need(t, "bzip2", "bzip2"), "-c")
			cmd.Stdin = bytes.NewReader(piece)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			data.Write(out)
		case 0x80000004:
			for j := 0; j < len(piece); j += 128 {
				n := min(128, len(piece)-j)
				data.WriteByte(0x80 | byte(n-1))
				data.Write(piece[j : j+n])
			}
		case 2:
		default:
			data.Write(piece)
		}
		c.length = uint64(data.Len()) - c.offset
		chunks = append(chunks, c)
	}
	chunks = append(chunks, chunk{typ: 0xffffffff, sector: uint64(len(raw) / dmgSector)})
	be := func(v any) { binary.Write(&mish, binary.BigEndian, v) }
	mish.WriteString("mish")
	be(uint32(1))
	be(uint64(0))
	be(uint64(len(raw) / dmgSector))
	be(uint64(0)) // data start
	be(uint32(per))
	be(uint32(0))
	mish.Write(make([]byte, 24+136))
	be(uint32(len(chunks)))
	for _, c := range chunks {
		be(c.typ)
		be(uint32(0))
		be(c.sector)
		be(c.count)
		be(c.offset)
		be(c.length)
	}
	plist := `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>resource-fork</key>
	<dict>
		<key>blkx</key>
		<array>
			<dict>
				<key>Attributes</key>
				<string>0x0050</string>
				<key>CFName</key>
				<string>disk image (DOS_FAT_12 : 0)</string>
				<key>Data</key>
				<data>
				` + base64.StdEncoding.EncodeToString(mish.Bytes()) + `
				</data>
				<key>ID</key>
				<string>0</string>
				<key>Name</key>
				<string>disk image (DOS_FAT_12 : 0)</string>
			</dict>
		</array>
	</dict>
</dict>
</plist>
`
	img := data.Bytes()
	xmlOff := len(img)
	img = append(img, plist...)
	koly := make([]byte, 512)
	copy(koly, "koly")
	binary.BigEndian.PutUint32(koly[4:], 4)
	binary.BigEndian.PutUint32(koly[8:], 512)
	binary.BigEndian.PutUint32(koly[12:], 1)
	binary.BigEndian.PutUint64(koly[32:], uint64(xmlOff)) // the data fork's length
	binary.BigEndian.PutUint64(koly[216:], uint64(xmlOff))
	binary.BigEndian.PutUint64(koly[224:], uint64(len(plist)))
	binary.BigEndian.PutUint32(koly[488:], 1)
	binary.BigEndian.PutUint64(koly[492:], uint64(len(raw)/dmgSector))
	return append(img, koly...)
}

// TestDMGImagesWalked: a disk image holding a FAT volume, its chunks
// zlib, bzip2, ADC, stored and zeros: its partition comes out as 7-Zip
// and dmg2img read it (the volume byte for byte; its files, as 7-Zip
// extracts them through it), and the volume's files are walked;
// its zip's mark is nowhere in the image as it lies.
func TestDMGImagesWalked(t *testing.T) {
	files := diskFiles(t)
	vol := fatImage(t, 12, 2, files, false)
	img := udif(t, vol, 0)
	if bytes.Contains(img, []byte("DISK-MARK")) {
		t.Fatal("the mark lies in the image as it is")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.dmg"), img, 0o644)
	run(t, testenv.Need(t, "dmg2img", "dmg2img"), "-s", filepath.Join(dir, "a.dmg"), filepath.Join(dir, "a.img"))
	if b, _ := os.ReadFile(filepath.Join(dir, "a.img")); !bytes.Equal(b, vol) {
		t.Fatalf("dmg2img reads %d bytes, not the volume", len(b))
	}
	// 7-Zip opens the partition, and the FAT volume in it, at once.
	sameFiles(t, "DMG (7-Zip)", sevenZipFiles(t, img), "", files)
	w := walked(img)
	if !bytes.Equal(w["partition-0"], vol) {
		t.Fatalf("the partition walked as %d bytes (walked %v)", len(w["partition-0"]), keys(w))
	}
	sameFiles(t, "DMG", w, "partition-0", files)
	if at := markFound(img); at != "partition-0/invoice.zip/inner.txt" {
		t.Errorf("the mark found at %q", at)
	}
}

// TestDMGDamagedOrUnsupported: a chunk of LZFSE (which neither ClamAV
// nor this engine decodes) is suspected, the rest read; a trailer whose
// property list lies past the image, or a chunk past its data, is
// suspected; an image cut anywhere is read without fault.
func TestDMGDamagedOrUnsupported(t *testing.T) {
	vol := fatImage(t, 12, 2, map[string][]byte{"a.txt": []byte("a")}, false)
	lzfse := udif(t, vol, 0x80000007)
	past := udif(t, vol, 0)
	binary.BigEndian.PutUint64(past[len(past)-512+216:], uint64(len(past)))
	for name, c := range map[string]struct {
		img  []byte
		want string
	}{
		"lzfse":      {lzfse, "Heuristics.Unsupported.DMG@partition-0"},
		"plist past": {past, "Heuristics.Broken.Archive@"},
	} {
		got := detections(c.img)
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: %v, want %s", name, got, c.want)
		}
	}
	img := udif(t, vol, 0)
	for n := 0; n < len(img); n += len(img)/53 + 1 {
		Scan(img[:n], Options{Archives: true}, Limits{}, func([]byte, func(string) bool) {})
	}
	if got := detections(img); len(got) != 0 {
		t.Errorf("the image whole: %v", got)
	}
}

// FuzzDMG: no image, however made, makes the walk fail or read outside
// it.
func FuzzDMG(f *testing.F) {
	d := make([]byte, 2048)
	copy(d[len(d)-512:], "koly")
	f.Add(d)
	f.Fuzz(func(t *testing.T, d []byte) {
		if len(d) >= 512 {
			copy(d[len(d)-512:], "koly")
		}
		Scan(d, Options{Archives: true}, Limits{MaxFiles: 100}, func([]byte, func(string) bool) {})
	})
}
