package policy

import (
	"bytes"
	"encoding/binary"
	"path"
	"slices"
	"strings"

	"github.com/fsigkd/fsigkd/internal/diskpart"
	"github.com/gabriel-vasile/mimetype"
)

// TypeNames are the types block_types knows, and how each is told.
var TypeNames = map[string]string{
	"exe":          "a Windows program (PE, not a DLL; or a DOS MZ program)",
	"dll":          "a Windows library (PE with the DLL flag)",
	"elf":          "a Linux or Unix program, library or object (ELF)",
	"macho":        "a macOS program (Mach-O)",
	"msi":          "a Windows installer (MSI)",
	"lnk":          "a Windows shortcut",
	"iso":          "a disc image (ISO 9660 or UDF)",
	"vhd":          "a disk image Windows mounts (VHD, VHDX; a raw .img of a FAT, exFAT or NTFS volume, of a GPT disk, or of an MBR disk holding such a volume in a partition, primary or logical)",
	"dmg":          "an Apple disk image (UDIF .dmg)",
	"jar":          "a Java archive",
	"apk":          "an Android package",
	"cab":          "a Microsoft cabinet",
	"zip":          "a zip archive (not a document that is one: docx, odt, jar...)",
	"rar":          "a RAR archive",
	"7z":           "a 7-Zip archive",
	"office-macro": "an Office document with macros (an OLE document with a VBA project; vbaProject.bin in an OOXML one)",
	"hta":          "an HTML application (by content: <HTA:APPLICATION; or named .hta)",
	"js":           "a script Windows runs with its script host (named .js, .jse)",
	"vbs":          "a VBScript (named .vbs, .vbe, .wsf; or encoded by content: #@~^)",
	"ps1":          "a PowerShell script (named .ps1, .psm1, .psd1)",
	"bat":          "a batch file (named .bat, .cmd)",
}

// byMIME maps the types the mimetype library detects to ours.
var byMIME = map[string]string{
	"application/x-elf": "elf", "application/x-executable": "elf", "application/x-sharedlib": "elf",
	"application/x-object": "elf", "application/x-coredump": "elf",
	"application/x-mach-binary": "macho", "application/x-ms-installer": "msi", "application/x-ms-shortcut": "lnk",
	"application/java-archive": "jar", "application/vnd.android.package-archive": "apk",
	"application/vnd.ms-cab-compressed": "cab", "application/zip": "zip",
	"application/x-rar-compressed": "rar", "application/x-7z-compressed": "7z",
}

// Scripts Windows runs by their name: the name decides, as it does there.
var byExtension = map[string]string{
	".js": "js", ".jse": "js", ".vbs": "vbs", ".vbe": "vbs", ".wsf": "vbs", ".ps1": "ps1", ".psm1": "ps1",
	".psd1": "ps1", ".bat": "bat", ".cmd": "bat", ".hta": "hta",
}

// Rules are a service's block_types and block_names: what is refused
// whatever the engine says, by what it is (its bytes) or by what it is
// called.
type Rules struct {
	types map[string]bool // our names, and MIME types ("type/subtype")
	mimes bool            // some of types are MIME types
	// libTypes: some of types need the mimetype library (see libTypes).
	libTypes bool
	names    []string // globs, lower case
}

// ParseRules reads block_types and block_names.
func ParseRules(types, names string) (*Rules, error) {
	r := &Rules{types: map[string]bool{}}
	es, err := entries(types)
	if err != nil {
		return nil, &ListError{Key: "block_types", Err: err}
	}
	for _, e := range es {
		t := strings.ToLower(e.text)
		if _, ok := TypeNames[t]; !ok && !strings.Contains(t, "/") {
			return nil, &ListError{Key: "block_types", Err: bad(e, "a type ("+strings.Join(sortedTypes(), ", ")+") or a MIME type")}
		}
		r.types[t] = true
		r.mimes = r.mimes || strings.Contains(t, "/")
		r.libTypes = r.libTypes || slices.Contains(libTypes, t)
	}
	es, err = entries(names)
	if err != nil {
		return nil, &ListError{Key: "block_names", Err: err}
	}
	for _, e := range es {
		g := strings.ToLower(e.text)
		if _, err := path.Match(g, ""); err != nil || strings.Contains(g, "/") {
			return nil, &ListError{Key: "block_names", Err: bad(e, "a file name pattern (*, ?, [a-z]; no /)")}
		}
		r.names = append(r.names, g)
	}
	return r, nil
}

