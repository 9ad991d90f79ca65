package unpack

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"hash/crc32"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// zipOf is a zip of files, each by method (0 stored, 8 deflated), with
// its sizes in a data descriptor when described (as streaming writers
// write them).
func zipOf(t *testing.T, method uint16, described bool, files ...string) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for i, content := range files {
		h := &zip.FileHeader{Name: fmt.Sprintf("f%d.com", i), Method: method}
		var f interface{ Write([]byte) (int, error) }
		var err error
		if described {
			f, err = w.CreateHeader(h)
		} else {
			// Sizes in the local header: written raw, compressed here.
			data := []byte(content)
			h.CRC32, h.UncompressedSize64 = crc32.ChecksumIEEE(data), uint64(len(data))
			if method == zip.Deflate {
				var c bytes.Buffer
				fw, _ := flate.NewWriter(&c, flate.BestCompression)
				fw.Write(data)
				fw.Close()
				data = c.Bytes()
			}
			h.CompressedSize64 = uint64(len(data))
			f, err = w.CreateRaw(h)
			content = string(data)
		}
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(content))
	}
	w.Close()
	return b.Bytes()
}

// noise is random bytes: no zip, no format.
func noise(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// TestZipsInsideOtherDataOpened: a zip that lies inside data no reader
// here opens, neither at its start nor at its end (where self-extractors
// keep theirs), passed as raw bytes; ClamAV finds such a zip anywhere.
// Now opened by its local headers wherever it lies: stored and
// deflated, with its central directory and cut off before it, sizes in
// data descriptors, several entries, two zips one after the other, its
// first entry Deflate64, bzip2 or LZMA (7-Zip's; without a central
// directory such a zip is reported damaged, not passed), and inside an
// ext4 image (made by mkfs.ext4, the zip written by debugfs).
func TestZipsInsideOtherDataOpened(t *testing.T) {
	e := eicar.String
	whole := zipOf(t, zip.Deflate, false, "clean one", e)
	cd := bytes.Index(whole, []byte("PK\x01\x02"))
	forms := map[string][]byte{
		"deflated, mid-data":       append(append(noise(1, 1<<20), whole...), noise(2, 1<<20)...),
		"stored, mid-data":         append(append(noise(3, 3000), zipOf(t, zip.Store, false, e)...), noise(4, 200000)...),
		"described":                append(append(noise(5, 777), zipOf(t, zip.Deflate, true, "a", "b", e)...), noise(6, 99999)...),
		"no central directory":     append(append(noise(7, 5000), whole[:cd]...), noise(8, 300000)...),
		"second of two":            append(append(append(noise(9, 100), zipOf(t, zip.Deflate, false, "x")...), zipOf(t, zip.Deflate, false, e)...), noise(10, 70000)...),
		"past 8 MiB":               append(append(noise(11, 9<<20), whole...), noise(12, 100000)...),
		"after a text of PK bytes": append(append([]byte(strings.Repeat("not a header: PK\x03\x04 ", 1000)), whole...), noise(13, 80000)...),
	}
	// Made by 7-Zip with the methods Go's writer has not: the first
	// entry's method is no reason to pass the zip by.
	sz := testenv.Need(t, "7zz", "7zip")
	for _, m := range []string{"Deflate64", "BZip2", "LZMA"} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "e.com"), []byte(e+strings.Repeat(" padding to pack", 200)), 0o644)
		run(t, sz, "a", "-bd", "-tzip", "-mm="+m, filepath.Join(dir, "a.zip"), filepath.Join(dir, "e.com"))
		z, _ := os.ReadFile(filepath.Join(dir, "a.zip"))
		forms[m+", mid-data"] = append(append(noise(20, 70000), z...), noise(21, 90000)...)
		forms[m+", no central directory"] = append(append(noise(22, 7000), z[:bytes.Index(z, []byte("PK\x01\x02"))]...), noise(23, 90000)...)
	}
	if mkfs, err := exec.LookPath("mkfs.ext4"); err == nil {
		dir := t.TempDir()
		img := filepath.Join(dir, "ext.img")
		os.WriteFile(filepath.Join(dir, "e.zip"), whole, 0o644)
		run(t, "truncate", "-s", "8M", img)
		run(t, mkfs, "-q", img)
		run(t, "debugfs", "-w", "-R", "write "+filepath.Join(dir, "e.zip")+" invoice.zip", img)
		forms["ext4 image"], _ = os.ReadFile(img)
	} else {
		testenv.Unavailable(t, "mkfs.ext4 not installed: apt-get install e2fsprogs")
	}
	for name, d := range forms {
		if bytes.Contains(d, []byte(e)) && !strings.HasPrefix(name, "stored") {
			t.Fatalf("%s: EICAR lies in it as it is", name)
		}
		got := eicarFound(d)
		switch {
		case strings.HasSuffix(name, ", no central directory"):
			// Read by local headers, which this walk decodes for stored
			// and deflated entries: the zip is reported, not passed.
			if len(got) == 0 || got[0].Name != "Heuristics.Broken.Archive" {
				t.Errorf("%s: %+v", name, got)
			}
		case len(got) != 1 || got[0].Name != "EICAR":
			t.Errorf("%s: %+v", name, got)
		}
	}
}

// TestZipsInsideOtherDataBounded: a zip of ten thousand entries inside
// other data is walked once (its own headers are not each taken for
// another zip's start); more zips than the bound is
// Heuristics.Limits.Exceeded.Files, not a clean verdict.
func TestZipsInsideOtherDataBounded(t *testing.T) {
	var entries []string
	for i := range 10000 {
		entries = append(entries, fmt.Sprint("entry ", i))
	}
	plain := zipOf(t, zip.Store, false, entries...)
	start := time.Now()
	Walk(plain, Options{Archives: true}, Limits{MaxFiles: 100000}, func([]byte, string) bool { return false })
	t.Logf("the zip alone: %v", time.Since(start))
	many := append(append(noise(1, 1000), plain...), noise(2, 100000)...)
	visited := 0
	done := make(chan bool)
	go func() {
		Walk(many, Options{Archives: true}, Limits{MaxFiles: 100000}, func(b []byte, where string) bool {
			visited++
			return false
		})
		done <- true
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second): // each header from itself on: fifty million members
		t.Fatal("not done in time")
	}
	if visited > 2*10001+10 { // a member is visited for its name, then its bytes
		t.Errorf("%d visits for 10,000 entries", visited)
	}
	var decoys []byte
	for range maxZipsBehind + 1 {
		decoys = append(append(decoys, noise(3, 100)...), zipOf(t, zip.Deflate, false, "decoy")...)
	}
	decoys = append(append(decoys, zipOf(t, zip.Deflate, false, eicar.String)...), noise(4, 100000)...)
	got := eicarFound(decoys)
	if len(got) == 0 || got[len(got)-1].Name != "Heuristics.Limits.Exceeded.Files" {
		t.Errorf("%+v", got)
	}
}

// TestNoZipInNoise: random data, and data with PK\x03\x04 but no header
// a zip tool writes, hold no zip (nothing opened, nothing suspected).
func TestNoZipInNoise(t *testing.T) {
	d := noise(5, 4<<20)
	for i := 4099; i+4 < len(d); i += 4099 {
		copy(d[i:], "PK\x03\x04")
	}
	if got := detections(d); len(got) != 0 {
		t.Errorf("%v", got)
	}
}
