package console

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/metrics"
)

// TestDashboardSaysLogLinesWereLost: a worker that could not write its
// log lines (log_dir full) counts them; the dashboard says so, since the
// log cannot, and says nothing when none were lost.
func TestDashboardSaysLogLinesWereLost(t *testing.T) {
	dir := t.TempDir()
	p := NewPages(Source{Services: func() (int, []Service, error) { return 1, nil, nil }, Totals: &metrics.Totals{Dir: dir}})
	defer p.Close()
	get := func() string {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		return w.Body.String()
	}
	if body := get(); strings.Contains(body, `id="warning"`) {
		t.Fatalf("a warning with nothing lost:\n%s", body)
	}
	snap := metrics.Snapshot{Service: "http", PID: os.Getpid(), Counters: []metrics.Sample{
		{Name: "fsigkd_log_lines_lost_total", Labels: map[string]string{"log": "access"}, Value: 520},
		{Name: "fsigkd_log_lines_lost_total", Labels: map[string]string{"log": "error"}, Value: 12},
	}}
	b, _ := json.Marshal(snap)
	os.WriteFile(filepath.Join(dir, fmt.Sprintf("http.%d.json", os.Getpid())), b, 0o600)
	if body := get(); !strings.Contains(body, "Logging has failed: 532 log lines lost since the gateway started (access 520, error 12).") {
		t.Fatalf("no warning of the lost lines:\n%s", body)
	}
}
