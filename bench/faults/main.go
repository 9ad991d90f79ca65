// Command fsigkd-faults runs the real daemon, with its shipped settings
// (but for the ports, the state directory, the next hop, and deny_servers
// emptied for the loopback origin), through faults
// and attacks, on loopback only, and prints for each scenario what a
// gateway administrator asks afterwards: how many requests were served and
// failed, how many mails were accepted and how many of those the next hop
// got (counted by Message-ID at a recording sink: accepted but not
// delivered must be 0), how many infected objects reached a client or the
// next hop (must be 0), how long clients were not served, and how many
// lines the error log took. Every loop is bounded in time.
//
//	go run ./bench/faults -fsigkd /path/to/fsigkd [-only name] [-seconds 8]
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/fsigkd/fsigkd/eicar"
)

var (
	bin     = flag.String("fsigkd", "fsigkd", "the fsigkd binary")
	only    = flag.String("only", "", "run the scenarios whose name contains this")
	seconds = flag.Int("seconds", 8, "length of each scenario's load")
	showLog = flag.Bool("log", false, "print each scenario's error log to standard error")
)

func main() {
	flag.Parse()
	raiseNoFile()
	fmt.Printf("# fsigkd-faults, %s, %d cores\n\n", time.Now().UTC().Format("2006-01-02"), numCPU())
	fmt.Println("| scenario | requests served / failed | mails accepted / delivered / lost | infected delivered | longest wait to be served | longest wait of a new client | error-log lines | measured |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, sc := range scenarios {
		if *only != "" && !strings.Contains(sc.name, *only) {
			continue
		}
		if sc.root && os.Geteuid() != 0 {
			fmt.Printf("| %s | needs root: not run | | | | | | |\n", sc.name)
			continue
		}
		r := run(sc)
		fmt.Printf("| %s | %d / %d | %d / %d / %d | %d | %s | %s | %d | %s |\n", sc.name, r.served, r.failed, r.accepted, r.delivered, r.lost, r.infected,
			r.gap.Round(10*time.Millisecond), r.newWait.Round(time.Millisecond), r.lines, r.note)
	}
}

// scenario is one fault or attack: fault runs at a third of the load and
// returns when it is over; it may change the settings (global keys, and
// keys for every section) and wrap the daemon's command line.
type scenario struct {
	name   string
	root   bool
	global string
	keys   string
	wrap   []string
	http   bool // HTTP load
	smtp   bool // SMTP load
	big    bool // 2 MiB objects and mails (for the full spool)
	// logFull: log_dir is a 64 MiB tmpfs (room for the load's lines), which fault may fill.
	logFull bool
	fault   func(e *env)
	// measure, when set, says what the scenario measured besides the
	// common columns (after the load).
	measure func(e *env) string
}

