package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// GoStats is a Go process's runtime as the standard go_* metrics say it
// (the names of client_golang's Go collector), taken in that process:
// the master reads its own when scraped; a worker and the bundled fsavd
// write theirs every second to <dir>/<pid>.go (WriteGoStats), which the
// master reads. The workers and the engine hold most of the gateway's
// goroutines and heap, not the master.
type GoStats struct {
	Version      string  `json:"version"`
	Goroutines   int     `json:"goroutines"`
	Threads      int     `json:"threads"`
	Alloc        uint64  `json:"alloc"`
	TotalAlloc   uint64  `json:"total_alloc"`
	Sys          uint64  `json:"sys"`
	Mallocs      uint64  `json:"mallocs"`
	Frees        uint64  `json:"frees"`
	HeapAlloc    uint64  `json:"heap_alloc"`
	HeapSys      uint64  `json:"heap_sys"`
	HeapIdle     uint64  `json:"heap_idle"`
	HeapInuse    uint64  `json:"heap_inuse"`
	HeapReleased uint64  `json:"heap_released"`
	HeapObjects  uint64  `json:"heap_objects"`
	StackInuse   uint64  `json:"stack_inuse"`
	NextGC       uint64  `json:"next_gc"`
	LastGC       float64 `json:"last_gc"` // Unix seconds; 0: none yet
	NumGC        uint32  `json:"num_gc"`
	PauseTotal   float64 `json:"pause_total"` // seconds
}

var threadProfile = pprof.Lookup("threadcreate")

// ReadGoStats is this process's runtime now (a stop of the world of a
// few microseconds: taken once a second, or at a scrape).
func ReadGoStats() GoStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s := GoStats{Version: runtime.Version(), Goroutines: runtime.NumGoroutine(), Threads: threadProfile.Count(),
		Alloc: m.Alloc, TotalAlloc: m.TotalAlloc, Sys: m.Sys, Mallocs: m.Mallocs, Frees: m.Frees,
		HeapAlloc: m.HeapAlloc, HeapSys: m.HeapSys, HeapIdle: m.HeapIdle, HeapInuse: m.HeapInuse,
		HeapReleased: m.HeapReleased, HeapObjects: m.HeapObjects, StackInuse: m.StackInuse, NextGC: m.NextGC,
		NumGC: m.NumGC, PauseTotal: float64(m.PauseTotalNs) / 1e9}
	if m.LastGC > 0 {
		s.LastGC = float64(m.LastGC) / 1e9
	}
	return s
}

// goStatsPath is where process pid writes its GoStats under dir.
func goStatsPath(dir string, pid int) string {
	return filepath.Join(dir, strconv.Itoa(pid)+".go")
}

// WriteGoStats writes this process's GoStats under dir now and every
// second until stop is closed, and removes the file then.
func WriteGoStats(dir string, stop <-chan struct{}) {
	path := goStatsPath(dir, os.Getpid())
	defer os.Remove(path)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if b, err := json.Marshal(ReadGoStats()); err == nil {
			tmp := path + ".tmp"
			if os.WriteFile(tmp, b, 0o640) == nil {
				os.Rename(tmp, path)
			}
		}
		select {
		case <-t.C:
		case <-stop:
			return
		}
	}
}

// GoCollector exports the go_* metrics of every process procs names,
// labelled as ProcessCollector labels them: the master's read at the
// scrape, the others' from the files they write under dir (a process
// that wrote none yet, or ended, is left out).
func GoCollector(dir string, procs func() []Proc) prometheus.Collector {
	return goCollector{dir, procs}
}

type goCollector struct {
	dir   string
	procs func() []Proc
}

func goDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, procLabels, nil)
}

var (
	goInfo       = prometheus.NewDesc("go_info", "Information about the Go environment.", append([]string{"version"}, procLabels...), nil)
	goRoutines   = goDesc("go_goroutines", "Number of goroutines that currently exist.")
	goThreads    = goDesc("go_threads", "Number of OS threads created.")
	goGC         = goDesc("go_gc_duration_seconds", "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.")
	goNextGC     = goDesc("go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.")
	goLastGC     = goDesc("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.")
	goAlloc      = goDesc("go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.")
	goAllocTotal = goDesc("go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already.")
	goSys        = goDesc("go_memstats_sys_bytes", "Number of bytes obtained from system.")
	goMallocs    = goDesc("go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed.")
	goFrees      = goDesc("go_memstats_frees_total", "Total number of heap objects frees.")
	goHeapAlloc  = goDesc("go_memstats_heap_alloc_bytes", "Heap bytes allocated and currently in use.")
	goHeapSys    = goDesc("go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system.")
	goHeapIdle   = goDesc("go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used.")
	goHeapInuse  = goDesc("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.")
	goHeapRel    = goDesc("go_memstats_heap_released_bytes", "Number of heap bytes released to OS.")
	goHeapObjs   = goDesc("go_memstats_heap_objects", "Number of currently allocated objects.")
	goStack      = goDesc("go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments.")
)

func (goCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{goInfo, goRoutines, goThreads, goGC, goNextGC, goLastGC, goAlloc, goAllocTotal, goSys,
		goMallocs, goFrees, goHeapAlloc, goHeapSys, goHeapIdle, goHeapInuse, goHeapRel, goHeapObjs, goStack} {
		ch <- d
	}
}

func (c goCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.procs() {
		var s GoStats
		if p.PID == os.Getpid() {
			s = ReadGoStats()
		} else {
			b, err := os.ReadFile(goStatsPath(c.dir, p.PID))
			if err != nil || json.Unmarshal(b, &s) != nil {
				continue
			}
		}
		l := []string{p.Process, p.Service, strconv.Itoa(p.PID)}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
		}
		ch <- prometheus.MustNewConstMetric(goInfo, prometheus.GaugeValue, 1, append([]string{s.Version}, l...)...)
		gauge(goRoutines, float64(s.Goroutines))
		gauge(goThreads, float64(s.Threads))
		ch <- prometheus.MustNewConstSummary(goGC, uint64(s.NumGC), s.PauseTotal, nil, l...)
		gauge(goNextGC, float64(s.NextGC))
		gauge(goLastGC, s.LastGC)
		gauge(goAlloc, float64(s.Alloc))
		counter(goAllocTotal, float64(s.TotalAlloc))
		gauge(goSys, float64(s.Sys))
		counter(goMallocs, float64(s.Mallocs))
		counter(goFrees, float64(s.Frees))
		gauge(goHeapAlloc, float64(s.HeapAlloc))
		gauge(goHeapSys, float64(s.HeapSys))
		gauge(goHeapIdle, float64(s.HeapIdle))
		gauge(goHeapInuse, float64(s.HeapInuse))
		gauge(goHeapRel, float64(s.HeapReleased))
		gauge(goHeapObjs, float64(s.HeapObjects))
		gauge(goStack, float64(s.StackInuse))
	}
}
