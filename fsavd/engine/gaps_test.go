package engine

import (
	"bytes"
	"encoding/hex"
	"math/rand"
	"slices"
	"testing"
)

// TestWildcardGapsHoldOverDistance: a signature whose parts are joined by
// * (or a wide {n-m}) matches however far apart the parts are, within
// the object: padding put between them to outrun the verification is the
// attack. Both directions are tested: the anchor (the longest literal)
// before the gap and after it.
func TestWildcardGapsHoldOverDistance(t *testing.T) {
	sigs := "Gap.AnchorFirst:0:*:" + hexOf("the-long-anchor-part") + "*" + hexOf("tail") + "\n" +
		"Gap.AnchorLast:0:*:" + hexOf("head") + "*" + hexOf("another-long-anchor") + "\n" +
		"Gap.Range:0:*:" + hexOf("left") + "{10-1000000}" + hexOf("a-long-right-anchor") + "\n" +
		"Gap.Three:0:*:" + hexOf("one1") + "*" + hexOf("the-middle-anchor!") + "*" + hexOf("three") + "\n"
	db := loadSigs(t, map[string]string{"gaps.ndb": sigs})
	e := New(db)
	pad := func(n int) []byte {
		b := make([]byte, n)
		rand.New(rand.NewSource(int64(n))).Read(b)
		return b
	}
	for _, gap := range []int{0, 1000, 200 << 10, 999990, 2 << 20} {
		objs := map[string][]byte{
			"Gap.AnchorFirst": bytes.Join([][]byte{pad(100), []byte("the-long-anchor-part"), pad(gap), []byte("tail"), pad(100)}, nil),
			"Gap.AnchorLast":  bytes.Join([][]byte{pad(100), []byte("head"), pad(gap), []byte("another-long-anchor"), pad(100)}, nil),
			"Gap.Three":       bytes.Join([][]byte{[]byte("one1"), pad(gap), []byte("the-middle-anchor!"), pad(gap), []byte("three")}, nil),
		}
		if gap+10 <= 1000000 {
			objs["Gap.Range"] = bytes.Join([][]byte{pad(100), []byte("left"), pad(gap + 10), []byte("a-long-right-anchor")}, nil)
		}
		for name, obj := range objs {
			if got := names(e.ScanBytes(obj, all)); got != name+"@" {
				t.Errorf("%s with %d bytes between the parts: %q", name, gap, got)
			}
		}
	}
	// The parts out of order, or the range's bound passed, match nothing.
	if got := names(e.ScanBytes([]byte("tail the-long-anchor-part"), all)); got != "" {
		t.Errorf("parts out of order: %q", got)
	}
	far := bytes.Join([][]byte{[]byte("left"), pad(1000011), []byte("a-long-right-anchor")}, nil)
	if got := names(e.ScanBytes(far, all)); got != "" {
		t.Errorf("past the range's bound: %q", got)
	}
}

// TestWildcardGapDecoys: many copies of the part after a gap, none of
// which completes the signature, cost a search each, not a step per
// byte, and the real one after them is still found.
func TestWildcardGapDecoys(t *testing.T) {
	db := loadSigs(t, map[string]string{"decoy.ndb": "Gap.Decoy:0:*:" + hexOf("the-long-anchor-part") + "*" + hexOf("tail") + hexOf("END") + "\n"})
	obj := append([]byte("the-long-anchor-part"), bytes.Repeat([]byte("tail-not-it "), 5000)...)
	obj = append(obj, "tailEND"...)
	if got := names(New(db).ScanBytes(obj, all)); got != "Gap.Decoy@" {
		t.Fatalf("after 5,000 decoys: %q", got)
	}
}

// TestShortPartsFoundFarIn: a signature with no literal of four bytes
// (matched without the anchor filter) is found wherever it lies in the
// object, not only in its first megabytes.
func TestShortPartsFoundFarIn(t *testing.T) {
	db := loadSigs(t, map[string]string{"short.ndb": "Short.Parts:0:*:4a4b??4c4d??4e4f\n"})
	e := New(db)
	for _, at := range []int{0, 1 << 20, 5 << 20, 20 << 20} {
		obj := make([]byte, at+100)
		rand.New(rand.NewSource(int64(at))).Read(obj)
		copy(obj[at:], "JKxLMxNO")
		if got := names(e.ScanBytes(obj, all)); got != "Short.Parts@" {
			t.Errorf("at %d: %q", at, got)
		}
	}
}

