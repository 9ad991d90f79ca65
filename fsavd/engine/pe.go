package engine

import "encoding/binary"

// maxSections bounds the section table read: the PE format allows 96.
const maxSections = 96

// exeLayout is where a Windows program's (PE) parts lie in its file, as
// ClamAV's executable offsets (EP+n, Sx+n, SL+n, SEx) and section hashes
// (.mdb, .msb) name them.
type exeLayout struct {
	entry    int64 // the entry point's file offset; -1: it lies in no section's data nor the headers
	sections []exeSection
	count    int // the sections the header says it has
}

// exeSection is a section's raw data: size bytes at at (SizeOfRawData at
// PointerToRawData), which may reach past the end of a file cut short.
type exeSection struct {
	at, size  int64
	va, vsize int64 // where it is mapped, and how much
}

// peLayout reads data's PE headers; nil: data is not a PE.
func peLayout(data []byte) *exeLayout {
	if len(data) < 0x40 || data[0] != 'M' || data[1] != 'Z' {
		return nil
	}
	pe := int64(binary.LittleEndian.Uint32(data[0x3c:]))
	if pe+24 > int64(len(data)) || string(data[pe:pe+4]) != "PE\x00\x00" {
		return nil
	}
	n := int64(binary.LittleEndian.Uint16(data[pe+6:]))
	optSize := int64(binary.LittleEndian.Uint16(data[pe+20:]))
	l := &exeLayout{entry: -1, count: int(n)}
	var rva int64 = -1
	if optSize >= 20 && pe+24+20 <= int64(len(data)) {
		rva = int64(binary.LittleEndian.Uint32(data[pe+24+16:]))
	}
	table := pe + 24 + optSize
	for i := int64(0); i < min(n, maxSections); i++ {
		h := table + 40*i
		if h+40 > int64(len(data)) {
			break
		}
		l.sections = append(l.sections, exeSection{
			vsize: int64(binary.LittleEndian.Uint32(data[h+8:])),
			va:    int64(binary.LittleEndian.Uint32(data[h+12:])),
			size:  int64(binary.LittleEndian.Uint32(data[h+16:])),
			at:    int64(binary.LittleEndian.Uint32(data[h+20:])),
		})
	}
	l.entry = l.fileOffset(rva)
	return l
}

// fileOffset is where the mapped address rva lies in the file: in the
// headers when below every section (mapped as they are), else in the
// section that maps it; -1 when none does.
func (l *exeLayout) fileOffset(rva int64) int64 {
	if rva < 0 {
		return -1
	}
	below := true
	for _, s := range l.sections {
		if rva >= s.va {
			below = false
		}
		if rva >= s.va && rva < s.va+max(s.vsize, s.size) {
			if off := rva - s.va; off < s.size {
				return s.at + off
			}
			return -1 // in the section's zero-filled tail: no bytes in the file
		}
	}
	if below {
		return rva
	}
	return -1
}

// peSections gives the raw data of each section of a Windows program
// (PE): SizeOfRawData bytes at PointerToRawData, what ClamAV's section
// hashes (.mdb, .msb) are of, for the sections that have raw data lying
// whole within data. nil: data is not a PE.
func peSections(data []byte) [][]byte {
	l := peLayout(data)
	if l == nil {
		return nil
	}
	var out [][]byte
	for _, s := range l.sections {
		if s.size == 0 || s.at+s.size > int64(len(data)) {
			continue
		}
		out = append(out, data[s.at:s.at+s.size])
	}
	return out
}
