package eicar

import (
	"archive/zip"
	"bytes"
	"debug/pe"
	"encoding/binary"
)

// WindowsProgram is a minimal, harmless Windows program (or, with dll, a
// library): a DOS header pointing at a PE header with a 32-bit optional
// header and no sections, which Go's own PE reader takes. The type rules'
// tests carry it under innocent names.
func WindowsProgram(dll bool) []byte {
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
	binary.Write(&b, binary.LittleEndian, pe.FileHeader{Machine: pe.IMAGE_FILE_MACHINE_I386, SizeOfOptionalHeader: 0xe0, Characteristics: chars})
	binary.Write(&b, binary.LittleEndian, pe.OptionalHeader32{Magic: 0x10b, AddressOfEntryPoint: 0x1000, ImageBase: 0x400000,
		SectionAlignment: 0x1000, FileAlignment: 0x200, MajorSubsystemVersion: 4, SizeOfImage: 0x2000, SizeOfHeaders: 0x200,
		Subsystem: 3, NumberOfRvaAndSizes: 16})
	b.Write(make([]byte, 0x200-b.Len()))
	return b.Bytes()
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
