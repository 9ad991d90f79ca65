// Command fsigkd-bench measures a running fsigkd against a direct
// connection, on loopback only: the memory a worker spends per idle
// connection, HTTP objects per second, a large download's throughput with
// and without scanning, and the latency the proxy adds. It starts the
// daemon (the binary given by -fsigkd) and an origin server itself, and
// every loop it runs is bounded in count and time.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/metrics"
	"github.com/fsigkd/fsigkd/scanner"
	"github.com/jlaffaye/ftp"
)

var (
	bin       = flag.String("fsigkd", "fsigkd", "the fsigkd binary")
	idle      = flag.Int("idle", 5000, "idle connections for the memory figure")
	requests  = flag.Int("requests", 3000, "requests for the objects-per-second figure")
	mid       = flag.Bool("mid", false, "small: fetch the 1 MiB object instead of the 1 KiB one")
	bigMiB    = flag.Int("big", 100, "size of the large download, MiB")
	conc      = flag.Int("c", 8, "concurrent clients")
	clamd     = flag.String("clamd", "", "clamd's socket: scan with clamd instead of the bundled fsavd")
	only      = flag.String("only", "", "smtp, ftp, pop, icap, icapraw, peers, https, milter, idle, burst, sigdb, cache, rules, fleet, large or small: those figures alone")
	hashes    = flag.Int("hashes", 2000000, "MD5 signatures of the generated database (sigdb)")
	keptWaits = flag.String("kept-waits", "2,10", "seconds after the kept-alive clients' requests at which their memory is read (idle)")
	bodies    = flag.Int("bodies", 20000, "body signatures, and as many logical ones, of the generated database (sigdb)")
	backlog   = flag.Int("backlog", 0, "listen_backlog of the daemons measured (0, the shipped default: the kernel's somaxconn)")
	mails     = flag.Int("mails", 500, "mails per SMTP figure")
	rounds    = flag.Int("rounds", 1, "rounds of the peers' figures, every path once a round; medians and ranges are shown")
)

func main() {
	// A failure (check) unwinds to here, so that the daemons the figure
	// under way started are stopped by their defers, not left running.
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r)
			}
			fmt.Fprintln(os.Stderr, "fsigkd-bench:", f.err)
			os.Exit(1)
		}
	}()
	flag.Parse()
	if *rounds < 1 {
		fmt.Fprintln(os.Stderr, "fsigkd-bench: -rounds must be 1 or more")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "fsb")
	check(err)
	defer os.RemoveAll(dir)

	switch *only {
	case "smtp":
		mail(dir)
		return
	case "ftp":
		ftpFigures(dir)
		return
	case "pop":
		popFigures(dir)
		return
	case "icap":
		icapFigures(dir)
		return
	case "icapraw":
		icapRawFigures(dir)
		return
	case "https":
		httpsFigures(dir)
		return
	case "peers":
		peerFigures(dir)
		return
	case "milter":
		milterFigures(dir)
		return
	case "idle":
		memory(dir)
		burstFigure(dir)
		return
	case "burst":
		burstFigure(dir)
		return
	case "sigdb":
		sigdbFigures(dir)
		return
	case "cache":
		cacheFigure(startOrigin(), dir)
		return
	case "fleet":
		fleetFigures(dir)
		return
	case "rules":
		rulesFigure(startOrigin(), dir)
		return
	case "large", "small":
		origin, port := startOrigin(), freePort()
		d := startDaemon(dir, port, *bigMiB+1)
		if *only == "large" {
			large(origin, "127.0.0.1:"+strconv.Itoa(port), dir)
		} else {
			small(origin, "127.0.0.1:"+strconv.Itoa(port), dir, d)
		}
		stop(d)
		return
	}
	fmt.Printf("# fsigkd-bench, %s, %d cores, listen_backlog %d\n\n", time.Now().UTC().Format("2006-01-02"), numCPU(), *backlog)
	memory(dir)
	burstFigure(dir)
	origin := startOrigin()
	port := freePort()
	daemon := startDaemon(dir, port, *bigMiB+1)
	proxy := "127.0.0.1:" + strconv.Itoa(port)

	small(origin, proxy, dir, daemon)
	large(origin, proxy, dir)
	latency(origin, proxy, dir)
	stop(daemon)
	cacheFigure(origin, dir)
	rulesFigure(origin, dir)
	mail(dir)
	ftpFigures(dir)
	popFigures(dir)
}

