package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// fleetFigures measures a fleet: one gateway pinned to one core
// (taskset), against two gateways each pinned to a core of its own, both
// behind the same HAProxy (send-proxy-v2, round robin), the same load
// through it: 1 KiB objects, each new (scanned), and 10 KiB mails. The
// gateways run the shipped settings (the bundled fsavd each, on its
// gateway's core) with proxy_protocol_from and a shared Redis. HAProxy,
// the clients, the origin and the sink are not pinned: on a machine with
// two cores they share them with the gateways. Then the shared verdict
// cache's cost: an object's latency scanned, answered by the gateway's
// own cache, and answered from Redis by a gateway that never met it.
func fleetFigures(dir string) {
	haproxy, redis, taskset := lookup("haproxy"), lookup("redis-server"), lookup("taskset")
	source, sink := lookup("smtp-source"), lookup("smtp-sink")
	if haproxy == "" || redis == "" || taskset == "" || source == "" || sink == "" {
		fmt.Println("## Fleet\n\nskipped: haproxy, redis-server, taskset (util-linux), smtp-source and smtp-sink (postfix) are needed")
		return
	}
	if numCPU() < 2 {
		fmt.Println("## Fleet\n\nskipped: two cores are needed")
		return
	}
	var procs started
	defer procs.stopAll()
	origin := startOrigin()
	sinkPort := freePort()
	sinkArgs := []string{sink, "127.0.0.1:" + strconv.Itoa(sinkPort), "200"}
	if os.Geteuid() == 0 {
		sinkArgs = []string{sink, "-u", "nobody", "127.0.0.1:" + strconv.Itoa(sinkPort), "200"}
	}
	procs.run(sinkPort, sinkArgs...)
	redisPort := freePort()
	procs.run(redisPort, redis, "--bind", "127.0.0.1", "--port", strconv.Itoa(redisPort), "--save", "", "--appendonly", "no")

	type gateway struct{ http, smtp, pgid int }
	var gws []gateway
	for core := 0; core < 2; core++ {
		g := gateway{http: freePort(), smtp: freePort()}
		gdir := filepath.Join(dir, fmt.Sprintf("fleet-gw%d", core))
		check(os.MkdirAll(gdir, 0o755))
		ini := fmt.Sprintf("base_dir = %s\nlisten_backlog = %d\nconsole = no\nfsavd_start = yes\nverdict_cache_redis = redis://127.0.0.1:%d/0\n"+
			"[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\nproxy_protocol_from = 127.0.0.1\n"+
			"[smtp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\nparent_server_host = 127.0.0.1\nparent_server_port = %d\nproxy_protocol_from = 127.0.0.1\n",
			gdir, *backlog, redisPort, g.http, g.smtp, sinkPort)
		conf := filepath.Join(gdir, "fsigk.ini")
		check(os.WriteFile(conf, []byte(ini), 0o644))
		// The master, its workers and its fsavd inherit the core.
		procs.run(g.http, taskset, "-c", strconv.Itoa(core), *bin, "-f", "-c", conf)
		g.pgid = procs[len(procs)-1].cmd.Process.Pid // taskset runs the master in its place
		waitPort(g.smtp)
		gws = append(gws, g)
	}

	// balancer starts HAProxy in front of the gateways given: web and
	// mail across them, and a web frontend to each alone.
	balancer := func(of []gateway) (web, mail string, alone []string, d *daemon) {
		webPort, mailPort := freePort(), freePort()
		var b strings.Builder
		fmt.Fprintf(&b, "global\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n")
		fmt.Fprintf(&b, "frontend web\n  bind 127.0.0.1:%d\n  default_backend web\nbackend web\n  balance roundrobin\n", webPort)
		for i, g := range of {
			fmt.Fprintf(&b, "  server gw%d 127.0.0.1:%d send-proxy-v2\n", i, g.http)
		}
		fmt.Fprintf(&b, "frontend mail\n  bind 127.0.0.1:%d\n  default_backend mail\nbackend mail\n  balance roundrobin\n", mailPort)
		for i, g := range of {
			fmt.Fprintf(&b, "  server gw%d 127.0.0.1:%d send-proxy-v2\n", i, g.smtp)
		}
		for i, g := range of {
			p := freePort()
			fmt.Fprintf(&b, "frontend alone%d\n  bind 127.0.0.1:%d\n  default_backend alone%d\nbackend alone%d\n  server gw%d 127.0.0.1:%d send-proxy-v2\n", i, p, i, i, i, g.http)
			alone = append(alone, "127.0.0.1:"+strconv.Itoa(p))
		}
		conf := filepath.Join(dir, fmt.Sprintf("haproxy-%d.cfg", len(of)))
		check(os.WriteFile(conf, []byte(b.String()), 0o644))
		cmd := daemonCommand(haproxy, "-db", "-f", conf)
		check(cmd.Start())
		waitPort(webPort)
		waitPort(mailPort)
		return "127.0.0.1:" + strconv.Itoa(webPort), "127.0.0.1:" + strconv.Itoa(mailPort), alone, &daemon{cmd: cmd}
	}

	clients := max(*conc, 16)
	fmt.Printf("## Fleet: HAProxy in front, gateways pinned with taskset (%d clients; %d 1 KiB objects, each new; %d 10 KiB mails, 20 sessions)\n\n", clients, *requests, *mails)
	fmt.Println("| gateways | 1 KiB objects/s | p50 | p99 | gateways' CPU ms per 1,000 objects | 10 KiB mails/s | gateways' CPU ms per mail |\n|---|---|---|---|---|---|---|")
	// cpu is what the gateways' processes (masters, workers, fsavd)
	// have spent so far.
	cpu := func() time.Duration {
		return cpuOf(func(pgrp int, _ string) bool { return pgrp == gws[0].pgid || pgrp == gws[1].pgid })
	}
	var rates [2][2]float64
	for n := 1; n <= 2; n++ {
		web, mail, _, lb := balancer(gws[:n])
		// A first round warms the workers and engines; the second counts.
		run(client(web), "http://"+origin.addr+"/small", *requests/4, clients)
		c0 := cpu()
		lat, total := run(client(web), "http://"+origin.addr+"/small", *requests, clients)
		c1 := cpu()
		start := time.Now()
		out, err := exec.Command(source, "-s", "20", "-m", strconv.Itoa(*mails), "-l", "10240", "-f", "a@example.com", "-t", "b@example.com", mail).CombinedOutput()
		if err != nil {
			stop(lb)
			check(fmt.Errorf("smtp-source: %v %s", err, out))
		}
		rates[n-1] = [2]float64{float64(len(lat)) / total.Seconds(), float64(*mails) / time.Since(start).Seconds()}
		c2 := cpu()
		fmt.Printf("| %d (core%s %s) | %.0f | %s | %s | %.0f | %.0f | %.2f |\n", n, map[int]string{1: "", 2: "s"}[n], map[int]string{1: "0", 2: "0 and 1"}[n],
			rates[n-1][0], pct(lat, .5).Round(time.Microsecond), pct(lat, .99).Round(time.Microsecond),
			float64((c1-c0).Milliseconds())*1000/float64(max(len(lat), 1)), rates[n-1][1], float64((c2-c1).Milliseconds())/float64(*mails))
		stop(lb)
	}
	fmt.Printf("\nTwo against one: %.2fx the objects, %.2fx the mails.\n\n", rates[1][0]/rates[0][0], rates[1][1]/rates[0][1])

	// The shared cache: objects the same each time they are asked for
	// (/same/N), one client, one at a time.
	_, _, alone, lb := balancer(gws)
	defer stop(lb)
	const objects = 1000
	salt := rand.Uint64()
	clients2 := map[string]*http.Client{alone[0]: client(alone[0]), alone[1]: client(alone[1])}
	get := func(via string, i int) time.Duration {
		cl := clients2[via]
		t := time.Now()
		resp, err := cl.Get(fmt.Sprintf("http://%s/same/%d-%d", origin.addr, salt, i))
		check(err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			check(fmt.Errorf("/same/%d: %d", i, resp.StatusCode))
		}
		return time.Since(t)
	}
	var scan, local, shared []time.Duration
	for i := 0; i < objects; i++ {
		scan = append(scan, get(alone[0], i))
	}
	time.Sleep(500 * time.Millisecond) // the verdicts reach Redis in the background
	for i := 0; i < objects; i++ {
		local = append(local, get(alone[0], i))
	}
	for i := 0; i < objects; i++ {
		shared = append(shared, get(alone[1], i))
	}
	cached := func(gw int) int {
		b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("fleet-gw%d", gw), "log", "access.log"))
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "/same/") && strings.Contains(l, "verdict%20cached") {
				n++
			}
		}
		return n
	}
	fmt.Printf("## The shared verdict cache: %d objects of 1 KiB, one client, through HAProxy to one gateway\n\n| answer | p50 | p99 | answered by a cache |\n|---|---|---|---|\n", objects)
	fmt.Printf("| scanned (first met, gateway 1) | %s | %s | - |\n", pct(scan, .5).Round(time.Microsecond), pct(scan, .99).Round(time.Microsecond))
	fmt.Printf("| the gateway's own cache (again, gateway 1) | %s | %s | %d of %d |\n", pct(local, .5).Round(time.Microsecond), pct(local, .99).Round(time.Microsecond), cached(0), objects)
	fmt.Printf("| Redis, shared (first met by gateway 2) | %s | %s | %d of %d |\n\n", pct(shared, .5).Round(time.Microsecond), pct(shared, .99).Round(time.Microsecond), cached(1), objects)
}