var scenarios = []scenario{
	{name: "baseline (no fault)", http: true, smtp: true, fault: func(e *env) {}},
	{name: "HTTP worker SIGKILL under load", http: true, fault: func(e *env) { e.kill(e.workerPID("http"), syscall.SIGKILL) }},
	{name: "SMTP worker SIGKILL under load", smtp: true, fault: func(e *env) { e.kill(e.workerPID("smtp"), syscall.SIGKILL) }},
	{name: "engine (fsavd) SIGKILL", http: true, smtp: true, fault: func(e *env) { e.kill(e.fsavdPID(), syscall.SIGKILL) }},
	{name: "engine (fsavd) SIGSTOP for 5 s", http: true, smtp: true, fault: func(e *env) {
		pid := e.fsavdPID()
		e.kill(pid, syscall.SIGSTOP)
		time.Sleep(5 * time.Second)
		e.kill(pid, syscall.SIGCONT)
	}},
	{name: "next hop down for 3 s", smtp: true, fault: func(e *env) {
		e.sink.stop()
		time.Sleep(3 * time.Second)
		e.sink.start()
	}},
	{name: "next hop slow (2 s a mail) for 4 s", smtp: true, fault: func(e *env) {
		e.sink.delay.Store(int64(2 * time.Second))
		time.Sleep(4 * time.Second)
		e.sink.delay.Store(0)
	}},
	{name: "temp_dir full (1 MiB tmpfs, 2 MiB objects)", root: true, http: true, smtp: true, big: true, fault: func(e *env) {}},
	{name: "descriptors exhausted (nofile 90, 120 clients)", wrap: []string{"prlimit", "--nofile=90", "--"}, http: true, fault: func(e *env) {
		e.flood(120, 3*time.Second, func(c net.Conn) {
			fmt.Fprintf(c, "GET http://%s/clean HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", e.origin)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			io.Copy(io.Discard, c)
		})
	}},
	{name: "10,000 concurrent connections", http: true, smtp: true, fault: func(e *env) {
		e.hold(10000, 3*time.Second, nil)
	}},
	{name: "spool files moved away (every 100 ms for 3 s)", http: true, smtp: true, fault: func(e *env) {
		elsewhere := filepath.Join(e.dir, "moved")
		os.Mkdir(elsewhere, 0o755)
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			files, _ := filepath.Glob(filepath.Join(e.dir, "state", "tmp", "fsigkd-*"))
			for _, f := range files {
				os.Rename(f, filepath.Join(elsewhere, filepath.Base(f)))
			}
		}
	}, measure: func(e *env) string {
		return fmt.Sprintf("%d M14 lines (a file moved while in use); after: served", e.errLogCount("open=No such file"))
	}},
	{name: "log_dir full for 3 s (a filled tmpfs)", root: true, logFull: true, http: true, smtp: true, fault: func(e *env) {
		filler := filepath.Join(e.logDir(), "filler")
		exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k").Run()
		time.Sleep(3 * time.Second)
		os.Remove(filler)
	}, measure: func(e *env) string {
		said := strings.Count(e.out.String(), "its lines are lost until it can")
		told := e.errLogCount("lost since")
		return fmt.Sprintf("%d lines lost, counted; said on stderr %d times, told in the error log after: %d", e.metricSum("fsigkd_log_lines_lost_total"), said, told)
	}},
	{name: "POP3 server sending one mail without end", http: true, fault: func(e *env) {
		e.endlessPOP3(3 * time.Second)
	}, measure: func(e *env) string {
		return fmt.Sprintf("temp_dir peak %.1f MiB (max_scan_size as shipped, 100 MiB); the server's sending ended %s after the client left (%s)", float64(e.spoolPeak.Load())/(1<<20), time.Duration(e.endedAfter.Load()).Round(10*time.Millisecond), e.popSaid)
	}},
	{name: "ICAP body without end", http: true, fault: func(e *env) {
		e.endlessICAP(3 * time.Second)
	}, measure: func(e *env) string {
		return fmt.Sprintf("temp_dir peak %.1f MiB (max_scan_size as shipped, 100 MiB); answered: %s", float64(e.spoolPeak.Load())/(1<<20), e.icapAnswer)
	}},
	{name: "slot theft: 500 silent clients per service", http: true, smtp: true, fault: func(e *env) {
		e.hold(500, 4*time.Second, nil)
	}},
	{name: "slot theft: 500 slowloris clients per service", http: true, smtp: true, fault: func(e *env) {
		e.hold(500, 4*time.Second, func(c net.Conn) {
			for _, b := range []byte("GET http://example.com/ HTTP/1.1\r\nX-a: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(time.Second)
			}
		})
	}},
}

type result struct {
	served, failed, accepted, delivered, lost, infected, lines int
	gap, newWait                                               time.Duration
	note                                                       string
}

// env is one scenario's daemon, origin, next hop and counters.
type env struct {
	dir, conf, origin string
	ports             map[string]int
	sink              *sink
	cmd               *exec.Cmd
	out               *output

	served, failed atomic.Int64
	infected       atomic.Int64
	mu             sync.Mutex
	accepted       map[string]bool // Message-IDs the relay took with 250
	lastOK         atomic.Int64    // unix nanos of the last success
	gap            atomic.Int64    // the longest stretch without one, under load
	newWait        atomic.Int64    // the longest a new client waited to be served
	spoolPeak      atomic.Int64    // the most temp_dir held (endless bodies)
	endedAfter     atomic.Int64    // how long a fetch went on after its client left
	icapAnswer     string
	popSaid        string // the gateway's POP3 replies to the endless fetch
}

