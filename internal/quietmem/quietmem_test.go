package quietmem

import (
	"runtime"
	"testing"
	"time"
)

var sink [][]byte

func forced() uint32 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.NumForcedGC
}

// allocate allocates about n bytes, each piece dropped at once.
func allocate(n int) {
	for i := 0; i < n>>16; i++ {
		sink = append(sink[:0], make([]byte, 64<<10))
	}
}

// TestReleasesOncePerQuietSpell: work, then quiet, brings one release
// (two forced collections); staying quiet brings no more; working
// without pause brings none; quiet after work again brings one again.
func TestReleasesOncePerQuietSpell(t *testing.T) {
	base := forced()
	stop := make(chan struct{})
	defer close(stop)
	go Watch(20*time.Millisecond, stop)
	time.Sleep(50 * time.Millisecond)
	if n := forced() - base; n != 0 {
		t.Fatalf("%d forced collections before any work", n)
	}
	allocate(16 << 20)
	waitFor := func(want uint32) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); forced()-base < want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d forced collections, want %d", forced()-base, want)
			}
		}
	}
	waitFor(2)
	time.Sleep(200 * time.Millisecond)
	if n := forced() - base; n != 2 {
		t.Fatalf("%d forced collections while quiet after the release, want 2", n)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
		allocate(1 << 20) // about 1 MiB a millisecond or two: never quiet
	}
	if n := forced() - base; n != 2 {
		t.Fatalf("%d forced collections while working, want 2", n)
	}
	waitFor(4)
}
