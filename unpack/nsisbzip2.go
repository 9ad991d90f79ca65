package unpack

import (
	"errors"
	"io"
)

// NSIS's bzip2: bzip2's blocks (900k), each begun by the byte 0x31 and
// its origin pointer alone (no rest of the block magic, no CRC, no
// randomised bit), the stream ended by the byte 0x17 (no end magic, no
// CRC), and no "BZh" header. Go's compress/bzip2 checks what this format
// leaves out, so its blocks are decoded here, as bzip2 defines them: the
// symbols in use, the Huffman groups and their selectors, the runs and
// the move-to-front, the inverse Burrows-Wheeler transform, the final
// run-length step.

var errNSISBzip2 = errors.New("nsis: a damaged bzip2 block")

// nsisBzip2 is a reader of an NSIS bzip2 stream.
type nsisBzip2 struct {
	br   msbBits
	out  []byte // decoded, not yet read
	done bool
	tt   []uint32 // the inverse transform's vector, kept between blocks
}

func newNSISBzip2(b []byte) *nsisBzip2 { return &nsisBzip2{br: msbBits{b: b}} } // lzh.go's bit reader

func (z *nsisBzip2) Read(p []byte) (int, error) {
	for len(z.out) == 0 {
		if z.done {
			return 0, io.EOF
		}
		if err := z.block(); err != nil {
			z.done = true
			return 0, err
		}
	}
	n := copy(p, z.out)
	z.out = z.out[n:]
	return n, nil
}

const (
	bzMaxBlock  = 900000
	bzMaxGroups = 6
	bzMaxAlpha  = 258
	bzMaxCode   = 20
	bzGroupSize = 50
)

// block decodes the next block into z.out, or finds the stream's end.
func (z *nsisBzip2) block() error {
	br := &z.br
	switch br.bits(8) {
	case 0x17:
		z.done = true
		return nil
	case 0x31:
	default:
		return errNSISBzip2
	}
	origPtr := br.bits(24)
	// The symbols in use.
	var seqToUnseq []byte
	inUse16 := br.bits(16)
	for i := range 16 {
		if inUse16&(0x8000>>i) == 0 {
			continue
		}
		used := br.bits(16)
		for j := range 16 {
			if used&(0x8000>>j) != 0 {
				seqToUnseq = append(seqToUnseq, byte(i*16+j))
			}
		}
	}
	if len(seqToUnseq) == 0 {
		return errNSISBzip2
	}
	alphaSize := len(seqToUnseq) + 2
	nGroups := br.bits(3)
	nSelectors := br.bits(15)
	if nGroups < 2 || nGroups > bzMaxGroups || nSelectors < 1 || br.over {
		return errNSISBzip2
	}
	// The selectors, move-to-front coded in unary.
	mtfGroups := []byte{0, 1, 2, 3, 4, 5}[:nGroups]
	selectors := make([]byte, 0, min(nSelectors, 18002))
	for range nSelectors {
		j := 0
		for br.bits(1) == 1 {
			j++
			if j >= nGroups || br.over {
				return errNSISBzip2
			}
		}
		v := mtfGroups[j]
		copy(mtfGroups[1:j+1], mtfGroups[:j])
		mtfGroups[0] = v
		if len(selectors) < 18002 {
			selectors = append(selectors, v)
		}
	}
	// Each group's code lengths, each a change from the one before.
	var tables [bzMaxGroups]huffTable
	for t := range nGroups {
		var lens [bzMaxAlpha]uint8
		curr := br.bits(5)
		for i := range alphaSize {
			for {
				if curr < 1 || curr > bzMaxCode || br.over {
					return errNSISBzip2
				}
				if br.bits(1) == 0 {
					break
				}
				if br.bits(1) == 0 {
					curr++
				} else {
					curr--
				}
			}
			lens[i] = uint8(curr)
		}
		tables[t] = newHuffTable(lens[:alphaSize])
	}
	// The symbols: runs of the front byte (RUNA, RUNB), move-to-front
	// indexes, until the end of the block.
	eob := alphaSize - 1
	var mtf [256]byte
	for i := range mtf {
		mtf[i] = byte(i)
	}
	var counts [256]int
	ll := make([]byte, 0, 4096)
	run, runWeight := 0, 1
	flush := func() bool {
		if run == 0 {
			return true
		}
		if len(ll)+run > bzMaxBlock {
			return false
		}
		c := seqToUnseq[mtf[0]]
		counts[c] += run
		for range run {
			ll = append(ll, c)
		}
		run, runWeight = 0, 1
		return true
	}
	for g := 0; ; g++ {
		if g >= len(selectors) {
			return errNSISBzip2
		}
		tab := &tables[selectors[g]]
		for range bzGroupSize {
			sym, ok := tab.decode(br)
			if !ok {
				return errNSISBzip2
			}
			switch {
			case sym == eob:
				if !flush() {
					return errNSISBzip2
				}
				return z.unsort(ll, counts, origPtr)
			case sym <= 1: // RUNA, RUNB
				if runWeight > bzMaxBlock {
					return errNSISBzip2
				}
				run += (sym + 1) * runWeight
				runWeight <<= 1
			default:
				if !flush() || len(ll) >= bzMaxBlock {
					return errNSISBzip2
				}
				k := sym - 1
				v := mtf[k]
				copy(mtf[1:k+1], mtf[:k])
				mtf[0] = v
				c := seqToUnseq[v]
				counts[c]++
				ll = append(ll, c)
			}
		}
	}
}