func run(sc scenario) result {
	dir, err := os.MkdirTemp("", "fsf")
	check(err)
	defer os.RemoveAll(dir)
	e := &env{dir: dir, accepted: map[string]bool{}, ports: map[string]int{"http": freePort(), "smtp": freePort(), "ftp": freePort()}}
	size := 64 << 10
	if sc.big {
		size = 2 << 20
	}
	e.origin = startOrigin(size)
	e.sink = newSink()
	global := sc.global
	if sc.big {
		small := filepath.Join(dir, "small")
		os.Mkdir(small, 0o755)
		check(exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small).Run())
		defer exec.Command("umount", "-l", small).Run()
		global += "\ntemp_dir = " + small + "\ntemp_min_free = 0"
	}
	if sc.logFull {
		logs := filepath.Join(dir, "logs")
		os.Mkdir(logs, 0o755)
		check(exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", logs).Run())
		defer exec.Command("umount", "-l", logs).Run()
		global += "\nlog_dir = " + logs
	}
	e.ports["pop"], e.ports["icap"] = freePort(), freePort()
	_, hopPort, _ := net.SplitHostPort(e.sink.addr)
	ini := fmt.Sprintf("base_dir = %s/state\n%s\n[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\n%s\n"+
		"[smtp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\nparent_server_host = 127.0.0.1\nparent_server_port = %s\n%s\n"+
		"[ftp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\n%s\n"+
		"[pop]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\n%s\n"+
		"[icap]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\n%s\n",
		dir, global, e.ports["http"], sc.keys, e.ports["smtp"], hopPort, sc.keys, e.ports["ftp"], sc.keys, e.ports["pop"], sc.keys, e.ports["icap"], sc.keys)
	e.conf = filepath.Join(dir, "fsigk.ini")
	check(os.WriteFile(e.conf, []byte(ini), 0o644))
	e.start(sc.wrap)
	defer e.stop()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	e.lastOK.Store(time.Now().UnixNano())
	if sc.http {
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) { defer wg.Done(); e.httpLoad(i, stop, size) }(i)
		}
	}
	if sc.smtp {
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func(i int) { defer wg.Done(); e.smtpLoad(i, stop, size) }(i)
		}
	}
	wg.Add(1)
	go func() { defer wg.Done(); e.watchGap(stop) }()
	if sc.http {
		wg.Add(1)
		go func() { defer wg.Done(); e.newClients(stop) }()
	}
	load := time.Duration(*seconds) * time.Second
	time.Sleep(load / 3)
	sc.fault(e)
	time.Sleep(load * 2 / 3)
	close(stop)
	wg.Wait()
	// What the relay accepted must be at the next hop: give it a moment.
	deadline := time.Now().Add(10 * time.Second)
	var r result
	for {
		r = e.tally()
		if r.lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	errlog, _ := os.ReadFile(filepath.Join(e.logDir(), "error.log"))
	r.lines = bytes.Count(errlog, []byte("\n"))
	if sc.measure != nil {
		r.note = sc.measure(e)
	}
	if *showLog {
		fmt.Fprintf(os.Stderr, "## %s\n%s\n", sc.name, errlog)
	}
	return r
}

func (e *env) tally() result {
	got := e.sink.received()
	e.mu.Lock()
	defer e.mu.Unlock()
	r := result{served: int(e.served.Load()), failed: int(e.failed.Load()), infected: int(e.infected.Load()), accepted: len(e.accepted),
		gap: time.Duration(e.gap.Load()), newWait: time.Duration(e.newWait.Load())}
	for id := range e.accepted {
		if got.ids[id] {
			r.delivered++
		} else {
			r.lost++
		}
	}
	r.infected += got.infected
	return r
}

// watchGap keeps the longest stretch under load without a served request
// or an accepted mail.
func (e *env) watchGap(stop chan struct{}) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if g := time.Since(time.Unix(0, e.lastOK.Load())); int64(g) > e.gap.Load() {
				e.gap.Store(int64(g))
			}
		}
	}
}

func (e *env) ok() { e.lastOK.Store(time.Now().UnixNano()) }

