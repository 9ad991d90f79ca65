package main

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fsigkd/fsigkd/internal/testenv"
)

// scrape reads /metrics with the Prometheus text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// value is the sample of name whose labels include want, or -1.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetricsCountKnownTraffic: after known traffic the counts scraped
// from the master match it, across the worker processes; a worker killed
// and restarted keeps its counts in the totals, and its end (M17, M19)
// is counted by the master.
func TestMetricsCountKnownTraffic(t *testing.T) {
	port := testenv.FreePort(t)
	g := gateway(t, 4, map[string]string{"global": fmt.Sprintf("console_port = %d", port)})
	console := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 5; i++ {
		g.fetch(t, fmt.Sprintf("/page%d", i))
	}
	if err := g.served(t, "smtp", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var fams map[string]*dto.MetricFamily
	waitFor(t, func() bool {
		fams = scrape(t, console)
		return value(fams, "fsigkd_requests_total", "service", "http") == 5 && value(fams, "fsigkd_requests_total", "service", "smtp") == 1
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"fsigkd_connections_total", []string{"service", "http"}, 5},
		{"fsigkd_objects_total", []string{"service", "http"}, 5},
		{"fsigkd_verdicts_total", []string{"service", "http", "verdict", "clean"}, 5},
		{"fsigkd_engine_calls_total", []string{"service", "http"}, 1}, // the same bytes: the verdict cache for the rest
		{"fsigkd_verdict_cache_hits_total", []string{"service", "http"}, 4},
		{"fsigkd_request_seconds", []string{"service", "http"}, 5},
		{"fsigkd_slots", []string{"service", "http"}, 4},
		{"fsigkd_workers", []string{"service", "ftp"}, 1},
		{"fsigkd_engine_endpoint_up", []string{"service", "http", "engine", "fsavd"}, 1},
		{"fsigkd_messages_total", []string{"service", "master", "id", "L01"}, 1},
	} {
		if got := value(fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	pid := g.workerPID(t, "http")
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, func() bool { p := g.workerPID(t, "http"); return p != 0 && p != pid })
	g.fetch(t, "/after")
	waitFor(t, func() bool {
		fams = scrape(t, console)
		return value(fams, "fsigkd_requests_total", "service", "http") == 6
	})
	for _, id := range []string{"M17", "M19"} { // the worker stopped; restarting
		if got := value(fams, "fsigkd_messages_total", "service", "master", "id", id); got != 1 {
			t.Errorf("%s counted %v times", id, got)
		}
	}
	if got := value(fams, "fsigkd_connections_total", "service", "http"); got != 6 {
		t.Errorf("connections after the restart: %v, want 6", got)
	}
}
