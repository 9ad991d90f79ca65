package engine

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// File types (.ftm, freshclam's daily.ftm among them): how ClamAV types
// an object, which decides the signatures of a target type looked for in
// it (targets.go). A line is
//
//	MagicType:Offset:HexMagic:Name:RequiredType:Type[:MinFL[:MaxFL]]
//
// This engine reads those of magic type 0, an object whose bytes at
// Offset are HexMagic being of Type: looked at before its own typing
// (targets.go), the last line read first, as ClamAV looks at them. A
// type that names a target (CL_TYPE_MSEXE 1, CL_TYPE_MSOLE2 2, CL_TYPE_MAIL
// 4, the pictures 5, CL_TYPE_ELF 6, CL_TYPE_MACHO and _UNIBIN 9,
// CL_TYPE_PDF 10, CL_TYPE_SWF 11, CL_TYPE_JAVA 12) gives it; another
// format's type claims the object for no target (it is no text); a
// text's or HTML's type, or CL_TYPE_ANY or BINARY_DATA, leaves the
// object to the engine's typing. The other magic types, 1 (a type found
// by a pattern within the object: what makes a text HTML or mail, a PDF
// after other bytes) and 4 (disk partitions), are checked and counted,
// not read: the engine's own typing stands for them. ClamAV sets its own
// list (which the engine's typing follows) aside when a database brings
// one; daily.ftm holds ClamAV's list and more, so the engine types what
// it types and what the database adds.

// ftmTargets are the types whose objects a target's signatures look at.
var ftmTargets = map[string]int8{
	"CL_TYPE_MSEXE": 1, "CL_TYPE_MSOLE2": 2, "CL_TYPE_MAIL": 4,
	"CL_TYPE_GRAPHICS": 5, "CL_TYPE_GIF": 5, "CL_TYPE_PNG": 5, "CL_TYPE_JPEG": 5, "CL_TYPE_TIFF": 5,
	"CL_TYPE_ELF": 6, "CL_TYPE_MACHO": 9, "CL_TYPE_MACHO_UNIBIN": 9, "CL_TYPE_PDF": 10,
	"CL_TYPE_SWF": 11, "CL_TYPE_JAVA": 12,
}

// ftmUnclaimed are the types that leave an object to the engine's typing.
var ftmUnclaimed = map[string]bool{
	"CL_TYPE_ANY": true, "CL_TYPE_BINARY_DATA": true, "CL_TYPE_TEXT_ASCII": true, "CL_TYPE_TEXT_UTF8": true,
	"CL_TYPE_TEXT_UTF16LE": true, "CL_TYPE_TEXT_UTF16BE": true, "CL_TYPE_HTML": true, "CL_TYPE_HTML_UTF16": true,
	"CL_TYPE_SCRIPT": true, "CL_TYPE_IGNORED": true,
}

// maxFTMOffset bounds a file type's offset: ClamAV reads an object's
// first bytes to type it.
const maxFTMOffset = 1 << 20

// addFileTypeLine reads a .ftm line: read says it types objects here.
func (db *DB) addFileTypeLine(line string) (read bool, err error) {
	f := strings.Split(line, ":")
	if len(f) < 6 || len(f) > 8 {
		return false, fmt.Errorf("want MagicType:Offset:HexMagic:Name:RequiredType:Type[:MinFL[:MaxFL]]")
	}
	for _, fl := range f[6:] {
		// The functionality levels: this engine takes what it can read.
		if _, err := strconv.ParseUint(fl, 10, 32); err != nil {
			return false, fmt.Errorf("bad functionality level %q", fl)
		}
	}
	for _, t := range f[4:6] {
		if !isClamAVType(t) {
			return false, fmt.Errorf("unknown file type %q", t)
		}
	}
	kind, err := strconv.Atoi(f[0])
	if err != nil {
		return false, fmt.Errorf("bad magic type %q", f[0])
	}
	if kind != 0 {
		return false, nil // 1 (a pattern) and 4 (partitions): counted
	}
	off, err := strconv.Atoi(f[1])
	if err != nil || off < 0 || off > maxFTMOffset {
		return false, fmt.Errorf("bad offset %q", f[1])
	}
	b, err := hex.DecodeString(f[2])
	if err != nil || len(b) == 0 {
		return false, fmt.Errorf("bad magic %q", f[2])
	}
	if !ftmUnclaimed[f[5]] {
		db.types = append(db.types, magic{at: off, prefix: string(b), target: ftmTargets[f[5]]})
	}
	return true, nil
}

// isClamAVType tells whether t is one of ClamAV's file type names.
func isClamAVType(t string) bool {
	return describedTypes[t] || slices.Contains(clamavTypes, t) || ftmTargets[t] != 0
}

// ftypes are a database's own file types (.ftm), in the order read.
type ftypes []magic

// typeOf is the package's typeOf, the file types looked at first, the
// last read first.
func (ft ftypes) typeOf(data []byte) (target int8, claimed bool) {
	for i := len(ft) - 1; i >= 0; i-- {
		m := ft[i]
		if len(data) >= m.at+len(m.prefix) && string(data[m.at:m.at+len(m.prefix)]) == m.prefix {
			return m.target, true
		}
	}
	return typeOf(data)
}