// httpLoad fetches the clean object, and every tenth time EICAR, through
// the proxy until stop.
func (e *env) httpLoad(i int, stop chan struct{}, size int) {
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", e.ports["http"]))
	cl := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableCompression: true}, Timeout: 20 * time.Second}
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		path := "/clean"
		if (n+i)%10 == 9 {
			path = "/eicar"
		}
		resp, err := cl.Get("http://" + e.origin + path)
		if err != nil {
			e.failed.Add(1)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case path == "/eicar" && bytes.Contains(b, []byte(eicar.String)):
			e.infected.Add(1)
		case path == "/eicar" && resp.StatusCode == 403:
			e.served.Add(1)
			e.ok()
		case resp.StatusCode == 200 && err == nil && len(b) == size:
			e.served.Add(1)
			e.ok()
		default:
			e.failed.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// smtpLoad sends mails, every tenth with EICAR attached, until stop.
func (e *env) smtpLoad(i int, stop chan struct{}, size int) {
	body := strings.Repeat("clean text of a mail, line after line.\r\n", size/40)
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		id := fmt.Sprintf("<%d.%d.%d@faults.test>", i, n, time.Now().UnixNano())
		msg := "From: a@example.com\r\nTo: b@example.com\r\nSubject: load\r\nMessage-ID: " + id + "\r\n\r\n" + body
		infected := (n+i)%10 == 9
		if infected {
			msg = "From: a@example.com\r\nTo: b@example.com\r\nSubject: load\r\nMessage-ID: " + id + "\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				base64.StdEncoding.EncodeToString([]byte(eicar.String)) + "\r\n--B--\r\n"
		}
		err := sendMail(fmt.Sprintf("127.0.0.1:%d", e.ports["smtp"]), msg)
		switch {
		case err == nil:
			e.mu.Lock()
			e.accepted[id] = true
			e.mu.Unlock()
			if !infected {
				e.ok()
			}
		case infected && strings.Contains(err.Error(), "554"):
			e.ok() // refused as it should be
		default:
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func sendMail(addr, msg string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	cl := gosmtp.NewClient(c)
	defer cl.Close()
	if err := cl.Hello("faults.test"); err != nil {
		return err
	}
	return cl.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(msg))
}

// hold opens up to n connections to every service at once and keeps them
// for d, each doing act (nothing: silent).
func (e *env) hold(n int, d time.Duration, act func(c net.Conn)) {
	var conns sync.Map
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for _, s := range []string{"http", "smtp", "ftp"} {
		addr := fmt.Sprintf("127.0.0.1:%d", e.ports[s])
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", addr, time.Until(end))
				if err != nil {
					return
				}
				conns.Store(c, true)
				if act != nil {
					go act(c)
				}
			}()
		}
	}
	time.Sleep(time.Until(end))
	conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	wg.Wait()
}

// flood runs n clients doing act on new HTTP connections for d.
func (e *env) flood(n int, d time.Duration, act func(c net.Conn)) {
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", e.ports["http"]), time.Second)
				if err != nil {
					continue
				}
				act(c)
				c.Close()
			}
		}()
	}
	wg.Wait()
}

func (e *env) start(wrap []string) {
	args := append(append([]string{}, wrap...), *bin, "-f", "-c", e.conf)
	e.cmd = exec.Command(args[0], args[1:]...)
	e.out = &output{}
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	check(e.cmd.Start())
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(e.out.String(), "INFO [main] serving"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			check(fmt.Errorf("fsigkd did not start:\n%s", e.out.String()))
		}
	}
}

func (e *env) stop() {
	e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		e.cmd.Process.Kill()
		<-done
	}
	e.sink.stop()
}

func (e *env) kill(pid int, sig syscall.Signal) {
	if pid > 0 {
		syscall.Kill(pid, sig)
	}
}

// workerPID is the pid of service's worker, from fsigkd status.
func (e *env) workerPID(service string) int {
	out, _ := exec.Command(*bin, "status", "-c", e.conf).Output()
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == service {
			pid, _ := strconv.Atoi(f[1])
			return pid
		}
	}
	return 0
}

// fsavdPID is the bundled fsavd the master started.
func (e *env) fsavdPID() int {
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 2 && args[1] == "fsavd" && strings.Contains(string(cmdline), e.dir) {
			return pid
		}
	}
	return 0
}

