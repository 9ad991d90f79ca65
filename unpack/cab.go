package unpack

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
)

// A Microsoft cabinet (MS-CAB): a header, folders (compressed streams
// made of CFDATA blocks: stored, MSZIP, or LZX, lzx.go) and files (ranges of a folder's uncompressed
// stream). Only what a scan needs is read; no Go library for the format
// is maintained, so this small reader is our own.

const (
	cabStored = 0
	cabMSZIP  = 1
	cabLZX    = 3

	cabPrev    = 0x1
	cabNext    = 0x2
	cabReserve = 0x4
)

var (
	errCabFormat = errors.New("cab: damaged")
	errCabTooBig = errors.New("cab: folder over the limit")
)

type cabFolder struct {
	start  uint32 // offset of the first CFDATA block
	blocks uint16
	method uint16 // typeCompress & 0xf
	window uint   // LZX's window bits, typeCompress >> 8
	data   []byte // unpacked, once a file needs it
	err    error
}

type cabFile struct {
	size, offset uint32
	folder       uint16
	name         string
}

type cabinet struct {
	raw       []byte
	dataExtra int // reserved bytes in each CFDATA
	folders   []cabFolder
	files     []cabFile
}

// cabReader walks the header with bounds checks.
type cabReader struct {
	b   []byte
	off int
	err error
}

func (r *cabReader) take(n int) []byte {
	if r.err != nil || n < 0 || r.off+n > len(r.b) {
		r.err = errCabFormat
		return make([]byte, max(n, 0))
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *cabReader) u8() uint8   { return r.take(1)[0] }
func (r *cabReader) u16() uint16 { return binary.LittleEndian.Uint16(r.take(2)) }
func (r *cabReader) u32() uint32 { return binary.LittleEndian.Uint32(r.take(4)) }

func (r *cabReader) cstring() string {
	if r.err != nil {
		return ""
	}
	i := bytes.IndexByte(r.b[min(r.off, len(r.b)):], 0)
	if i < 0 || i > 1024 {
		r.err = errCabFormat
		return ""
	}
	s := string(r.b[r.off : r.off+i])
	r.off += i + 1
	return s
}

func readCab(data []byte) (*cabinet, error) {
	r := &cabReader{b: data}
	r.take(8) // signature, reserved
	r.u32()   // cbCabinet
	r.u32()
	coffFiles := r.u32()
	r.u32()
	r.take(2) // version
	nFolders, nFiles, flags := r.u16(), r.u16(), r.u16()
	r.take(4) // setID, iCabinet
	c := &cabinet{raw: data}
	folderExtra := 0
	if flags&cabReserve != 0 {
		header := int(r.u16())
		folderExtra, c.dataExtra = int(r.u8()), int(r.u8())
		r.take(header)
	}
	if flags&(cabPrev|cabNext) != 0 {
		return nil, errCabFormat // one volume of a set: its files span cabinets
	}
	for i := 0; i < int(nFolders) && r.err == nil; i++ {
		f := cabFolder{start: r.u32(), blocks: r.u16()}
		comp := r.u16()
		f.method, f.window = comp&0xf, uint(comp>>8)&0x1f
		r.take(folderExtra)
		c.folders = append(c.folders, f)
	}
	r.off = int(coffFiles)
	for i := 0; i < int(nFiles) && r.err == nil; i++ {
		f := cabFile{size: r.u32(), offset: r.u32(), folder: r.u16()}
		r.take(6) // date, time, attributes
		f.name = r.cstring()
		c.files = append(c.files, f)
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// unpack returns a folder's uncompressed stream, refusing more than room
// bytes.
func (c *cabinet) unpack(f *cabFolder, room int64) ([]byte, error) {
	r := &cabReader{b: c.raw, off: int(f.start)}
	var out, lzx []byte
	total := 0
	for i := 0; i < int(f.blocks); i++ {
		r.u32() // checksum
		packed, unpacked := int(r.u16()), int(r.u16())
		r.take(c.dataExtra)
		block := r.take(packed)
		if r.err != nil {
			return out, r.err
		}
		if total += unpacked; int64(total) > room {
			return nil, errCabTooBig
		}
		switch f.method {
		case cabLZX:
			// One LZX stream through the folder's blocks, each block a
			// 32 KiB frame of it.
			lzx = append(lzx, block...)
		case cabStored:
			out = append(out, block...)
		case cabMSZIP:
			// Each block is "CK" and a deflate stream whose window is the
			// output so far.
			if len(block) < 2 || block[0] != 'C' || block[1] != 'K' {
				return out, errCabFormat
			}
			dict := out[max(0, len(out)-32<<10):]
			fr := flate.NewReaderDict(bytes.NewReader(block[2:]), dict)
			got, err := io.ReadAll(io.LimitReader(fr, int64(unpacked)+1))
			fr.Close()
			if err != nil || len(got) != unpacked {
				return out, errCabFormat
			}
			out = append(out, got...)
		}
	}
	if f.method == cabLZX {
		var err error
		if out, err = lzxDecode(lzx, total, f.window, 0); err != nil {
			return out, errCabFormat
		}
	}
	return out, nil
}
