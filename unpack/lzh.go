package unpack

import (
	"errors"
	"io"
)

// The static-Huffman LZ77 coding that LHA's -lh4- to -lh7- methods and
// ARJ's methods 1 to 3 share (both descend from Haruhiko Okumura's ar002):
// blocks, each headed by its symbol count and three canonical Huffman
// code sets sent as code lengths (one for the lengths of the next, one for
// literals and match lengths, one for match positions). The formats
// differ only in the position code's size, the window and what stands in
// the window before the first byte. Written from the formats' published
// descriptions; no Go library for them is maintained.

var (
	errLZHCode   = errors.New("lzh: damaged code")
	errLZHWindow = errors.New("lzh: a match reaches beyond the window")
)

// lzhParams are one format's constants.
type lzhParams struct {
	np     int  // position codes
	pbit   uint // bits of the position code count
	window int  // the dictionary; a match reaching further is damage
	fill   byte // what the window holds before the first byte
}

var (
	lh4Params = lzhParams{np: 14, pbit: 4, window: 4 << 10, fill: ' '}
	lh5Params = lzhParams{np: 14, pbit: 4, window: 8 << 10, fill: ' '}
	lh6Params = lzhParams{np: 16, pbit: 5, window: 32 << 10, fill: ' '}
	lh7Params = lzhParams{np: 17, pbit: 5, window: 64 << 10, fill: ' '}
	arjParams = lzhParams{np: 17, pbit: 5, window: 26624, fill: 0}
)

const (
	lzhNC        = 510 // literals, and match lengths 3 to 256
	lzhNT        = 19  // code-length codes
	lzhCBit      = 9
	lzhTBit      = 5
	lzhThreshold = 3
)

// msbBits reads bits most significant first. Reading past the end gives
// zeros and sets over: a stream cut short.
type msbBits struct {
	b    []byte
	pos  int
	acc  uint32
	n    uint
	over bool
}

func (r *msbBits) bits(n uint) int {
	for r.n < n {
		var c byte
		if r.pos < len(r.b) {
			c = r.b[r.pos]
			r.pos++
		} else {
			r.over = true
		}
		r.acc = r.acc<<8 | uint32(c)
		r.n += 8
	}
	r.n -= n
	return int(r.acc>>r.n) & (1<<n - 1)
}

func (r *msbBits) bit() (int, bool) {
	b := r.bits(1)
	return b, !r.over
}

// lzhCode builds a code of lengths read from the stream.
func lzhCode(lens []int) (*huffman, error) {
	h, ok := newHuffman(lens)
	if !ok {
		return nil, errLZHCode
	}
	return h, nil
}

// readPtLen reads a code-length or position code: n lengths of nbit bits'
// count; special (3 for the code-length code) is where a 2-bit run of
// zeros follows.
func readPtLen(r *msbBits, nn int, nbit uint, special int) (*huffman, error) {
	n := r.bits(nbit)
	if n == 0 {
		c := r.bits(nbit)
		if c >= nn {
			return nil, errLZHCode
		}
		return oneSymbol(c), nil
	}
	if n > nn {
		return nil, errLZHCode
	}
	lens := make([]int, nn)
	for i := 0; i < n; {
		c := r.bits(3)
		if c == 7 {
			for r.bits(1) == 1 {
				if c++; c > 16 || r.over {
					return nil, errLZHCode
				}
			}
		}
		lens[i] = c
		i++
		if i == special {
			for z := r.bits(2); z > 0 && i < n; z-- {
				lens[i] = 0
				i++
			}
		}
	}
	return lzhCode(lens)
}

// readCLen reads the literal and length code, its lengths coded by pt.
func readCLen(r *msbBits, pt *huffman) (*huffman, error) {
	n := r.bits(lzhCBit)
	if n == 0 {
		c := r.bits(lzhCBit)
		if c >= lzhNC {
			return nil, errLZHCode
		}
		return oneSymbol(c), nil
	}
	if n > lzhNC {
		return nil, errLZHCode
	}
	lens := make([]int, lzhNC)
	for i := 0; i < n; {
		c, ok := pt.decode(r)
		if !ok {
			return nil, errLZHCode
		}
		var zeros int
		switch c {
		case 0:
			zeros = 1
		case 1:
			zeros = r.bits(4) + 3
		case 2:
			zeros = r.bits(lzhCBit) + 20
		default:
			lens[i] = c - 2
			i++
			continue
		}
		if i+zeros > n {
			return nil, errLZHCode
		}
		i += zeros
	}
	return lzhCode(lens)
}

// lzhDecode decodes src into at most size bytes (the declared size, or
// less where the caller's room ends). A stream that ends first gives what
// came out and io.ErrUnexpectedEOF; damage, what came out and an error.
func lzhDecode(src []byte, size int, p lzhParams) ([]byte, error) {
	r := &msbBits{b: src}
	out := make([]byte, 0, min(size, 1<<20))
	var c, pos *huffman
	block := 0
	for len(out) < size {
		if block == 0 {
			block = r.bits(16)
			pt, err := readPtLen(r, lzhNT, lzhTBit, 3)
			if err == nil {
				c, err = readCLen(r, pt)
			}
			if err == nil {
				pos, err = readPtLen(r, p.np, p.pbit, -1)
			}
			if r.over {
				return out, io.ErrUnexpectedEOF
			}
			if err != nil || block == 0 {
				return out, errLZHCode
			}
		}
		block--
		sym, ok := c.decode(r)
		if !ok {
			return out, lzhEnd(r)
		}
		if sym < 256 {
			if r.over {
				return out, io.ErrUnexpectedEOF
			}
			out = append(out, byte(sym))
			continue
		}
		length := sym - 256 + lzhThreshold
		d, ok := pos.decode(r)
		if !ok {
			return out, lzhEnd(r)
		}
		if d > 1 {
			d = 1<<(d-1) + r.bits(uint(d-1))
		}
		if r.over {
			return out, io.ErrUnexpectedEOF
		}
		var err error
		if out, err = lzCopy(out, d+1, length, size, p.window, p.fill); err != nil {
			return out, err
		}
	}
	return out, nil
}

// lzhEnd says why a code was not read: the stream's end, or damage.
func lzhEnd(r *msbBits) error {
	if r.over {
		return io.ErrUnexpectedEOF
	}
	return errLZHCode
}

// lzCopy appends length bytes from dist back (the window's fill before
// the first byte), stopping at size.
func lzCopy(out []byte, dist, length, size, window int, fill byte) ([]byte, error) {
	if dist > window {
		return out, errLZHWindow
	}
	for ; length > 0 && len(out) < size; length-- {
		b := fill
		if i := len(out) - dist; i >= 0 {
			b = out[i]
		}
		out = append(out, b)
	}
	return out, nil
}
