package eicar

import (
	"archive/zip"
	"bytes"
	"debug/pe"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
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
	dosAndSignature(&b)
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

// WindowsProgramImporting is a Windows program (32-bit) whose one
// section holds an import table: each import is a DLL's name and a
// function's, in order; a function written "#n" is imported by number.
// Padding (a run of zero bytes at the section's end) puts the names
// further from the end of the file.
func WindowsProgramImporting(padding int, imports ...[2]string) []byte {
	const headers, fileAlign, sectionAlign, secVA = 0x200, 0x200, 0x1000, 0x1000
	var dlls []string
	funcs := map[string][]string{}
	for _, im := range imports {
		if _, ok := funcs[im[0]]; !ok {
			dlls = append(dlls, im[0])
		}
		funcs[im[0]] = append(funcs[im[0]], im[1])
	}
	thunks := 0
	for _, d := range dlls {
		thunks += len(funcs[d]) + 1
	}
	// The descriptors (and their terminator), the lookup and the address
	// thunks, then the names.
	descs := 20 * (len(dlls) + 1)
	ilt, iat := descs, descs+4*thunks
	sec := make([]byte, iat+4*thunks)
	name := func(b []byte) uint32 {
		if len(sec)%2 == 1 {
			sec = append(sec, 0)
		}
		at := uint32(secVA + len(sec))
		sec = append(sec, b...)
		return at
	}
	t := 0
	for i, d := range dlls {
		// (A name is placed before the slice is written: placing it may
		// move the section.)
		at := name(append([]byte(d), 0))
		binary.LittleEndian.PutUint32(sec[20*i:], uint32(secVA+ilt+4*t))
		binary.LittleEndian.PutUint32(sec[20*i+12:], at)
		binary.LittleEndian.PutUint32(sec[20*i+16:], uint32(secVA+iat+4*t))
		for _, f := range funcs[d] {
			var v uint32
			if n, err := strconv.Atoi(strings.TrimPrefix(f, "#")); err == nil && strings.HasPrefix(f, "#") {
				v = 1<<31 | uint32(n)
			} else {
				v = name(append([]byte{0, 0}, append([]byte(f), 0)...))
			}
			binary.LittleEndian.PutUint32(sec[ilt+4*t:], v)
			binary.LittleEndian.PutUint32(sec[iat+4*t:], v)
			t++
		}
		t++
	}
	sec = append(sec, make([]byte, padding)...)
	size := uint32(len(sec)+fileAlign-1) &^ (fileAlign - 1)
	var b bytes.Buffer
	dosAndSignature(&b)
	h := pe.SectionHeader32{VirtualSize: uint32(len(sec)), VirtualAddress: secVA, SizeOfRawData: size, PointerToRawData: headers, Characteristics: 0x60000020}
	copy(h.Name[:], ".idata")
	binary.Write(&b, binary.LittleEndian, pe.FileHeader{Machine: pe.IMAGE_FILE_MACHINE_I386, NumberOfSections: 1, SizeOfOptionalHeader: 0xe0, Characteristics: 0x0102})
	oh := pe.OptionalHeader32{Magic: 0x10b, AddressOfEntryPoint: secVA, ImageBase: 0x400000, SectionAlignment: sectionAlign, FileAlignment: fileAlign,
		MajorSubsystemVersion: 4, SizeOfImage: secVA + ((size + sectionAlign - 1) &^ (sectionAlign - 1)), SizeOfHeaders: headers, Subsystem: 3, NumberOfRvaAndSizes: 16}
	oh.DataDirectory[1] = pe.DataDirectory{VirtualAddress: secVA, Size: uint32(descs)}
	binary.Write(&b, binary.LittleEndian, oh)
	binary.Write(&b, binary.LittleEndian, []pe.SectionHeader32{h})
	b.Write(make([]byte, headers-b.Len()))
	return append(b.Bytes(), append(sec, make([]byte, int(size)-len(sec))...)...)
}

// dosAndSignature writes a DOS header pointing at the PE header right
// after it, and the PE signature.
func dosAndSignature(b *bytes.Buffer) {
	dos := make([]byte, 0x40)
	copy(dos, "MZ")
	binary.LittleEndian.PutUint32(dos[0x3c:], 0x40)
	b.Write(dos)
	b.WriteString("PE\x00\x00")
}
