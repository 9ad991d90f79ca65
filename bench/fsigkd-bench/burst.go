package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// burstFigure measures how fast clients are admitted when every slot is
// held by kept-alive clients that ask again as soon as they have their
// answer (the shipped pre_spawn, 64, each held so): a burst of new
// clients, one at a time, each asking one object on a new connection.
// A waiting client takes the slot of a session the moment it goes idle.
func burstFigure(dir string) {
	o := startOrigin()
	port := freePort()
	d := startWith(filepath.Join(dir, "burst"), port, fmt.Sprintf("[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\n", port))
	defer stop(d)
	proxy := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	const held = 64
	for range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := client(proxy)
			cl.Transport.(*http.Transport).MaxIdleConnsPerHost = 1
			for ctx.Err() == nil {
				if resp, err := cl.Get("http://" + o.addr + "/small"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	time.Sleep(time.Second)
	const burst = 500
	var lat []time.Duration
	start := time.Now()
	for range burst {
		t := time.Now()
		c, err := net.DialTimeout("tcp", proxy, 30*time.Second)
		check(err)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "GET http://%s/small HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", o.addr, o.addr)
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			check(fmt.Errorf("a client of the burst: %q %v", line, err))
		}
		lat = append(lat, time.Since(t))
	}
	took := time.Since(start)
	cancel()
	wg.Wait()
	fmt.Printf("## A burst behind busy kept-alive clients (%d slots, each held by a client asking again at once)\n\n| clients | time | clients/s | p50 | p99 |\n|---|---|---|---|---|\n", held)
	fmt.Printf("| %d, one at a time | %s | %.0f | %s | %s |\n\n", burst, took.Round(time.Millisecond), burst/took.Seconds(), pct(lat, .5).Round(time.Microsecond), pct(lat, .99).Round(time.Microsecond))
}
