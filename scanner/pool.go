package scanner

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/internal/sendwait"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/metrics"
)

// Endpoint is one address of an engine (see conf.ParseEndpoints).
type Endpoint = conf.Endpoint

// ParseEndpoints reads a comma-separated list of endpoints.
var ParseEndpoints = conf.ParseEndpoints

// Pool holds the connections to one engine's endpoints.
type Pool struct {
	Engine    string // for errors and logs
	Endpoints []Endpoint
	Timeout   time.Duration // each dial, and each request's reads and writes (zero: 60 s)
	MaxIdle   int           // idle connections kept per endpoint (zero: 4)
	RetryMin  time.Duration // first back-off of a failed endpoint (zero: 500 ms)
	RetryMax  time.Duration // its cap (zero: 30 s)
	Log       *zap.Logger   // endpoint state changes; nil: none
	// DownMsg is the documented message for an endpoint that cannot be
	// reached (M25 for anti-virus, M24 for anti-spam), or nil.
	DownMsg func(name string) catalog.Message
	// Prepare runs on each new connection before it is used (greeting,
	// options); nil: none.
	Prepare func(c *Conn) error
	// Failover sends every request to the first endpoint that answers;
	// otherwise (av_balance = least) each goes to the answering endpoint
	// with the fewest requests under way, the next in turn on a tie.
	Failover bool

	mu     sync.Mutex
	eps    []*endpointState
	next   int
	closed bool
}

type endpointState struct {
	Endpoint
	busy      int // requests under way
	idle      []*Conn
	downUntil time.Time
	failures  int
	lastErr   error
	probing   bool
}

// Conn is one connection to an endpoint.
type Conn struct {
	net.Conn
	R      *bufio.Reader
	Reused bool // came from the idle pool
	// Seq counts the requests sent on the connection, for protocols that
	// number them (clamd's IDSESSION).
	Seq int
	// Rules: the engine took the type and name rules on this connection
	// (fsavd's BLOCKTYPES and BLOCKNAMES).
	Rules bool
	// Fildes: the engine takes the spooled file's descriptor on this
	// connection (fsavd's SCANFD) rather than opening it by path.
	Fildes bool
	// Follow: the engine follows a file as it is spooled on this
	// connection (fsavd's FOLLOWFD).
	Follow bool
	// Bytes: the engine takes a small object's bytes on this connection
	// (fsavd's SCANBYTES).
	Bytes bool
	ep    *endpointState
}

// ask writes a request whose answer is read next: its first bytes are
// waited for with the write (sendwait.Ask), so that the first read finds
// them.
func (c *Conn) ask(b []byte) error { return sendwait.Ask(c.Conn, c.R, b) }

// Endpoint is the endpoint the connection goes to.
func (c *Conn) Endpoint() Endpoint { return c.ep.Endpoint }

func (p *Pool) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return 60 * time.Second
}

func (p *Pool) init() {
	if p.eps == nil {
		for _, e := range p.Endpoints {
			p.eps = append(p.eps, &endpointState{Endpoint: e})
		}
		pools.Lock()
		pools.list = append(pools.list, p)
		pools.Unlock()
	}
}

// pools are the process's pools, for EndpointStates.
var pools struct {
	sync.Mutex
	list []*Pool
}

// EndpointState is whether an engine endpoint is used (Up) or skipped,
// marked down.
type EndpointState struct {
	Engine, Endpoint string
	Up               bool
	LastError        string // why it was last marked down ("" never)
}

// EndpointStates are the states of the endpoints of every engine this
// process has used, for the metrics.
func EndpointStates() []EndpointState {
	pools.Lock()
	list := slices.Clone(pools.list)
	pools.Unlock()
	var out []EndpointState
	for _, p := range list {
		p.mu.Lock()
		for _, e := range p.eps {
			st := EndpointState{Engine: p.Engine, Endpoint: e.Name, Up: e.failures == 0}
			if e.lastErr != nil {
				st.LastError = e.lastErr.Error()
			}
			out = append(out, st)
		}
		p.mu.Unlock()
	}
	return out
}

// Close drops the idle connections and stops the probes.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	p.closed = true
	for _, e := range p.eps {
		for _, c := range e.idle {
			c.Close()
		}
		e.idle = nil
	}
}

