package unpack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"

	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// The xz streams whose blocks chain a filter before LZMA2: BCJ for x86,
// ARM, ARM-Thumb, ARM64, PowerPC and SPARC (executables, kernels, and
// the packages and images that carry them), IA-64, and Delta. The xz
// reader refuses them, and a valid, clean file was judged broken. Each
// block is found through the stream's index, its LZMA2 data decoded, and
// the filters undone over the block as xz undoes them. RISC-V BCJ (xz
// 5.6 and later; no xz here writes it to test against) is not undone:
// such a block is not opened (suspected, never clean).

// errXZFilter is a filter this reader does not undo.
var errXZFilter = errors.New("xz: a filter that is not undone here")

// xzFiltered decodes data, an xz stream, when its first block chains
// filters or a block names a dictionary too large to allocate
// (xzDictTooLarge: the xz reader would allocate it whole, up to 4 GiB,
// for a crafted header); a stream of plain LZMA2 blocks is left to the
// xz reader. At most limit bytes are decoded (more: an error).
func xzFiltered(data []byte, limit int64) (out []byte, handled bool, err error) {
	if len(data) < 12+12 || !bytes.HasPrefix(data, magicXz) {
		return nil, false, nil
	}
	check := data[7] & 0x0f
	blocks, err := xzIndex(data)
	if err != nil {
		return nil, false, nil // the xz reader says what is wrong
	}
	pos := 12
	for i, b := range blocks {
		hdrSize, filters, err := xzBlockAt(data, pos)
		if err == nil && hdrSize > int(b.unpadded) {
			err = errXZBroken
		}
		if err != nil {
			return out, true, err
		}
		if i == 0 && len(filters) == 1 && !xzDictTooLarge(data, blocks) {
			return nil, false, nil // plain LZMA2
		}
		end := pos + int(b.unpadded) - xzCheckSize(check)
		if end > len(data) || end < pos+hdrSize {
			return out, true, io.ErrUnexpectedEOF
		}
		lz := filters[len(filters)-1]
		if lz.id != 0x21 || len(lz.props) != 1 || lz.props[0] > 40 {
			return out, true, errXZFilter
		}
		dict := dictFor(uint64(xzDictCap(lz.props[0])), b.uncompressed)
		r2, err := lzma.Reader2Config{DictCap: dict}.NewReader2(bytes.NewReader(data[pos+hdrSize : end]))
		if err != nil {
			return out, true, err
		}
		room := limit - int64(len(out))
		block, err := io.ReadAll(io.LimitReader(r2, room+1))
		if int64(len(block)) > room {
			return out, true, errXZLimit
		}
		// The filters before LZMA2, undone last to first.
		for j := len(filters) - 2; j >= 0; j-- {
			if ferr := unfilter(filters[j], block); ferr != nil {
				return out, true, ferr
			}
		}
		out = append(out, block...)
		if err != nil {
			return out, true, err
		}
		pos += align(int(b.unpadded), 4)
	}
	return out, true, nil
}

var (
	errXZBroken = errors.New("xz: a malformed block")
	errXZLimit  = errors.New("xz: more than the limit")
	errXZMemory = errors.New("xz: a dictionary larger than a scan may take")
)

// xzDictTooLarge tells whether a block of the stream (blocks, from its
// index) names an LZMA2 dictionary the xz reader should not allocate:
// larger than what a scan may take, or than 64 MiB (xz -9's) and than
// the block unpacks. A smaller one, xz's usual, is left to the reader.
func xzDictTooLarge(data []byte, blocks []xzBlock) bool {
	pos := 12
	for _, b := range blocks {
		_, filters, err := xzBlockAt(data, pos)
		if err != nil {
			return false
		}
		if lz := filters[len(filters)-1]; lz.id == 0x21 && len(lz.props) == 1 {
			named := uint64(xzDictCap(lz.props[0]))
			if named > uint64(coderMemory.Load()) || named > max(b.uncompressed, 64<<20) {
				return true
			}
		}
		pos += align(int(b.unpadded), 4)
	}
	return false
}

