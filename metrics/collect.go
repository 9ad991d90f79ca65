package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Help describes each metric, for the exposition; a metric not here is
// not exposed.
var Help = map[string]string{
	"fsigkd_connections_total":                           "Client connections accepted.",
	"fsigkd_connections_refused_total":                   "Client connections refused at accept (allow_clients and the like).",
	"fsigkd_slots_full_total":                            "Times every slot was busy when a client was to be accepted (M02).",
	"fsigkd_evictions_total":                             "Idle or silent connections closed so that a waiting client gets a slot.",
	"fsigkd_requests_total":                              "Requests, mails and transfers logged in the access log.",
	"fsigkd_objects_total":                               "Objects judged (scanned, cached, skipped or refused by a rule).",
	"fsigkd_object_bytes_total":                          "Bytes of the objects judged.",
	"fsigkd_verdicts_total":                              "Objects by verdict (the access log's DETECT-STAT).",
	"fsigkd_actions_total":                               "Objects by action (the access log's ACTION).",
	"fsigkd_engine_calls_total":                          "Scans the anti-virus engine made.",
	"fsigkd_verdict_cache_hits_total":                    "Verdicts given by the verdict cache, with no engine call.",
	"fsigkd_engine_failovers_total":                      "Times an engine endpoint was marked down.",
	"fsigkd_messages_total":                              "Documented messages logged, by id.",
	"fsigkd_log_lines_lost_total":                        "Log lines that could not be written (log_dir full or failing), by log (error, access).",
	"fsigkd_scan_seconds":                                "Time of the engine's scans.",
	"fsigkd_request_seconds":                             "Time of a request, mail or transfer, end to end.",
	"fsigkd_connections_active":                          "Client connections now.",
	"fsigkd_slots":                                       "Connection slots (pre_spawn).",
	"fsigkd_engine_endpoint_up":                          "Whether an engine endpoint answers (1) or is marked down (0).",
	"fsigkd_notice_queue_length":                         "Admin notices waiting to be sent.",
	"fsigkd_workers":                                     "Worker processes running.",
	"fsigkd_build_info":                                  "Always 1: the gateway's version and the Go it was built with, as labels.",
	"fsigkd_service_up":                                  "1 for an enabled service that serves, 0 for one that is down (it could not bind, or its worker keeps dying).",
	"fsigkd_engine_signatures":                           "Signatures the anti-virus engine knows, by kind (the bundled fsavd: hash, body, built-in).",
	"fsigkd_engine_signatures_updated_timestamp_seconds": "When the engine's newest signature part was written or built (Unix time).",
	"fsigkd_engine_eicar_only":                           "1 when the engine detects nothing but the EICAR test file (no signatures).",
	"fsigkd_engine_problems":                             "Warnings about what the engine knows (EICAR only, signatures older than signatures_max_age).",
}

// Totals is the master's view of the workers' counts: the files of the
// running workers, and what ended workers counted, folded in.
type Totals struct {
	Dir string
	// Alive tells whether a worker still runs (nil: signal 0).
	Alive func(pid int) bool
	// Peek: read only (fsigkd diag), an ended worker's file left for the
	// master to fold in.
	Peek bool

	mu        sync.Mutex
	retired   map[string]*Sample
	retiredH  map[string]*Histogram
	endpoints []Endpoint // as the running workers last said
}

