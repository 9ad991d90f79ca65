// Package slots limits each service to pre_spawn connections and numbers
// them. Slots are numbered from 0 and the lowest free one is always taken,
// so the slot in the access log (PROXY-STAT:[service]:[slot]:...) tells how
// busy the service was. The pool mirrors every take and release into the
// service's System V semaphore set (package ipc), which `fsigkd status`
// reads and which the kernel resets through SEM_UNDO when a worker dies.
//
// Listener wraps a service's listener: it takes a slot before it accepts,
// so when every slot is busy the service stops accepting (M02) and new
// clients wait in the kernel's listen backlog; it rides out EMFILE/ENFILE
// (M13, with a back-off) and clients that leave at once (M20). The proxies
// see an ordinary net.Listener. A service calls Started on a connection
// once its first request has come: until then the connection is fresh, and
// when every slot is busy and a client waits, the oldest fresh connection
// (or the oldest idle one, through the service's Evict) gives its slot.
package slots

import (
	"container/heap"
	"context"
	"fmt"
	"sync"

	"github.com/fsigkd/fsigkd/ipc"
)

// Pool hands out slot numbers 0..N-1, lowest free first.
type Pool struct {
	mu    sync.Mutex
	free  intHeap
	n     int
	sem   *ipc.SemSet
	freed chan struct{} // closed and replaced whenever a slot frees
	held  []bool        // slots whose semaphore this pool took
}

// NewPool makes a pool of n slots. sem may be nil (no semaphore mirror).
func NewPool(n int, sem *ipc.SemSet) *Pool {
	p := &Pool{n: n, sem: sem, freed: make(chan struct{}), held: make([]bool, n)}
	p.free = make(intHeap, n)
	for i := range p.free {
		p.free[i] = i
	}
	return p
}

// Size is the number of slots.
func (p *Pool) Size() int { return p.n }

// InUse is the number of slots taken.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n - len(p.free)
}

// TryAcquire takes the lowest free slot (in the semaphores too), or
// reports that none is free. A semaphore that disagrees with the pool is
// an error, the slot is taken all the same: `fsigkd status` will be off,
// the service is not.
func (p *Pool) TryAcquire() (int, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) == 0 {
		return 0, false, nil
	}
	i := heap.Pop(&p.free).(int)
	if p.sem == nil {
		return i, true, nil
	}
	if err := p.sem.TryTake(i); err != nil {
		return i, true, fmt.Errorf("slot %d: %w", i, err)
	}
	p.held[i] = true
	return i, true, nil
}

// Wait returns once a slot is free (without taking it), or when ctx ends.
// The one goroutine that accepts waits before it accepts, so that a full
// service leaves new clients in the listen backlog, and takes the lowest
// free slot only when a client has come.
func (p *Pool) Wait(ctx context.Context) error {
	_, err := p.WaitOr(ctx, nil)
	return err
}

// WaitOr is Wait that also returns, woken, when wake (nil: never) says
// something else may have changed.
func (p *Pool) WaitOr(ctx context.Context, wake <-chan struct{}) (woken bool, err error) {
	for {
		p.mu.Lock()
		free, wait := len(p.free) > 0, p.freed
		p.mu.Unlock()
		if free {
			return false, nil
		}
		select {
		case <-wait:
		case <-wake:
			return true, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// Release frees slot i.
func (p *Pool) Release(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held[i] {
		// A failed give leaves the semaphore showing the slot taken; the
		// pool itself stays right, and SEM_UNDO settles it at exit.
		_ = p.sem.Give(i)
		p.held[i] = false
	}
	heap.Push(&p.free, i)
	close(p.freed)
	p.freed = make(chan struct{})
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