// fatal is a failure the bench cannot go on after.
type fatal struct{ err error }

// check ends the bench on err, stopping what it started on the way out.
func check(err error) {
	if err != nil {
		panic(fatal{err})
	}
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// originServer serves /small (1 KiB), /mid (1 MiB) and /big (-big MiB), each
// answer with a number of its own (writeUnique), and /bigsame, the same
// -big MiB every time (for the verdict cache's figure). Every figure uses it.
type originServer struct {
	addr    string
	big     []byte
	handler http.Handler
}

func startOrigin() *originServer {
	o := &originServer{big: make([]byte, *bigMiB<<20)}
	rand.Read(o.big)
	small := make([]byte, 1024)
	rand.Read(small)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	o.addr = ln.Addr().String()
	mux := http.NewServeMux()
	o.handler = mux
	mid := make([]byte, 1<<20)
	rand.Read(mid)
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) { writeUnique(w, small) })
	mux.HandleFunc("/mid", func(w http.ResponseWriter, r *http.Request) { writeUnique(w, mid) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(o.big)))
		writeUnique(w, o.big)
	})
	mux.HandleFunc("/same/", func(w http.ResponseWriter, r *http.Request) {
		// The same 1 KiB for the same path, each time (the fleet's
		// shared-cache figure).
		sum := sha256.Sum256([]byte(r.URL.Path))
		w.Write(bytes.Repeat(sum[:], 32))
	})
	mux.HandleFunc("/bigsame", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(o.big)))
		w.Write(o.big)
	})
	go http.Serve(ln, mux)
	return o
}

// served numbers the origins' answers.
var served atomic.Uint64

// writeUnique writes body with its first 8 bytes replaced by a number of
// its own, so that no two answers are the same object: every figure but
// the verdict cache's own measures a scan, not a cached verdict.
func writeUnique(w io.Writer, body []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], served.Add(1))
	w.Write(n[:min(8, len(body))])
	if len(body) > 8 {
		w.Write(body[8:])
	}
}

type daemon struct {
	cmd *exec.Cmd
	dir string
}

func engineKeys() string {
	if *clamd != "" {
		return "av_engine = clamd\nav_servers = " + *clamd + "\nfsavd_start = no\n"
	}
	return "fsavd_start = yes\n"
}

// startDaemon runs the HTTP proxy with the shipped [http] settings but
// for its address and, for the "not scanned" row, a max_scan_size below
// the object.
func startDaemon(dir string, port int, maxScanMiB int) *daemon {
	return startWith(dir, port, fmt.Sprintf("[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\n%s",
		port, maxScan(maxScanMiB)))
}

// maxScan is a max_scan_size line when n MiB is below the shipped 100M
// ("" otherwise: the shipped value takes an object of n MiB whole).
func maxScan(n int) string {
	if n >= 100 {
		return ""
	}
	return fmt.Sprintf("max_scan_size = %dM\n", n)
}

func startWith(dir string, port int, sections string) *daemon {
	return startWithEngine(dir, port, engineKeys(), sections)
}

// startWithEngine starts a daemon with the engine keys given.
func startWithEngine(dir string, port int, engine, sections string) *daemon {
	check(os.MkdirAll(dir, 0o755))
	// The shipped global settings, but for base_dir, the engine (when
	// -clamd says) and listen_backlog (when -backlog says).
	ini := fmt.Sprintf("base_dir = %s\nlisten_backlog = %d\n%s%s", dir, *backlog, engine, sections)
	conf := filepath.Join(dir, "fsigk.ini")
	check(os.WriteFile(conf, []byte(ini), 0o644))
	cmd := daemonCommand(*bin, "-f", "-c", conf)
	cmd.Stderr = os.Stderr
	check(cmd.Start())
	waitPort(port)
	return &daemon{cmd: cmd, dir: dir}
}

// daemonCommand is a command for a server the bench starts: in a process
// group of its own, so that stop ends whatever it forked too.
func daemonCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// stop ends a server: SIGTERM, and SIGKILL to its process group after
// 10 s (e2guardian -N ignores SIGTERM: the bench once waited for it until
// killed, its tables printed) or, once it ended, to children it left.
func stop(d *daemon) {
	pgid := d.cmd.Process.Pid
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "fsigkd-bench: %s did not stop on SIGTERM in 10 s; killed\n", d.cmd.Path)
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
}

