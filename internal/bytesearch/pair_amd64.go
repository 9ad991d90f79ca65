package bytesearch

import "golang.org/x/sys/cpu"

// vector: pairVector runs (AVX2).
var vector = cpu.X86.HasAVX2

// minPair is the shortest input pairVector takes (two 32-byte blocks and
// the byte after them), minVector setVector's (one block and the byte
// after it).
const (
	minPair   = 65
	minVector = 33
	pairTurn  = 64
	setTurn   = 32
)

// pairVector looks at the places i of s, pairTurn at a time, while
// s[i+1:i+pairTurn+1] lies in s, for places with s[i] == c0 and
// s[i+1] == c1. It stops at the first turn that has some: their bits in
// mask (bit k for place base+k; the turn's other places have none). With
// mask 0, none was found before base, and the places from there on are
// the caller's. len(s) >= minPair.
//
//go:noescape
func pairVector(s []byte, c0, c1 byte) (base int, mask uint64)

// setVector is pairVector for the first n pairs of table (each pair two
// vectors of its bytes: see Set) at once, setTurn places a turn.
//
//go:noescape
func setVector(s []byte, table *[2 * maxSet][32]byte, n int) (base int, mask uint64)

// classVector is setVector for a set's nibble tables (Set.classes), in
// the same turns.
//
//go:noescape
func classVector(s []byte, tables *[4][32]byte) (base int, mask uint64)
