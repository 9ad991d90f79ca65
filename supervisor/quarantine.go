package supervisor

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/quarantine"
	"github.com/fsigkd/fsigkd/quarantine/release"
)

// consoleQuarantine is the quarantine as the console reads it and acts
// on it, under the settings as they are now (a reload may move it).
type consoleQuarantine struct {
	cfg func() *conf.Config

	mu     sync.Mutex
	at     time.Time // when the usage was counted
	dir    string
	n      int
	nbytes int64
}

func (q *consoleQuarantine) store() *quarantine.Store {
	g := q.cfg().Global
	return &quarantine.Store{Dir: g.QuarantineDir, MaxSize: g.QuarantineMax, MaxAge: time.Duration(g.QuarantineDays) * 24 * time.Hour}
}

func (q *consoleQuarantine) Get(id string) (quarantine.Meta, error) { return q.store().Get(id) }

func (q *consoleQuarantine) Head(id string, n int) ([]byte, error) {
	f, err := q.store().Open(id)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(n)))
	return b, err
}

// usageEvery is how long a count of the quarantine's usage stands: a
// dashboard that refreshes itself does not walk a large quarantine each
// time.
const usageEvery = 30 * time.Second

func (q *consoleQuarantine) Usage() (int, int64) {
	dir := q.cfg().Global.QuarantineDir
	q.mu.Lock()
	defer q.mu.Unlock()
	if dir == q.dir && time.Since(q.at) < usageEvery {
		return q.n, q.nbytes
	}
	q.n, q.nbytes = q.store().Usage()
	q.dir, q.at = dir, time.Now()
	return q.n, q.nbytes
}

func (q *consoleQuarantine) Release(ctx context.Context, id, who string) (string, error) {
	st := q.store()
	m, err := st.Get(id)
	if err != nil {
		return "", err
	}
	how, err := release.Mail(ctx, q.cfg(), st, m, who)
	if _, notRecorded := err.(*release.NotRecorded); notRecorded {
		return how + " (not recorded: " + err.Error() + ")", nil
	}
	q.forget()
	return how, err
}

func (q *consoleQuarantine) Delete(id, who string) error {
	st := q.store()
	m, err := st.Get(id)
	if err != nil {
		return err
	}
	err = release.Delete(st, m, who)
	if _, notRecorded := err.(*release.NotRecorded); notRecorded {
		err = nil // deleted all the same
	}
	q.forget()
	return err
}

// forget has the next Usage count again.
func (q *consoleQuarantine) forget() {
	q.mu.Lock()
	q.at = time.Time{}
	q.mu.Unlock()
}