// workerPID reads a service's worker pid from `fsigkd status`.
func workerPID(d *daemon, service string) int {
	out, err := exec.Command(*bin, "status", "-c", filepath.Join(d.dir, "fsigk.ini")).Output()
	check(err)
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == service {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	check(fmt.Errorf("no %s worker in status", service))
	return 0
}

func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	check(err)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

// memory opens -idle connections to each service that send nothing (an
// HTTP client between requests, an SMTP or FTP client after the greeting),
// and reads the worker's resident memory before and after.
// Only this figure's daemon has more room than the shipped pre_spawn (64):
// room for -idle connections at once.
func memory(dir string) {
	fmt.Printf("## Idle connections\n\n| service | connections | worker RSS before | after | per connection |\n|---|---|---|---|---|\n")
	hp, sp, fp, pp := freePort(), freePort(), freePort(), freePort()
	sinkPort := freePort()
	other := startWith(filepath.Join(dir, "idle"), hp, fmt.Sprintf(
		"[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\npre_spawn = %d\n[smtp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\npre_spawn = %d\nparent_server_host = 127.0.0.1\nparent_server_port = %d\n[ftp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\npre_spawn = %d\n[pop]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\npre_spawn = %d\n",
		hp, *idle+100, sp, *idle+100, sinkPort, fp, *idle+100, pp, *idle+100))
	defer stop(other)
	proxy := "127.0.0.1:" + strconv.Itoa(hp)
	idleRSS("http", workerPID(other, "http"), proxy, func() { http.Get("http://" + proxy + "/") })
	breakdown := keptRSS(workerPID(other, "http"), other.dir, proxy, "http://"+startOrigin().addr+"/small")
	for _, s := range []struct {
		name string
		port int
	}{{"smtp", sp}, {"ftp", fp}, {"pop", pp}} {
		addr := "127.0.0.1:" + strconv.Itoa(s.port)
		idleRSS(s.name, workerPID(other, s.name), addr, func() {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Read(make([]byte, 512))
				c.Close()
			}
		})
	}
	if len(breakdown) > 0 {
		fmt.Printf("\nThe kept-alive clients, per connection, as the HTTP worker's Go runtime says it:\n\n| after | goroutines | stack | heap in use | heap objects |\n|---|---|---|---|---|\n%s\n", strings.Join(breakdown, "\n"))
	}
	fmt.Println()
}

// keptRSS is idleRSS for clients that each made one request (a 1 KiB
// object) and keep their connection: what an idle kept-alive client
// costs the worker, its server connection kept too.
func keptRSS(pid int, dir, proxy, url string) (breakdown []string) {
	get := func() (net.Conn, error) {
		c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: origin\r\n\r\n", url)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	if c, err := get(); err == nil { // so that the figure is the connections' alone
		c.Close()
	}
	// A worker quiet for two seconds gives back what the clients before
	// left (package quietmem): the figure is then these clients' alone.
	time.Sleep(6 * time.Second)
	before, goBefore := rssKiB(pid), workerGo(dir, pid)
	conns := make([]net.Conn, 0, *idle)
	for i := 0; i < *idle; i++ {
		c, err := get()
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	waited := 0
	for _, w := range strings.Split(*keptWaits, ",") {
		wait, err := strconv.Atoi(strings.TrimSpace(w))
		check(err)
		time.Sleep(time.Duration(wait-waited) * time.Second)
		waited = wait
		after := rssKiB(pid)
		fmt.Printf("| http, kept-alive after one 1 KiB request, %d s later | %d | %d KiB | %d KiB | %.1f KiB |\n", wait, len(conns), before, after, float64(after-before)/float64(len(conns)))
		if g := workerGo(dir, pid); g.Goroutines > 0 && goBefore.Goroutines > 0 {
			n := float64(len(conns))
			breakdown = append(breakdown, fmt.Sprintf("| %d s | %.2f | %.1f KiB | %.1f KiB | %.0f |",
				wait, float64(g.Goroutines-goBefore.Goroutines)/n,
				float64(int64(g.StackInuse)-int64(goBefore.StackInuse))/n/1024,
				float64(int64(g.HeapInuse)-int64(goBefore.HeapInuse))/n/1024,
				float64(int64(g.HeapObjects)-int64(goBefore.HeapObjects))/n))
		}
	}
	for _, c := range conns {
		c.Close()
	}
	time.Sleep(time.Second)
	return breakdown
}

// workerGo is the Go runtime figures worker pid wrote last (zero when
// none yet).
func workerGo(dir string, pid int) metrics.GoStats {
	var g metrics.GoStats
	if b, err := os.ReadFile(filepath.Join(dir, "metrics", strconv.Itoa(pid)+".go")); err == nil {
		json.Unmarshal(b, &g)
	}
	return g
}

func idleRSS(service string, pid int, addr string, warm func()) {
	warm() // so that the figure is the connections' alone
	time.Sleep(200 * time.Millisecond)
	before := rssKiB(pid)
	conns := make([]net.Conn, 0, *idle)
	for i := 0; i < *idle; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(2 * time.Second) // every connection accepted and parked
	after := rssKiB(pid)
	fmt.Printf("| %s | %d | %d KiB | %d KiB | %.1f KiB |\n", service, len(conns), before, after, float64(after-before)/float64(len(conns)))
	for _, c := range conns {
		c.Close()
	}
	time.Sleep(time.Second)
}

func client(proxy string) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	if proxy != "" {
		u, _ := url.Parse("http://" + proxy)
		tr.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Transport: tr, Timeout: 120 * time.Second}
}

