package unpack

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// run runs a program of the test's, failing the test on an error.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// diskFiles are the files each image holds: a zip carrying the mark
// (deflated: its bytes are nowhere in the image as they lie), a long
// name in a subdirectory, a name in capitals, a file of many clusters.
func diskFiles(t testing.TB) map[string][]byte {
	var z bytes.Buffer
	w := zip.NewWriter(&z)
	f, _ := w.Create("inner.txt")
	f.Write(bytes.Repeat([]byte("DISK-MARK "), 50))
	w.Close()
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	return map[string][]byte{
		"invoice.zip":                      z.Bytes(),
		"Docs/A rather long file name.txt": []byte("a text with a long name\n"),
		"Docs/Sub/README.TXT":              []byte("capitals\n"),
		"big.bin":                          big,
	}
}

// fatImage makes a FAT volume of bits (12, 16, 32) of size MiB with
// dosfstools and mtools, holding files; with fragment, its big file is
// written into the hole a file deleted left and beyond: in pieces.
func fatImage(t testing.TB, bits, size int, files map[string][]byte, fragment bool) []byte {
	testenv.Need(t, "mkfs.vfat", "dosfstools")
	testenv.Need(t, "mcopy", "mtools")
	dir := t.TempDir()
	img := filepath.Join(dir, "fat.img")
	run(t, "truncate", "-s", fmt.Sprint(size<<20), img)
	run(t, "mkfs.vfat", "-F", fmt.Sprint(bits), img)
	put := func(name string, data []byte) {
		src := filepath.Join(dir, "src")
		os.WriteFile(src, data, 0o644)
		if d := filepath.Dir(name); d != "." {
			for i, parts := 0, strings.Split(d, "/"); i < len(parts); i++ {
				exec.Command("mmd", "-i", img, "::/"+strings.Join(parts[:i+1], "/")).Run() // made once
			}
		}
		run(t, "mcopy", "-i", img, src, "::/"+name)
	}
	if fragment {
		put("hole.bin", make([]byte, 40<<10))
		put("after.bin", []byte("after the hole"))
		run(t, "mdel", "-i", img, "::/hole.bin")
		files = maps(files, "after.bin", []byte("after the hole"))
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n != "after.bin" || !fragment {
			put(n, files[n])
		}
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func maps(m map[string][]byte, k string, v []byte) map[string][]byte {
	out := map[string][]byte{k: v}
	for a, b := range m {
		out[a] = b
	}
	return out
}

// mount runs a mount command (name, args) for mnt and gives the unmount,
// which does its work once.
func mount(t *testing.T, mnt, name string, args ...string) (umount func()) {
	run(t, name, args...)
	mounted := true
	return func() {
		if mounted {
			run(t, "umount", mnt)
			mounted = false
		}
	}
}

// ntfsImage makes an NTFS volume of size MiB with ntfs-3g, mounted
// (root): files, an alternate stream on the zip, a compressed directory
// with a file in it, and the big file written in pieces.
func ntfsImage(t *testing.T, size int, files map[string][]byte) ([]byte, map[string][]byte) {
	testenv.Need(t, "mkntfs", "ntfs-3g")
	testenv.Need(t, "setfattr", "attr")
	testenv.NeedRoot(t, "mounts an NTFS image with ntfs-3g")
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "ntfs.img"), filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	run(t, "truncate", "-s", fmt.Sprint(size<<20), img)
	run(t, "mkntfs", "-F", "-q", "-Q", img)
	umount := mount(t, mnt, "ntfs-3g", "-o", "compression,streams_interface=windows", img, mnt)
	defer umount()
	want := map[string][]byte{}
	write := func(name string, data []byte) {
		p := filepath.Join(mnt, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want[name] = data
	}
	// The volume filled: a filler, then small files up to its end; every
	// other one deleted, the big file can only go into the holes.
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, int64(st.Bavail)*st.Bsize-(2<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	pads := 0
	for ; ; pads++ {
		name := fmt.Sprintf("pad/%03d", pads)
		os.MkdirAll(filepath.Join(mnt, "pad"), 0o755)
		if err := os.WriteFile(filepath.Join(mnt, name), bytes.Repeat([]byte{byte(pads)}, 16<<10), 0o644); err != nil {
			os.Remove(filepath.Join(mnt, name))
			break
		}
		want[name] = bytes.Repeat([]byte{byte(pads)}, 16<<10)
	}
	for i := 0; i < pads; i += 2 {
		name := fmt.Sprintf("pad/%03d", i)
		os.Remove(filepath.Join(mnt, name))
		delete(want, name)
	}
	write("big.bin", files["big.bin"])
	os.Remove(filler)
	for n, d := range files {
		if n != "big.bin" {
			write(n, d)
		}
	}
	write("invoice.zip:hidden", files["invoice.zip"]) // an alternate data stream
	os.Mkdir(filepath.Join(mnt, "packed"), 0o755)
	run(t, "setfattr", "-n", "system.ntfs_attrib_be", "-v", "0x00000800", filepath.Join(mnt, "packed"))
	text := bytes.Repeat([]byte("compressible text, said again and again; "), 4000)
	write("packed/text.txt", text)
	write("packed/invoice.zip", files["invoice.zip"])
	// Compressed, as its attributes say (0x800). (ntfs-3g writes a file
	// as it is before it compresses it: its clusters freed still hold
	// the text, which the walk does not read.)
	out, err := exec.Command("getfattr", "-n", "system.ntfs_attrib_be", "-e", "hex", filepath.Join(mnt, "packed/text.txt")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "=0x00000820") {
		t.Fatalf("not compressed: %v %s", err, out)
	}
	umount()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b, want
}

// converted is raw converted by qemu-img to format (vpc, vhdx) with
// options.
func converted(t testing.TB, raw []byte, format string, opts ...string) []byte {
	testenv.Need(t, "qemu-img", "qemu-utils")
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.img"), filepath.Join(dir, "out")
	os.WriteFile(in, raw, 0o644)
	args := append([]string{"convert", "-f", "raw", "-O", format}, opts...)
	run(t, "qemu-img", append(args, in, out)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// partitioned is a disk of size MiB with sfdisk's table (label dos or
// gpt) of the volumes, each at its partition.
func partitioned(t *testing.T, label string, size int, vols ...[]byte) []byte {
	testenv.Need(t, "sfdisk", "fdisk")
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	run(t, "truncate", "-s", fmt.Sprint(size<<20), img)
	var script strings.Builder
	fmt.Fprintf(&script, "label: %s\n", label)
	start := 2048
	var starts []int
	for _, v := range vols {
		typ := "7"
		if label == "gpt" {
			typ = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
		}
		fmt.Fprintf(&script, "start=%d, size=%d, type=%s\n", start, len(v)/512, typ)
		starts = append(starts, start)
		start += len(v)/512 + 2048
	}
	cmd := exec.Command("sfdisk", img)
	cmd.Stdin = strings.NewReader(script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vols {
		copy(b[starts[i]*512:], v)
	}
	return b
}

// sevenZipFiles is what 7-Zip extracts of an image: its files by path
// (NTFS's own files and folders left out).
func sevenZipFiles(t *testing.T, img []byte) map[string][]byte {
	sz := testenv.Need(t, "7zz", "7zip")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.img"), img, 0o644)
	out := filepath.Join(dir, "x")
	run(t, sz, "x", "-bd", "-y", "-snh", "-o"+out, filepath.Join(dir, "a.img"))
	got := map[string][]byte{}
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(out, p)
		if strings.HasPrefix(rel, "[SYSTEM]") || strings.HasPrefix(rel, "$") || strings.Contains(rel, "/$") {
			return nil
		}
		b, _ := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = b
		return nil
	})
	return got
}

// sameFiles compares what the walk opened (under prefix) with want.
func sameFiles(t *testing.T, what string, walk map[string][]byte, prefix string, want map[string][]byte) {
	t.Helper()
	for name, data := range want {
		got, ok := walk[join(prefix, name)]
		switch {
		case !ok:
			t.Errorf("%s: %s not walked (walked: %v)", what, name, keys(walk))
		case !bytes.Equal(got, data):
			t.Errorf("%s: %s walked as %d bytes, want %d", what, name, len(got), len(data))
		}
	}
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// markFound scans an image for the mark, and says where it was found.
func markFound(img []byte) string {
	got := Scan(img, Options{Archives: true}, Limits{}, func(b []byte, found func(string) bool) {
		if bytes.Contains(b, []byte("DISK-MARK")) {
			found("Mark")
		}
	})
	if len(got) != 1 || got[0].Name != "Mark" {
		return fmt.Sprint(got)
	}
	return got[0].Path
}

// TestFATImagesWalked: FAT12, FAT16 and FAT32 volumes made by
// dosfstools and mtools (long names, subdirectories, a file in pieces),
// bare (.img), in VHD (fixed, dynamic) and VHDX, and partitioned (MBR,
// GPT): every file walked with its bytes, as 7-Zip extracts them, and a
// zip inside opened (its mark nowhere in the image as it lies).
func TestFATImagesWalked(t *testing.T) {
	files := diskFiles(t)
	for _, c := range []struct {
		bits, size int
		fragment   bool
	}{{12, 2, false}, {16, 16, true}, {32, 40, true}} {
		vol := fatImage(t, c.bits, c.size, files, c.fragment)
		name := fmt.Sprintf("FAT%d", c.bits)
		if bytes.Contains(vol, []byte("DISK-MARK")) {
			t.Fatalf("%s: the mark lies in the image as it is", name)
		}
		sz := sevenZipFiles(t, vol)
		sameFiles(t, name+" (7-Zip)", sz, "", files)
		sameFiles(t, name, walked(vol), "", sz)
		images := map[string][]byte{
			"img":         vol,
			"vhd fixed":   converted(t, vol, "vpc", "-o", "subformat=fixed"),
			"vhd dynamic": converted(t, vol, "vpc"),
			"vhdx":        converted(t, vol, "vhdx"),
		}
		if c.bits == 16 {
			images["mbr"] = partitioned(t, "dos", 40, fatImage(t, 12, 2, map[string][]byte{"first.txt": []byte("1")}, false), vol)
			images["gpt"] = partitioned(t, "gpt", 40, vol)
			images["mbr in vhdx"] = converted(t, images["mbr"], "vhdx")
		}
		for form, img := range images {
			prefix := ""
			switch form {
			case "mbr", "mbr in vhdx":
				prefix = "partition-2"
			case "gpt":
				prefix = "partition-1"
			}
			sameFiles(t, name+" "+form, walked(img), prefix, files)
			if at := markFound(img); at != join(prefix, "invoice.zip/inner.txt") {
				t.Errorf("%s %s: the mark found at %q", name, form, at)
			}
		}
	}
}

// TestNTFSImagesWalked: an NTFS volume made by ntfs-3g (a file in many
// fragments, an alternate data stream, LZNT1-compressed files), bare and
// in VHDX: every stream walked with its bytes, as 7-Zip extracts them.
func TestNTFSImagesWalked(t *testing.T) {
	files := diskFiles(t)
	vol, want := ntfsImage(t, 16, files)
	if bytes.Contains(vol, []byte("DISK-MARK")) {
		t.Fatal("the mark lies in the image as it is")
	}
	sz := sevenZipFiles(t, vol)
	sameFiles(t, "NTFS (7-Zip)", sz, "", want)
	for form, img := range map[string][]byte{"img": vol, "vhdx": converted(t, vol, "vhdx"), "vhd": converted(t, vol, "vpc")} {
		w := walked(img)
		sameFiles(t, "NTFS "+form, w, "", want)
		for name := range w {
			if strings.HasPrefix(name, "$") {
				t.Errorf("NTFS %s: the volume's own file %s walked", form, name)
			}
		}
	}
}

// detections scans img and gives its detections, as "name@path".
func detections(img []byte) []string {
	var out []string
	for _, d := range Scan(img, Options{Archives: true}, Limits{}, func([]byte, func(string) bool) {}) {
		out = append(out, d.Name+"@"+d.Path)
	}
	return out
}

// TestDiskImagesDamaged: what an image's own structures cannot say is
// suspected, not judged clean: a VHDX whose log Windows would replay
// first (its files may then be others), a VHD whose block table points
// past its end, a FAT file whose cluster chain ends before its size, an
// NTFS stream encrypted (EFS: none without the key reads it); an image
// cut anywhere is read without fault.
func TestDiskImagesDamaged(t *testing.T) {
	files := diskFiles(t)
	vol := fatImage(t, 16, 16, files, false)
	vhdx := converted(t, vol, "vhdx")
	logged := bytes.Clone(vhdx)
	for _, at := range []int{64 << 10, 128 << 10} {
		h := logged[at : at+4096]
		h[48] = 1 // the log's GUID: not zero, a log to replay
		clear(h[4:8])
		binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(h, crc32c))
	}
	dynamic := converted(t, vol, "vpc")
	pastEnd := bytes.Clone(dynamic)
	hdr := binary.BigEndian.Uint64(pastEnd[16:])
	table := binary.BigEndian.Uint64(pastEnd[hdr+16:])
	for i := table; ; i += 4 {
		if binary.BigEndian.Uint32(pastEnd[i:]) != 0xffffffff {
			binary.BigEndian.PutUint32(pastEnd[i:], 0x7ffffff0)
			break
		}
	}
	cut := bytes.Clone(vol)
	f, _ := openFAT(volume{k: rawDisk(cut), size: int64(len(cut))})
	root, _ := f.v.read(f.root, f.rootSize)
	for i := 0; i < len(root); i += 32 {
		if bytes.Equal(root[i:i+11], []byte("BIG     BIN")) {
			c := binary.LittleEndian.Uint16(root[i+26:])
			tableAt := int64(binary.LittleEndian.Uint16(cut[14:])) * int64(binary.LittleEndian.Uint16(cut[11:]))
			binary.LittleEndian.PutUint16(cut[tableAt+2*int64(c)+2:], 0) // the second cluster's link: free
		}
	}
	for name, c := range map[string]struct {
		img  []byte
		want string
	}{
		"vhdx log":         {logged, "Heuristics.Broken.Archive@"},
		"vhd past its end": {pastEnd, "Heuristics.Broken.Archive@"},
		"fat chain cut":    {cut, "Heuristics.Broken.Archive@big.bin"},
	} {
		if got := detections(c.img); len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: %v, want %s", name, got, c.want)
		}
	}
	if got := detections(vhdx); len(got) != 0 {
		t.Errorf("the image as made: %v", got)
	}
	for _, img := range [][]byte{vhdx, dynamic, vol} {
		for n := 512; n < len(img); n += len(img)/61 + 1 {
			Scan(img[:n], Options{Archives: true}, Limits{}, func([]byte, func(string) bool) {})
		}
	}
}

// TestNTFSEncryptedStreamSuspected: a stream flagged encrypted (EFS) is
// suspected where it is, the rest walked.
func TestNTFSEncryptedStreamSuspected(t *testing.T) {
	vol, _ := ntfsImage(t, 16, diskFiles(t))
	n, ok := openNTFS(volume{k: rawDisk(vol), size: int64(len(vol))})
	if !ok {
		t.Fatal("not opened")
	}
	// imageAt is where the table's byte at off is in the image.
	imageAt := func(off int64) int64 {
		for _, e := range n.mft {
			if off < e.n {
				return e.off + off
			}
			off -= e.n
		}
		t.Fatal("past the table")
		return 0
	}
	patched := false
	n.records(n.mftSize/n.record, func(i int64, rec []byte) bool {
		isBig := false
		n.attributes(rec, func(_ int64, name string, _ bool) { isBig = isBig || name == "big.bin" })
		if !isBig {
			return true
		}
		for at := int(binary.LittleEndian.Uint16(rec[20:])); at+16 <= len(rec); at += int(binary.LittleEndian.Uint32(rec[at+4:])) {
			if binary.LittleEndian.Uint32(rec[at:]) == 0x80 {
				// The flags' high byte; where it falls in a sector's last
				// two bytes, its value lies in the update sequence array.
				b := int64(at) + 13
				if b%512 >= 510 {
					b = int64(binary.LittleEndian.Uint16(rec[4:])) + 2*(b/512+1) + b%512 - 510
				}
				vol[imageAt(i*n.record+b)] |= 0x40
				patched = true
				return false
			}
		}
		return true
	})
	if !patched {
		t.Fatal("big.bin's data not found")
	}
	got := detections(vol)
	if len(got) != 1 || got[0] != "Heuristics.Encrypted.NTFS@big.bin" {
		t.Errorf("%v", got)
	}
}

// TestDiskImagesCrossLinkedBounded: five hundred files of a FAT volume
// named on one chain of 8 MiB (4 GiB to scan, from an image of 16 MiB)
// stop the scan at its limit on what it unpacks, in place or not.
func TestDiskImagesCrossLinkedBounded(t *testing.T) {
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i % 251)
	}
	vol := fatImage(t, 16, 16, map[string][]byte{"big.bin": big}, false)
	f, _ := openFAT(volume{k: rawDisk(vol), size: int64(len(vol))})
	root := vol[f.root : f.root+f.rootSize]
	var entry []byte
	for i := 0; i < len(root); i += 32 {
		if bytes.Equal(root[i:i+11], []byte("BIG     BIN")) {
			entry = bytes.Clone(root[i : i+32])
		}
	}
	for i := 0; i+32 <= len(root); i += 32 {
		e := bytes.Clone(entry)
		copy(e[:8], fmt.Sprintf("F%07d", i/32))
		copy(root[i:], e)
	}
	got := detections(vol)
	if len(got) != 1 || !strings.HasPrefix(got[0], "Heuristics.Limits.Exceeded") {
		t.Errorf("%v", got)
	}
}

// TestNTFSTableReadOnce: a master file table in sixty-five thousand
// pieces is read through once, not from its start for each record.
func TestNTFSTableReadOnce(t *testing.T) {
	d := make([]byte, 1<<20)
	n := &ntfsVol{v: volume{k: rawDisk(d), size: int64(len(d))}, cluster: 4096, record: 1024}
	for range 1 << 16 {
		n.mft = append(n.mft, extent{0, 1024})
	}
	seen := 0
	done := make(chan bool)
	go func() {
		n.records(1<<20, func(int64, []byte) bool { seen++; return true })
		done <- true
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // from its start each time: an hour
		t.Fatal("not done in time")
	}
	if seen != 0 {
		t.Fatalf("%d records of zeros read as records", seen)
	}
}

// TestNotEveryBootSignatureIsADisk: data with 0x55AA at 510 and no file
// system read here is no disk image (it is matched as it is).
func TestNotEveryBootSignatureIsADisk(t *testing.T) {
	d := bytes.Repeat([]byte("not a disk "), 100000)
	d[510], d[511] = 0x55, 0xaa
	if isDiskImage(d) {
		t.Fatal("typed a disk image")
	}
}

// FuzzDiskImage: no image, however made, makes the walk fail or read
// outside it.
func FuzzDiskImage(f *testing.F) {
	mbr := make([]byte, 64<<10)
	mbr[510], mbr[511] = 0x55, 0xaa
	mbr[446+4], mbr[446+8], mbr[446+12] = 0x07, 1, 100
	copy(mbr[512+3:], "NTFS    ")
	f.Add(mbr)
	vhd := make([]byte, 8<<10)
	copy(vhd, "conectix")
	vhd[63] = 3
	f.Add(vhd)
	// Images made by the real tools, for the fuzzer to change: a FAT12
	// volume of a few files, and the same as a dynamic VHD.
	if _, err := exec.LookPath("mkfs.vfat"); err == nil {
		vol := fatImage(f, 12, 1, map[string][]byte{"a.txt": []byte("a file"), "d/long file name.bin": bytes.Repeat([]byte("x"), 5000)}, false)
		f.Add(vol)
		if _, err := exec.LookPath("qemu-img"); err == nil {
			f.Add(converted(f, vol, "vpc"))
		}
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		Scan(d, Options{Archives: true}, Limits{MaxFiles: 100}, func([]byte, func(string) bool) {})
	})
}

