package proxy

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// MinRate is the least average rate, in bytes a second, at which a client
// must send a body (an HTTP upload, a mail's DATA, an FTP upload) once
// PaceGrace has passed: a client trickling a byte now and then would
// otherwise hold its slot for as long as it likes. 1 KiB/s is far below
// any real link.
const MinRate = 1024

// PaceGrace is how long a sender may go below MinRate before it counts.
const PaceGrace = 30 * time.Second

// paceGrace is PaceGrace, shortened by tests (SetPaceGrace).
var paceGrace atomic.Int64

func init() { paceGrace.Store(int64(PaceGrace)) }

// SetPaceGrace changes the grace, for tests, and returns the old one.
func SetPaceGrace(d time.Duration) time.Duration { return time.Duration(paceGrace.Swap(int64(d))) }

// ErrTooSlow is a sender held below MinRate.
var ErrTooSlow = errors.New("the sender is slower than the gateway's minimum rate")

// Paced reads r (which reads from c, when c is not nil) with a deadline of
// idle on each read, and, when minRate is above 0, fails once the average
// rate since the first read falls below it after PaceGrace.
func Paced(r io.Reader, c net.Conn, idle time.Duration, minRate int64) io.Reader {
	return &paced{r: r, c: c, idle: idle, min: minRate}
}

type paced struct {
	r     io.Reader
	c     net.Conn
	idle  time.Duration
	min   int64
	start time.Time
	n     int64
}

func (p *paced) Read(b []byte) (int, error) {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	if p.c != nil && p.idle > 0 {
		p.c.SetReadDeadline(time.Now().Add(p.idle))
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.min > 0 && err == nil {
		if el := time.Since(p.start); el > time.Duration(paceGrace.Load()) && float64(p.n) < el.Seconds()*float64(p.min) {
			return n, ErrTooSlow
		}
	}
	return n, err
}
