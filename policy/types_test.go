package policy

import (
	"bytes"
	"debug/pe"
	"os"
	"slices"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
)

// PE is eicar's harmless Windows program.
var PE = eicar.WindowsProgram

func TestTypesByTheirBytes(t *testing.T) {
	if _, err := pe.NewFile(bytes.NewReader(PE(false))); err != nil {
		t.Fatalf("the test PE does not parse: %v", err)
	}
	self, _ := os.ReadFile("/proc/self/exe")
	ole := append(append([]byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}, make([]byte, 500)...), utf16("_VBA_PROJECT")...)
	iso := make([]byte, 0x9000)
	copy(iso[0x8001:], "CD001")
	fat := make([]byte, 4096)
	// 512-byte sectors, 4 a cluster, 4 reserved, 2 FATs of 2 sectors,
	// 512 root entries, 2048 sectors.
	copy(fat, "\xeb\x3c\x90mkfs.fat\x00\x02\x04\x04\x00\x02\x00\x02\x00\x08\xf8\x02\x00")
	copy(fat[54:], "FAT12   ")
	fat[510], fat[511] = 0x55, 0xaa
	ntfs := make([]byte, 4096)
	copy(ntfs[3:], "NTFS    ")
	ntfs[510], ntfs[511] = 0x55, 0xaa
	// A raw disk: an MBR whose one partition (FAT12, from sector 1) is
	// the volume above.
	mbrDisk := make([]byte, 512)
	copy(mbrDisk[446:], "\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00\x00")
	mbrDisk[510], mbrDisk[511] = 0x55, 0xaa
	mbrDisk = append(mbrDisk, fat...)
	// The same volume in a logical partition: the MBR's one entry an
	// extended partition at sector 1, whose boot record there names the
	// volume at the sector after it.
	logicalDisk := make([]byte, 1024)
	copy(logicalDisk[446:], "\x00\x00\x00\x00\x05\x00\x00\x00\x01\x00\x00\x00\x10\x00\x00\x00")
	copy(logicalDisk[512+446:], "\x00\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00\x00")
	logicalDisk[510], logicalDisk[511], logicalDisk[1022], logicalDisk[1023] = 0x55, 0xaa, 0x55, 0xaa
	logicalDisk = append(logicalDisk, fat...)
	vhd := append(bytes.Clone(fat), make([]byte, 512)...)
	copy(vhd[len(vhd)-512:], "conectix")
	dmg := append(bytes.Clone(fat), make([]byte, 512)...)
	copy(dmg[len(dmg)-512:], "koly")
	lnk := append([]byte{0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46}, make([]byte, 60)...)
	for name, c := range map[string]struct {
		data []byte
		file string
		want string
	}{
		"exe named .txt":      {PE(false), "readme.txt", "exe"},
		"dll":                 {PE(true), "x.bin", "dll"},
		"elf":                 {self, "", "elf"},
		"lnk named .pdf":      {lnk, "invoice.pdf", "lnk"},
		"iso":                 {iso, "disk.img", "iso"},
		"fat volume":          {fat, "disk.img", "vhd"},
		"ntfs volume":         {ntfs, "x.bin", "vhd"},
		"partitioned disk":    {mbrDisk, "x.bin", "vhd"},
		"logical partition":   {logicalDisk, "x.bin", "vhd"},
		"vhd":                 {vhd, "x.bin", "vhd"},
		"dmg":                 {dmg, "setup.dat", "dmg"},
		"ole with macros":     {ole, "report.doc", "office-macro"},
		"zip":                 {eicar.Zip(map[string][]byte{"a.txt": []byte("x")}), "a.dat", "zip"},
		"hta by content":      {[]byte("<html><HTA:APPLICATION ID=x></html>"), "page.txt", "hta"},
		"js by name":          {[]byte("var x = 1;"), "invoice.js", "js"},
		"encoded vbs":         {[]byte("#@~^XgAAAA==abc"), "x.txt", "vbs"},
		"plain text":          {[]byte("hello"), "hello.txt", ""},
		"exe-like name, text": {[]byte("hello"), "setup.exe", ""},
	} {
		got := TypesOf(c.data, c.file)
		if c.want == "" && len(got) > 0 || c.want != "" && !slices.Contains(got, c.want) {
			t.Errorf("%s: %v, want %q", name, got, c.want)
		}
	}
}

// TestNamesAsWindowsOpensThem: a name rule (and a script type told by the
// name) holds whatever Windows ignores when it opens a file: case,
// trailing dots and spaces, a stream suffix, a backslash path.
func TestNamesAsWindowsOpensThem(t *testing.T) {
	r, err := ParseRules("js", "*.scr")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"setup.scr": "block_names=*.scr", "SETUP.SCR": "block_names=*.scr", "setup.scr.": "block_names=*.scr",
		"setup.scr . .": "block_names=*.scr", "setup.scr::$DATA": "block_names=*.scr", `dir\setup.scr`: "block_names=*.scr",
		"a/b/setup.scr": "block_names=*.scr", "invoice.js...": "block_types=js", "setup.scr.txt": "", "readme.txt": "",
	} {
		if got := r.Check(nil, name); got != want {
			t.Errorf("%q: %q, want %q", name, got, want)
		}
	}
}