// exfatImage makes an exFAT volume of size MiB with exfatprogs, mounted
// by exfat-fuse on a loop device (root), holding files; the big file is
// written into the holes of a volume filled and half emptied: in pieces,
// along its FAT chain.
func exfatImage(t *testing.T, size int, files map[string][]byte) ([]byte, map[string][]byte) {
	testenv.Need(t, "mkfs.exfat", "exfatprogs")
	fuse := testenv.Need(t, "mount.exfat-fuse", "exfat-fuse")
	testenv.NeedRoot(t, "mounts an exFAT image on a loop device")
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "x.img"), filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	run(t, "truncate", "-s", fmt.Sprint(size<<20), img)
	run(t, "mkfs.exfat", img)
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		testenv.Unavailable(t, "no loop device: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	defer exec.Command("losetup", "-d", loop).Run()
	umount := mount(t, mnt, fuse, loop, mnt)
	defer umount()
	want := map[string][]byte{}
	write := func(name string, data []byte) error {
		p := filepath.Join(mnt, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			os.Remove(p)
			return err
		}
		want[name] = data
		return nil
	}
	pads := 0
	for ; write(fmt.Sprintf("pad/%03d", pads), bytes.Repeat([]byte{byte(pads)}, 32<<10)) == nil; pads++ {
	}
	for i := 0; i < pads; i += 2 {
		name := fmt.Sprintf("pad/%03d", i)
		os.Remove(filepath.Join(mnt, name))
		delete(want, name)
	}
	for n, d := range files {
		if err := write(n, d); err != nil {
			t.Fatal(err)
		}
	}
	umount()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b, want
}

// TestExFATImagesWalked: an exFAT volume made by exfatprogs and written
// by exfat-fuse (long names, subdirectories, a file in pieces along its
// chain, others in a row), bare and in VHDX: every file walked with the
// bytes the driver wrote (7-Zip reads no exFAT).
func TestExFATImagesWalked(t *testing.T) {
	files := diskFiles(t)
	vol, want := exfatImage(t, 8, files)
	if bytes.Contains(vol, []byte("DISK-MARK")) {
		t.Fatal("the mark lies in the image as it is")
	}
	for form, img := range map[string][]byte{"img": vol, "vhdx": converted(t, vol, "vhdx")} {
		sameFiles(t, "exFAT "+form, walked(img), "", want)
		if at := markFound(img); at != "invoice.zip/inner.txt" {
			t.Errorf("exFAT %s: the mark found at %q", form, at)
		}
	}
}