// run sends n GETs of url over c clients and returns the per-request
// latencies.
func run(cl *http.Client, u string, n, c int) ([]time.Duration, time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	next := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		next <- struct{}{}
	}
	close(next)
	start := time.Now()
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				t := time.Now()
				resp, err := cl.Get(u)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					// An error page (an ICAP failure, a refusal) is no
					// object delivered: not counted.
					continue
				}
				mu.Lock()
				lat = append(lat, time.Since(t))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(start)
}

func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[int(float64(len(lat)-1)*p)]
}

// small measures 1 KiB objects, direct, through a relay that does not
// scan (nginx) and through the daemon whose process group is pgid: their
// rate, latency, and the CPU time all the processes of the relay and of
// the daemon (master, worker, the bundled fsavd) spent per 1,000 objects.
func small(o *originServer, proxy, dir string, ours *daemon) {
	size, path := "1 KiB", "/small"
	if *mid {
		size, path = "1 MiB", "/mid"
	}
	fmt.Printf("## Objects of %s, %d requests, %d clients, each object unique\n\n| path | objects/s | p50 | p99 | its CPU s per 1,000 objects |\n|---|---|---|---|---|\n", size, *requests, *conc)
	type row struct {
		name, proxy string
		pgid        int
	}
	rows := []row{{"direct", "", 0}}
	if addr, d := startRelay(filepath.Join(dir, "relay"), o.addr); d != nil {
		defer stop(d)
		rows = append(rows, row{"nginx proxy_pass, kept-alive upstream (does not scan)", addr, d.cmd.Process.Pid})
	}
	rows = append(rows, row{"through fsigkd (scanned by the bundled fsavd)", proxy, ours.cmd.Process.Pid})
	var relay, rate float64
	cached := cachedAnswers(ours)
	for _, r := range rows {
		c0 := groupCPU(r.pgid)
		lat, total := run(client(r.proxy), "http://"+o.addr+path, *requests, *conc)
		r0, cpu := float64(len(lat))/total.Seconds(), ""
		if r.pgid != 0 {
			cpu = fmt.Sprintf("%.3f", perThousand(groupCPU(r.pgid)-c0, len(lat)))
		}
		switch {
		case r.proxy == proxy:
			rate = r0
		case r.pgid != 0:
			relay = r0
		}
		fmt.Printf("| %s | %.0f | %s | %s | %s |\n", r.name, r0, pct(lat, .5).Round(time.Microsecond), pct(lat, .99).Round(time.Microsecond), cpu)
	}
	fmt.Printf("\nAnswered by fsigkd's verdict cache: %d of %d (the rest scanned).", cachedAnswers(ours)-cached, *requests)
	if relay > 0 {
		fmt.Printf(" fsigkd at %.2fx the rate of the relay that does not scan.", rate/relay)
	}
	fmt.Print("\n\n")
}