// TestVerificationThatRunsOutIsSuspected: an object crafted so that a
// signature without a four-byte literal cannot be verified within its
// steps (every start and every place of the next part a near miss) is
// Suspected, not clean.
func TestVerificationThatRunsOutIsSuspected(t *testing.T) {
	db := loadSigs(t, map[string]string{"short.ndb": "Short.Gap:0:*:4a{0-100000}4b??4c\n"})
	obj := append(bytes.Repeat([]byte("J"), 20000), bytes.Repeat([]byte("K"), 20000)...)
	got := New(db).ScanBytes(obj, all)
	if len(got) != 1 || got[0].Name != Exhausted || got[0].Kind != Suspected {
		t.Fatalf("a crafted near miss: %+v", got)
	}
	// The same signature on text of the same size without its bytes, and
	// with J and K but never L after: clean, within the steps.
	plain := bytes.Repeat([]byte("lorem ipsum dolor sit amet "), len(obj)/27)
	for i := 0; i < len(plain); i += 1000 {
		copy(plain[i:], "J xK")
	}
	if got := New(db).ScanBytes(plain, all); len(got) != 0 {
		t.Fatalf("plain data: %+v", got)
	}
}

// TestAnchoredVerificationThatRunsOutIsSuspected: decoys enough to
// outrun an anchored signature's verification (the part after its gap,
// over and over, never followed by the rest) make the object Suspected:
// what could not be verified is not clean.
func TestAnchoredVerificationThatRunsOutIsSuspected(t *testing.T) {
	db := loadSigs(t, map[string]string{"decoy.ndb": "Gap.Decoyed:0:*:" + hexOf("the-long-anchor-part") + "*41??42\n"})
	obj := append([]byte("the-long-anchor-part"), bytes.Repeat([]byte("A"), 300000)...)
	obj = append(obj, "AxB"...) // the real end, past the decoys
	got := New(db).ScanBytes(obj, all)
	if len(got) != 1 || got[0].Name != Exhausted || got[0].Kind != Suspected {
		t.Fatalf("300,000 decoys: %+v", got)
	}
	// A few decoys cost a few steps: the signature is found.
	few := append([]byte("the-long-anchor-part"), bytes.Repeat([]byte("A"), 1000)...)
	few = append(few, "AxB"...)
	if got := names(New(db).ScanBytes(few, all)); got != "Gap.Decoyed@" {
		t.Fatalf("1,000 decoys: %q", got)
	}
}

// hexOf is s as a signature's hex bytes.
func hexOf(s string) string { return hex.EncodeToString([]byte(s)) }

// TestGapSearchesReadTheObjectOnce: an object crowded with a signature's
// anchor, each place followed by a gap whose literal is missing (or
// there only far away, where the signature then fails), made every place
// search the rest of the object: a pass quadratic in the object, four
// seconds a megabyte. What each search found is kept for the next, so
// such objects are read about once per literal and judged clean (not
// Exhausted: their work stays far under the pass's bound). Both
// directions, and a literal that is there but never completes the
// signature.
func TestGapSearchesReadTheObjectOnce(t *testing.T) {
	sigs := "Crowd.Forward:0:*:" + hexOf("CDEF") + "*" + hexOf("tail") + "\n" +
		"Crowd.FarFail:0:*:" + hexOf("GHIJ") + "*" + hexOf("tail") + "??5a\n" +
		"Crowd.Backward:0:*:" + hexOf("HEAD") + "*" + hexOf("LONGANCHOR") + "\n" +
		"Crowd.Bounded:0:*:" + hexOf("CDEF") + "{0-1000000}" + hexOf("end!") + "\n" +
		"Crowd.Behind:0:*:" + hexOf("zzzz") + "*" + hexOf("head") + "*" + hexOf("LONGANCHOR") + "\n"
	db := loadSigs(t, map[string]string{"crowd.ndb": sigs})
	const size = 4 << 20
	filler := bytes.Repeat([]byte("."), 1<<20)
	for _, c := range []struct {
		name         string
		before       []byte
		crowd, after string
	}{
		{"forward, literals missing", nil, "CDEF", ""},
		{"forward, literal far and failing", nil, "GHIJ", "tail.Y"},
		{"backward, literals missing", nil, "LONGANCHOR", ""},
		{"backward, literal far behind and failing", append(filler, "head"...), "LONGANCHOR", ""},
	} {
		obj := slices.Concat(c.before, bytes.Repeat([]byte(c.crowd), size/len(c.crowd)), []byte(c.after))
		for _, d := range []*DB{db, hashed(db)} {
			if got := names(New(d).ScanBytes(obj, all)); got != "" {
				t.Errorf("%s (%d anchors; key by key: %v): %q", c.name, size/len(c.crowd), d.keys != nil, got)
			}
		}
	}
	// The signatures still match, after a crowd of failed places.
	for name, obj := range map[string][]byte{
		"Crowd.Forward":  append(bytes.Repeat([]byte("CDEF"), 1000), "..tail"...),
		"Crowd.FarFail":  append(bytes.Repeat([]byte("GHIJ"), 1000), "tail.Y tail.Z"...),
		"Crowd.Backward": append([]byte("HEAD:"), bytes.Repeat([]byte("LONGANCHOR"), 1000)...),
		"Crowd.Bounded":  append(bytes.Repeat([]byte("CDEF"), 1000), "end!"...),
		"Crowd.Behind":   slices.Concat([]byte("zzzz"), filler, []byte("head"), bytes.Repeat([]byte("LONGANCHOR"), 1000)),
	} {
		if got := names(New(db).ScanBytes(obj, all)); got != name+"@" {
			t.Errorf("%s after a crowd: %q", name, got)
		}
	}
}