// Endpoints are the engine endpoints as the running workers said at the
// last Gather: one entry each, down when any worker finds it down.
func (t *Totals) Endpoints() []Endpoint {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.endpoints)
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Gather reads the workers' snapshots and gives the sums by service:
// counters and histograms of every worker that ran, gauges of the running
// ones, and the counters of this process (the master) as service
// "master".
func (t *Totals) Gather() (counters, gauges []Sample, hists []Histogram) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.retired == nil {
		t.retired, t.retiredH = map[string]*Sample{}, map[string]*Histogram{}
	}
	isAlive := t.Alive
	if isAlive == nil {
		isAlive = alive
	}
	sumC := map[string]*Sample{}
	sumG := map[string]*Sample{}
	sumH := map[string]*Histogram{}
	for k, s := range t.retired {
		c := *s
		sumC[k] = &c
	}
	// The master's own: the messages it logs (a worker's crash, M18; a
	// service that cannot bind, M01...).
	own := Take()
	for _, c := range own.Counters {
		addSample(sumC, c, "master")
	}
	for k, h := range t.retiredH {
		c := *h
		c.Buckets = slices.Clone(h.Buckets)
		sumH[k] = &c
	}
	t.endpoints = t.endpoints[:0]
	seen := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(t.Dir, "*.json"))
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".json")
		dot := strings.LastIndexByte(base, '.')
		pid, err := strconv.Atoi(base[dot+1:])
		if dot < 0 || err != nil {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var s Snapshot
		if json.Unmarshal(b, &s) != nil {
			continue
		}
		running := isAlive(pid) || t.Peek
		for _, c := range s.Counters {
			addSample(sumC, c, s.Service)
			if !running {
				addSample(t.retired, c, s.Service)
			}
		}
		for _, h := range s.Histograms {
			addHist(sumH, h, s.Service)
			if !running {
				addHist(t.retiredH, h, s.Service)
			}
		}
		if running {
			for _, e := range s.Endpoints {
				k := e.Engine + "\x00" + e.Endpoint
				if i, ok := seen[k]; ok {
					if !e.Up {
						t.endpoints[i] = e
					}
					continue
				}
				seen[k] = len(t.endpoints)
				t.endpoints = append(t.endpoints, e)
			}
			for _, g := range s.Gauges {
				addSample(sumG, g, s.Service)
			}
			addSample(sumG, Sample{Name: "fsigkd_workers", Value: 1}, s.Service)
		} else {
			os.Remove(f)
		}
	}
	for _, g := range own.Gauges {
		addSample(sumG, g, "master")
	}
	for _, s := range sumC {
		counters = append(counters, *s)
	}
	for _, s := range sumG {
		gauges = append(gauges, *s)
	}
	for _, h := range sumH {
		hists = append(hists, *h)
	}
	return counters, gauges, hists
}

func withService(labels map[string]string, service string) map[string]string {
	l := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		l[k] = v
	}
	if _, named := l["service"]; service != "" && !named {
		// A sample that names a service itself (the master's
		// fsigkd_service_up) keeps it.
		l["service"] = service
	}
	return l
}

func addSample(m map[string]*Sample, s Sample, service string) {
	s.Labels = withService(s.Labels, service)
	k := key(s.Name, s.Labels)
	if cur := m[k]; cur != nil {
		cur.Value += s.Value
		return
	}
	m[k] = &s
}

func addHist(m map[string]*Histogram, h Histogram, service string) {
	h.Labels = withService(h.Labels, service)
	k := key(h.Name, h.Labels)
	cur := m[k]
	if cur == nil {
		c := h
		c.Buckets = slices.Clone(h.Buckets)
		m[k] = &c
		return
	}
	for i := range cur.Buckets {
		if i < len(h.Buckets) {
			cur.Buckets[i] += h.Buckets[i]
		}
	}
	cur.Count += h.Count
	cur.Sum += h.Sum
}

// Text is the counts in the Prometheus text format, for diag.
func (t *Totals) Text() ([]byte, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(t.Collector())
	fams, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			return b.Bytes(), err
		}
	}
	return b.Bytes(), nil
}

// Collector is t for a Prometheus registry: every scrape gathers anew.
func (t *Totals) Collector() prometheus.Collector { return collector{t} }

type collector struct{ t *Totals }

// Describe sends nothing: the metrics are known at scrape time (an
// unchecked collector).
func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	counters, gauges, hists := c.t.Gather()
	emit := func(s Sample, vt prometheus.ValueType) {
		help, ok := Help[s.Name]
		if !ok {
			return
		}
		names, values := labelsOf(s.Labels)
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(s.Name, help, names, nil), vt, s.Value, values...)
	}
	for _, s := range counters {
		emit(s, prometheus.CounterValue)
	}
	for _, s := range gauges {
		emit(s, prometheus.GaugeValue)
	}
	for _, h := range hists {
		help, ok := Help[h.Name]
		if !ok {
			continue
		}
		cum := map[float64]uint64{}
		var run uint64
		for i, b := range Buckets {
			if i < len(h.Buckets) {
				run += h.Buckets[i]
			}
			cum[b] = run
		}
		names, values := labelsOf(h.Labels)
		ch <- prometheus.MustNewConstHistogram(prometheus.NewDesc(h.Name, help, names, nil), h.Count, h.Sum, cum, values...)
	}
}

func labelsOf(l map[string]string) (names, values []string) {
	for k := range l {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		values = append(values, l[k])
	}
	return names, values
}
