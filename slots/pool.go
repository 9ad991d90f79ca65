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
// see an ordinary net.Listener.
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
	held  []bool        // slots whose semaphore is taken
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

// TryAcquire reserves the lowest free slot, or reports that none is free.
// A reserved slot shows in the semaphores only once Hold marks it: the
// listener reserves a slot before it waits in accept, and that wait is no
// connection.
func (p *Pool) TryAcquire() (int, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) == 0 {
		return 0, false, nil
	}
	return heap.Pop(&p.free).(int), true, nil
}

// Lowest trades reserved slot i for a lower one freed meanwhile (the
// listener reserves before it waits in accept): a connection gets the
// lowest slot free when it arrives.
func (p *Pool) Lowest(i int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) > 0 && p.free[0] < i {
		j := heap.Pop(&p.free).(int)
		heap.Push(&p.free, i)
		return j
	}
	return i
}

// Hold marks reserved slot i as holding a connection, in the semaphores.
func (p *Pool) Hold(i int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sem == nil {
		return nil
	}
	if err := p.sem.TryTake(i); err != nil {
		return fmt.Errorf("slot %d: %w", i, err)
	}
	p.held[i] = true
	return nil
}

// Acquire waits for a free slot until ctx ends.
func (p *Pool) Acquire(ctx context.Context) (int, error) {
	for {
		p.mu.Lock()
		wait := p.freed
		p.mu.Unlock()
		i, ok, err := p.TryAcquire()
		if err != nil {
			return 0, err
		}
		if ok {
			return i, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return 0, ctx.Err()
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
