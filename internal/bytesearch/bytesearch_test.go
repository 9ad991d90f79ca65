package bytesearch

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestIndexAtEveryPlace puts a string at every place of buffers of many
// lengths, over a background of its own first byte (every place a first
// byte's candidate), of its first two bytes cut short, and of random
// bytes: the vector blocks' borders, the double turn's and the tail all
// fall on it somewhere.
func TestIndexAtEveryPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sep := range []string{"ab", "abc", "X5O!", "begin", "PK\x03\x04", "7z\xbc\xaf\x27\x1c", "aa", "aaab"} {
		for _, bg := range []func(n int) []byte{
			func(n int) []byte { return bytes.Repeat([]byte{sep[0]}, n) },
			func(n int) []byte { return []byte(strings.Repeat(sep[:len(sep)-1]+"_", n)[:n]) },
			func(n int) []byte {
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(rng.IntN(4)) + 'a'
				}
				return b
			},
		} {
			for n := 0; n < 200; n++ {
				for at := -1; at+len(sep) <= n; at++ {
					s := bg(n)
					if at >= 0 {
						copy(s[at:], sep)
					}
					if got, want := Index(s, []byte(sep)), bytes.Index(s, []byte(sep)); got != want {
						t.Fatalf("Index(%q, %q) = %d, bytes.Index says %d", s, sep, got, want)
					}
				}
			}
		}
	}
}

// TestIndexFindsTheFirst: with several places in one block, and places
// in both blocks of a double turn, the first one is the answer.
func TestIndexFindsTheFirst(t *testing.T) {
	s := make([]byte, 300)
	for _, places := range [][]int{{5, 20}, {31, 33}, {40, 70}, {62, 64}, {63, 95}, {0, 2}, {100, 102, 104}, {290}} {
		clear(s)
		for _, p := range places {
			copy(s[p:], "ab")
		}
		if got := Index(s, []byte("ab")); got != places[0] {
			t.Errorf("places %v: Index = %d", places, got)
		}
	}
}

func FuzzIndex(f *testing.F) {
	f.Add([]byte(strings.Repeat("xbegibegin", 20)), []byte("begin"))
	f.Add(bytes.Repeat([]byte{0}, 100), []byte{0, 0})
	f.Add([]byte("PK\x03"), []byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, s, sep []byte) {
		if got, want := Index(s, sep), bytes.Index(s, sep); got != want {
			t.Fatalf("Index = %d, bytes.Index = %d", got, want)
		}
		// The same bytes repeated, behind a filler of each length up to
		// a double block: long enough for the vector search, at every
		// alignment.
		long := bytes.Repeat(s, 1+100/(len(s)+1))
		for pad := range 65 {
			in := append(bytes.Repeat([]byte{'.'}, pad), long...)
			if got, want := Index(in, sep), bytes.Index(in, sep); got != want {
				t.Fatalf("behind %d bytes: Index = %d, bytes.Index = %d", pad, got, want)
			}
		}
	})
}

func benchIndex(b *testing.B, s []byte, sep string, index func(s, sep []byte) int) {
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if index(s, []byte(sep)) >= 0 {
			b.Fatal("found")
		}
	}
}

func random(n int) []byte {
	s := make([]byte, n)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range s {
		s[i] = byte(rng.Uint32())
	}
	// No "begin" and no "X5O!" by chance.
	return bytes.ReplaceAll(bytes.ReplaceAll(s, []byte("begin"), []byte("Begin")), []byte("X5O!"), []byte("x5O!"))
}

func text(n int) []byte {
	return []byte(strings.Repeat("to be or not to be, that is the question; he began to bellow. ", n/62+1)[:n])
}

func BenchmarkIndexRandom(b *testing.B) { benchIndex(b, random(16<<20), "begin", Index) }
func BenchmarkBytesIndexRandom(b *testing.B) {
	benchIndex(b, random(16<<20), "begin", bytes.Index)
}
func BenchmarkIndexText(b *testing.B)      { benchIndex(b, text(16<<20), "begin", Index) }
func BenchmarkBytesIndexText(b *testing.B) { benchIndex(b, text(16<<20), "begin", bytes.Index) }

func decoys(n int) []byte { return bytes.Repeat([]byte("beg"), n/3) }

func BenchmarkIndexDecoys(b *testing.B)      { benchIndex(b, decoys(16<<20), "begin", Index) }
func BenchmarkBytesIndexDecoys(b *testing.B) { benchIndex(b, decoys(16<<20), "begin", bytes.Index) }