// startOrigin serves /clean (size bytes) and /eicar.
func startOrigin(size int) string {
	clean := make([]byte, size)
	rand.Read(clean)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/eicar" {
			io.WriteString(w, eicar.String)
			return
		}
		w.Write(clean)
	}))
	return ln.Addr().String()
}

// sink is the next hop: it records the Message-ID of every mail it takes,
// and counts those carrying EICAR; it can be stopped, restarted on its
// port, and slowed.
type sink struct {
	addr  string
	mu    sync.Mutex
	srv   *gosmtp.Server
	ids   map[string]bool
	bad   int
	delay atomic.Int64
}

type received struct {
	ids      map[string]bool
	infected int
}

func newSink() *sink {
	s := &sink{ids: map[string]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	s.addr = ln.Addr().String()
	s.serve(ln)
	return s
}

func (s *sink) serve(ln net.Listener) {
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) { return &sinkSession{s: s}, nil }))
	srv.Domain = "sink.test"
	srv.ErrorLog = log.New(io.Discard, "", 0) // clients that reset are the scenario's point
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

func (s *sink) stop() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	srv.Close()
}

func (s *sink) start() {
	for i := 0; i < 50; i++ {
		if ln, err := net.Listen("tcp", s.addr); err == nil {
			s.serve(ln)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	check(fmt.Errorf("the next hop cannot listen on %s again", s.addr))
}

func (s *sink) received() received {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make(map[string]bool, len(s.ids))
	for k := range s.ids {
		ids[k] = true
	}
	return received{ids: ids, infected: s.bad}
}

type sinkSession struct{ s *sink }

func (ss *sinkSession) Reset()                                 {}
func (ss *sinkSession) Logout() error                          { return nil }
func (ss *sinkSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if d := ss.s.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	id := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() && sc.Text() != "" {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.EqualFold(k, "Message-ID") {
			id = strings.TrimSpace(v)
		}
	}
	raw, _ := base64.StdEncoding.DecodeString(string(extractB64(b)))
	ss.s.mu.Lock()
	ss.s.ids[id] = true
	if bytes.Contains(b, []byte(eicar.String)) || bytes.Contains(raw, []byte(eicar.String)) {
		ss.s.bad++
	}
	ss.s.mu.Unlock()
	return nil
}

// extractB64 is the base64 body of the load's infected mails, if any.
func extractB64(b []byte) []byte {
	_, after, ok := bytes.Cut(b, []byte("Content-Transfer-Encoding: base64\r\n\r\n"))
	if !ok {
		return nil
	}
	body, _, _ := bytes.Cut(after, []byte("\r\n"))
	return body
}

type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// raiseNoFile lifts this process's descriptor limit to its hard limit:
// the connection floods need thousands.
func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		if os.Geteuid() == 0 {
			l.Max = max(l.Max, 1<<17)
		}
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, bytes.Count(b, []byte("processor\t:")))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsigkd-faults:", err)
		os.Exit(1)
	}
}

// logDir is where the scenario's daemon logs.
func (e *env) logDir() string {
	b, _ := os.ReadFile(e.conf)
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && strings.TrimSpace(k) == "log_dir" {
			return strings.TrimSpace(v)
		}
	}
	return filepath.Join(e.dir, "state", "log")
}

// errLogCount counts the error-log lines holding s.
func (e *env) errLogCount(s string) int {
	b, _ := os.ReadFile(filepath.Join(e.logDir(), "error.log"))
	return strings.Count(string(b), s)
}

// metricSum adds up a counter over the workers' count files.
func (e *env) metricSum(name string) int {
	files, _ := filepath.Glob(filepath.Join(e.dir, "state", "metrics", "*.json"))
	var n float64
	for _, f := range files {
		b, _ := os.ReadFile(f)
		var snap struct {
			Counters []struct {
				Name  string  `json:"name"`
				Value float64 `json:"value"`
			} `json:"counters"`
		}
		if json.Unmarshal(b, &snap) == nil {
			for _, c := range snap.Counters {
				if c.Name == name {
					n += c.Value
				}
			}
		}
	}
	return int(n)
}

