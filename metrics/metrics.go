// Package metrics counts what a worker does (connections, objects,
// verdicts, actions, scan and request times, engine endpoint state,
// documented messages) and makes one view of it across the worker
// processes for the master's /metrics.
//
// A worker keeps its counts in memory (Record and the functions beside it
// are cheap and safe from any goroutine) and writes them, every second and
// as it ends, to <dir>/<service>.<pid>.json. The master reads the files
// of the running workers when scraped; the file of a worker that has ended
// is folded into the totals of its service and removed. So a counter
// survives its worker's restart (the totals only grow, as Prometheus
// counters must), up to the last second of a worker that was killed; the
// totals start again from zero when the master starts (process start time
// tells a scraper so). Gauges (connections now, slots, engine endpoints,
// the notice queue) are the running workers' alone.
package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Buckets are the upper bounds of the time histograms, in seconds.
var Buckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// Sample is one counter or gauge value with its labels.
type Sample struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// Histogram is a time distribution: counts per bucket of Buckets (not
// cumulative), the count and the sum.
type Histogram struct {
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels,omitempty"`
	Buckets []uint64          `json:"buckets"`
	Count   uint64            `json:"count"`
	Sum     float64           `json:"sum"`
}

// Snapshot is what one worker has counted so far.
type Snapshot struct {
	Service    string      `json:"service"`
	PID        int         `json:"pid"`
	Time       time.Time   `json:"time"`
	Counters   []Sample    `json:"counters"`
	Gauges     []Sample    `json:"gauges"`
	Histograms []Histogram `json:"histograms"`
	Endpoints  []Endpoint  `json:"endpoints,omitempty"`
}

// Endpoint is an engine endpoint as a worker sees it, for the console.
type Endpoint struct {
	Engine    string `json:"engine"`
	Endpoint  string `json:"endpoint"`
	Up        bool   `json:"up"`
	LastError string `json:"last_error,omitempty"`
}

// Endpoints, when set (by a worker), gives its engine endpoints for the
// snapshot.
var Endpoints func() []Endpoint

// key names a sample by its name and labels.
func key(name string, labels map[string]string) string {
	ks := make([]string, 0, len(labels))
	for k, v := range labels {
		ks = append(ks, k+"="+v)
	}
	slices.Sort(ks)
	return name + "{" + strings.Join(ks, ",") + "}"
}

// recorder holds a process's counts.
type recorder struct {
	mu       sync.Mutex
	service  string
	counters map[string]*Sample
	hists    map[string]*Histogram
	gauges   func() []Sample
}

var rec = &recorder{counters: map[string]*Sample{}, hists: map[string]*Histogram{}}

// Add adds v to the counter name with labels (the service's label is
// added by Enable's snapshot).
func Add(name string, v float64, labels ...string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.add(name, v, labels...)
}

func (r *recorder) add(name string, v float64, labels ...string) {
	var buf [128]byte
	k := seriesKey(buf[:0], name, labels)
	s := r.counters[string(k)]
	if s == nil {
		s = &Sample{Name: name, Labels: pairs(labels)}
		r.counters[string(k)] = s
	}
	s.Value += v
}

// seriesKey names a series of this process by its name and labels as the
// call gives them (each call site gives them in one order), appended to
// b: looked up as string(b), a series already counted costs no
// allocation (building a map and a sorted key for each count was, by
// the profile of 1 KiB objects, a tenth of a worker's allocations).
func seriesKey(b []byte, name string, labels []string) []byte {
	b = append(b, name...)
	for _, l := range labels {
		b = append(b, 0)
		b = append(b, l...)
	}
	return b
}

// Observe puts d into the histogram name.
func Observe(name string, d time.Duration, labels ...string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.observe(name, d, labels...)
}

func (r *recorder) observe(name string, d time.Duration, labels ...string) {
	var buf [128]byte
	k := seriesKey(buf[:0], name, labels)
	h := r.hists[string(k)]
	if h == nil {
		h = &Histogram{Name: name, Labels: pairs(labels), Buckets: make([]uint64, len(Buckets))}
		r.hists[string(k)] = h
	}
	sec := d.Seconds()
	for i, b := range Buckets {
		if sec <= b {
			h.Buckets[i]++
			break
		}
	}
	h.Count++
	h.Sum += sec
}

func pairs(labels []string) map[string]string {
	if len(labels) == 0 {
		return nil
	}
	m := make(map[string]string, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		m[labels[i]] = labels[i+1]
	}
	return m
}

