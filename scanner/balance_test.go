package scanner

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/enginetest"
)

// listeners are endpoints that accept and hold connections: what the
// balancing sees of an engine.
func listeners(t *testing.T, n int) []Endpoint {
	var eps []Endpoint
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { c.Read(make([]byte, 1)); c.Close() }()
			}
		}()
		eps = append(eps, Endpoint{Network: "tcp", Address: ln.Addr().String(), Name: ln.Addr().String()})
	}
	return eps
}

// spread runs 24 requests of 30 ms, 6 at a time, and counts them by
// endpoint.
func spread(t *testing.T, p *Pool) map[string]int {
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	for range 24 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := p.Do(context.Background(), func(c *Conn) (bool, error) {
				mu.Lock()
				got[c.Endpoint().Name]++
				mu.Unlock()
				time.Sleep(30 * time.Millisecond)
				return true, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	return got
}

// TestBalanceLeastAndFailover: with av_balance = least the requests of a
// busy gateway go to the endpoint with the fewest under way, so three
// engines share them; with failover the first that answers takes them
// all, and the next takes over when it is down.
func TestBalanceLeastAndFailover(t *testing.T) {
	eps := listeners(t, 3)
	least := spread(t, &Pool{Engine: "test", Endpoints: eps, MaxIdle: 8})
	for _, e := range eps {
		if n := least[e.Name]; n < 4 {
			t.Errorf("least: %s took %d of 24: %v", e.Name, n, least)
		}
	}
	fo := spread(t, &Pool{Engine: "test", Endpoints: eps, MaxIdle: 8, Failover: true})
	if fo[eps[0].Name] != 24 {
		t.Errorf("failover: %v", fo)
	}
	dead := append([]Endpoint{{Network: "tcp", Address: "127.0.0.1:1", Name: "dead"}}, eps...)
	fo = spread(t, &Pool{Engine: "test", Endpoints: dead, MaxIdle: 8, Failover: true})
	if fo[eps[0].Name] != 24 {
		t.Errorf("failover past a dead first: %v", fo)
	}
}

// TestEngineLostMidScanGoesToAnother: an engine killed while a scan is
// under way on it (a clamd stopped, the request sent, no answer yet) is
// marked down and the scan is made by the other engine, not failed.
func TestEngineLostMidScanGoesToAnother(t *testing.T) {
	first, second := enginetest.Clamd(t, ""), enginetest.Clamd(t, "")
	eps, err := ParseEndpoints(first.Sock+", "+second.Sock, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cl := NewClamd(&Pool{Endpoints: eps, Failover: true}, false) // the first engine first
	first.Freeze()                                               // the request is taken, never answered
	done := make(chan error, 1)
	var v Verdict
	go func() {
		var err error
		v, err = cl.Scan(ctx(t), object(t, []byte(eicar.String)))
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	first.Stop() // killed with the request under way
	if err := <-done; err != nil || !strings.HasPrefix(v.Name(), "Eicar-Test-Signature") || !strings.Contains(v.Engine, second.Sock) {
		t.Fatalf("%+v %v (want the second engine's detection)", v, err)
	}
}
