package engine

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
)

// fewKeys is a set of signatures with four anchor prefixes, so that the
// pass looks for each with bytes.Index: prefixes that overlap one
// another, two signatures on one prefix, a signature bound to an offset
// and one to the end.
func fewKeys(t testing.TB) *DB {
	t.Helper()
	db := loadSigs(t, map[string]string{"few.ndb": strings.Join([]string{
		"Few.One:0:*:" + hexOf("ABCDxone"),
		"Few.Two:0:*:" + hexOf("BCDExtwo"),
		"Few.Three:0:*:" + hexOf("ABCDthree"),
		"Few.Gap:0:*:" + hexOf("CDEF") + "*" + hexOf("tail"),
		"Few.At:0:16:" + hexOf("CDEFat"),
		"Few.End:0:EOF-9:" + hexOf("ABCDfinal"),
	}, "\n") + "\n"})
	if len(db.keys) == 0 {
		t.Fatalf("%d anchor prefixes: the set is not looked for key by key", len(db.table))
	}
	return db
}

// hashed is db with its pass hashing every position, as a large set is
// scanned: the reference the key-by-key pass must agree with.
func hashed(db *DB) *DB {
	h := *db
	h.keys = nil
	return &h
}

// scanned is what matchBody reports, in its order; stop: the first only.
func scanned(db *DB, data []byte, stop bool) string {
	var got []string
	db.matchBody(data, func(name string) bool { got = append(got, name); return stop })
	return strings.Join(got, ",")
}

// TestFewKeysReportInOrder: with a few anchor prefixes, detections come
// in the order of their place in the object, as from the hashed pass,
// whether or not the pass is shared out, and the first stops the scan.
func TestFewKeysReportInOrder(t *testing.T) {
	db := fewKeys(t)
	for _, data := range [][]byte{make([]byte, 4096), shared(t)} {
		q := len(data) / 4
		copy(data[3*q:], "ABCDthree")
		copy(data[2*q:], "BCDExtwo")
		copy(data[q:], "ABCDxone")
		copy(data[q+100:], "ABCDxone") // again: reported once
		copy(data[16:], "CDEFat")
		copy(data[len(data)-9:], "ABCDfinal")
		want := "Few.At,Few.One,Few.Two,Few.Three,Few.End"
		if got := scanned(db, data, false); got != want {
			t.Fatalf("%d bytes: %q, want %q", len(data), got, want)
		}
		if got := scanned(hashed(db), data, false); got != want {
			t.Fatalf("%d bytes, hashed: %q, want %q", len(data), got, want)
		}
		if got := scanned(db, data, true); got != "Few.At" {
			t.Fatalf("%d bytes, first only: %q", len(data), got)
		}
	}
}

// TestFewKeysDecoys: an object crowded with an anchor's prefix (every
// place a start that fails) is still read to its end, and a signature
// behind the decoys is found.
func TestFewKeysDecoys(t *testing.T) {
	db := fewKeys(t)
	for _, decoy := range []string{"ABCD", "ABC", "A", "CDEFCDEF"} {
		data := bytes.Repeat([]byte(decoy), (1<<20)/len(decoy))
		data = append(data, "..BCDExtwo.."...)
		if got := scanned(db, data, false); got != "Few.Two" {
			t.Fatalf("behind %q decoys: %q", decoy, got)
		}
	}
}

// FuzzFewKeys: the key-by-key pass and the hashed pass agree on every
// object, in what they find and its order.
func FuzzFewKeys(f *testing.F) {
	f.Add([]byte("ABCDxone BCDExtwo ABCDthree CDEF..tail"))
	f.Add([]byte("0123456789abcdefCDEFat ABCDABCDxoneBCDEBCDExtwoABCDfinal"))
	f.Add([]byte("ABCDEFABCDEFtail"))
	db := fewKeys(f)
	ref := hashed(db)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, stop := range []bool{false, true} {
			if got, want := scanned(db, data, stop), scanned(ref, data, stop); got != want {
				t.Fatalf("%q (first only: %v): key by key %q, hashed %q", data, stop, got, want)
			}
		}
	})
}

// BenchmarkScanFewKeys is the key-by-key pass over 16 MiB: random data,
// text, and data made of a prefix's first bytes (every place a start
// for bytes.Index to try).
func BenchmarkScanFewKeys(b *testing.B) {
	db := fewKeys(b)
	random := make([]byte, 16<<20)
	rand.New(rand.NewSource(3)).Read(random)
	text := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog. ABC BCD CDE "), (16<<20)/57)
	for _, c := range []struct {
		name string
		data []byte
	}{{"random", random}, {"text", text}, {"decoys", bytes.Repeat([]byte("ABC"), (16<<20)/3)}} {
		for _, mode := range []struct {
			name string
			db   *DB
		}{{"keys", db}, {"hashed", hashed(db)}} {
			b.Run(c.name+"/"+mode.name, func(b *testing.B) {
				b.SetBytes(int64(len(c.data)))
				for b.Loop() {
					mode.db.matchBody(c.data, func(string) bool { return false })
				}
			})
		}
	}
}
