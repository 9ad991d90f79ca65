package unpack

import (
	"encoding/binary"
	"errors"
	"io"
)

// LZX, the coding of Microsoft cabinets' LZX folders and of compiled HTML
// help (CHM): LZ77 over a window of 2^15 to 2^21 bytes, in blocks that are
// verbatim (Huffman codes for literals, matches and lengths), aligned
// (the same, the low three bits of long offsets in a code of their own)
// or stored, the three most recent offsets repeated cheaply, and the
// "E8" translation of x86 CALL targets undone per 32 KiB frame. The
// bitstream is 16-bit little-endian words, read from their top bit, and
// realigned to a word at each frame's end. Written from the format's
// published description (Microsoft's LZX DELTA specification and the
// cabinet SDK's notes); no Go library for it is maintained.

var (
	errLZX       = errors.New("lzx: damaged stream")
	errLZXWindow = errors.New("lzx: a window size LZX does not have")
)

const (
	lzxFrame       = 32768
	lzxLengthCodes = 249
	lzxVerbatim    = 1
	lzxAligned     = 2
	lzxStored      = 3
)

// lzxSlots is the number of position slots per window size (2^15 to
// 2^21).
var lzxSlots = map[uint]int{15: 30, 16: 32, 17: 34, 18: 36, 19: 38, 20: 42, 21: 50}

// lzxExtra and lzxBase are each position slot's extra bits and its first
// offset (plus 2: slots 0 to 2 are the repeated offsets).
var lzxExtra, lzxBase = func() (extra [50]uint, base [50]int) {
	for i := range extra {
		if i >= 4 {
			extra[i] = uint(min((i-2)/2, 17))
		}
		if i > 0 {
			base[i] = base[i-1] + 1<<extra[i-1]
		}
	}
	return
}()

// lzxBits reads LZX's bitstream; past the end it gives zeros and sets
// over.
type lzxBits struct {
	b    []byte
	pos  int
	acc  uint64
	n    uint
	over bool
}

func (r *lzxBits) bits(n uint) int {
	for r.n < n {
		var w uint64
		if r.pos+2 <= len(r.b) {
			w = uint64(binary.LittleEndian.Uint16(r.b[r.pos:]))
			r.pos += 2
		} else {
			r.over = true
		}
		r.acc = r.acc<<16 | w
		r.n += 16
	}
	r.n -= n
	return int(r.acc>>r.n) & (1<<n - 1)
}

func (r *lzxBits) bit() (int, bool) {
	b := r.bits(1)
	return b, !r.over
}

// lzxState is what a reset (a CHM's reset interval) clears.
type lzxState struct {
	mainLen             []int
	lenLen              [lzxLengthCodes]int
	main, length, align *huffman
	r0, r1, r2          int
	kind, remain, size  int // the block's type, what is left of it, its length
	headerRead          bool
}

func (st *lzxState) reset(mainSyms int) {
	*st = lzxState{mainLen: make([]int, mainSyms), r0: 1, r1: 1, r2: 1}
}

// lzxDecode decodes src into at most size bytes (the declared size, or
// where the caller's room ends), with a window of 2^windowBits and the
// coder's state reset every resetFrames frames (0: never, as in a
// cabinet). A stream that ends first gives what came out and
// io.ErrUnexpectedEOF; damage, what came out and an error.
func lzxDecode(src []byte, size int, windowBits uint, resetFrames int) ([]byte, error) {
	slots, ok := lzxSlots[windowBits]
	if !ok {
		return nil, errLZXWindow
	}
	window := 1 << windowBits
	mainSyms := 256 + 8*slots
	r := &lzxBits{b: src}
	out := make([]byte, 0, min(size, 1<<20))
	var st lzxState
	st.reset(mainSyms)
	var e8 int32 // the E8 translation's file size; 0: none
	frame, frameEnd := 0, lzxFrame
	fail := func(err error) ([]byte, error) {
		if r.over {
			err = io.ErrUnexpectedEOF
		}
		return lzxUntranslate(out, e8), err
	}
	for len(out) < size {
		if !st.headerRead {
			if r.bits(1) == 1 {
				hi := r.bits(16)
				e8 = int32(uint32(hi)<<16 | uint32(r.bits(16)))
			}
			st.headerRead = true
		}
		if st.remain == 0 {
			if st.kind == lzxStored && st.size&1 == 1 {
				r.pos++ // a stored block of odd length is padded
			}
			if err := st.readBlock(r, mainSyms); err != nil {
				return fail(err)
			}
		}
		if st.kind == lzxStored {
			n := min(st.remain, size-len(out), frameEnd-len(out))
			if r.pos+n > len(r.b) {
				out = append(out, r.b[min(r.pos, len(r.b)):]...)
				return lzxUntranslate(out, e8), io.ErrUnexpectedEOF
			}
			out = append(out, r.b[r.pos:r.pos+n]...)
			r.pos += n
			st.remain -= n
		} else {
			var err error
			if out, err = st.symbol(r, out, size, window); err != nil {
				return fail(err)
			}
		}
		if r.over {
			return fail(io.ErrUnexpectedEOF)
		}
		if len(out) >= frameEnd {
			r.n = 0 // realigned to a word
			frame++
			frameEnd += lzxFrame
			if resetFrames > 0 && frame%resetFrames == 0 {
				if st.remain != 0 {
					return fail(errLZX)
				}
				st.reset(mainSyms)
			}
		}
	}
	return lzxUntranslate(out, e8), nil
}