// TestGapWalksAreBoundedPerObject: a gap that must be walked byte by byte
// (the part next to it is not literal), at every place of a crowd of
// anchors: each verification stops at its steps, and all of them
// together at the pass's work, so the object is Suspected in bounded
// time (before, each of a million places could take its full steps),
// the walk forward or back.
func TestGapWalksAreBoundedPerObject(t *testing.T) {
	sigs := "Walk.Forward:0:*:" + hexOf("CDEF") + "*(41|42)4343\n" +
		"Walk.Back:0:*:4343(41|42)*" + hexOf("GHIJ") + "\n"
	db := loadSigs(t, map[string]string{"walk.ndb": sigs})
	for name, obj := range map[string][]byte{
		"forward": bytes.Repeat([]byte("CDEF"), 1<<16),
		"back":    bytes.Repeat([]byte("GHIJ"), 1<<16),
	} {
		got := New(db).ScanBytes(obj, all)
		if len(got) != 1 || got[0].Name != Exhausted || got[0].Kind != Suspected {
			t.Errorf("%s: %+v", name, got)
		}
	}
}

// TestKeptPlacesAnswerAsSearchesDo: what a pass keeps of a literal's
// places answers every search as bytes.Index and LastIndex over the same
// window would, in order or not, with more places than are kept (the
// oldest dropped) and windows before, across and past them.
func TestKeptPlacesAnswerAsSearchesDo(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	data := make([]byte, 400000)
	for i := range data {
		data[i] = "ab."[r.Intn(3)] // "ab" about every ninth byte: 40,000 places
	}
	lit := &part{kind: kLit, lit: []byte("ab")}
	for _, ordered := range []bool{true, false} {
		var v verifier
		v.init(data, nil)
		v.work = 1 << 62
		at := 0
		for q := 0; q < 20000; q++ {
			lo := r.Intn(len(data))
			if ordered {
				at = min(len(data)-1, at+r.Intn(40))
				lo = at
			}
			hi := min(len(data), lo+r.Intn(3000))
			want := bytes.Index(data[lo:hi], lit.lit)
			if want >= 0 {
				want += lo
			}
			if got := v.index(lit, lo, hi); got != want {
				t.Fatalf("ordered %v, query %d: index in [%d,%d): %d, want %d", ordered, q, lo, hi, got, want)
			}
			want = bytes.LastIndex(data[lo:hi], lit.lit)
			if want >= 0 {
				want += lo
			}
			if got := v.lastIndex(lit, lo, hi); got != want {
				t.Fatalf("ordered %v, query %d: lastIndex in [%d,%d): %d, want %d", ordered, q, lo, hi, got, want)
			}
		}
		if m := v.seen[lit]; m == nil || len(m.at) > maxPlaces {
			t.Fatalf("places kept: %v", m)
		}
	}
}