// xzFirstDictTooLarge tells whether the first block of a stream whose
// index cannot be read (streams one after another, a damaged one) names
// a dictionary larger than a scan may take.
func xzFirstDictTooLarge(data []byte) bool {
	_, filters, err := xzBlockAt(data, 12)
	if err != nil {
		return false
	}
	lz := filters[len(filters)-1]
	return lz.id == 0x21 && len(lz.props) == 1 && int64(xzDictCap(lz.props[0])) > coderMemory.Load()
}

// xzBlockAt reads the header of the block at pos: its size and its
// filters.
func xzBlockAt(data []byte, pos int) (hdrSize int, filters []xzFilter, err error) {
	if pos >= len(data) {
		return 0, nil, io.ErrUnexpectedEOF
	}
	hdrSize = (int(data[pos]) + 1) * 4
	if data[pos] == 0 || pos+hdrSize > len(data) {
		return 0, nil, errXZBroken
	}
	filters, err = xzFilters(data[pos : pos+hdrSize])
	return hdrSize, filters, err
}

// xzOpen decodes an xz stream within room bytes: its blocks here when
// xzFiltered takes them, else the xz reader. A stream not opened is
// errXZFilter (a filter not undone here) or errXZMemory.
func xzOpen(data []byte, room int64) (io.Reader, error) {
	if out, handled, err := xzFiltered(data, room); handled {
		if errors.Is(err, errXZFilter) || errors.Is(err, errXZLimit) {
			return nil, err
		}
		return &erring{r: bytes.NewReader(out), err: err}, nil
	}
	if _, err := xzIndex(data); err != nil && xzFirstDictTooLarge(data) {
		return nil, errXZMemory
	}
	return xz.NewReader(bytes.NewReader(data))
}

type xzBlock struct{ unpadded, uncompressed uint64 }

// xzIndex reads the block list of the stream's index (found from its
// footer): each block's unpadded size, so that blocks whose headers do not
// say their size are found all the same.
func xzIndex(data []byte) ([]xzBlock, error) {
	// The stream may be followed by padding (NULs in fours) or more.
	end := len(data)
	for end >= 4 && bytes.Equal(data[end-4:end], []byte{0, 0, 0, 0}) {
		end -= 4
	}
	if end < 24 || string(data[end-2:end]) != "YZ" {
		return nil, errXZBroken
	}
	size := (int(binary.LittleEndian.Uint32(data[end-8:])) + 1) * 4
	start := end - 12 - size
	if start < 12 || data[start] != 0 {
		return nil, errXZBroken
	}
	idx := data[start+1 : end-12]
	n, k := binary.Uvarint(idx)
	if k <= 0 || n > 1<<16 {
		return nil, errXZBroken
	}
	idx = idx[k:]
	blocks := make([]xzBlock, 0, n)
	for range n {
		u, k1 := binary.Uvarint(idx)
		if k1 <= 0 {
			return nil, errXZBroken
		}
		c, k2 := binary.Uvarint(idx[k1:])
		if k2 <= 0 {
			return nil, errXZBroken
		}
		idx = idx[k1+k2:]
		blocks = append(blocks, xzBlock{u, c})
	}
	return blocks, nil
}

type xzFilter struct {
	id    uint64
	props []byte
}

// xzFilters reads a block header's filter flags.
func xzFilters(h []byte) ([]xzFilter, error) {
	flags := h[1]
	p := h[2 : len(h)-4]
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // the sizes, when given
		if present {
			_, k := binary.Uvarint(p)
			if k <= 0 {
				return nil, errXZBroken
			}
			p = p[k:]
		}
	}
	var out []xzFilter
	for range int(flags&3) + 1 {
		id, k := binary.Uvarint(p)
		if k <= 0 {
			return nil, errXZBroken
		}
		p = p[k:]
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p[k:])) {
			return nil, errXZBroken
		}
		out = append(out, xzFilter{id: id, props: p[k : k+int(n)]})
		p = p[k+int(n):]
	}
	return out, nil
}

