package engine

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/unpack"
)

// A container metadata signature (.cdb) names a container by what it
// says of one of its members, before anything is unpacked:
//
//	Name:ContainerType:ContainerSize:FileNameREGEX:FileSizeInContainer:FileSizeReal:IsEncrypted:FilePos:Res1:Res2[:MinFL[:MaxFL]]
//
// each field * for any, a size or place exact or a range n-m (0 at an
// end: open), the name a POSIX extended regular expression looked for
// anywhere in the member's name, as ClamAV reads them (readdb.c,
// matcher.c); Res1 and Res2 are read by nothing there, nor here. The
// members are described by the containers unpack describes (see
// unpack.Member: zip, tar, 7z, cabinet, ARJ, cpio, ISO 9660, compiled
// HTML help, a mail's named parts); a signature for another container type is counted as
// skipped.
type containerSig struct {
	name                     string
	ctype                    string // "": any
	csize, packed, size, pos cdbRange
	encrypted                int // 0, 1; 2: any
	re                       *regexp.Regexp
}

// cdbRange is a field of a container signature: lo and hi as ClamAV
// keeps them; any: *.
type cdbRange struct {
	lo, hi int64
	any    bool
}

// admits is ClamAV's test of a field against v: exact when lo is hi, a
// range otherwise, where a zero end is open.
func (r cdbRange) admits(v int64) bool {
	switch {
	case r.any:
		return true
	case r.lo == r.hi:
		return r.lo == v
	}
	return !(r.lo != 0 && r.lo > v || r.hi != 0 && r.hi < v)
}

