package supervisor

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/metrics"
	"github.com/fsigkd/fsigkd/scanner"
)

// engineLook is how often the master looks again at what the engine
// knows: signatures age while the gateway runs.
const engineLook = time.Hour

// engineWatch is what the engine knew when the master last looked, for
// the console and /metrics, and the problems already said.
type engineWatch struct {
	mu       sync.Mutex
	k        scanner.Knowledge
	problems []string
	said     []string
}

// engineKnown is a look's result, handled in the master's loop.
type engineKnown struct {
	k        scanner.Knowledge
	problems []string
	all      bool // say every problem (a start, a reload), not only new ones
}

// learnEngine asks what the engine knows, aside (clamd may be slow), and
// hands the answer to the master's loop.
func (m *master) learnEngine(all bool) {
	g := m.cfg.Global
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		k := scanner.Know(ctx, g)
		m.events <- engineKnown{k: k, problems: k.Problems(g.SigsMaxAge, time.Now()), all: all}
	}()
}

// engineLearnt logs what the engine knows (at a start or reload), and
// each problem as a warning: every one at a start or reload, a new one
// when it appears.
func (m *master) engineLearnt(ev engineKnown) {
	log := m.log.Named("main:engine")
	if ev.all {
		log.Info("engine: " + ev.k.String())
	}
	w := &m.engine
	w.mu.Lock()
	w.k, w.problems = ev.k, ev.problems
	said := w.said
	w.said = ev.problems
	w.mu.Unlock()
	for _, p := range ev.problems {
		if ev.all || !slices.Contains(said, p) {
			log.Warn(p)
		}
	}
}

// engineState is what the engine knew at the last look, and its problems.
func (m *master) engineState() (scanner.Knowledge, []string) {
	w := &m.engine
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.k, slices.Clone(w.problems)
}

// engineGauges are the engine's knowledge for /metrics.
func (m *master) engineGauges() []metrics.Sample {
	k, problems := m.engineState()
	var out []metrics.Sample
	for kind, n := range k.Kinds {
		out = append(out, metrics.Sample{Name: "fsigkd_engine_signatures", Labels: map[string]string{"kind": kind}, Value: float64(n)})
	}
	if !k.Newest.IsZero() {
		out = append(out, metrics.Sample{Name: "fsigkd_engine_signatures_updated_timestamp_seconds", Value: float64(k.Newest.Unix())})
	}
	only := 0.0
	if k.EICAROnly {
		only = 1
	}
	out = append(out, metrics.Sample{Name: "fsigkd_engine_eicar_only", Value: only},
		metrics.Sample{Name: "fsigkd_engine_problems", Value: float64(len(problems))})
	return out
}

// EngineKnows is what the engine of g knows, in a line, and its problems,
// learnt as the master learns them: for check and status.
func EngineKnows(g conf.Global) (knows string, problems []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	k := scanner.Know(ctx, g)
	return k.String(), k.Problems(g.SigsMaxAge, time.Now())
}