func sortedTypes() []string {
	var out []string
	for t := range TypeNames {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Values are the rules as block_types and block_names take them (the
// entries of @files included), for an engine that applies them itself.
func (r *Rules) Values() (types, names string) {
	if r == nil {
		return "", ""
	}
	var ts []string
	for t := range r.types {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return strings.Join(ts, ","), strings.Join(r.names, ",")
}

// Empty tells whether there is no rule: nothing to walk.
func (r *Rules) Empty() bool { return r == nil || len(r.types) == 0 && len(r.names) == 0 }

// Check gives the rule that refuses an object or member with these bytes
// (nil: only its name is known) and this name ("block_types=exe",
// "block_names=*.scr"), or "".
func (r *Rules) Check(data []byte, name string) string {
	if r.Empty() {
		return ""
	}
	base := windowsName(name)
	for _, g := range r.names {
		if ok, _ := path.Match(g, base); ok && base != "" {
			return "block_names=" + g
		}
	}
	if len(r.types) == 0 {
		return ""
	}
	// The type library only when a rule needs what it alone tells (its
	// tree of matchers was most of a small object's cost).
	var m *mimetype.MIME
	if len(data) > 0 && (r.mimes || r.libTypes || r.types["msi"] && bytes.HasPrefix(data, oleMagic)) {
		m = mimetype.Detect(data)
	}
	for _, t := range typesOf(data, base, m) {
		if r.types[t] {
			return "block_types=" + t
		}
	}
	if r.mimes {
		for ; m != nil; m = m.Parent() {
			if r.types[m.String()] {
				return "block_types=" + m.String()
			}
		}
	}
	return ""
}

// windowsName is the name as Windows opens the file: the last part of
// its path (either slash), without case, without the trailing dots and
// spaces Windows drops ("setup.scr." and "setup.scr " open as setup.scr)
// and without an NTFS stream suffix ("setup.scr::$DATA", "a.exe:x").
func windowsName(name string) string {
	if name == "" {
		return ""
	}
	name = name[strings.LastIndexAny(name, `/\`)+1:]
	if i := strings.IndexByte(name, ':'); i > 0 {
		name = name[:i]
	}
	return strings.ToLower(strings.TrimRight(name, ". "))
}

// TypesOf tells what an object is, by its bytes (and, for the scripts
// Windows runs by name, by its name).
func TypesOf(data []byte, name string) []string {
	var m *mimetype.MIME
	if len(data) > 0 {
		m = mimetype.Detect(data)
	}
	return typesOf(data, name, m)
}

// typesOf is TypesOf with the library's detection m made already.
func typesOf(data []byte, name string, m *mimetype.MIME) []string {
	var out []string
	if t := byExtension[path.Ext(strings.ToLower(name))]; t != "" {
		out = append(out, t)
	}
	if len(data) == 0 {
		return out
	}
	if t := peType(data); t != "" {
		out = append(out, t)
	}
	if m != nil {
		if t := byMIME[m.String()]; t != "" {
			out = append(out, t)
		}
	}
	switch {
	case bytes.HasPrefix(data, []byte("\x7fELF")):
		out = append(out, "elf")
	case bytes.HasPrefix(data, lnkHeader):
		out = append(out, "lnk")
	case bytes.HasPrefix(data, []byte("MSCF\x00\x00\x00\x00")):
		out = append(out, "cab")
	case bytes.HasPrefix(data, []byte("Rar!\x1a\x07")):
		out = append(out, "rar")
	case bytes.HasPrefix(data, []byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c}):
		out = append(out, "7z")
	}
	if isISO(data) {
		out = append(out, "iso")
	}
	if isDiskImage(data) {
		out = append(out, "vhd")
	}
	if len(data) >= 512 && bytes.HasPrefix(data[len(data)-512:], []byte("koly")) {
		out = append(out, "dmg")
	}
	if hasMacros(data, name) {
		out = append(out, "office-macro")
	}
	head := data[:min(len(data), 4096)]
	if containsFold(head, "<hta:application") {
		out = append(out, "hta")
	}
	if bytes.HasPrefix(bytes.TrimLeft(head, "\xef\xbb\xbf \t\r\n"), []byte("#@~^")) {
		out = append(out, "vbs") // VBScript.Encode
	}
	return out
}

// containsFold tells whether d holds s (lower case, starting with a byte
// that has no case) in any case, without a copy of d.
func containsFold(d []byte, s string) bool {
	for i := 0; i+len(s) <= len(d); {
		j := bytes.IndexByte(d[i:], s[0])
		if j < 0 || i+j+len(s) > len(d) {
			return false
		}
		i += j
		if bytes.EqualFold(d[i:i+len(s)], []byte(s)) {
			return true
		}
		i++
	}
	return false
}

// peType tells a Windows program from a library: "MZ", and at e_lfanew
// "PE\0\0" with the file header's DLL flag (0x2000) for a DLL.
func peType(d []byte) string {
	if len(d) < 64 || d[0] != 'M' || d[1] != 'Z' {
		return ""
	}
	off := int(binary.LittleEndian.Uint32(d[0x3c:]))
	if off <= 0 || off+24 > len(d) || string(d[off:off+4]) != "PE\x00\x00" {
		return "exe" // a DOS program, or a PE header past what we hold
	}
	if binary.LittleEndian.Uint16(d[off+22:])&0x2000 != 0 {
		return "dll"
	}
	return "exe"
}

// isDiskImage tells a disk image Windows mounts: VHDX, VHD (its footer
// at the end, and at the start of a dynamic one), a GPT disk, or a raw
// disk that is a FAT, exFAT or NTFS volume or holds one in a partition,
// primary or logical: what the scanner opens, read by the same package
// (diskpart; the settings, which read this one, must not depend on the
// archive readers).
func isDiskImage(d []byte) bool {
	switch {
	case bytes.HasPrefix(d, []byte("vhdxfile")), bytes.HasPrefix(d, []byte("conectix")),
		len(d) >= 512 && bytes.HasPrefix(d[len(d)-512:], []byte("conectix")):
		return true
	case len(d) < 1024 || d[510] != 0x55 || d[511] != 0xaa:
		return false
	case diskpart.FileSystem(d) != "", bytes.HasPrefix(d[512:], []byte("EFI PART")):
		return true
	}
	read := diskpart.Bytes(d)
	for _, p := range diskpart.Partitions(read, int64(len(d))) {
		if b, ok := read(p.Start, 512); ok && diskpart.FileSystem(b) != "" {
			return true
		}
	}
	return false
}

// isISO: the volume descriptor's "CD001" (ISO 9660), or UDF's "NSR0".
func isISO(d []byte) bool {
	for _, off := range []int{0x8001, 0x8801, 0x9001} {
		if len(d) >= off+5 && (string(d[off:off+5]) == "CD001" || string(d[off:off+4]) == "NSR0") {
			return true
		}
	}
	return false
}

// libTypes are the types only the mimetype library tells (a Mach-O's
// variants, a jar or an apk from other zips, a plain zip from a document).
var libTypes = []string{"macho", "jar", "apk", "zip"}

var (
	// lnkHeader is a shortcut's header size (0x4C) and its class id.
	lnkHeader  = []byte{0x4c, 0, 0, 0, 0x01, 0x14, 0x02, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46}
	oleMagic   = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}
	vbaProject = utf16("_VBA_PROJECT")
)

// hasMacros: an OLE document with a _VBA_PROJECT stream, or an OOXML
// part vbaProject.bin (a member the walk visits under that name).
func hasMacros(d []byte, name string) bool {
	if name == "vbaproject.bin" {
		return true
	}
	return bytes.HasPrefix(d, oleMagic) && bytes.Contains(d, vbaProject)
}

func utf16(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), 0)
	}
	return b
}
