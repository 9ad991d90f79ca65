package scanner

import (
	"context"
	"crypto/sha256"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/fsavd"
	"github.com/fsigkd/fsigkd/fsavd/engine"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// counted counts the calls that reach the engine.
type counted struct {
	Scanner
	scans atomic.Int32
}

func (c *counted) Scan(ctx context.Context, obj *Object) (Verdict, error) {
	c.scans.Add(1)
	return c.Scanner.Scan(ctx, obj)
}
func (c *counted) Version() string { return c.Scanner.(Versioner).Version() }
func (c *counted) RefreshVersion(ctx context.Context) error {
	return c.Scanner.(Versioner).RefreshVersion(ctx)
}

// summed is object with the sum the spool would have kept.
func summed(t testing.TB, data []byte) *Object {
	obj := object(t, data)
	sum := sha256.Sum256(data)
	obj.Sum = &sum
	return obj
}

// TestVerdictCacheWithTheBundledEngine: a second scan of the same bytes
// costs no engine call, for clean and infected alike; a suspected verdict,
// a prefix scan and an object without a sum always go to the engine; and
// after a signature reload the cache is emptied, so the object once clean
// is found by the new signature.
func TestVerdictCacheWithTheBundledEngine(t *testing.T) {
	dir := testenv.ShortDir(t)
	sock := filepath.Join(dir, "fsavd-socket-0")
	db, err := engine.Load("")
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(db)
	srv := &fsavd.Server{Engine: eng}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	eps, _ := ParseEndpoints(sock, "")
	inner := &counted{Scanner: NewFsavd(&Pool{Endpoints: eps}, true)}
	cache := NewCache(inner, 100)
	cache.Every = 50 * time.Millisecond

	scan := func(obj *Object) Verdict {
		t.Helper()
		v, err := cache.Scan(ctx(t), obj)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	marked := []byte("text " + enginetest.TestString + " text")
	for _, tc := range []struct {
		name   string
		data   []byte
		status Status
	}{
		{"clean", marked, Clean},
		{"infected", []byte(eicar.String), Infected},
	} {
		before := inner.scans.Load()
		if v := scan(summed(t, tc.data)); v.Status != tc.status || v.Cached {
			t.Fatalf("%s, first scan: %+v", tc.name, v)
		}
		v := scan(summed(t, tc.data))
		if v.Status != tc.status || !v.Cached {
			t.Fatalf("%s, second scan: %+v", tc.name, v)
		}
		if n := inner.scans.Load() - before; n != 1 {
			t.Fatalf("%s: %d engine calls for two scans", tc.name, n)
		}
	}

	rar := eicar.StoredRAR5("a.txt", []byte("secret text"))
	rar[len(rar)-20] ^= 0xff // the data's CRC no longer matches: suspected
	partial := summed(t, []byte("a prefix"))
	partial.Partial = true
	for name, obj := range map[string]*Object{
		"suspected": summed(t, rar), "prefix scan": partial, "no sum": object(t, []byte("no sum")),
	} {
		before := inner.scans.Load()
		scan(obj)
		if v := scan(obj); v.Cached {
			t.Fatalf("%s: cached %+v", name, v)
		}
		if n := inner.scans.Load() - before; n != 2 {
			t.Fatalf("%s: %d engine calls for two scans", name, n)
		}
	}

	// New signatures: the test string is now a detection.
	sigs := t.TempDir()
	if err := os.WriteFile(filepath.Join(sigs, "test.ndb"), []byte(enginetest.NDB()), 0o644); err != nil {
		t.Fatal(err)
	}
	newDB, err := engine.Load(sigs)
	if err != nil {
		t.Fatal(err)
	}
	eng.Swap(newDB)
	time.Sleep(60 * time.Millisecond) // past Every: the version is asked again
	v := scan(summed(t, marked))
	if v.Cached || v.Status != Infected || !strings.Contains(v.Name(), enginetest.TestName) {
		t.Fatalf("after the reload: %+v (version %q)", v, cache.Version())
	}
	if cache.Version() != newDB.Version {
		t.Fatalf("version %q, want %q", cache.Version(), newDB.Version)
	}
}

// TestVerdictCacheBound: the least recently used verdict goes first.
func TestVerdictCacheBound(t *testing.T) {
	sock := enginetest.FsavdSocket(t)
	eps, _ := ParseEndpoints(sock, "")
	inner := &counted{Scanner: NewFsavd(&Pool{Endpoints: eps}, true)}
	cache := NewCache(inner, 3)
	objs := make([]*Object, 5)
	for i := range objs {
		objs[i] = summed(t, []byte(strings.Repeat("x", i+1)))
		if _, err := cache.Scan(ctx(t), objs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if cache.Len() != 3 {
		t.Fatalf("%d verdicts kept, want 3", cache.Len())
	}
	for _, c := range []struct {
		i      int
		cached bool
	}{{2, true}, {3, true}, {4, true}, {0, false}} {
		if v, err := cache.Scan(ctx(t), objs[c.i]); err != nil || v.Cached != c.cached {
			t.Fatalf("object %d: %+v %v, want cached %v", c.i, v, err, c.cached)
		}
	}
}

// TestVerdictCacheSumsLargeObjectsOnARepeat: an object whose sum costs a
// reading (ReadSum) is not summed the first time it is met; the second
// time it is summed, scanned and kept, the third answered from the
// cache; an infected one the same. An object of the same size that starts
// otherwise (another Head), and one of another size, are not summed; a
// sum that cannot be read (the file was cut) leaves the object to the
// engine, every time.
func TestVerdictCacheSumsLargeObjectsOnARepeat(t *testing.T) {
	sock := enginetest.FsavdSocket(t)
	eps, _ := ParseEndpoints(sock, "")
	inner := &counted{Scanner: NewFsavd(&Pool{Endpoints: eps}, true)}
	cache := NewCache(inner, 100)
	var reads atomic.Int32
	large := func(data []byte, ok bool) *Object {
		obj := object(t, data)
		obj.ReadSum = func() ([32]byte, bool) {
			reads.Add(1)
			return sha256.Sum256(data), ok
		}
		head := sha256.Sum256(data[:8])
		obj.Head = &head
		return obj
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		status Status
	}{
		{"clean", []byte(strings.Repeat("large and clean ", 100)), Clean},
		{"infected", []byte(eicar.String + strings.Repeat(" ", 1000)), Infected},
	} {
		for i, want := range []struct {
			reads, scans int32
			cached       bool
		}{{0, 1, false}, {1, 1, false}, {1, 0, true}} {
			r, n := reads.Load(), inner.scans.Load()
			v, err := cache.Scan(ctx(t), large(tc.data, true))
			if err != nil || v.Status != tc.status || v.Cached != want.cached {
				t.Fatalf("%s, download %d: %+v %v", tc.name, i+1, v, err)
			}
			if got := reads.Load() - r; got != want.reads {
				t.Fatalf("%s, download %d: the sum read %d times, want %d", tc.name, i+1, got, want.reads)
			}
			if got := inner.scans.Load() - n; got != want.scans {
				t.Fatalf("%s, download %d: %d engine calls, want %d", tc.name, i+1, got, want.scans)
			}
			// From the first download on, the spool is told to hash
			// the next one as it comes.
			if head := sha256.Sum256(tc.data[:8]); !cache.MetHead(head) {
				t.Fatalf("%s, download %d: its head not met", tc.name, i+1)
			}
		}
	}
	if cache.MetHead(sha256.Sum256([]byte("never scanned"))) {
		t.Fatal("a head never scanned was met")
	}
	r := reads.Load()
	cache.Scan(ctx(t), large([]byte("of a size not met"), true))
	cache.Scan(ctx(t), large([]byte(strings.Repeat("Large and clean ", 100)), true))
	if reads.Load() != r {
		t.Fatal("an object not met was summed")
	}
	cut := []byte(strings.Repeat("cut ", 300))
	n := inner.scans.Load()
	for range 3 {
		if v, err := cache.Scan(ctx(t), large(cut, false)); err != nil || v.Cached {
			t.Fatalf("a sum that cannot be read: %+v %v", v, err)
		}
	}
	if got := inner.scans.Load() - n; got != 3 {
		t.Fatalf("a sum that cannot be read: %d engine calls for three scans", got)
	}
}

// TestVerdictCacheWithClamd: clamd says its version in a session
// (VERSION), and its verdicts are kept.
func TestVerdictCacheWithClamd(t *testing.T) {
	clamd := enginetest.Clamd(t, "")
	eps, _ := ParseEndpoints(clamd.Sock, "")
	inner := &counted{Scanner: NewClamd(&Pool{Endpoints: eps}, false)}
	cache := NewCache(inner, 100)
	for i := 0; i < 3; i++ {
		v, err := cache.Scan(ctx(t), summed(t, []byte(eicar.String)))
		if err != nil || v.Status != Infected || v.Cached != (i > 0) {
			t.Fatalf("scan %d: %+v %v", i, v, err)
		}
	}
	if inner.scans.Load() != 1 {
		t.Fatalf("%d engine calls", inner.scans.Load())
	}
	if v := cache.Version(); !strings.HasPrefix(v, "ClamAV ") {
		t.Fatalf("version %q", v)
	}
}

// TestFsavdAppliesTheRules: the bundled fsavd takes the type and name
// rules and applies them in its pass, naming the member; a verdict says
// so (RulesChecked), and an object they do not refuse is clean.
func TestFsavdAppliesTheRules(t *testing.T) {
	sock := enginetest.FsavdSocket(t)
	eps, _ := ParseEndpoints(sock, "")
	f := NewFsavd(&Pool{Endpoints: eps}, true)
	f.SetRules("exe,lnk", "*.scr")
	for _, c := range []struct {
		name        string
		data        []byte
		rule, at    string
		infectedToo bool
	}{
		{"program in a zip", eicar.Zip(map[string][]byte{"docs/readme.txt": eicar.WindowsProgram(false)}), "block_types=exe", "docs/readme.txt", false},
		{"name in a zip", eicar.Zip(map[string][]byte{"x/screen.SCR": []byte("text")}), "block_names=*.scr", "x/screen.SCR", false},
		{"program itself", eicar.WindowsProgram(false), "block_types=exe", "", false},
		{"text", []byte("plain text"), "", "", false},
	} {
		v, err := f.Scan(ctx(t), object(t, c.data))
		if err != nil || !v.RulesChecked || v.Rule != c.rule || v.RuleAt != c.at {
			t.Errorf("%s: %+v %v", c.name, v, err)
		}
	}
}

// TestRulesTheEngineRefuses: rules an engine will not take (here, a type
// it does not know) leave the connection serving, and the verdicts say
// the rules were not applied, so that the gateway walks the object.
func TestRulesTheEngineRefuses(t *testing.T) {
	sock := enginetest.FsavdSocket(t)
	eps, _ := ParseEndpoints(sock, "")
	f := NewFsavd(&Pool{Endpoints: eps}, true)
	f.SetRules("no-such-type", "")
	v, err := f.Scan(ctx(t), object(t, eicar.WindowsProgram(false)))
	if err != nil || v.RulesChecked || v.Rule != "" {
		t.Fatalf("%+v %v", v, err)
	}
}

// TestVerdictCacheRemembersAsManyHeadsAsVerdicts: the heads of objects
// scanned unsummed (every object past the spool's 64 KiB head, the first
// time) are remembered as many as the cache keeps verdicts, 4096 at
// least, so that a repeat among as much traffic as the cache holds is
// summed and kept.
func TestVerdictCacheRemembersAsManyHeadsAsVerdicts(t *testing.T) {
	head := func(i int) [32]byte { return [32]byte{byte(i), byte(i >> 8), byte(i >> 16), 0x5a} }
	big := NewCache(nil, 10000)
	for i := range 9000 {
		if big.metBefore(head(i)) {
			t.Fatalf("head %d met before it was scanned", i)
		}
	}
	if !big.MetHead(head(0)) {
		t.Fatal("a cache of 10,000 verdicts forgot the first of 9,000 heads")
	}
	small := NewCache(nil, 100)
	for i := range minMet + 1 {
		small.metBefore(head(i))
	}
	if small.MetHead(head(0)) || !small.MetHead(head(minMet)) {
		t.Fatal("a cache of 100 verdicts does not remember the last 4096 heads")
	}
}