func parseCDBRange(f string) (cdbRange, error) {
	if f == "*" {
		return cdbRange{any: true}, nil
	}
	lo, hi, isRange := strings.Cut(f, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.ParseUint(lo, 10, 32)
	b, err2 := strconv.ParseUint(hi, 10, 32)
	if err1 != nil || err2 != nil {
		return cdbRange{}, fmt.Errorf("bad value %q", f)
	}
	return cdbRange{lo: int64(a), hi: int64(b)}, nil
}

// describedTypes are the container types whose members unpack describes.
var describedTypes = map[string]bool{unpack.TypeZip: true, unpack.TypeTar: true, unpack.TypeOldTar: true,
	unpack.TypeSevenZip: true, unpack.TypeCab: true, unpack.TypeARJ: true, unpack.TypeMail: true, unpack.TypeISO: true,
	unpack.TypeCpioOld: true, unpack.TypeCpioODC: true, unpack.TypeCpioNewc: true, unpack.TypeCpioCRC: true,
	unpack.TypeCHM: true}

// clamavTypes are ClamAV's other file type names, which a container
// signature may name (an unknown one fails the load, as in ClamAV).
var clamavTypes = strings.Fields(`CL_TYPE_7ZSFX CL_TYPE_AI_MODEL CL_TYPE_ALZ CL_TYPE_ANY CL_TYPE_APM
	CL_TYPE_ARJ CL_TYPE_ARJSFX CL_TYPE_AUTOIT CL_TYPE_BINARY_DATA CL_TYPE_BINHEX CL_TYPE_BZ
	CL_TYPE_CABSFX CL_TYPE_CPIO_CRC CL_TYPE_CPIO_NEWC CL_TYPE_CPIO_ODC CL_TYPE_CPIO_OLD
	CL_TYPE_CRYPTFF CL_TYPE_DMG CL_TYPE_EGG CL_TYPE_EGGSFX CL_TYPE_ELF CL_TYPE_GIF CL_TYPE_GPT
	CL_TYPE_GRAPHICS CL_TYPE_GZ CL_TYPE_HTML CL_TYPE_HTML_UTF16 CL_TYPE_HWP3 CL_TYPE_HWPOLE2
	CL_TYPE_IGNORED CL_TYPE_INTERNAL CL_TYPE_ISHIELD_MSI CL_TYPE_ISO9660 CL_TYPE_JAVA
	CL_TYPE_JPEG CL_TYPE_LHA_LZH CL_TYPE_LNK CL_TYPE_MACHO CL_TYPE_MACHO_UNIBIN CL_TYPE_MAIL
	CL_TYPE_MBR CL_TYPE_MHTML CL_TYPE_MSCHM CL_TYPE_MSEXE CL_TYPE_MSOLE2 CL_TYPE_MSSZDD
	CL_TYPE_NULSFT CL_TYPE_ONENOTE CL_TYPE_OOXML_HWP CL_TYPE_OOXML_PPT CL_TYPE_OOXML_WORD
	CL_TYPE_OOXML_XL CL_TYPE_PART_ANY CL_TYPE_PART_HFSPLUS CL_TYPE_PDF CL_TYPE_PNG CL_TYPE_PS
	CL_TYPE_PYTHON_COMPILED CL_TYPE_RAR CL_TYPE_RARSFX CL_TYPE_RIFF CL_TYPE_RTF CL_TYPE_SCRENC
	CL_TYPE_SCRIPT CL_TYPE_SFX CL_TYPE_SIS CL_TYPE_SWF CL_TYPE_TEXT_ASCII CL_TYPE_TEXT_UTF16BE
	CL_TYPE_TEXT_UTF16LE CL_TYPE_TEXT_UTF8 CL_TYPE_TIFF CL_TYPE_TNEF CL_TYPE_UDF
	CL_TYPE_UUENCODED CL_TYPE_XAR CL_TYPE_XDP CL_TYPE_XML_HWP CL_TYPE_XML_WORD CL_TYPE_XML_XL
	CL_TYPE_XZ CL_TYPE_ZIPSFX CL_TYPE_ZSTD`)

// addContainerLine reads a .cdb line.
func (db *DB) addContainerLine(line string) error {
	f := strings.Split(line, ":")
	if len(f) < 10 || len(f) > 12 {
		return fmt.Errorf("want Name:ContainerType:ContainerSize:FileNameREGEX:FileSizeInContainer:FileSizeReal:IsEncrypted:FilePos:Res1:Res2[:MinFL[:MaxFL]]")
	}
	for _, fl := range f[10:] {
		// The functionality levels: this engine takes what it can read.
		if _, err := strconv.ParseUint(fl, 10, 32); err != nil {
			return fmt.Errorf("bad functionality level %q", fl)
		}
	}
	if f[0] == "" {
		return fmt.Errorf("no name")
	}
	s := containerSig{name: f[0], ctype: f[1], encrypted: 2}
	switch {
	case f[1] == "*":
		s.ctype = ""
	case describedTypes[f[1]]:
	case strings.HasPrefix(f[1], "CL_TYPE_") && slices.Contains(clamavTypes, f[1]):
		db.Skipped++ // a container whose members are not described
		return nil
	default:
		return fmt.Errorf("unknown container type %q", f[1])
	}
	if f[3] != "*" {
		re, err := regexp.Compile(f[3])
		if err != nil {
			return fmt.Errorf("bad file name expression %q: %v", f[3], err)
		}
		s.re = re
	}
	var err error
	for _, r := range []struct {
		to *cdbRange
		f  string
	}{{&s.csize, f[2]}, {&s.packed, f[4]}, {&s.size, f[5]}, {&s.pos, f[7]}} {
		if *r.to, err = parseCDBRange(r.f); err != nil {
			return err
		}
	}
	switch f[6] {
	case "*":
	case "0", "1":
		s.encrypted = int(f[6][0] - '0')
	default:
		return fmt.Errorf("bad encryption flag %q", f[6])
	}
	db.containers = append(db.containers, s)
	return nil
}

// matchMember gives the names of the container signatures m, a member
// as its container describes it, matches: the last read first, as
// ClamAV looks at them.
func (db *DB) matchMember(m unpack.Member, found func(name string) bool) {
	found = db.unignored(found)
	enc := 0
	if m.Encrypted {
		enc = 1
	}
	for i := len(db.containers) - 1; i >= 0; i-- {
		s := &db.containers[i]
		if s.ctype != "" && s.ctype != m.Container || s.encrypted != 2 && s.encrypted != enc ||
			!s.csize.admits(m.ContainerSize) || !s.packed.admits(m.Packed) || !s.size.admits(m.Size) ||
			!s.pos.admits(int64(m.Pos)) || s.re != nil && !s.re.MatchString(m.Name) {
			continue
		}
		if found(s.name) {
			return
		}
	}
}

// options are a scan's options with this set's look at containers'
// members, when it has container signatures, and its match told where
// each object lies (matchIn), when that can change what matches: not
// for every object of a set that cannot (the shipped EICAR alone).
func (db *DB) options(opt Options) Options {
	if len(db.containers) > 0 {
		opt.Members = db.matchMember
	}
	if db.layered {
		opt.MatchIn = db.matchIn
	}
	return opt
}
