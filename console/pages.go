package console

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"embed"
	"encoding/pem"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/metrics"
	"github.com/fsigkd/fsigkd/quarantine"
	"github.com/fsigkd/fsigkd/tlsca"
)

// Service is one service as the console shows it.
type Service struct {
	Name        string
	PID         int
	Used, Total int // slots in use (-1: unknown) of pre_spawn
	Listen      string
	Down        string // why it is down ("" when it runs)
}

// Source is what the pages show, as the master gives it.
type Source struct {
	Version string
	// Services reads the running gateway: the master's pid and each
	// service.
	Services func() (master int, svcs []Service, err error)
	Totals   *metrics.Totals
	// Settings are the effective settings, secrets masked.
	Settings func() string
	// Engine says what the anti-virus engine knows, and its problems
	// (nil: not said).
	Engine func() (knows string, problems []string)
	// ErrorLog and AccessLog are the logs' paths.
	ErrorLog, AccessLog string
	// CA is the certificate HTTPS interception signs with, for clients
	// to download (nil, or a nil certificate: none made).
	CA func() (cert *x509.Certificate, intercepting bool)
	// Quarantine is the quarantine's entries (nil: none shown).
	Quarantine Quarantine
	// CanAct tells whether the console has a password
	// (console_password), so that every page is the administrator's:
	// release and delete are then offered (nil: never).
	CanAct func() bool
	// TempDir is temp_dir, whose free space the dashboard shows.
	TempDir string
	// Started is when the gateway (its master) started.
	Started time.Time
}

//go:embed templates/*.html
var templateFiles embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"chart": chartSVG,
	"ago":   func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
}).ParseFS(templateFiles, "templates/*.html"))

// Pages are the console's pages: the dashboard (/), recent detections,
// the effective settings and the error log's last lines. Plain HTML,
// charts in SVG: no script.
type Pages struct {
	src     Source
	secret  []byte // keys the forms' tokens
	mux     *http.ServeMux
	history *history
	stop    chan struct{}
	done    chan struct{}
}

// NewPages serves src; Close stops the sampling behind the charts.
func NewPages(src Source) *Pages {
	p := &Pages{src: src, mux: http.NewServeMux(), history: &history{}, stop: make(chan struct{}), done: make(chan struct{}),
		secret: make([]byte, 32)}
	rand.Read(p.secret)
	p.mux.HandleFunc("GET /{$}", p.dashboard)
	p.mux.HandleFunc("GET /detections", p.detections)
	p.mux.HandleFunc("GET /settings", p.settings)
	p.mux.HandleFunc("GET /log", p.errorLog)
	p.mux.HandleFunc("GET /ca", p.caPage)
	p.mux.HandleFunc("GET /ca.pem", p.caFile)
	p.mux.HandleFunc("GET /ca.crt", p.caFile)
	p.mux.HandleFunc("GET /quarantine/{id}", p.entryPage)
	p.mux.HandleFunc("POST /quarantine/{id}/{action}", p.act)
	go p.sample()
	return p
}

func (p *Pages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	p.mux.ServeHTTP(w, r)
}

// Close stops the sampling.
func (p *Pages) Close() {
	close(p.stop)
	<-p.done
}

// sampleEvery is how often the charts' counts are taken.
const sampleEvery = time.Minute

// sample takes the counts for the charts now and every sampleEvery.
func (p *Pages) sample() {
	defer close(p.done)
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		p.history.add(p.counts())
		select {
		case <-t.C:
		case <-p.stop:
			return
		}
	}
}

// point is the cumulative counts at a moment, by service.
type point struct {
	at     time.Time
	counts map[string]counts
}

type counts struct{ conns, objects, detections float64 }

// detectionVerdicts are the verdicts counted as detections.
var detectionVerdicts = map[string]bool{"infected": true, "blocked": true, "encrypted": true}

func (p *Pages) counts() point {
	counters, _, _ := p.src.Totals.Gather()
	return pointOf(counters)
}

// pointOf sums counters for the charts and rates.
func pointOf(counters []metrics.Sample) point {
	pt := point{at: time.Now(), counts: map[string]counts{}}
	for _, c := range counters {
		svc := c.Labels["service"]
		cc := pt.counts[svc]
		switch {
		case c.Name == "fsigkd_connections_total":
			cc.conns += c.Value
		case c.Name == "fsigkd_objects_total":
			cc.objects += c.Value
		case c.Name == "fsigkd_verdicts_total" && detectionVerdicts[c.Labels["verdict"]]:
			cc.detections += c.Value
		}
		pt.counts[svc] = cc
	}
	return pt
}