func large(o *originServer, proxy, dir string) {
	fmt.Printf("## One %d MiB download (best of 3)\n\n| path | MB/s | time |\n|---|---|---|\n", *bigMiB)
	port := freePort()
	unscanned := startDaemon(filepath.Join(dir, "unscanned"), port, 1)
	defer stop(unscanned)
	type row struct{ name, proxy string }
	rows := []row{{"direct", ""}}
	if addr, d := startRelay(filepath.Join(dir, "relay-large"), o.addr); d != nil {
		defer stop(d)
		rows = append(rows, row{"nginx proxy_pass (does not scan)", addr})
	}
	rows = append(rows, row{"through fsigkd, scanned", proxy}, row{"through fsigkd, over max_scan_size (not scanned)", "127.0.0.1:" + strconv.Itoa(port)})
	var times []time.Duration
	for _, r := range rows {
		lat, _ := run(client(r.proxy), "http://"+o.addr+"/big", 3, 1)
		best := pct(lat, 0)
		times = append(times, best)
		fmt.Printf("| %s | %.0f | %s |\n", r.name, float64(len(o.big))/1e6/best.Seconds(), best.Round(time.Millisecond))
	}
	fmt.Printf("\nScanned, %.1fx the direct time.\n\n", float64(times[len(times)-2])/float64(times[0]))
}

// cacheFigure downloads the same -big MiB object three times through a
// daemon with the shipped settings: the first is scanned, the second
// hashed, scanned and its verdict kept (a large object is hashed from the
// second time it is met), the third judged by the verdict cache.
func cacheFigure(o *originServer, dir string) {
	port := freePort()
	// The shipped [http] settings but for its address (max_scan_size,
	// 100M, takes the 100 MiB object whole).
	d := startWith(filepath.Join(dir, "cache"), port, fmt.Sprintf("[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\n", port))
	defer stop(d)
	cl := client("127.0.0.1:" + strconv.Itoa(port))
	first, _ := run(cl, "http://"+o.addr+"/bigsame", 1, 1)
	second, _ := run(cl, "http://"+o.addr+"/bigsame", 1, 1)
	third, _ := run(cl, "http://"+o.addr+"/bigsame", 1, 1)
	direct, _ := run(client(""), "http://"+o.addr+"/bigsame", 1, 1)
	fmt.Printf("## The verdict cache: one %d MiB object downloaded three times (shipped settings)\n\n| direct | first (scanned) | second (hashed, scanned, kept) | third (verdict cached) |\n|---|---|---|---|\n| %s | %s | %s | %s |\n\n",
		*bigMiB, direct[0].Round(time.Millisecond), first[0].Round(time.Millisecond), second[0].Round(time.Millisecond), third[0].Round(time.Millisecond))
}

// rulesFigure measures what the type and name rules cost: 1 KiB and 1 MiB
// objects per second through a daemon with the shipped settings, and
// through one with a typical set of rules added, measured in turn.
func rulesFigure(o *originServer, dir string) {
	const rules = "block_types = exe, dll, msi, lnk, iso, vhd, office-macro, hta, js, vbs, ps1, bat\nblock_names = *.scr, *.pif, *.com\n"
	fmt.Printf("## The type and name rules (%d clients; 9 rounds in turn, medians)\n\n| objects | without rules, objects/s | with rules, objects/s | cost: median (range) of the rounds |\n|---|---|---|---|\n", *conc)
	proxyWith := func(name, keys string) (*http.Client, *daemon) {
		port := freePort()
		d := startWith(filepath.Join(dir, name), port, fmt.Sprintf("[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\n%s", port, keys))
		return client("127.0.0.1:" + strconv.Itoa(port)), d
	}
	plain, d1 := proxyWith("norules", "")
	defer stop(d1)
	ruled, d2 := proxyWith("rules", rules)
	defer stop(d2)
	for _, row := range []struct {
		name, path string
		n          int
	}{{"1 KiB", "/small", *requests}, {"1 MiB", "/mid", *requests / 10}} {
		// Rounds in turn, each pair a ratio: the machine's drift (a
		// virtual machine's neighbours) falls on both of a pair alike, and
		// the median of the ratios is what the rules cost.
		var rates [2][]float64
		var costs []float64
		for round := 0; round < 9; round++ {
			var r [2]float64
			for i, cl := range []*http.Client{plain, ruled} {
				if round == 0 {
					run(cl, "http://"+o.addr+row.path, 50, *conc) // warm
				}
				lat, total := run(cl, "http://"+o.addr+row.path, row.n, *conc)
				r[i] = float64(len(lat)) / total.Seconds()
				rates[i] = append(rates[i], r[i])
			}
			costs = append(costs, (r[0]-r[1])/r[0])
		}
		fmt.Printf("| %s | %.0f | %.0f | %.1f%% (%.1f%% to %.1f%%) |\n", row.name, median(rates[0]), median(rates[1]),
			100*median(costs), 100*slices.Min(costs), 100*slices.Max(costs))
	}
	fmt.Println()
}

