package engine

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"runtime"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/testenv"
	"github.com/fsigkd/fsigkd/unpack"
)

// shared is random data large enough that a scan shares its positions
// out among four goroutines (whatever the machine's cores).
func shared(t testing.TB) []byte {
	t.Helper()
	if tb, ok := t.(*testing.T); ok {
		prev := runtime.GOMAXPROCS(4)
		tb.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	}
	data := make([]byte, 4*parallelFrom)
	rand.New(rand.NewSource(5)).Read(data)
	return data
}

// TestSignatureAcrossTheShares: a signature that straddles the border of
// two shares is found, and so is one whose parts lie in different shares
// (a wildcard between them): verification reads the whole object.
func TestSignatureAcrossTheShares(t *testing.T) {
	data := shared(t)
	border := len(data) / 4
	copy(data[border-20:], eicar.String)
	if got := names(builtin(t).ScanBytes(data, all)); got != "Eicar-Test-Signature@" {
		t.Fatalf("EICAR across a border: %q", got)
	}
	db := loadSigs(t, map[string]string{"span.ndb": "Span.Test:0:*:" +
		hexOf("first-part") + "*" + hexOf("second-and-longer-part") + "\n"})
	data = shared(t)
	copy(data[2*border-100:], "first-part")
	copy(data[2*border+100:], "second-and-longer-part")
	if got := names(New(db).ScanBytes(data, all)); got != "Span.Test@" {
		t.Fatalf("parts in two shares: %q", got)
	}
}

// TestSharedScanReportsInOrder: detections come in the order of their
// place in the object, as from one pass, and StopOnFirst stops at the
// first of them.
func TestSharedScanReportsInOrder(t *testing.T) {
	sigs := ""
	for _, n := range []string{"Alpha", "Bravo", "Charlie"} {
		sigs += "Order." + n + ":0:*:" + hexOf("marker-"+n) + "\n"
	}
	db := loadSigs(t, map[string]string{"order.ndb": sigs})
	data := shared(t)
	q := len(data) / 4
	copy(data[3*q+5:], "marker-Alpha")
	copy(data[q+5:], "marker-Charlie")
	copy(data[2*q+5:], "marker-Bravo")
	copy(data[3*q+50:], "marker-Charlie") // a second time: reported once
	if got := names(New(db).ScanBytes(data, all)); got != "Order.Charlie@,Order.Bravo@,Order.Alpha@" {
		t.Fatalf("order: %q", got)
	}
	if got := names(New(db).ScanBytes(data, Options{StopOnFirst: true})); got != "Order.Charlie@" {
		t.Fatalf("StopOnFirst: %q", got)
	}
}

// BenchmarkScanBuiltin is the engine's pass with the built-in signatures
// alone (as shipped) over 16 MiB of random data, shared out among the
// cores.
func BenchmarkScanBuiltin(b *testing.B) {
	db, err := Load("")
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 16<<20)
	rand.New(rand.NewSource(3)).Read(data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		db.matchBody(data, func(string) bool { return false })
	}
}

// TestSharedScanOfAShortenedFile: the goroutines of a shared pass that
// touch the lost pages of a file emptied meanwhile fail the scan with
// unpack.ErrShortened, as the pass itself would; the process goes on.
func TestSharedScanOfAShortenedFile(t *testing.T) {
	shared(t) // four goroutines
	// With archives and mail opened, the object's own bytes are matched
	// on a goroutine of their own meanwhile (unpack's matchAside).
	for _, opt := range []Options{{}, all} {
		f := testenv.OpenFile(t, "spooled", make([]byte, 4*parallelFrom))
		_, err := builtin(t).ScanOpen(f, opt, func(data []byte, where string) bool {
			os.Truncate(f.Name(), 0) // after the mapping, before the pass
			return false
		})
		if !errors.Is(err, unpack.ErrShortened) {
			t.Fatalf("%+v: err %v, want unpack.ErrShortened", opt, err)
		}
	}
}

// TestLargeObjectMembersThenOwnBytes: a large object's own bytes are
// matched while its members are looked for, and still reported after
// them, as for a small one; with StopOnFirst, the member alone.
func TestLargeObjectMembersThenOwnBytes(t *testing.T) {
	db := loadSigs(t, map[string]string{"own.ndb": "Own.Marker:0:*:" + hexOf("own-bytes-marker") + "\n"})
	e := New(db)
	for _, size := range []int{64 << 10, 2 * parallelFrom} {
		text := bytes.Repeat([]byte("plain text line\n"), size/16)
		text = append(text, eicar.UUEncode("e.com", []byte(eicar.String))...)
		copy(text[size/2:], "own-bytes-marker")
		if got := names(e.ScanBytes(text, all)); got != "Eicar-Test-Signature@e.com,Own.Marker@" {
			t.Fatalf("%d bytes: %q", len(text), got)
		}
		if got := names(e.ScanBytes(text, Options{Archives: true, MIME: true, StopOnFirst: true})); got != "Eicar-Test-Signature@e.com" {
			t.Fatalf("%d bytes, first only: %q", len(text), got)
		}
	}
}

// BenchmarkScanLarge is a whole scan (containers and mail looked for,
// the built-in signatures) of 64 MiB of random data: what fsavd does for
// a large download.
func BenchmarkScanLarge(b *testing.B) {
	e := builtin(b)
	data := make([]byte, 64<<20)
	rand.New(rand.NewSource(9)).Read(data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		e.ScanBytes(data, all)
	}
}