// newClients opens a new connection for a request every 250 ms and keeps
// the longest any waited for its answer: the load's clients keep their
// connections alive, and a flood that keeps new clients out does not
// show in their figures.
func (e *env) newClients(stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(250 * time.Millisecond):
		}
		start := time.Now()
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", e.ports["http"]), 40*time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(40 * time.Second))
			fmt.Fprintf(c, "GET http://%s/clean HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", e.origin)
			bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
		if w := int64(time.Since(start)); w > e.newWait.Load() {
			e.newWait.Store(w)
		}
	}
}

// watchSpool keeps the most temp_dir holds until stop.
func (e *env) watchSpool(stop chan struct{}) {
	for {
		files, _ := filepath.Glob(filepath.Join(e.dir, "state", "tmp", "fsigkd-*"))
		var n int64
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				n += fi.Size()
			}
		}
		if n > e.spoolPeak.Load() {
			e.spoolPeak.Store(n)
		}
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// endlessPOP3 has a client fetch, through the gateway, a mail that a POP3
// server sends without end, for d; then the client leaves, and the time
// until the server's sending fails is kept.
func (e *env) endlessPOP3(d time.Duration) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	ended := make(chan time.Time, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		io.WriteString(c, "+OK ready\r\n")
		line := []byte(strings.Repeat("an endless mail ", 60) + "\r\n")
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			switch strings.ToUpper(strings.Fields(l + " x")[0]) {
			case "RETR":
				io.WriteString(c, "+OK\r\nSubject: endless\r\n\r\n")
				for {
					c.SetWriteDeadline(time.Now().Add(30 * time.Second))
					if _, err := c.Write(line); err != nil {
						ended <- time.Now()
						return
					}
				}
			case "CAPA":
				io.WriteString(c, "+OK\r\nUSER\r\n.\r\n")
			case "QUIT":
				io.WriteString(c, "+OK bye\r\n")
				return
			default:
				io.WriteString(c, "+OK\r\n")
			}
		}
	}()
	stop := make(chan struct{})
	go e.watchSpool(stop)
	defer close(stop)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", e.ports["pop"]))
	check(err)
	c.SetDeadline(time.Now().Add(d + 10*time.Second))
	br := bufio.NewReader(c)
	var said []string
	for _, cmd := range []string{"", fmt.Sprintf("USER x@%s", ln.Addr()), "PASS y", "RETR 1"} {
		if cmd != "" {
			fmt.Fprintf(c, "%s\r\n", cmd)
		}
		l, _ := br.ReadString('\n')
		said = append(said, strings.TrimSpace(l))
	}
	e.popSaid = strings.Join(said, " / ")
	go io.Copy(io.Discard, br)
	time.Sleep(d)
	c.Close()
	left := time.Now()
	select {
	case t := <-ended:
		e.endedAfter.Store(int64(t.Sub(left)))
	case <-time.After(30 * time.Second):
		e.endedAfter.Store(int64(30 * time.Second))
	}
}

// endlessICAP sends a RESPMOD whose body does not end, for d, and keeps
// the ICAP server's first answer line.
func (e *env) endlessICAP(d time.Duration) {
	stop := make(chan struct{})
	go e.watchSpool(stop)
	defer close(stop)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", e.ports["icap"]))
	check(err)
	defer c.Close()
	res := "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"
	fmt.Fprintf(c, "RESPMOD icap://127.0.0.1/respmod ICAP/1.0\r\nHost: 127.0.0.1\r\nAllow: 204\r\nEncapsulated: res-hdr=0, res-body=%d\r\n\r\n%s", len(res), res)
	answer := make(chan string, 1)
	go func() {
		l, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			l = "none (" + err.Error() + ")"
		}
		answer <- strings.TrimSpace(l)
	}()
	chunk := append([]byte(fmt.Sprintf("%x\r\n", 64<<10)), append(bytes.Repeat([]byte("x"), 64<<10), "\r\n"...)...)
	for end := time.Now().Add(d); time.Now().Before(end); {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(chunk); err != nil {
			break
		}
	}
	select {
	case e.icapAnswer = <-answer:
	case <-time.After(10 * time.Second):
		e.icapAnswer = "none within 10 s"
	}
}