// get hands out a connection: an idle one, or a new one to the next
// endpoint that is not marked down. When every endpoint is down it fails
// at once.
func (p *Pool) get(ctx context.Context) (*Conn, error) {
	p.mu.Lock()
	p.init()
	now := time.Now()
	var order []*endpointState
	for _, e := range p.turn() {
		if now.Before(e.downUntil) {
			continue
		}
		if k := len(e.idle); k > 0 {
			c := e.idle[k-1]
			e.idle = e.idle[:k-1]
			e.busy++
			p.mu.Unlock()
			c.Reused = true
			return c, nil
		}
		order = append(order, e)
	}
	var lastErr error
	var lastEP *endpointState
	if len(order) == 0 {
		// All down: the error of the endpoint that failed last.
		for _, e := range p.eps {
			if lastEP == nil || e.downUntil.After(lastEP.downUntil) {
				lastEP = e
			}
		}
		lastErr = lastEP.lastErr
	}
	p.mu.Unlock()
	for _, e := range order {
		c, err := p.dial(ctx, e)
		if err == nil {
			p.mu.Lock()
			e.busy++ // under way until on gives it back
			p.mu.Unlock()
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, &Error{Kind: Timeout, Engine: p.Engine, Endpoint: e.Name, Err: ctx.Err()}
		}
		var se *Error
		if errors.As(err, &se) && se.Kind != Down {
			return nil, err // it answered, and said it cannot scan
		}
		if catalog.OutOfFiles(err) {
			// Our own shortage, not the engine's: it is not marked down
			// (no M25), and M13 says what it is.
			m := catalog.M13(err, "scanner/connect", false)
			return nil, &Error{Kind: Local, Engine: p.Engine, Endpoint: e.Name, Err: err, Msg: &m}
		}
		p.markDown(e, err)
		lastErr, lastEP = err, e
	}
	se := &Error{Kind: Down, Engine: p.Engine, Endpoint: lastEP.Name, Err: lastErr}
	if p.DownMsg != nil {
		m := p.DownMsg(lastEP.Name)
		se.Msg = &m
	}
	return nil, se
}

// turn is the order in which the endpoints are asked for this request
// (p.mu held): with Failover as listed; else the fewest requests under
// way first, ties taken in turn from one request to the next.
func (p *Pool) turn() []*endpointState {
	n := len(p.eps)
	if p.Failover {
		return p.eps
	}
	start := p.next
	p.next = (p.next + 1) % n
	out := make([]*endpointState, n)
	for i := range n {
		out[i] = p.eps[(start+i)%n]
	}
	slices.SortStableFunc(out, func(a, b *endpointState) int { return a.busy - b.busy })
	return out
}

func (p *Pool) dial(ctx context.Context, e *endpointState) (*Conn, error) {
	d := net.Dialer{Timeout: p.timeout()}
	nc, err := d.DialContext(ctx, e.Network, e.Address)
	if err != nil {
		return nil, err
	}
	c := &Conn{Conn: nc, R: bufio.NewReaderSize(nc, 4096), ep: e}
	if p.Prepare != nil {
		c.SetDeadline(time.Now().Add(p.timeout()))
		if err := p.Prepare(c); err != nil {
			c.Close()
			return nil, err
		}
		c.SetDeadline(time.Time{})
	}
	p.mu.Lock()
	recovered := e.failures > 0
	e.failures, e.downUntil, e.lastErr = 0, time.Time{}, nil
	p.mu.Unlock()
	if recovered && p.Log != nil {
		p.Log.Info("engine answers again", zap.String("engine", p.Engine), zap.String("endpoint", e.Name))
	}
	return c, nil
}

// DialFresh makes a new connection to the first endpoint that is not
// marked down (its Prepare run: a greeting read) and keeps it idle; for
// what an engine says only when a connection opens.
func (p *Pool) DialFresh(ctx context.Context) error {
	p.mu.Lock()
	p.init()
	now := time.Now()
	var order []*endpointState
	for _, e := range p.eps {
		if !now.Before(e.downUntil) {
			order = append(order, e)
		}
	}
	p.mu.Unlock()
	err := errors.New("every endpoint is marked down")
	for _, e := range order {
		var c *Conn
		if c, err = p.dial(ctx, e); err == nil {
			p.put(c)
			return nil
		}
	}
	return err
}