// median is the middle value of v (the upper of the two middle ones for
// an even count); 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// latency compares 1 KiB requests one at a time, and takes off the
// engine's own time for a 1 KiB scan (measured on its socket with a warm
// connection): what is left is the proxy's own cost.
func latency(o *originServer, proxy, dir string) {
	direct, _ := run(client(""), "http://"+o.addr+"/small", 500, 1)
	via, _ := run(client(proxy), "http://"+o.addr+"/small", 500, 1)
	scan := engineTime(dir)
	d, v := pct(direct, .5), pct(via, .5)
	fmt.Printf("## Latency of a 1 KiB object, one client, 500 requests (p50)\n\n| direct | through fsigkd | the engine's scan | added by the proxy itself |\n|---|---|---|---|\n| %s | %s | %s | %s |\n\n",
		d.Round(time.Microsecond), v.Round(time.Microsecond), scan.Round(time.Microsecond), (v - d - scan).Round(time.Microsecond))
}

func engineTime(dir string) time.Duration {
	p := filepath.Join(dir, "probe")
	b := make([]byte, 1024)
	rand.Read(b)
	check(os.WriteFile(p, b, 0o644))
	f, err := os.Open(p)
	check(err)
	defer f.Close()
	eps, _ := scanner.ParseEndpoints("./fsavd-socket-0", dir)
	sc := scanner.NewFsavd(&scanner.Pool{Endpoints: eps}, true)
	var lat []time.Duration
	for i := 0; i < 500; i++ {
		t := time.Now()
		if _, err := sc.Scan(context.Background(), &scanner.Object{File: f, Path: p, Size: 1024}); err != nil {
			check(err)
		}
		lat = append(lat, time.Since(t))
	}
	return pct(lat, .5)
}

// mail measures mails per second with Postfix's smtp-source, straight to
// smtp-sink and through fsigkd, for 10 KB and 1 MB mails over 20 sessions.
func mail(dir string) {
	source, err1 := exec.LookPath("smtp-source")
	sink, err2 := exec.LookPath("smtp-sink")
	if err1 != nil || err2 != nil {
		fmt.Println("## SMTP\n\nskipped: smtp-source and smtp-sink (Debian package postfix) are not installed")
		return
	}
	sinkPort := freePort()
	args := []string{"127.0.0.1:" + strconv.Itoa(sinkPort), "100"}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "nobody"}, args...)
	}
	sc := exec.Command(sink, args...)
	check(sc.Start())
	defer func() { sc.Process.Kill(); sc.Wait() }()
	waitPort(sinkPort)
	port := freePort()
	d := startWith(filepath.Join(dir, "smtp"), port, fmt.Sprintf("[smtp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\nparent_server_host = 127.0.0.1\nparent_server_port = %d\n", port, sinkPort))
	defer stop(d)
	engine := "the bundled fsavd"
	if *clamd != "" {
		engine = "clamd"
	}
	fmt.Printf("## SMTP: %d mails, 20 sessions, smtp-source to smtp-sink (scanned by %s)\n\n| size | direct mails/s | through fsigkd mails/s | fsigkd's CPU ms a mail |\n|---|---|---|---|\n", *mails, engine)
	ours := func(pgrp int, _ string) bool { return pgrp == d.cmd.Process.Pid }
	for _, size := range []int{10 << 10, 1 << 20} {
		rate := func(p int) float64 {
			start := time.Now()
			out, err := exec.Command(source, "-s", "20", "-m", strconv.Itoa(*mails), "-l", strconv.Itoa(size), "-f", "a@example.com", "-t", "b@example.com", "127.0.0.1:"+strconv.Itoa(p)).CombinedOutput()
			if err != nil {
				check(fmt.Errorf("smtp-source: %v %s", err, out))
			}
			return float64(*mails) / time.Since(start).Seconds()
		}
		direct := rate(sinkPort)
		c0 := cpuOf(ours)
		through := rate(port)
		fmt.Printf("| %d KiB | %.0f | %.0f | %.2f |\n", size>>10, direct, through, float64((cpuOf(ours)-c0).Microseconds())/1000/float64(*mails))
	}
	fmt.Println()
}

