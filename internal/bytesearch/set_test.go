package bytesearch

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// setReference is Set.Index by bytes.Index.
func setReference(s []byte, seps [][]byte) (int, uint) {
	first := -1
	for _, sep := range seps {
		if k := bytes.Index(s, sep); k >= 0 && (first < 0 || k < first) {
			first = k
		}
	}
	if first < 0 {
		return -1, 0
	}
	var which uint
	for j, sep := range seps {
		if bytes.HasPrefix(s[first:], sep) {
			which |= 1 << j
		}
	}
	return first, which
}

// TestSetAtEveryPlace puts each string of a set at every place of
// buffers of many lengths, over backgrounds crowded with their first
// bytes: the first place, and every string that starts there, as
// bytes.Index finds them. Strings that share a start (one a prefix of
// another) are both named.
func TestSetAtEveryPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	sets := []struct {
		seps       [][]byte
		background string
	}{
		{[][]byte{[]byte("X5O!"), []byte("begin")}, "abBCDEginX5O!."},
		{[][]byte{[]byte("ABCD"), []byte("BCDE"), []byte("CDEF"), []byte("X5O!"), []byte("begin")}, "abBCDEginX5O!."},
		{[][]byte{[]byte("begi"), []byte("begin")}, "abBCDEginX5O!."},
		{[][]byte{[]byte("ab")}, "abBCDEginX5O!."},
		// A download's follow (classVector): six strings on one second
		// byte, and bytes whose nibbles come from two of their first
		// bytes ("i", "J", "1", "9": candidates, not places).
		{followSet, "aA\t\n\r;:&#colnX5O!begiJ19m."},
		// Nine second bytes: compared pair by pair.
		{[][]byte{[]byte("ab"), []byte("cd"), []byte("ef"), []byte("gh"), []byte("ij"), []byte("kl"), []byte("mn"), []byte("op"), []byte("qr")},
			"abcdefghijklmnopqr"},
	}
	for _, c := range sets {
		seps := c.seps
		set := NewSet(seps...)
		seconds := map[byte]bool{}
		for _, sep := range seps {
			seconds[sep[1]] = true
		}
		if (set.classes != nil) != (len(seps) >= classesFrom && len(seconds) <= 8) {
			t.Fatalf("%q: classes %v", seps, set.classes != nil)
		}
		for _, sep := range seps {
			for n := 0; n < 160; n++ {
				for at := -1; at+len(sep) <= n; at++ {
					s := make([]byte, n)
					for i := range s {
						s[i] = c.background[rng.IntN(len(c.background))]
					}
					if at >= 0 {
						copy(s[at:], sep)
					}
					gi, gw := set.Index(s)
					wi, ww := setReference(s, seps)
					if gi != wi || gw != ww {
						t.Fatalf("%q in %q: Index = %d %b, bytes.Index says %d %b", seps, s, gi, gw, wi, ww)
					}
				}
			}
		}
	}
	if NewSet() != nil || NewSet([]byte("a")) != nil {
		t.Fatal("a set of nothing, or of a 1-byte string, was made")
	}
}

// TestSetCrowded: an object crowded with the strings' first two bytes
// still gives the first place of one, behind them.
func TestSetCrowded(t *testing.T) {
	set := NewSet([]byte("begin"), []byte("X5O!"))
	s := append(bytes.Repeat([]byte("be"), 100000), "X5O!"...)
	if i, w := set.Index(s); i != 200000 || w != 2 {
		t.Fatalf("Index = %d %b", i, w)
	}
}

func FuzzSet(f *testing.F) {
	f.Add([]byte("..X5O!..begin"), []byte("begin"), []byte("X5O!"), 3)
	f.Fuzz(func(t *testing.T, s, a, b []byte, pad int) {
		if len(a) < 2 || len(b) < 2 {
			return
		}
		in := append(bytes.Repeat([]byte{'.'}, pad&127), bytes.Repeat(s, 1+100/(len(s)+1))...)
		for _, seps := range [][][]byte{{a, b}, append([][]byte{a, b}, followSet...)} {
			gi, gw := NewSet(seps...).Index(in)
			wi, ww := setReference(in, seps)
			if gi != wi || gw != ww {
				t.Fatalf("%q: Index = %d %b, bytes.Index says %d %b", seps, gi, gw, wi, ww)
			}
		}
	})
}

func BenchmarkSetRandom(b *testing.B) {
	s := random(16 << 20)
	set := NewSet([]byte("X5O!"), []byte("begin"))
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if i, _ := set.Index(s); i >= 0 {
			b.Fatal("found")
		}
	}
}

// followSet is the set a download's follow looks for with the shipped
// signatures: EICAR's anchor, a uuencoded block's start and the pairs of
// a data: address (unpack's uriAnchors), six of which share their second
// byte.
var followSet = [][]byte{[]byte("X5O!"), []byte("begin"), []byte("a:"), []byte("A:"), []byte("\t:"), []byte("\n:"), []byte("\r:"),
	[]byte(";:"), []byte("&#"), []byte("&colon;")}

// BenchmarkSetFollow: the set of a download's follow (followSet).
func BenchmarkSetFollow(b *testing.B) {
	s := random(16 << 20)
	set := NewSet(followSet...)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		for i := 0; i < len(s); {
			k, _ := set.Index(s[i:])
			if k < 0 {
				break
			}
			i += k + 1
		}
	}
}