// markDown opens the breaker of e for a doubling interval and starts a
// background probe that closes it as soon as the endpoint answers.
func (p *Pool) markDown(e *endpointState, err error) {
	lo, hi := p.RetryMin, p.RetryMax
	if lo <= 0 {
		lo = 500 * time.Millisecond
	}
	if hi <= 0 {
		hi = 30 * time.Second
	}
	p.mu.Lock()
	first := e.failures == 0
	e.failures++
	e.lastErr = err
	e.downUntil = time.Now().Add(min(lo<<min(e.failures-1, 16), hi))
	for _, c := range e.idle {
		c.Close()
	}
	e.idle = nil
	probe := !e.probing && !p.closed
	e.probing = e.probing || probe
	p.mu.Unlock()
	if first {
		metrics.Add("fsigkd_engine_failovers_total", 1, "engine", p.Engine)
	}
	if first && p.Log != nil {
		if p.DownMsg != nil {
			logs.Emit(p.Log, p.DownMsg(e.Name))
		}
		p.Log.Warn("engine endpoint down", zap.String("engine", p.Engine), zap.String("endpoint", e.Name), zap.Error(err))
	}
	if probe {
		go p.probe(e, lo)
	}
}

// probe dials e every interval until it answers, then clears its breaker.
// One probe per endpoint is in flight at a time.
func (p *Pool) probe(e *endpointState, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.timeout())
		c, err := p.dial(ctx, e)
		cancel()
		if err == nil {
			p.put(c)
			break
		}
		p.mu.Lock()
		e.lastErr = err
		p.mu.Unlock()
	}
	p.mu.Lock()
	e.probing = false
	p.mu.Unlock()
}

// dropIdle closes the idle connections to an endpoint.
func (p *Pool) dropIdle(e *endpointState) {
	p.mu.Lock()
	idle := e.idle
	e.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

func (p *Pool) put(c *Conn) {
	max := p.MaxIdle
	if max <= 0 {
		max = 4
	}
	c.SetDeadline(time.Time{})
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(c.ep.idle) >= max || c.R.Buffered() > 0 {
		c.Close()
		return
	}
	c.Reused = false
	c.ep.idle = append(c.ep.idle, c)
}

// Do runs one request on a pooled connection. fn says whether the
// connection may be used again. A request that fails on a reused
// connection with a connection error (the engine closed it while it sat
// idle) is tried once more on a new one, the other idle connections to
// that endpoint dropped.
func (p *Pool) Do(ctx context.Context, fn func(c *Conn) (reuse bool, err error)) error {
	for attempt := 0; ; attempt++ {
		c, err := p.get(ctx)
		if err != nil {
			return err
		}
		err = p.on(ctx, c, fn)
		if err == nil {
			return nil
		}
		if c.Reused && attempt == 0 && connBroken(err) {
			// The engine closed it while it sat idle: it restarted, and
			// every idle connection to it is as dead. They go, and the
			// request is tried once more on a new connection.
			p.dropIdle(c.ep)
			continue
		}
		if connBroken(err) && ctx.Err() == nil && len(p.eps) > 1 && attempt < len(p.eps) {
			// The engine went away in the middle of the request (killed,
			// crashed): it is marked down and the request goes to
			// another, so that an engine lost under load loses no scan.
			// (With one engine there is none to go to: the request
			// fails, and the next dial says whether it is down.)
			p.markDown(c.ep, err)
			continue
		}
		var se *Error
		if errors.As(err, &se) {
			return err
		}
		kind := Protocol
		var ne net.Error
		switch {
		case ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()):
			kind = Timeout
		case connBroken(err):
			kind = Down
		}
		return &Error{Kind: kind, Engine: p.Engine, Endpoint: c.ep.Name, Err: err}
	}
}

// on runs fn on c under the engine's timeout (and ctx), then puts c back
// in the pool or, when fn says not to reuse it or failed, closes it.
func (p *Pool) on(ctx context.Context, c *Conn, fn func(c *Conn) (reuse bool, err error)) error {
	deadline := time.Now().Add(p.timeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	reuse, err := fn(c)
	stop()
	p.mu.Lock()
	c.ep.busy--
	p.mu.Unlock()
	if err == nil && reuse {
		p.put(c)
	} else {
		c.Close()
	}
	return err
}

// connBroken tells a connection that the other side closed from a reply
// that made no sense.
func connBroken(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}
