package unpack

import (
	"errors"
	"io"
)

// Deflate64 (zip method 9, "enhanced deflate"), which Windows' zip
// writes for large files and 7-Zip on request: deflate with a 64 KiB
// window, length code 285 taking 16 extra bits (lengths 3 to 65538), and
// distance codes 30 and 31 (up to 65536 back). Neither Go nor the
// archive readers here decode it, and such an entry was not opened.

var errInflate64 = errors.New("deflate64: a malformed stream")

// Length and distance bases and extra bits; the last length code and
// the last two distance codes are Deflate64's.
var (
	lenBase  = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 3}
	lenExtra = [29]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 16}
	distBase = [32]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
		4097, 6145, 8193, 12289, 16385, 24577, 32769, 49153}
	distExtra = [32]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14}
)

// bitReader reads a deflate stream's bits, least significant first.
type bitReader struct {
	b    []byte
	pos  int
	acc  uint64
	bits uint
}

func (r *bitReader) need(n uint) bool {
	for r.bits < n {
		if r.pos >= len(r.b) {
			return false
		}
		r.acc |= uint64(r.b[r.pos]) << r.bits
		r.pos++
		r.bits += 8
	}
	return true
}

func (r *bitReader) bit() (int, bool) { return r.read(1) }

func (r *bitReader) read(n uint) (int, bool) {
	if n == 0 {
		return 0, true
	}
	if !r.need(n) {
		return 0, false
	}
	v := int(r.acc & (1<<n - 1))
	r.acc >>= n
	r.bits -= n
	return v, true
}

// inflate64 decodes a Deflate64 stream, at most limit bytes out.
func inflate64(b []byte, limit int) ([]byte, error) {
	r := &bitReader{b: b}
	var out []byte
	for {
		final, ok1 := r.read(1)
		typ, ok2 := r.read(2)
		if !ok1 || !ok2 {
			return out, io.ErrUnexpectedEOF
		}
		switch typ {
		case 0: // stored
			r.acc, r.bits = 0, 0 // to a byte boundary
			if r.pos+4 > len(r.b) {
				return out, io.ErrUnexpectedEOF
			}
			n := int(r.b[r.pos]) | int(r.b[r.pos+1])<<8
			r.pos += 4
			if r.pos+n > len(r.b) {
				return append(out, r.b[r.pos:]...), io.ErrUnexpectedEOF
			}
			out = append(out, r.b[r.pos:r.pos+n]...)
			r.pos += n
		case 1, 2:
			lit, dist, err := blockCodes(r, typ)
			if err != nil {
				return out, err
			}
			for {
				sym, ok := lit.decode(r)
				if !ok {
					return out, io.ErrUnexpectedEOF
				}
				if sym < 256 {
					out = append(out, byte(sym))
					continue
				}
				if sym == 256 {
					break
				}
				sym -= 257
				if sym >= 29 {
					return out, errInflate64
				}
				extra, ok := r.read(lenExtra[sym])
				if !ok {
					return out, io.ErrUnexpectedEOF
				}
				length := lenBase[sym] + extra
				ds, ok := dist.decode(r)
				if !ok || ds >= 32 {
					return out, errInflate64
				}
				extra, ok = r.read(distExtra[ds])
				if !ok {
					return out, io.ErrUnexpectedEOF
				}
				d := distBase[ds] + extra
				if d > len(out) {
					return out, errInflate64
				}
				for k := 0; k < length; k++ {
					out = append(out, out[len(out)-d])
				}
				if len(out) > limit {
					return out, nil
				}
			}
		default:
			return out, errInflate64
		}
		if len(out) > limit || final == 1 {
			return out, nil
		}
	}
}

// blockCodes reads (or, for a fixed block, makes) a block's two codes.
func blockCodes(r *bitReader, typ int) (lit, dist *huffman, err error) {
	if typ == 1 {
		lengths := make([]int, 288)
		for i := range lengths {
			switch {
			case i < 144:
				lengths[i] = 8
			case i < 256:
				lengths[i] = 9
			case i < 280:
				lengths[i] = 7
			default:
				lengths[i] = 8
			}
		}
		d := make([]int, 32)
		for i := range d {
			d[i] = 5
		}
		lit, _ = newHuffman(lengths)
		dist, _ = newHuffman(d)
		return lit, dist, nil
	}
	hlit, ok1 := r.read(5)
	hdist, ok2 := r.read(5)
	hclen, ok3 := r.read(4)
	if !ok1 || !ok2 || !ok3 {
		return nil, nil, io.ErrUnexpectedEOF
	}
	order := [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	var cl [19]int
	for i := 0; i < hclen+4; i++ {
		v, ok := r.read(3)
		if !ok {
			return nil, nil, io.ErrUnexpectedEOF
		}
		cl[order[i]] = v
	}
	clh, ok := newHuffman(cl[:])
	if !ok {
		return nil, nil, errInflate64
	}
	n := hlit + 257 + hdist + 1
	lengths := make([]int, 0, n)
	for len(lengths) < n {
		sym, ok := clh.decode(r)
		if !ok {
			return nil, nil, io.ErrUnexpectedEOF
		}
		switch {
		case sym < 16:
			lengths = append(lengths, sym)
		case sym == 16:
			if len(lengths) == 0 {
				return nil, nil, errInflate64
			}
			rep, _ := r.read(2)
			for k := 0; k < rep+3; k++ {
				lengths = append(lengths, lengths[len(lengths)-1])
			}
		default:
			bitsN, base := uint(3), 3
			if sym == 18 {
				bitsN, base = 7, 11
			}
			rep, _ := r.read(bitsN)
			for k := 0; k < rep+base; k++ {
				lengths = append(lengths, 0)
			}
		}
	}
	if len(lengths) > n {
		return nil, nil, errInflate64
	}
	lit, ok1 = newHuffman(lengths[:hlit+257])
	dist, ok2 = newHuffman(lengths[hlit+257:])
	if !ok1 || !ok2 {
		return nil, nil, errInflate64
	}
	return lit, dist, nil
}