// unsort undoes the block's Burrows-Wheeler transform from origPtr, then
// its run-length step (four equal bytes, then how many more), into z.out.
func (z *nsisBzip2) unsort(ll []byte, counts [256]int, origPtr int) error {
	n := len(ll)
	if origPtr >= n {
		return errNSISBzip2
	}
	var cftab [256]int
	sum := 0
	for c := range cftab {
		cftab[c] = sum
		sum += counts[c]
	}
	if cap(z.tt) < n {
		z.tt = make([]uint32, n)
	}
	tt := z.tt[:n]
	for i, c := range ll {
		tt[cftab[c]] = uint32(i)
		cftab[c]++
	}
	out := make([]byte, 0, n+n/4)
	pos := tt[origPtr]
	var last byte
	same := 0
	for i := 0; i < n; i++ {
		c := ll[pos]
		pos = tt[pos]
		if same == 4 {
			for range c {
				out = append(out, last)
			}
			same = 0
			continue
		}
		if same > 0 && c == last {
			same++
		} else {
			same = 1
		}
		last = c
		out = append(out, c)
	}
	z.out = out
	return nil
}

// huffTable decodes bzip2's canonical Huffman codes of one group.
type huffTable struct {
	limit          [bzMaxCode + 2]int // the largest code of each length, plus one; 0 for none
	base           [bzMaxCode + 2]int // the first symbol index of each length
	perm           []int              // the symbols by code length, then by value
	minLen, maxLen int
}

func newHuffTable(lens []uint8) huffTable {
	var t huffTable
	t.minLen, t.maxLen = bzMaxCode, 0
	for _, l := range lens {
		t.minLen = min(t.minLen, int(l))
		t.maxLen = max(t.maxLen, int(l))
	}
	for l := t.minLen; l <= t.maxLen; l++ {
		for s, sl := range lens {
			if int(sl) == l {
				t.perm = append(t.perm, s)
			}
		}
	}
	code, idx := 0, 0
	for l := t.minLen; l <= t.maxLen; l++ {
		t.base[l] = idx - code // symbol index = code + base
		for _, sl := range lens {
			if int(sl) == l {
				code++
				idx++
			}
		}
		t.limit[l] = code // codes of this length are below this
		code <<= 1
	}
	return t
}

// decode reads one symbol.
func (t *huffTable) decode(br *msbBits) (int, bool) {
	code := br.bits(uint(t.minLen))
	for l := t.minLen; l <= t.maxLen; l++ {
		if br.over {
			return 0, false
		}
		if code < t.limit[l] {
			i := code + t.base[l]
			if i < 0 || i >= len(t.perm) {
				return 0, false
			}
			return t.perm[i], true
		}
		code = code<<1 | br.bits(1)
	}
	return 0, false
}
