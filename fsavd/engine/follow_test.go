package engine

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/screnc"
)

var followOpt = Options{Archives: true, MIME: true}

// followed writes data to a file in pieces, has a Follow search it after
// each cut, and gives what ScanFollowed found, with the Follow; then what
// ScanOpen finds in the same file, the reference.
func followed(t testing.TB, e *Engine, data []byte, cuts []int) (got, want string, fl *Follow) {
	t.Helper()
	f := objectFile(t)
	fl = e.Follow()
	prev := 0
	for _, c := range cuts {
		if c < prev || c > len(data) {
			continue
		}
		f.WriteAt(data[prev:c], int64(prev))
		prev = c
		if err := fl.Grow(f, int64(c)); err != nil {
			t.Fatalf("grow to %d: %v", c, err)
		}
	}
	f.WriteAt(data[prev:], int64(prev))
	found, err := e.ScanFollowed(f, fl, followOpt, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := e.ScanOpen(f, followOpt, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(found), fmt.Sprint(ref), fl
}

// TestFollowFindsAcrossBorders: a followed object is judged as one
// scanned at once when what a signature needs lies across the places the
// search stopped at: an anchor cut in two, a gap's two parts in different
// pieces, a signature bound to the end, a uuencoded block whose "begin"
// is cut, an encoded script's mark cut, a list of numbers cut, a zip
// (opened at the start) and one in the middle, its signature cut,
// data: addresses cut. The search did
// go ahead: its places, the "begin" and the addresses' pairs are known
// before the scan.
func TestFollowFindsAcrossBorders(t *testing.T) {
	e := New(fewKeys(t))
	pad := func(n int) []byte { return bytes.Repeat([]byte{'.'}, n) }
	uu := eicar.UUEncode("e.com", []byte(eicar.String))
	smuggled := base64.StdEncoding.EncodeToString([]byte(eicar.String))
	pct := url.PathEscape(strings.Replace(eicar.String, "EICAR", "OTHER", 1))
	for _, c := range []struct {
		name   string
		data   []byte
		cuts   []int
		want   string // a name the scan must find
		anchor bool   // a place found ahead
		begin  bool   // a "begin" found ahead
	}{
		{"anchor cut", append(append(pad(5000), "ABCDxone"...), pad(5000)...), []int{5002, 5006}, "Few.One", true, false},
		{"gap across pieces", append(append(append(pad(9000), "CDEF"...), pad(20000)...), "tail..."...), []int{9002, 15000, 29003}, "Few.Gap", true, false},
		{"bound to the end", append(pad(70000), "ABCDfinal"...), []int{4096, 70004}, "Few.End", true, false},
		{"begin cut", append(append(pad(3000), "\n"+uu...), pad(100)...), []int{3003, 3004, 3100}, "Eicar", false, true},
		// A file as a script's list of numbers, cut: its places looked
		// at ahead, the rest by the scan.
		{"numbers cut", append(append(pad(3000), "<script>var b = new Uint8Array(["+numbers(longFile)+"]);</script>"...), pad(50)...),
			[]int{3100, 3500, 3501, 4200}, "Eicar", false, false},
		// An encoded script whose mark is cut: found ahead.
		{"encoded script cut", append(append(pad(3000), screnc.Encode([]byte("WScript.Echo \""+eicar.String+"\""))...), pad(100)...),
			[]int{3001, 3002, 3100}, "Eicar", false, false},
		{"zip at the start", eicar.Zip(map[string][]byte{"e.com": []byte(eicar.String)}), []int{10, 40}, "Eicar", false, false},
		// A gzip member behind other data, its signature cut: its place
		// found ahead, the member opened.
		{"gzip behind data", append(append(pad(5000), gzipped(longFile)...), pad(100)...), []int{5001, 5200}, "Eicar", false, false},
		// A zip in the middle, its local header's signature cut: its place
		// found ahead, the zip opened where it lies.
		{"zip in the middle", append(append(pad(5000), eicar.Zip(map[string][]byte{"e.com": []byte(eicar.String)})...), pad(90000)...),
			[]int{5002, 5300, 40000}, "Eicar", false, false},
		// A data: address (its scheme's pair, a reference for its colon)
		// cut, and one whole before the cut: found ahead, or searched again.
		{"data: address cut", append(append(pad(4000), `<a href="data:;base64,`+smuggled+`">x</a> <img src='dat&#97;&colon;,`+pct+`'>`...), pad(100)...),
			[]int{4003, 4010, 4100, 4190}, "Eicar", false, false},
		// A script's base64 string, joined pieces, cut: its places looked
		// at ahead, the rest by the scan.
		{"base64 string cut", append(append(pad(3000), "<script>var s = '"+strings.Join(pieces64(longFile), "' +\n '")+"';</script>"...), pad(50)...),
			[]int{3100, 3500, 3501, 3900}, "Eicar", false, false},
	} {
		got, want, fl := followed(t, e, c.data, c.cuts)
		if got != want {
			t.Fatalf("%s: followed %s, at once %s", c.name, got, want)
		}
		if !strings.Contains(got, c.want) {
			t.Fatalf("%s: %s, want %s", c.name, got, c.want)
		}
		if strings.HasPrefix(c.name, "data:") && len(fl.ahead.URIs) < 2 {
			t.Fatalf("%s: the pairs found ahead: %v", c.name, fl.ahead.URIs)
		}
		if c.name == "gzip behind data" && (len(fl.ahead.Behind) == 0 || fl.ahead.Behind[0] != 5000) {
			t.Fatalf("%s: the places found ahead: %v", c.name, fl.ahead.Behind)
		}
		if c.name == "zip in the middle" && (len(fl.ahead.Behind) == 0 || fl.ahead.Behind[0] != 5000) {
			t.Fatalf("%s: the zip's places found ahead: %v", c.name, fl.ahead.Behind)
		}
		if strings.HasPrefix(c.name, "encoded") && fl.ahead.Screnc != 3000 {
			t.Fatalf("%s: the mark found ahead at %d", c.name, fl.ahead.Screnc)
		}
		if (strings.HasPrefix(c.name, "base64") || strings.HasPrefix(c.name, "numbers")) && len(fl.ahead.B64) == 0 {
			t.Fatalf("%s: no place of the string looked at ahead", c.name)
		}
		if fl.void || c.anchor != (len(fl.anchors) > 0) || c.begin != (fl.ahead.Begin >= 0) {
			t.Fatalf("%s: searched ahead: void %v, anchors %v, begin %d", c.name, fl.void, fl.anchors, fl.ahead.Begin)
		}
	}
}

// gzipped is b in a gzip member.
func gzipped(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// longFile is a file of a few hundred bytes holding EICAR, and
// pieces64 its base64 in lines of 76.
var longFile = []byte("MZ " + eicar.String + strings.Repeat(" and its data", 40))

// numbers writes b as a list of decimal numbers.
func numbers(b []byte) string {
	s := make([]string, len(b))
	for i, c := range b {
		s[i] = strconv.Itoa(int(c))
	}
	return strings.Join(s, ",")
}

func pieces64(b []byte) (p []string) {
	s := base64.StdEncoding.EncodeToString(b)
	for i := 0; i < len(s); i += 76 {
		p = append(p, s[i:min(i+76, len(s))])
	}
	return p
}

// TestFollowCrowded: an object crowded with an anchor's places past what
// a Follow keeps leaves the search to the scan, which finds what follows
// them.
func TestFollowCrowded(t *testing.T) {
	e := New(fewKeys(t))
	data := append(bytes.Repeat([]byte("ABCD"), maxFollowAnchors+10), "..BCDExtwo.."...)
	got, want, fl := followed(t, e, data, []int{len(data) / 3, len(data) - 20})
	if !fl.void || got != want || !strings.Contains(got, "Few.Two") {
		t.Fatalf("void %v: followed %s, at once %s", fl.void, got, want)
	}
}

// TestFollowAcrossAReload: signatures loaded while an object is followed
// are the ones it is judged by.
func TestFollowAcrossAReload(t *testing.T) {
	e := New(fewKeys(t))
	f, fl := grown(t, e, append(bytes.Repeat([]byte{'.'}, 9000), "NEWSIGNATURE"...))
	e.Swap(loadSigs(t, map[string]string{"new.ndb": "New.One:0:*:" + hexOf("NEWSIGNATURE") + "\n"}))
	found, err := e.ScanFollowed(f, fl, followOpt, nil)
	if err != nil || !strings.Contains(fmt.Sprint(found), "New.One") {
		t.Fatalf("after the reload: %v %v", found, err)
	}
}

// TestFollowThenCut: a followed file shortened before its scan (another
// program) is scanned as it is, not by what was searched of it.
func TestFollowThenCut(t *testing.T) {
	e := New(fewKeys(t))
	f, fl := grown(t, e, append(append(bytes.Repeat([]byte{'.'}, 9000), "ABCDxone"...), bytes.Repeat([]byte{'.'}, 9000)...))
	f.Truncate(100)
	found, err := e.ScanFollowed(f, fl, followOpt, nil)
	if err != nil || len(found) != 0 {
		t.Fatalf("a cut file: %v %v", found, err)
	}
}

// FuzzFollow: whatever the object and wherever the search stopped, a
// followed object is judged as one scanned at once.
func FuzzFollow(f *testing.F) {
	f.Add([]byte("..ABCDxone..CDEF....tail..ABCDfinal"), int64(1))
	f.Add([]byte("begin 644 e.com\n"+eicar.UUEncode("e.com", []byte(eicar.String))), int64(2))
	f.Add(eicar.Zip(map[string][]byte{"e.com": []byte(eicar.String)}), int64(3))
	f.Add(screnc.Encode([]byte(eicar.String)), int64(4))
	e := New(fewKeys(f))
	f.Fuzz(func(t *testing.T, data []byte, seed int64) {
		// The object behind some filler, so that pages and cuts fall
		// everywhere in it; the cuts at random.
		rng := rand.New(rand.NewSource(seed))
		data = append(bytes.Repeat([]byte{' '}, rng.Intn(9000)), data...)
		var cuts []int
		for c := 0; c < len(data); c += 1 + rng.Intn(5000) {
			cuts = append(cuts, c)
		}
		if got, want, _ := followed(t, e, data, cuts); got != want {
			t.Fatalf("followed %s, at once %s", got, want)
		}
	})
}

// BenchmarkFollowGrow is what following a 100 MiB download costs the
// engine with the shipped signatures, told of it every 4 MiB: reading the
// new stretches and searching them.
func BenchmarkFollowGrow(b *testing.B) {
	db, err := Load("")
	if err != nil {
		b.Fatal(err)
	}
	e := New(db)
	data := make([]byte, 100<<20)
	rand.New(rand.NewSource(1)).Read(data)
	f, _ := grown(b, e, data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		fl := e.Follow()
		for n := 4 << 20; n <= len(data); n += 4 << 20 {
			fl.Grow(f, int64(n))
		}
	}
}

// objectFile is a new, empty file, closed at the test's end.
func objectFile(t testing.TB) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "object"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// grown is a file holding data, which a Follow of e searched whole.
func grown(t testing.TB, e *Engine, data []byte) (*os.File, *Follow) {
	t.Helper()
	f := objectFile(t)
	fl := e.Follow()
	f.Write(data)
	fl.Grow(f, int64(len(data)))
	return f, fl
}
