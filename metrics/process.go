package metrics

import (
	"os"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

// Proc is one process of the gateway, as /metrics labels it: process
// (master, worker, fsavd) and, for a worker, its service.
type Proc struct {
	PID              int
	Process, Service string
}

// ProcessCollector exports Prometheus' standard process metrics
// (process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds) for every process procs names, labelled,
// as read from /proc when scraped: the workers and the bundled engine
// hold most of the gateway's memory and CPU, not the master.
func ProcessCollector(procs func() []Proc) prometheus.Collector {
	return procCollector{procs}
}

type procCollector struct{ procs func() []Proc }

var procLabels = []string{"process", "service", "pid"}

var (
	procCPU   = prometheus.NewDesc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", procLabels, nil)
	procRSS   = prometheus.NewDesc("process_resident_memory_bytes", "Resident memory size in bytes.", procLabels, nil)
	procVM    = prometheus.NewDesc("process_virtual_memory_bytes", "Virtual memory size in bytes.", procLabels, nil)
	procFDs   = prometheus.NewDesc("process_open_fds", "Number of open file descriptors.", procLabels, nil)
	procMax   = prometheus.NewDesc("process_max_fds", "Maximum number of open file descriptors.", procLabels, nil)
	procStart = prometheus.NewDesc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", procLabels, nil)
)

func (procCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{procCPU, procRSS, procVM, procFDs, procMax, procStart} {
		ch <- d
	}
}

func (c procCollector) Collect(ch chan<- prometheus.Metric) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return
	}
	for _, p := range c.procs() {
		pr, err := fs.Proc(p.PID)
		if err != nil {
			continue // ended since: not reported
		}
		st, err := pr.Stat()
		if err != nil {
			continue
		}
		l := []string{p.Process, p.Service, strconv.Itoa(p.PID)}
		ch <- prometheus.MustNewConstMetric(procCPU, prometheus.CounterValue, st.CPUTime(), l...)
		ch <- prometheus.MustNewConstMetric(procRSS, prometheus.GaugeValue, float64(st.ResidentMemory()), l...)
		ch <- prometheus.MustNewConstMetric(procVM, prometheus.GaugeValue, float64(st.VirtualMemory()), l...)
		if t, err := st.StartTime(); err == nil {
			ch <- prometheus.MustNewConstMetric(procStart, prometheus.GaugeValue, t, l...)
		}
		if n, err := pr.FileDescriptorsLen(); err == nil {
			ch <- prometheus.MustNewConstMetric(procFDs, prometheus.GaugeValue, float64(n), l...)
		}
		if lim, err := pr.Limits(); err == nil {
			ch <- prometheus.MustNewConstMetric(procMax, prometheus.GaugeValue, float64(lim.OpenFiles), l...)
		}
	}
}

// Self is this process, as the master.
func Self() Proc { return Proc{PID: os.Getpid(), Process: "master"} }