func waitPort(port int) {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			return
		}
	}
	check(fmt.Errorf("port %d did not open", port))
}

// ftpFigures measures one large RETR from vsftpd, straight and through
// fsigkd, scanned and over max_scan_size.
func ftpFigures(dir string) {
	vs, err := exec.LookPath("vsftpd")
	if err != nil {
		vs = "/usr/sbin/vsftpd"
	}
	if _, err := os.Stat(vs); err != nil {
		fmt.Println("## FTP\n\nskipped: vsftpd is not installed")
		return
	}
	fdir := filepath.Join(dir, "ftp")
	root := filepath.Join(fdir, "root")
	check(os.MkdirAll(filepath.Join(fdir, "empty"), 0o755))
	check(os.MkdirAll(root, 0o755))
	os.Chmod(dir, 0o755)
	os.Chmod(fdir, 0o755)
	big := make([]byte, *bigMiB<<20)
	rand.Read(big)
	check(os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644))
	port := freePort()
	check(os.WriteFile(filepath.Join(fdir, "vsftpd.conf"), []byte(servertest.VSFTPDConfig(fdir, root, "127.0.0.1", strconv.Itoa(port))), 0o644))
	srv := exec.Command(vs, filepath.Join(fdir, "vsftpd.conf"))
	check(srv.Start())
	defer func() { srv.Process.Kill(); srv.Wait() }()
	waitPort(port)
	server := "127.0.0.1:" + strconv.Itoa(port)

	proxy := func(name string, maxScanMiB int) string {
		p := freePort()
		d := startWith(filepath.Join(dir, name), p, fmt.Sprintf("[ftp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\n%s", p, maxScan(maxScanMiB)))
		stops = append(stops, d)
		return "127.0.0.1:" + strconv.Itoa(p)
	}
	defer func() {
		for _, d := range stops {
			stop(d)
		}
	}()
	fmt.Printf("## FTP: one %d MiB RETR from vsftpd (best of 3)\n\n| path | MB/s | time |\n|---|---|---|\n", *bigMiB)
	for _, row := range []struct{ name, addr, user string }{
		{"direct", server, "anonymous"},
		{"through fsigkd, scanned", proxy("ftp-scan", *bigMiB+1), "anonymous@" + server},
		{"through fsigkd, over max_scan_size (not scanned)", proxy("ftp-noscan", 1), "anonymous@" + server},
	} {
		best := time.Duration(0)
		for i := 0; i < 3; i++ {
			// A file of its own each time (its first bytes numbered): the
			// shipped verdict cache would otherwise judge the second by
			// the first's verdict.
			writeUnique(bigFile{filepath.Join(root, "big.bin")}, big[:8])
			d := retr(row.addr, row.user, len(big))
			if best == 0 || d < best {
				best = d
			}
		}
		fmt.Printf("| %s | %.0f | %s |\n", row.name, float64(len(big))/1e6/best.Seconds(), best.Round(time.Millisecond))
	}
	fmt.Println()
}

var stops []*daemon

// bigFile writes at the start of the file at its path, in place.
type bigFile struct{ path string }

func (b bigFile) Write(p []byte) (int, error) {
	f, err := os.OpenFile(b.path, os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.WriteAt(p, 0)
}

func retr(addr, user string, size int) time.Duration {
	c, err := ftp.Dial(addr, ftp.DialWithTimeout(30*time.Second))
	check(err)
	defer c.Quit()
	check(c.Login(user, "x"))
	start := time.Now()
	r, err := c.Retr("big.bin")
	check(err)
	n, err := io.Copy(io.Discard, r)
	r.Close()
	check(err)
	if int(n) != size {
		check(fmt.Errorf("RETR got %d bytes of %d", n, size))
	}
	return time.Since(start)
}