// fromZero puts every documented counter and histogram of a worker at
// 0 from its start: a series that appears only at its first count
// escapes rate() and an alert on it until then. Labelled ones are put
// at 0 for each value the access log can give (the verdicts, the
// actions) or the logs have.
func (r *recorder) fromZero() {
	for _, name := range []string{"fsigkd_connections_total", "fsigkd_connections_refused_total", "fsigkd_slots_full_total",
		"fsigkd_evictions_total", "fsigkd_requests_total", "fsigkd_objects_total", "fsigkd_object_bytes_total",
		"fsigkd_engine_calls_total", "fsigkd_verdict_cache_hits_total"} {
		r.add(name, 0)
	}
	for _, v := range []string{"clean", "infected", "blocked", "encrypted", "skipped", "spam", "unscanned"} {
		r.add("fsigkd_verdicts_total", 0, "verdict", v)
	}
	for _, a := range []string{"none", "pass", "deny", "delete", "change_subject"} {
		r.add("fsigkd_actions_total", 0, "action", a)
	}
	for _, l := range []string{"error", "access"} {
		r.add("fsigkd_log_lines_lost_total", 0, "log", l)
	}
	for _, h := range []string{"fsigkd_request_seconds", "fsigkd_scan_seconds"} {
		var buf [128]byte
		if k := seriesKey(buf[:0], h, nil); r.hists[string(k)] == nil {
			r.hists[string(k)] = &Histogram{Name: h, Buckets: make([]uint64, len(Buckets))}
		}
	}
}

// Request counts one access-log record: a request, a mail for a
// recipient, a transfer; elapsed is its time end to end.
func Request(elapsed time.Duration) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.add("fsigkd_requests_total", 1)
	rec.observe("fsigkd_request_seconds", elapsed)
}

// Object counts one object a service judged: its verdict (CLEAN,
// INFECTED, SKIPPED, BLOCKED, OVERSIZE...; "" when it could not be
// scanned), its action, the engine calls made (0 with a CLEAN or
// INFECTED verdict: the verdict cache), its bytes and the scan time.
func Object(detect, action string, checks int, bytes int64, scan time.Duration) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if detect == "" {
		detect = "unscanned"
	}
	rec.add("fsigkd_objects_total", 1)
	rec.add("fsigkd_object_bytes_total", float64(bytes))
	rec.add("fsigkd_verdicts_total", 1, "verdict", strings.ToLower(detect))
	if action == "" {
		action = "NONE"
	}
	rec.add("fsigkd_actions_total", 1, "action", strings.ToLower(action))
	if checks > 0 {
		rec.add("fsigkd_engine_calls_total", float64(checks))
		rec.observe("fsigkd_scan_seconds", scan)
	} else if detect == "CLEAN" || detect == "INFECTED" {
		rec.add("fsigkd_verdict_cache_hits_total", 1)
	}
}

// Message counts a documented message (M01-M25, L01-L04) by its id.
func Message(id string) {
	if id != "" {
		Add("fsigkd_messages_total", 1, "id", id)
	}
}

// Enable makes this process a worker of service whose counts are written
// to dir every second; gauges gives the values of the moment. The
// returned stop writes a last time and ends the writing.
func Enable(service, dir string, gauges func() []Sample) (stop func()) {
	rec.mu.Lock()
	rec.service, rec.gauges = service, gauges
	rec.fromZero()
	rec.mu.Unlock()
	path := filepath.Join(dir, fmt.Sprintf("%s.%d.json", service, os.Getpid()))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		WriteGoStats(dir, done)
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			writeSnapshot(path)
			select {
			case <-t.C:
			case <-done:
				writeSnapshot(path)
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// SetGauges gives the gauges of a process that is no worker (the
// master: what the engine knows), which Gather adds as service "master".
func SetGauges(gauges func() []Sample) {
	rec.mu.Lock()
	rec.gauges = gauges
	rec.mu.Unlock()
}

// Take is this process's counts now.
func Take() Snapshot {
	rec.mu.Lock()
	s := Snapshot{Service: rec.service, PID: os.Getpid(), Time: time.Now()}
	for _, c := range rec.counters {
		s.Counters = append(s.Counters, *c)
	}
	for _, h := range rec.hists {
		hc := *h
		hc.Buckets = slices.Clone(h.Buckets)
		s.Histograms = append(s.Histograms, hc)
	}
	gauges := rec.gauges
	rec.mu.Unlock()
	if gauges != nil {
		s.Gauges = gauges()
	}
	if Endpoints != nil {
		s.Endpoints = Endpoints()
	}
	return s
}

func writeSnapshot(path string) {
	b, err := json.Marshal(Take())
	if err != nil {
		return
	}
	tmp := path + ".tmp"
	if os.WriteFile(tmp, b, 0o640) == nil {
		os.Rename(tmp, path)
	}
}
