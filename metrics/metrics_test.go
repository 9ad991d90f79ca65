package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, dir string, s Snapshot) {
	b, _ := json.Marshal(s)
	os.WriteFile(filepath.Join(dir, s.Service+"."+itoa(s.PID)+".json"), b, 0o640)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func sum(samples []Sample, name, service string) float64 {
	v := -1.0
	for _, s := range samples {
		if s.Name == name && s.Labels["service"] == service {
			v = max(v, 0) + s.Value
		}
	}
	return v
}

// TestTotalsKeepWhatEndedWorkersCounted: two workers of a service sum; a
// worker that ended is folded into the totals once (its file removed) and
// its gauges go; a new worker's counts add to them.
func TestTotalsKeepWhatEndedWorkersCounted(t *testing.T) {
	dir := t.TempDir()
	live := map[int]bool{10: true, 11: true}
	tot := &Totals{Dir: dir, Alive: func(pid int) bool { return live[pid] }}
	c := func(v float64) []Sample { return []Sample{{Name: "fsigkd_requests_total", Value: v}} }
	g := []Sample{{Name: "fsigkd_connections_active", Value: 2}}
	h := []Histogram{{Name: "fsigkd_request_seconds", Buckets: make([]uint64, len(Buckets)), Count: 3, Sum: 0.3}}
	write(t, dir, Snapshot{Service: "http", PID: 10, Counters: c(5), Gauges: g, Histograms: h})
	write(t, dir, Snapshot{Service: "http", PID: 11, Counters: c(7), Gauges: g})
	counters, gauges, hists := tot.Gather()
	if sum(counters, "fsigkd_requests_total", "http") != 12 || sum(gauges, "fsigkd_connections_active", "http") != 4 || hists[0].Count != 3 {
		t.Fatalf("%v %v %v", counters, gauges, hists)
	}
	live[10] = false // ended, killed after its last write
	for i := 0; i < 2; i++ {
		counters, gauges, _ = tot.Gather()
		if sum(counters, "fsigkd_requests_total", "http") != 12 || sum(gauges, "fsigkd_connections_active", "http") != 2 {
			t.Fatalf("after the end, gather %d: %v %v", i, counters, gauges)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "http.10.json")); !os.IsNotExist(err) {
		t.Fatal("the ended worker's file stayed")
	}
	live[12] = true // its successor
	write(t, dir, Snapshot{Service: "http", PID: 12, Counters: c(1)})
	if counters, _, _ = tot.Gather(); sum(counters, "fsigkd_requests_total", "http") != 13 {
		t.Fatalf("with the successor: %v", counters)
	}
}

// TestEnableWritesItsCounts: a worker's file holds what it counted, and
// its last write comes at stop.
func TestEnableWritesItsCounts(t *testing.T) {
	dir := t.TempDir()
	stop := Enable("smtp", dir, func() []Sample { return []Sample{{Name: "fsigkd_slots", Value: 64}} })
	Object("INFECTED", "DENY", 1, 100, 3*time.Millisecond)
	stop()
	counters, gauges, hists := (&Totals{Dir: dir, Alive: func(int) bool { return true }}).Gather()
	if sum(counters, "fsigkd_objects_total", "smtp") != 1 || sum(gauges, "fsigkd_slots", "smtp") != 64 || len(hists) == 0 {
		t.Fatalf("%v %v %v", counters, gauges, hists)
	}
}

// TestReadmeNamesExposedMetrics: every fsigkd_ name the README gives is a
// metric the master exposes.
func TestReadmeNamesExposedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile("`(fsigkd_[a-z0-9_]+)").FindAllStringSubmatch(string(raw), -1)
	if len(names) == 0 {
		t.Fatal("the README names no metric")
	}
	for _, m := range names {
		if _, ok := Help[m[1]]; !ok && !strings.HasPrefix(m[1], "fsigkd_master_") {
			t.Errorf("the README names %s, which is not exposed", m[1])
		}
	}
}

// TestCountingAllocatesNothing: a series already counted is counted again
// with no allocation (every request and object counts several).
func TestCountingAllocatesNothing(t *testing.T) {
	Add("fsigkd_test_total", 1, "verdict", "clean")
	Observe("fsigkd_test_seconds", time.Millisecond, "service", "http")
	if n := testing.AllocsPerRun(100, func() {
		Add("fsigkd_test_total", 1, "verdict", "clean")
		Observe("fsigkd_test_seconds", time.Millisecond, "service", "http")
	}); n != 0 {
		t.Fatalf("%v allocations per count", n)
	}
}