// readBlock reads a block's header and codes.
func (st *lzxState) readBlock(r *lzxBits, mainSyms int) error {
	st.kind = r.bits(3)
	hi := r.bits(16)
	st.size = hi<<8 | r.bits(8)
	st.remain = st.size
	if st.size == 0 {
		return errLZX
	}
	switch st.kind {
	case lzxAligned:
		lens := make([]int, 8)
		for i := range lens {
			lens[i] = r.bits(3)
		}
		var ok bool
		if st.align, ok = newHuffman(lens); !ok {
			return errLZX
		}
		fallthrough
	case lzxVerbatim:
		if !lzxLengths(r, st.mainLen, 0, 256) || !lzxLengths(r, st.mainLen, 256, mainSyms) || !lzxLengths(r, st.lenLen[:], 0, lzxLengthCodes) {
			return errLZX
		}
		var ok1, ok2 bool
		st.main, ok1 = newHuffman(st.mainLen)
		st.length, ok2 = newHuffman(st.lenLen[:])
		if !ok1 || !ok2 {
			return errLZX
		}
	case lzxStored:
		// To a 16-bit boundary (a whole word when already there), then
		// the three repeated offsets.
		if r.n == 0 {
			r.pos += 2
		}
		r.n = 0
		if r.pos+12 > len(r.b) {
			r.over = true
			return io.ErrUnexpectedEOF
		}
		st.r0 = int(binary.LittleEndian.Uint32(r.b[r.pos:]))
		st.r1 = int(binary.LittleEndian.Uint32(r.b[r.pos+4:]))
		st.r2 = int(binary.LittleEndian.Uint32(r.b[r.pos+8:]))
		r.pos += 12
	default:
		return errLZX
	}
	return nil
}

// lzxLengths updates lens[from:to] from a pretree-coded delta, as each
// block sends its codes' lengths.
func lzxLengths(r *lzxBits, lens []int, from, to int) bool {
	var pl [20]int
	for i := range pl {
		pl[i] = r.bits(4)
	}
	pre, ok := newHuffman(pl[:])
	if !ok {
		return false
	}
	for x := from; x < to; {
		z, ok := pre.decode(r)
		if !ok {
			return false
		}
		n, v := 1, -1
		switch z {
		case 17:
			n, v = r.bits(4)+4, 0
		case 18:
			n, v = r.bits(5)+20, 0
		case 19:
			n = r.bits(1) + 4
			z2, ok := pre.decode(r)
			if !ok || z2 > 16 {
				return false
			}
			v = (lens[x] + 17 - z2) % 17
		default:
			v = (lens[x] + 17 - z) % 17
		}
		for ; n > 0 && x < to; n-- {
			lens[x] = v
			x++
		}
	}
	return true
}

// symbol decodes one literal or match of a verbatim or aligned block.
func (st *lzxState) symbol(r *lzxBits, out []byte, size, window int) ([]byte, error) {
	sym, ok := st.main.decode(r)
	if !ok {
		return out, errLZX
	}
	if sym < 256 {
		st.remain--
		return append(out, byte(sym)), nil
	}
	sym -= 256
	length := sym & 7
	if length == 7 {
		l, ok := st.length.decode(r)
		if !ok {
			return out, errLZX
		}
		length += l
	}
	length += 2
	var off int
	switch slot := sym >> 3; slot {
	case 0:
		off = st.r0
	case 1:
		off, st.r1, st.r0 = st.r1, st.r0, st.r1
	case 2:
		off, st.r2, st.r0 = st.r2, st.r0, st.r2
	default:
		extra := lzxExtra[slot]
		off = lzxBase[slot] - 2
		if st.kind == lzxAligned && extra >= 3 {
			if extra > 3 {
				off += r.bits(extra-3) << 3
			}
			a, ok := st.align.decode(r)
			if !ok {
				return out, errLZX
			}
			off += a
		} else if extra > 0 {
			off += r.bits(extra)
		}
		st.r2, st.r1, st.r0 = st.r1, st.r0, off
	}
	if st.remain -= length; st.remain < 0 || off <= 0 || off > len(out) || off > window {
		return out, errLZX
	}
	for ; length > 0 && len(out) < size; length-- {
		out = append(out, out[len(out)-off])
	}
	return out, nil
}

// lzxUntranslate undoes the E8 translation frame by frame: in each, a
// CALL's (0xE8) absolute target is made relative again.
func lzxUntranslate(out []byte, size int32) []byte {
	if size == 0 {
		return out
	}
	for start, frame := 0, 0; start < len(out) && frame < 32768; start, frame = start+lzxFrame, frame+1 {
		f := out[start:min(len(out), start+lzxFrame)]
		for i := 0; i < len(f)-10; {
			if f[i] != 0xe8 {
				i++
				continue
			}
			cur := int32(start + i)
			abs := int32(binary.LittleEndian.Uint32(f[i+1:]))
			if abs >= -cur && abs < size {
				rel := abs - cur
				if abs < 0 {
					rel = abs + size
				}
				binary.LittleEndian.PutUint32(f[i+1:], uint32(rel))
			}
			i += 5
		}
	}
	return out
}