// xzCheckSize is the size of a block's check for the stream's check type.
func xzCheckSize(t byte) int {
	switch {
	case t == 0:
		return 0
	case t <= 3:
		return 4
	case t <= 6:
		return 8
	case t <= 9:
		return 16
	case t <= 12:
		return 32
	}
	return 64
}

// xzDictCap is LZMA2's dictionary size from its property byte.
func xzDictCap(p byte) int {
	if p >= 40 {
		return 1<<32 - 1
	}
	return (2 | int(p&1)) << (p/2 + 11)
}

// unfilter undoes one filter over a whole block, in place.
func unfilter(f xzFilter, b []byte) error {
	var start uint32 // the start offset a BCJ filter may name
	if f.id >= 0x04 && f.id <= 0x0b && len(f.props) == 4 {
		start = binary.LittleEndian.Uint32(f.props)
	}
	switch f.id {
	case 0x03: // Delta
		if len(f.props) != 1 {
			return errXZBroken
		}
		dist := int(f.props[0]) + 1
		for i := dist; i < len(b); i++ {
			b[i] += b[i-dist]
		}
	case 0x04:
		bcjX86(b, start)
	case 0x05:
		bcjPowerPC(b, start)
	case 0x06:
		bcjIA64(b, start)
	case 0x07:
		bcjARM(b, start)
	case 0x08:
		bcjARMThumb(b, start)
	case 0x09:
		bcjSPARC(b, start)
	case 0x0a:
		bcjARM64(b, start)
	default:
		return errXZFilter
	}
	return nil
}

// The BCJ decoders: each turns the absolute addresses its encoder wrote
// back into the relative ones of the original code, at the same places
// the encoder chose (xz's own rules, as XZ Embedded writes them).

func bcjX86(b []byte, pos uint32) {
	allowed := [8]bool{true, true, true, false, true, false, false, false}
	bitNum := [8]uint32{0, 1, 2, 2, 3, 3, 3, 3}
	msb := func(x byte) bool { return x == 0 || x == 0xff }
	if len(b) <= 4 {
		return
	}
	size := len(b) - 4
	prevPos := -1
	var prevMask uint32
	for i := 0; i < size; i++ {
		if b[i]&0xfe != 0xe8 {
			continue
		}
		d := i - prevPos
		if d > 3 {
			prevMask = 0
		} else {
			prevMask = (prevMask << (d - 1)) & 7
			if prevMask != 0 {
				x := b[i+4-int(bitNum[prevMask])]
				if !allowed[prevMask] || msb(x) {
					prevPos = i
					prevMask = prevMask<<1 | 1
					continue
				}
			}
		}
		prevPos = i
		if !msb(b[i+4]) {
			prevMask = prevMask<<1 | 1
			continue
		}
		src := binary.LittleEndian.Uint32(b[i+1:])
		var dest uint32
		for {
			dest = src - (pos + uint32(i) + 5)
			if prevMask == 0 {
				break
			}
			j := bitNum[prevMask] * 8
			if !msb(byte(dest >> (24 - j))) {
				break
			}
			src = dest ^ (1<<(32-j) - 1)
		}
		dest &= 0x01ffffff
		dest |= 0 - (dest & 0x01000000)
		binary.LittleEndian.PutUint32(b[i+1:], dest)
		i += 4
	}
}

func bcjARM(b []byte, pos uint32) {
	for i := 0; i+4 <= len(b); i += 4 {
		if b[i+3] != 0xeb {
			continue
		}
		addr := uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16
		addr <<= 2
		addr -= pos + uint32(i) + 8
		addr >>= 2
		b[i], b[i+1], b[i+2] = byte(addr), byte(addr>>8), byte(addr>>16)
	}
}