// history keeps a day of samples.
type history struct {
	mu     sync.Mutex
	points []point
}

const keepPoints = 24*60 + 1

func (h *history) add(p point) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.points = append(h.points, p)
	if len(h.points) > keepPoints {
		h.points = slices.Delete(h.points, 0, len(h.points)-keepPoints)
	}
}

// since is the latest sample at least d before now, or the first.
func (h *history) since(d time.Duration) (point, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.points) == 0 {
		return point{}, false
	}
	cut := time.Now().Add(-d)
	for i := len(h.points) - 1; i >= 0; i-- {
		if !h.points[i].at.After(cut) {
			return h.points[i], true
		}
	}
	return h.points[0], true
}

// Series is a chart's bars: objects and detections per bucket, oldest
// first.
type Series struct {
	Title      string
	Step       time.Duration
	Objects    []float64
	Detections []float64
}

// series sums, per bucket of step over span up to now, what all the
// services judged (the last bucket is the one under way, counted to now).
func (h *history) series(now point, span, step time.Duration, title string) Series {
	h.mu.Lock()
	pts := append(slices.Clone(h.points), now)
	h.mu.Unlock()
	n := int(span / step)
	s := Series{Title: title, Step: step, Objects: make([]float64, n), Detections: make([]float64, n)}
	total := func(p point) (o, d float64) {
		for _, c := range p.counts {
			o += c.objects
			d += c.detections
		}
		return o, d
	}
	for i := 1; i < len(pts); i++ {
		age := now.at.Sub(pts[i].at)
		b := n - 1 - int(age/step)
		if b < 0 || b >= n {
			continue
		}
		o1, d1 := total(pts[i-1])
		o2, d2 := total(pts[i])
		s.Objects[b] += max(0, o2-o1)
		s.Detections[b] += max(0, d2-d1)
	}
	return s
}

// ServiceRow is a service on the dashboard.
type ServiceRow struct {
	Service
	ConnsPerMin, ObjectsPerMin float64
	Detections                 float64
	Over                       string // the span the rates are over
}

// EngineRow is an engine endpoint on the dashboard.
type EngineRow struct {
	metrics.Endpoint
	MeanScan string
}

type page struct {
	Title, Active string
	Version       string
	Now           time.Time
	Error         string
	Warning       string
	Signatures    string
	Problems      []string
	Master        int
	Services      []ServiceRow
	Engines       []EngineRow
	Charts        []Series
	Detections    []detectionRow
	Filter        filter
	Offered       []string // the services the filter offers
	Pages         pager
	Text          string
	CA            *caFacts
	Entry         *entryView
	Refresh       int // seconds; 0: the page does not refresh itself
	Facts         *gatewayFacts
}

