package unpack

// huffman is a canonical Huffman code, read bit by bit, most significant
// bit of a code first: shorter codes first, symbols in order within a
// length. Deflate64 and the LHA and ARJ coding (lzh.go) build theirs so.
type huffman struct {
	count  [17]int
	symbol []int
	single int // >= 0: the only symbol, sent in no bits (LHA's and ARJ's one-symbol sets)
}

// bitSource gives a stream's next bit; false when none is left.
type bitSource interface{ bit() (int, bool) }

// newHuffman builds the code of lengths (0: the symbol is not used, up
// to 16); false when they over-subscribe the code space.
func newHuffman(lengths []int) (*huffman, bool) {
	h := &huffman{symbol: make([]int, 0, len(lengths)), single: -1}
	for _, l := range lengths {
		if l < 0 || l > 16 {
			return nil, false
		}
		h.count[l]++
	}
	h.count[0] = 0
	left := 1
	for l := 1; l <= 16; l++ {
		left <<= 1
		if left -= h.count[l]; left < 0 {
			return nil, false
		}
	}
	for l := 1; l <= 16; l++ {
		for s, sl := range lengths {
			if sl == l {
				h.symbol = append(h.symbol, s)
			}
		}
	}
	return h, true
}

// oneSymbol is the code of a set that holds one symbol, sent in no bits.
func oneSymbol(s int) *huffman { return &huffman{single: s} }

// decode reads one symbol; false at the stream's end or on a code not in
// the set.
func (h *huffman) decode(r bitSource) (int, bool) {
	if h.single >= 0 {
		return h.single, true
	}
	code, first, index := 0, 0, 0
	for l := 1; l <= 16; l++ {
		b, ok := r.bit()
		if !ok {
			return 0, false
		}
		code |= b
		count := h.count[l]
		if code-count < first {
			return h.symbol[index+(code-first)], true
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, false
}
