package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/proxy/icap"
	"github.com/fsigkd/fsigkd/scanner"
)

// icapRawFigures measures ICAP servers without Squid: -c clients, each on
// a kept-alive connection, send RESPMOD requests of a 1 KiB object (each
// object unique, so that no verdict is a cache's) straight to fsigkd's
// ICAP server (its bundled fsavd, and clamd), c-icap's virus_scan (the
// same clamd) and a server that reads nothing and answers 204 (the
// ceiling of this client on this machine): each one's rate and the CPU
// each spends per object, the gateway's and clamd's apart.
func icapRawFigures(dir string) {
	if lookup("c-icap") == "" || enginetest.CICAPModules() == "" || *clamd == "" {
		fmt.Println("## ICAP without Squid\n\nskipped: needs c-icap with virus_scan (libc-icap-mod-virus-scan) and a clamd (-clamd; bench/run starts one)")
		return
	}
	os.Chmod(dir, 0o755)
	type server struct {
		name, addr, service string
		ours                func(pgrp int, comm string) bool
	}
	var servers []server

	servers = append(servers, server{"an ICAP server that answers 204 unread (the ceiling)", startNullICAP(), "respmod", nil})

	var procs started
	defer procs.stopAll()
	caddr := procs.cicap(filepath.Join(dir, "c-icap-raw"))
	cpg := procs[len(procs)-1].cmd.Process.Pid
	servers = append(servers, server{"c-icap (virus_scan, clamd)", caddr, "avscan", func(pgrp int, _ string) bool { return pgrp == cpg }})

	for _, e := range []struct{ name, engine string }{
		{"fsigkd (clamd)", "av_engine = clamd\nav_servers = " + *clamd + "\nfsavd_start = no\n"},
		{"fsigkd (its bundled fsavd)", "fsavd_start = yes\n"},
	} {
		port := freePort()
		d := startWithEngine(filepath.Join(dir, "icap-raw-"+strconv.Itoa(port)), port, e.engine,
			fmt.Sprintf("[icap]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\n", port))
		defer stop(d)
		pg := d.cmd.Process.Pid
		servers = append(servers, server{e.name, "127.0.0.1:" + strconv.Itoa(port), "respmod", func(pgrp int, _ string) bool { return pgrp == pg }})
	}
	isClamd := func(_ int, comm string) bool { return comm == "clamd" }

	n := *requests
	fmt.Printf("## ICAP without Squid: RESPMOD of a 1 KiB object, each unique, %d requests, %d clients on kept-alive connections\n\n", n, *conc)
	fmt.Println("| server | objects/s | p50 | the server's CPU s per 1,000 objects | clamd's CPU s per 1,000 objects |\n|---|---|---|---|---|")
	for _, s := range servers {
		// Ready once it answers (c-icap listens before its children
		// take requests), then warm.
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if _, _, err := icapRaw(s.addr, s.service, *conc, *conc); err == nil {
				break
			}
		}
		icapRaw(s.addr, s.service, 200, *conc)
		c0, k0 := time.Duration(0), cpuOf(isClamd)
		if s.ours != nil {
			c0 = cpuOf(s.ours)
		}
		lat, total, err := icapRaw(s.addr, s.service, n, *conc)
		if err != nil {
			fmt.Printf("| %s | failed: %v | | | |\n", s.name, err)
			continue
		}
		cpu, clam := "", ""
		if s.ours != nil {
			cpu = fmt.Sprintf("%.3f", (cpuOf(s.ours)-c0).Seconds()/float64(len(lat))*1000)
			clam = fmt.Sprintf("%.3f", (cpuOf(isClamd)-k0).Seconds()/float64(len(lat))*1000)
		}
		fmt.Printf("| %s | %.0f | %s | %s | %s |\n", s.name, float64(len(lat))/total.Seconds(), pct(lat, .5).Round(time.Microsecond), cpu, clam)
	}
	fmt.Println()
}

// icapObjects numbers the objects icapRaw sends, so that each is unique.
var icapObjects atomic.Uint64

// icapRaw sends n RESPMOD requests over c kept-alive connections to the
// ICAP service at addr, each a 1 KiB object of its own; it gives each
// one's time and the whole run's.
func icapRaw(addr, service string, n, c int) ([]time.Duration, time.Duration, error) {
	const reqHdr = "GET /small HTTP/1.1\r\nHost: origin.test\r\n\r\n"
	const resHdr = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\n\r\n"
	head := fmt.Sprintf("RESPMOD icap://%s/%s ICAP/1.0\r\nHost: %s\r\nAllow: 204\r\nEncapsulated: req-hdr=0, res-hdr=%d, res-body=%d\r\n\r\n",
		addr, service, addr, len(reqHdr), len(reqHdr)+len(resHdr))
	body := []byte(strings.Repeat("clean text of an object, nothing in it. ", 26)[:1024])
	var (
		mu    sync.Mutex
		lat   []time.Duration
		first error
		left  atomic.Int64
		wg    sync.WaitGroup
	)
	left.Store(int64(n))
	start := time.Now()
	for range c {
		wg.Go(func() {
			var conn net.Conn
			var br *bufio.Reader
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			obj := make([]byte, len(body))
			copy(obj, body)
			var mine []time.Duration
			for left.Add(-1) >= 0 {
				binary.BigEndian.PutUint64(obj, icapObjects.Add(1))
				t := time.Now()
				if conn == nil {
					// A new connection, as a client makes one when
					// the server closed the last (c-icap after 100
					// requests, its MaxKeepAliveRequests).
					var err error
					if conn, err = net.Dial("tcp", addr); err != nil {
						mu.Lock()
						first = errors.Join(first, err)
						mu.Unlock()
						return
					}
					br = bufio.NewReader(conn)
				}
				msg := head + reqHdr + resHdr + "400\r\n" + string(obj) + "\r\n0\r\n\r\n"
				_, err := io.WriteString(conn, msg)
				closing := false
				if err == nil {
					closing, err = readICAPResponse(br)
				}
				if err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
					return
				}
				if closing {
					conn.Close()
					conn = nil
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	total := time.Since(start)
	if first != nil || len(lat) < n {
		return nil, 0, fmt.Errorf("%d of %d answered: %v", len(lat), n, first)
	}
	return lat, total, nil
}

// readICAPResponse reads one ICAP response: a 204, or a 200 with the
// object's header and body again; closing: the server closes the
// connection after it.
func readICAPResponse(br *bufio.Reader) (closing bool, err error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return false, err
	}
	if code, err := scanner.ParseICAPStatus(line); err != nil || code != 204 && code != 200 {
		return false, fmt.Errorf("answered %q", line)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return false, err
	}
	closing = strings.EqualFold(h.Get("Connection"), "close")
	// The object's header comes before its body: res-body's offset.
	for _, part := range strings.Split(h.Get("Encapsulated"), ",") {
		if k, v, _ := strings.Cut(strings.TrimSpace(part), "="); k == "res-body" {
			at, _ := strconv.Atoi(v)
			if _, err := br.Discard(at); err != nil {
				return false, err
			}
			_, err = io.Copy(io.Discard, icap.Body(br))
			return closing, err
		}
	}
	return closing, nil // 204, or a header alone
}
