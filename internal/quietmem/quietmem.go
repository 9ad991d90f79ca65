// Package quietmem gives a long-running process's free memory back to
// the system when the process falls quiet after work.
//
// The Go runtime frees memory only as its collector runs, and the
// collector runs only as the program allocates. A proxy that has just
// served thousands of clients at once and now holds them kept alive
// allocates nothing while they wait: no collection comes (the runtime
// forces one only every two minutes), so the stacks their requests grew
// and left (8 KiB and more each), and the buffers they used, stay
// resident. Measured on the HTTP worker with 3,000 kept-alive clients,
// that was 16 KiB of resident memory per idle client where 7 KiB is in
// use (docs/benchmarks.md).
//
// Watch looks every period at how much the process allocated: when it
// allocated next to nothing in the last period, after having worked
// since the last release, it collects twice (the first collection frees
// the stacks and buffers nobody holds, the second the spans they leave
// empty) and returns the free pages to the system. A busy process is
// never interrupted; a quiet one pays two collections once per quiet
// spell.
package quietmem

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Thresholds, in bytes allocated: below quiet in one period, the process
// is quiet; a release is worth it only after worked since the last one.
const (
	quiet  = 128 << 10
	worked = 4 << 20
)

// Watch looks every period until stop is closed.
func Watch(period time.Duration, stop <-chan struct{}) {
	var w watcher
	w.last = w.allocated()
	w.released = w.last
	t := time.NewTicker(period)
	defer t.Stop()
	for stopped := false; !stopped; {
		select {
		case <-t.C:
			w.look()
		case <-stop:
			stopped = true
		}
	}
}

// watcher is what Watch knows between two looks: the bytes allocated in
// all at the last look and at the last release.
type watcher struct {
	sample         [1]metrics.Sample
	last, released uint64
}

func (w *watcher) allocated() uint64 {
	w.sample[0].Name = "/gc/heap/allocs:bytes"
	metrics.Read(w.sample[:])
	return w.sample[0].Value.Uint64()
}

// look releases when the process allocated next to nothing since the
// last look, after having worked since the last release.
func (w *watcher) look() {
	now := w.allocated()
	if now-w.last < quiet && now-w.released >= worked {
		release()
		now = w.allocated()
		w.released = now
	}
	w.last = now
}

// release collects twice and returns what is free to the system.
func release() {
	debug.FreeOSMemory()
	debug.FreeOSMemory()
}
