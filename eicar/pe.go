package eicar

import (
	"archive/zip"
	"bytes"
	"debug/pe"
	"encoding/binary"
	"fmt"
)

// WindowsProgram is a minimal, harmless Windows program (or, with dll, a
// library): a DOS header pointing at a PE header with a 32-bit optional
// header and no sections, which Go's own PE reader takes. The type rules'
// tests carry it under innocent names.
func WindowsProgram(dll bool) []byte { return program(dll) }

// WindowsProgramWith is a harmless Windows program whose sections hold
// the given bytes (at most five), each padded to the file alignment
// (512) as ClamAV reads a section's raw data; its entry point is the
// first section's start. The engine's tests plant signatures in them.
func WindowsProgramWith(sections ...[]byte) []byte { return program(false, sections...) }

func program(dll bool, sections ...[]byte) []byte {
	const headers, fileAlign, sectionAlign = 0x200, 0x200, 0x1000
	var b bytes.Buffer
	dos := make([]byte, 0x40)
	copy(dos, "MZ")
	binary.LittleEndian.PutUint32(dos[0x3c:], 0x40)
	b.Write(dos)
	b.WriteString("PE\x00\x00")
	chars := uint16(0x0102) // executable, 32-bit
	if dll {
		chars |= 0x2000
	}
	var table []pe.SectionHeader32
	var raw []byte
	va := uint32(sectionAlign)
	for i, s := range sections {
		size := uint32(len(s)+fileAlign-1) &^ (fileAlign - 1)
		h := pe.SectionHeader32{VirtualSize: uint32(len(s)), VirtualAddress: va, SizeOfRawData: size,
			PointerToRawData: headers + uint32(len(raw)), Characteristics: 0x60000020}
		copy(h.Name[:], fmt.Sprintf(".s%d", i))
		table = append(table, h)
		raw = append(append(raw, s...), make([]byte, int(size)-len(s))...)
		va += (size + sectionAlign - 1) &^ (sectionAlign - 1)
	}
	binary.Write(&b, binary.LittleEndian, pe.FileHeader{Machine: pe.IMAGE_FILE_MACHINE_I386, NumberOfSections: uint16(len(sections)),
		SizeOfOptionalHeader: 0xe0, Characteristics: chars})
	binary.Write(&b, binary.LittleEndian, pe.OptionalHeader32{Magic: 0x10b, AddressOfEntryPoint: sectionAlign, ImageBase: 0x400000,
		SectionAlignment: sectionAlign, FileAlignment: fileAlign, MajorSubsystemVersion: 4, SizeOfImage: max(va, 0x2000),
		SizeOfHeaders: headers, Subsystem: 3, NumberOfRvaAndSizes: 16})
	binary.Write(&b, binary.LittleEndian, table)
	b.Write(make([]byte, headers-b.Len()))
	return append(b.Bytes(), raw...)
}

// Zip is a zip of files (deflated), for tests that carry the corpus in
// archives.
func Zip(files map[string][]byte) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, data := range files {
		f, _ := w.Create(name)
		f.Write(data)
	}
	w.Close()
	return b.Bytes()
}
