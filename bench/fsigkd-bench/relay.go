package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// startRelay starts nginx as a forward relay to origin that does not
// scan: the limit a scanning proxy is measured against. proxy_pass keeps
// its upstream connections alive (as fsigkd keeps its server
// connections), one worker process per core, and it writes an access log
// line per request, unbuffered, as fsigkd does. It gives the relay's
// address and process, or "" and nil when nginx is not installed.
func startRelay(dir, origin string) (string, *daemon) {
	nginx := lookup("nginx")
	if nginx == "" {
		fmt.Fprintln(os.Stderr, "fsigkd-bench: nginx is not installed: no figure for a relay that does not scan")
		return "", nil
	}
	check(os.MkdirAll(dir, 0o777))
	os.Chmod(dir, 0o777)
	port := freePort()
	conf := fmt.Sprintf(`daemon off;
worker_processes auto;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 4096; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	keepalive_requests 100000;
	upstream origin { server %[2]s; keepalive 64; keepalive_requests 100000; }
	server {
		listen 127.0.0.1:%[3]d;
		location / {
			proxy_pass http://origin;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_max_temp_file_size 0;
		}
	}
}
`, dir, origin, port)
	check(os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644))
	var p started
	addr := p.run(port, nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	return addr, p[0]
}

// groupCPU is the CPU time of every process in process group pgid; 0
// for pgid 0, a path with no process of its own (direct), whose /proc
// is not read.
func groupCPU(pgid int) time.Duration {
	if pgid == 0 {
		return 0
	}
	return cpuOf(func(pgrp int, _ string) bool { return pgrp == pgid })
}

// perThousand is a CPU time spent on n objects, in seconds per 1,000.
func perThousand(cpu time.Duration, n int) float64 {
	return cpu.Seconds() / float64(n) * 1000
}

// cachedAnswers counts the lines of d's access log whose verdict was its
// verdict cache's, not a scan's.
func cachedAnswers(d *daemon) int {
	b, _ := os.ReadFile(filepath.Join(d.dir, "log", "access.log"))
	return bytes.Count(b, []byte("verdict%20cached"))
}

// clamdCPU is the CPU time of every clamd process.
func clamdCPU() time.Duration {
	return cpuOf(func(_ int, comm string) bool { return comm == "clamd" })
}