func bcjARMThumb(b []byte, pos uint32) {
	for i := 0; i+4 <= len(b); i += 2 {
		if b[i+1]&0xf8 != 0xf0 || b[i+3]&0xf8 != 0xf8 {
			continue
		}
		addr := (uint32(b[i+1])&7)<<19 | uint32(b[i])<<11 | (uint32(b[i+3])&7)<<8 | uint32(b[i+2])
		addr <<= 1
		addr -= pos + uint32(i) + 4
		addr >>= 1
		b[i+1] = byte(0xf0 | (addr>>19)&7)
		b[i] = byte(addr >> 11)
		b[i+3] = byte(0xf8 | (addr>>8)&7)
		b[i+2] = byte(addr)
		i += 2
	}
}

func bcjPowerPC(b []byte, pos uint32) {
	for i := 0; i+4 <= len(b); i += 4 {
		instr := binary.BigEndian.Uint32(b[i:])
		if instr&0xfc000003 != 0x48000001 {
			continue
		}
		instr &= 0x03fffffc
		instr -= pos + uint32(i)
		instr &= 0x03fffffc
		binary.BigEndian.PutUint32(b[i:], instr|0x48000001)
	}
}

func bcjSPARC(b []byte, pos uint32) {
	for i := 0; i+4 <= len(b); i += 4 {
		instr := binary.BigEndian.Uint32(b[i:])
		if instr>>22 != 0x100 && instr>>22 != 0x1ff {
			continue
		}
		instr <<= 2
		instr -= pos + uint32(i)
		instr >>= 2
		instr = (0x40000000 - instr&0x400000) | 0x40000000 | instr&0x3fffff
		binary.BigEndian.PutUint32(b[i:], instr)
	}
}

func bcjARM64(b []byte, pos uint32) {
	for i := 0; i+4 <= len(b); i += 4 {
		pc := pos + uint32(i)
		instr := binary.LittleEndian.Uint32(b[i:])
		switch {
		case instr>>26 == 0x25: // BL
			addr := instr - pc>>2
			binary.LittleEndian.PutUint32(b[i:], 0x94000000|addr&0x03ffffff)
		case instr&0x9f000000 == 0x90000000: // ADRP
			addr := (instr>>29)&3 | (instr>>3)&0x1ffffc
			if (addr+0x020000)&0x1c0000 != 0 {
				continue // only within +/-512 MiB
			}
			addr -= pc >> 12
			instr &= 0x9000001f
			instr |= (addr & 3) << 29
			instr |= (addr & 0x03fffc) << 3
			instr |= (0 - addr&0x020000) & 0xe00000
			binary.LittleEndian.PutUint32(b[i:], instr)
		}
	}
}

// bcjIA64 undoes the IA-64 filter: in each 16-byte bundle, the slots its
// template marks as branches hold an IP-relative target the encoder made
// absolute.
func bcjIA64(b []byte, pos uint32) {
	branches := [32]uint32{16: 4, 17: 4, 18: 6, 19: 6, 22: 7, 23: 7, 24: 4, 25: 4, 28: 4, 29: 4}
	for i := 0; i+16 <= len(b); i += 16 {
		mask := branches[b[i]&0x1f]
		for slot, bit := 0, uint(5); slot < 3; slot, bit = slot+1, bit+41 {
			if mask>>slot&1 == 0 {
				continue
			}
			at, shift := i+int(bit>>3), bit&7
			var instr uint64
			for j := range 6 {
				instr |= uint64(b[at+j]) << (8 * j)
			}
			norm := instr >> shift
			if norm>>37&0xf != 5 || norm>>9&7 != 0 {
				continue
			}
			src := uint32(norm>>13&0xfffff) | uint32(norm>>36&1)<<20
			dest := (src<<4 - (pos + uint32(i))) >> 4
			norm &^= 0x8fffff << 13
			norm |= uint64(dest&0xfffff) << 13
			norm |= uint64(dest&0x100000) << (36 - 20)
			instr = instr&(1<<shift-1) | norm<<shift
			for j := range 6 {
				b[at+j] = byte(instr >> (8 * j))
			}
		}
	}
}
