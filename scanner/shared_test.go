package scanner

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// countingEngine stands in for the engine (Redis is the real part under
// test here): it counts its scans and says a version.
type countingEngine struct {
	version string
	scans   atomic.Int32
}

func (e *countingEngine) Scan(ctx context.Context, obj *Object) (Verdict, error) {
	e.scans.Add(1)
	if obj.Size == 666 {
		return Verdict{Status: Infected, Names: []string{"Test.Evil"}, Engine: "counting", RulesChecked: true}, nil
	}
	return Verdict{Status: Clean, Engine: "counting"}, nil
}
func (e *countingEngine) Version() string                      { return e.version }
func (e *countingEngine) RefreshVersion(context.Context) error { return nil }

// redisServer runs redis-server on a free port of loopback.
func redisServer(t *testing.T) (*testenv.Proc, string) {
	t.Helper()
	bin := testenv.Need(t, "redis-server", "redis-server")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	_, port, _ := cutPort(addr)
	p := &testenv.Proc{Args: []string{bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no"},
		LogFile: filepath.Join(t.TempDir(), "redis.log"), Ready: testenv.Dialable("tcp", addr)}
	p.Start(t)
	return p, addr
}

func cutPort(addr string) (string, string, bool) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], true
		}
	}
	return addr, "", false
}

// TestSharedVerdictsAcrossGateways: two gateways' caches behind one real
// Redis: what one scanned, the other answers without its engine (an
// infected verdict with its name); new signatures start afresh; the
// rules are not taken from the store; a store that is gone costs a
// bounded wait and one log line, and the object is scanned.
func TestSharedVerdictsAcrossGateways(t *testing.T) {
	redis, addr := redisServer(t)
	core, logs := observer.New(zapcore.InfoLevel)
	newGateway := func(e *countingEngine) *Cache {
		shared, err := NewRedisVerdicts("redis://"+addr+"/0", zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { shared.Close() })
		c := NewCache(e, 100)
		c.Shared = shared
		return c
	}
	ea, eb := &countingEngine{version: "sigs-1"}, &countingEngine{version: "sigs-1"}
	a, b := newGateway(ea), newGateway(eb)
	obj := func(n int64, sum byte) *Object { return &Object{Size: n, Sum: &[32]byte{sum}} }
	ctx := context.Background()
	for _, o := range []*Object{obj(100, 1), obj(666, 2)} {
		if _, err := a.Scan(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the writes go in the background
	v, err := b.Scan(ctx, obj(666, 2))
	if err != nil || v.Status != Infected || len(v.Names) != 1 || v.Names[0] != "Test.Evil" || !v.Cached || v.RulesChecked {
		t.Errorf("the other gateway: %+v %v", v, err)
	}
	if v, _ := b.Scan(ctx, obj(100, 1)); v.Status != Clean || !v.Cached {
		t.Errorf("clean, shared: %+v", v)
	}
	if n := eb.scans.Load(); n != 0 {
		t.Errorf("the other gateway's engine scanned %d times", n)
	}
	// An object whose sum is read back (past the spool's 64 KiB head),
	// never met here: summed for the store up to 4 MiB, not past.
	reads := 0
	readBack := func(n int64, sum byte) *Object {
		head := [32]byte{sum, 0xff}
		return &Object{Size: n, Head: &head, ReadSum: func() ([32]byte, bool) { reads++; return [32]byte{sum}, true }}
	}
	a.Scan(ctx, obj(300<<10, 3))
	time.Sleep(200 * time.Millisecond)
	if v, _ := b.Scan(ctx, readBack(300<<10, 3)); !v.Cached || reads != 1 {
		t.Errorf("300 KiB, first met here: %+v, its sum read %d times", v, reads)
	}
	if v, _ := b.Scan(ctx, readBack(5<<20, 4)); v.Cached || reads != 1 {
		t.Errorf("5 MiB, first met here: %+v, its sum read %d times", v, reads)
	}
	eb.scans.Store(0)
	ec := &countingEngine{version: "sigs-2"}
	if v, _ := newGateway(ec).Scan(ctx, obj(666, 2)); v.Cached || ec.scans.Load() != 1 {
		t.Errorf("new signatures: %+v, %d scans", v, ec.scans.Load())
	}
	time.Sleep(200 * time.Millisecond) // its write done before the store goes
	redis.Stop()
	ed := &countingEngine{version: "sigs-1"}
	d := newGateway(ed)
	start := time.Now()
	for i := range 3 {
		if v, err := d.Scan(ctx, obj(100, byte(10+i))); err != nil || v.Cached {
			t.Fatalf("with the store gone: %+v %v", v, err)
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("three lookups with the store gone took %v", took)
	}
	if ed.scans.Load() != 3 || logs.FilterMessageSnippet("does not answer").Len() != 1 {
		t.Errorf("store gone: %d scans, %d log lines", ed.scans.Load(), logs.FilterMessageSnippet("does not answer").Len())
	}
}
