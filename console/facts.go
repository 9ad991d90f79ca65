package console

import (
	"fmt"
	"syscall"
	"time"

	"github.com/fsigkd/fsigkd/metrics"
)

// gatewayFacts are the dashboard's figures of the whole gateway.
type gatewayFacts struct {
	Uptime, Since             string
	Requests, Objects, Judged float64
	Bytes                     string
	Detections                float64
	HitRate                   string // the verdict cache's share of the verdicts
	TempFree                  string // temp_dir's free space
	TempLow                   bool   // under a tenth of it free
	QuarantineN               int
	QuarantineSize            string
}

// factsOf sums the counters for the dashboard, and reads what the
// counters do not hold: temp_dir's room and the quarantine's size.
func (p *Pages) factsOf(counters []metrics.Sample) *gatewayFacts {
	f := &gatewayFacts{}
	if !p.src.Started.IsZero() {
		f.Uptime = time.Since(p.src.Started).Round(time.Second).String()
		f.Since = p.src.Started.UTC().Format("2006-01-02 15:04:05")
	}
	var bytes, hits, calls float64
	for _, c := range counters {
		switch c.Name {
		case "fsigkd_requests_total":
			f.Requests += c.Value
		case "fsigkd_objects_total":
			f.Objects += c.Value
		case "fsigkd_object_bytes_total":
			bytes += c.Value
		case "fsigkd_verdicts_total":
			if detectionVerdicts[c.Labels["verdict"]] {
				f.Detections += c.Value
			}
		case "fsigkd_verdict_cache_hits_total":
			hits += c.Value
		case "fsigkd_engine_calls_total":
			calls += c.Value
		}
	}
	f.Bytes = sizeOf(bytes)
	f.HitRate = "-"
	if hits+calls > 0 {
		f.HitRate = fmt.Sprintf("%.1f%% (%.0f of %.0f verdicts)", 100*hits/(hits+calls), hits, hits+calls)
	}
	f.TempFree = "-"
	var st syscall.Statfs_t
	if p.src.TempDir != "" && syscall.Statfs(p.src.TempDir, &st) == nil && st.Blocks > 0 {
		free := float64(st.Bavail) * float64(st.Bsize)
		share := float64(st.Bavail) / float64(st.Blocks)
		f.TempFree = fmt.Sprintf("%s (%.0f%%) in %s", sizeOf(free), 100*share, p.src.TempDir)
		f.TempLow = share < 0.1
	}
	f.QuarantineSize = "-"
	if p.src.Quarantine != nil {
		n, b := p.src.Quarantine.Usage()
		f.QuarantineN, f.QuarantineSize = n, sizeOf(float64(b))
	}
	return f
}

// sizeOf says a number of bytes in the largest unit it fills.
func sizeOf(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", b)
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}