func (p *Pages) render(w http.ResponseWriter, name string, pg page) {
	pg.Version, pg.Now = p.src.Version, time.Now()
	var b bytes.Buffer
	if err := templates.ExecuteTemplate(&b, name, pg); err != nil {
		http.Error(w, "The page could not be made.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

func (p *Pages) dashboard(w http.ResponseWriter, r *http.Request) {
	pg := page{Title: "Dashboard", Active: "dashboard", Refresh: 30}
	master, svcs, err := p.src.Services()
	if err != nil {
		pg.Error = "The gateway's state cannot be read: " + err.Error()
	}
	pg.Master = master
	counters, _, hists := p.src.Totals.Gather() // one read of the workers' files a page
	if p.src.Engine != nil {
		pg.Signatures, pg.Problems = p.src.Engine()
	}
	if loss := logs.Loss(counters); loss != "" {
		pg.Warning = "Logging has failed: " + loss + ". Is log_dir full? What the logs could not say went to the journal (standard error) and syslog."
	}
	pg.Facts = p.factsOf(counters)
	now := pointOf(counters)
	before, _ := p.history.since(sampleEvery)
	minutes := now.at.Sub(before.at).Minutes()
	over := "the last minute"
	if minutes < 1 {
		// Younger than a minute: the counts so far, not a rate made
		// up from a few seconds.
		over = fmt.Sprintf("the first %s: the count so far", now.at.Sub(before.at).Round(time.Second))
	}
	for _, s := range svcs {
		row := ServiceRow{Service: s, Over: over}
		c, b := now.counts[s.Name], before.counts[s.Name]
		row.ConnsPerMin = (c.conns - b.conns) / max(minutes, 1)
		row.ObjectsPerMin = (c.objects - b.objects) / max(minutes, 1)
		row.Detections = c.detections
		pg.Services = append(pg.Services, row)
	}
	var scanSum float64
	var scanCount uint64
	for _, h := range hists {
		if h.Name == "fsigkd_scan_seconds" {
			scanSum += h.Sum
			scanCount += h.Count
		}
	}
	mean := "-"
	if scanCount > 0 {
		mean = (time.Duration(scanSum / float64(scanCount) * float64(time.Second))).Round(10 * time.Microsecond).String()
	}
	for _, e := range p.src.Totals.Endpoints() {
		pg.Engines = append(pg.Engines, EngineRow{Endpoint: e, MeanScan: mean})
	}
	pg.Charts = []Series{p.history.series(now, time.Hour, time.Minute, "The last hour, per minute"),
		p.history.series(now, 24*time.Hour, 15*time.Minute, "The last day, per quarter hour")}
	p.render(w, "dashboard.html", pg)
}

// maxTail is how much of a log's end the pages read.
const maxTail = 4 << 20

// tail is the last n lines of the file at path (read from its last
// maxTail bytes; a line the cut splits is left out).
func tail(path string, n int) ([]string, error) {
	b, err := logs.Tail(path, maxTail)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(b) == maxTail && len(lines) > 0 {
		lines = lines[1:]
	}
	if len(lines) == 1 && lines[0] == "" {
		lines = nil
	}
	return lines[max(0, len(lines)-n):], nil
}

// detections lists the detections of the access log's end, newest
// first, filtered and a page at a time; each kept one links to its
// quarantine entry, and a kept mail shows its subject.
func (p *Pages) detections(w http.ResponseWriter, r *http.Request) {
	pg := page{Title: "Recent detections", Active: "detections", Filter: filterOf(r)}
	if id := r.URL.Query().Get("deleted"); quarantine.ValidID(id) {
		pg.Warning = "Deleted " + id + " from the quarantine."
	}
	lines, err := tail(p.src.AccessLog, 20000)
	if err != nil && !os.IsNotExist(err) {
		pg.Error = "The access log cannot be read: " + err.Error()
	}
	offered := map[string]bool{}
	var found []logs.Access
	for i := len(lines) - 1; i >= 0; i-- {
		a, err := logs.ParseAccess(lines[i])
		if err != nil || !detectionVerdicts[strings.ToLower(a.Detect)] {
			continue
		}
		offered[a.Service] = true
		if pg.Filter.match(a) {
			found = append(found, a)
		}
	}
	for svc := range offered {
		pg.Offered = append(pg.Offered, svc)
	}
	slices.Sort(pg.Offered)
	pg.Pages = pagerOf(pg.Filter, len(found))
	for _, a := range found[pg.Pages.from:pg.Pages.to] {
		row := detectionRow{Access: a}
		if a.Quarantine != "" {
			if m, err := p.entry(a.Quarantine); err == nil {
				row.Kept, row.Subject = true, p.subjectOf(m)
			}
		}
		pg.Detections = append(pg.Detections, row)
	}
	p.render(w, "detections.html", pg)
}

// pager is where a page of detections stands among them.
type pager struct {
	Page, Of, Total int
	Prev, Next      string // links; "": none
	from, to        int
}

func pagerOf(f filter, total int) pager {
	of := max(1, (total+detectionsPerPage-1)/detectionsPerPage)
	page := min(f.Page, of)
	pg := pager{Page: page, Of: of, Total: total, from: (page - 1) * detectionsPerPage}
	pg.to = min(total, pg.from+detectionsPerPage)
	if page > 1 {
		pg.Prev = f.link(page - 1)
	}
	if page < of {
		pg.Next = f.link(page + 1)
	}
	return pg
}

func (p *Pages) settings(w http.ResponseWriter, r *http.Request) {
	p.render(w, "text.html", page{Title: "Effective settings", Active: "settings", Text: p.src.Settings()})
}

// caPage shows the interception CA: its facts, the files to download,
// and how each system and browser is made to trust it.
func (p *Pages) caPage(w http.ResponseWriter, r *http.Request) {
	pg := page{Title: "HTTPS inspection certificate", Active: "ca"}
	var c *x509.Certificate
	if p.src.CA != nil {
		var on bool
		c, on = p.src.CA()
		if c != nil && !on {
			pg.Warning = "HTTPS interception is off (tls_intercept = no): clients can be given this certificate before it is turned on."
		}
	}
	if c == nil {
		pg.Error = "No interception CA has been made yet: fsigkd ca makes and prints it."
	} else {
		pg.CA = &caFacts{Subject: c.Subject.String(), NotAfter: c.NotAfter.UTC().Format(time.DateOnly), Fingerprint: tlsca.Fingerprint(c)}
	}
	p.render(w, "ca.html", pg)
}

// caFile serves the CA's certificate: PEM (/ca.pem) or DER (/ca.crt, as
// Windows, Android and iOS import it).
func (p *Pages) caFile(w http.ResponseWriter, r *http.Request) {
	var c *x509.Certificate
	if p.src.CA != nil {
		c, _ = p.src.CA()
	}
	if c == nil {
		http.NotFound(w, r)
		return
	}
	if strings.HasSuffix(r.URL.Path, ".pem") {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Header().Set("Content-Disposition", `attachment; filename="fsigkd-ca.pem"`)
		w.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
		return
	}
	w.Header().Set("Content-Type", "application/x-x509-ca-cert")
	w.Header().Set("Content-Disposition", `attachment; filename="fsigkd-ca.crt"`)
	w.Write(c.Raw)
}

// caFacts is what the CA page says of the certificate.
type caFacts struct{ Subject, NotAfter, Fingerprint string }

func (p *Pages) errorLog(w http.ResponseWriter, r *http.Request) {
	pg := page{Title: "Error log, last 200 lines", Active: "log"}
	lines, err := tail(p.src.ErrorLog, 200)
	if err != nil {
		pg.Error = "The error log cannot be read: " + err.Error()
	}
	pg.Text = strings.Join(lines, "\n")
	p.render(w, "text.html", pg)
}

// chartSVG draws a series as bars (objects, and detections over them),
// sized by the viewBox so that it fits any screen.
func chartSVG(s Series) template.HTML {
	const w, h, top, bottom = 600.0, 160.0, 10.0, 20.0
	peak := 1.0
	for i := range s.Objects {
		peak = max(peak, s.Objects[i], s.Detections[i])
	}
	n := float64(len(s.Objects))
	bw := w / n
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s: objects and detections">`, w, h, template.HTMLEscapeString(s.Title))
	fmt.Fprintf(&b, `<line x1="0" y1="%.1f" x2="%.0f" y2="%.1f" class="axis"/>`, h-bottom, w, h-bottom)
	for i := range s.Objects {
		x := float64(i) * bw
		if v := s.Objects[i]; v > 0 {
			bh := v / peak * (h - top - bottom)
			fmt.Fprintf(&b, `<rect class="obj" x="%.2f" y="%.2f" width="%.2f" height="%.2f"><title>%.0f objects</title></rect>`, x, h-bottom-bh, max(bw-0.5, 0.5), bh, v)
		}
		if v := s.Detections[i]; v > 0 {
			bh := max(v/peak*(h-top-bottom), 2)
			fmt.Fprintf(&b, `<rect class="det" x="%.2f" y="%.2f" width="%.2f" height="%.2f"><title>%.0f detections</title></rect>`, x, h-bottom-bh, max(bw-0.5, 0.5), bh, v)
		}
	}
	span := s.Step * time.Duration(len(s.Objects))
	ago := fmt.Sprintf("%.0f min ago", span.Minutes())
	if span >= 2*time.Hour {
		ago = fmt.Sprintf("%.0f h ago", span.Hours())
	}
	fmt.Fprintf(&b, `<text x="0" y="%.0f" class="lbl">%s</text><text x="%.0f" y="%.0f" class="lbl" text-anchor="end">now</text>`,
		h-4, ago, w, h-4)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="lbl" text-anchor="end">peak %.0f</text></svg>`, w, top+2, peak)
	return template.HTML(b.String())
}
