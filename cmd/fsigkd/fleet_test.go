package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/internal/daemontest"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// The fleet's network, in a namespace of its own: the balancer, Redis,
// the origin and the next mail hop on .1, the gateways on .11 to .13, the
// clients on .5.
const (
	fleetLB     = "10.77.0.1"
	fleetClient = "10.77.0.5"
)

// fleet is three gateways behind HAProxy in a network namespace, sharing
// Redis, two clamd engines and one quarantine.
type fleet struct {
	t      *testing.T
	ns     string
	dir    string
	gws    []*fleetGateway
	hop    *servertest.MailSink
	redis  *testenv.Proc
	clamds []*testenv.Proc
	lb     *testenv.Proc
}

type fleetGateway struct {
	name, addr, dir, conf string
}

// inNS runs f on a thread moved into namespace ns: the sockets f makes
// belong to it and keep working from any thread afterwards. The thread
// is moved back after, not dropped: a thread that ends kills the
// processes it started (their Pdeathsig), and any thread may have.
func inNS(ns string, f func()) error {
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		home, oerr := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if oerr != nil {
			err = oerr
			runtime.UnlockOSThread()
			return
		}
		defer home.Close()
		target, oerr := os.Open("/var/run/netns/" + ns)
		if oerr != nil {
			err = oerr
			runtime.UnlockOSThread()
			return
		}
		defer target.Close()
		if err = unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return
		}
		f()
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread() // else it stays locked, and is dropped
		}
	}()
	<-done
	return err
}

// dial connects from the clients' address in the fleet's namespace.
func (f *fleet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	var err error
	if nserr := inNS(f.ns, func() {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fleetClient)}, Timeout: 5 * time.Second}
		c, err = d.DialContext(ctx, network, addr)
	}); nserr != nil {
		return nil, nserr
	}
	return c, err
}

// dialable is a Ready check from inside the namespace.
func (f *fleet) dialable(addr string) func() bool {
	return func() bool {
		c, err := f.dial(context.Background(), "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
}

func (f *fleet) listen(addr string) net.Listener {
	f.t.Helper()
	var ln net.Listener
	var err error
	if nserr := inNS(f.ns, func() { ln, err = net.Listen("tcp", addr) }); nserr != nil {
		f.t.Fatal(nserr)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { ln.Close() })
	return ln
}

func (f *fleet) run(args ...string) {
	f.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		f.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newFleet starts the namespace, Redis, two clamd, the origin, the next
// mail hop, three gateways and HAProxy in front of them.
func newFleet(t *testing.T) *fleet {
	testenv.NeedRoot(t, "network namespaces")
	haproxy := testenv.Need(t, "haproxy", "haproxy")
	redis := testenv.Need(t, "redis-server", "redis-server")
	f := &fleet{t: t, ns: fmt.Sprintf("fskf%d", os.Getpid()%100000), dir: testenv.ShortDir(t)}
	os.Chmod(f.dir, 0o755)
	exec.Command("ip", "netns", "del", f.ns).Run() // left by a run that was killed
	f.run("ip", "netns", "add", f.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", f.ns).Run() })
	in := []string{"ip", "netns", "exec", f.ns}
	f.run(append(in, "ip", "link", "set", "lo", "up")...)
	f.run(append(in, "ip", "addr", "add", fleetLB+"/24", "dev", "lo")...)
	for _, a := range []string{fleetClient, "10.77.0.11", "10.77.0.12", "10.77.0.13"} {
		f.run(append(in, "ip", "addr", "add", a+"/32", "dev", "lo")...)
	}

	redisAddr := fleetLB + ":6379"
	f.redis = &testenv.Proc{Dir: f.dir, Addr: redisAddr, LogFile: filepath.Join(f.dir, "redis.out"),
		Args:  append(append([]string{}, in...), redis, "--bind", fleetLB, "--port", "6379", "--save", "", "--appendonly", "no", "--protected-mode", "no"),
		Ready: f.dialable(redisAddr)}
	f.redis.Start(t)
	f.clamds = []*testenv.Proc{enginetest.Clamd(t, ""), enginetest.Clamd(t, "")} // Unix sockets: reachable from any namespace

	origin := f.listen(fleetLB + ":8080")
	go http.Serve(origin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/eicar" {
			io.WriteString(w, eicar.String)
			return
		}
		io.WriteString(w, fleetObject(r.URL.Path))
	}))
	f.hop = servertest.NewMailSink(t, f.listen(fleetLB+":2525"), nil)

	hash, _ := bcrypt.GenerateFromPassword([]byte("fleet"), bcrypt.MinCost)
	cert, key := servertest.WriteKeyPair(t, servertest.SelfSigned(t), f.dir)
	bin := binary(t)
	for i := 1; i <= 3; i++ {
		g := &fleetGateway{name: fmt.Sprintf("gw%d", i), addr: fmt.Sprintf("10.77.0.1%d", i)}
		g.dir = filepath.Join(f.dir, g.name)
		os.MkdirAll(g.dir, 0o755)
		ini := fmt.Sprintf(`base_dir = %[1]s
av_engine = clamd
av_servers = %[2]s, %[3]s
av_balance = least
fsavd_start = no
verdict_cache_redis = redis://%[4]s/0
quarantine_dir = %[5]s/quarantine
console_bind = %[6]s
console_password = %[7]s
console_tls_cert = %[8]s
console_tls_key = %[9]s
unready_before_stop = 2
[http]
enable = yes
bind_addr = %[6]s
port = 9080
proxy_protocol_from = %[10]s
deny_servers =
[smtp]
enable = yes
bind_addr = %[6]s
port = 9025
proxy_protocol_from = %[10]s
parent_server_host = %[10]s
parent_server_port = 2525
`, g.dir, f.clamds[0].Sock, f.clamds[1].Sock, redisAddr, f.dir, g.addr, hash, cert, key, fleetLB)
		g.conf = filepath.Join(g.dir, "fsigk.ini")
		os.WriteFile(g.conf, []byte(ini), 0o644)
		daemontest.Daemon(t, append(append([]string{}, in...), bin, "-f", "-c", g.conf)...)
		f.gws = append(f.gws, g)
	}

	cfg := `global
  maxconn 2000
defaults
  mode tcp
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  retries 3
  option redispatch
  # from the balancer's own address (to an address of the same host, the
  # kernel would pick the destination's)
  source ` + fleetLB + `
frontend web
  bind ` + fleetLB + `:80
  default_backend gw_http
backend gw_http
  option httpchk GET /readyz
  default-server send-proxy-v2 check port 9012 check-ssl verify none inter 200 fall 2 rise 2
` + f.servers("9080") + `frontend mail
  bind ` + fleetLB + `:25
  default_backend gw_smtp
backend gw_smtp
  option httpchk GET /readyz
  default-server send-proxy-v2 check port 9012 check-ssl verify none inter 200 fall 2 rise 2
` + f.servers("9025")
	conf := filepath.Join(f.dir, "haproxy.cfg")
	os.WriteFile(conf, []byte(cfg), 0o644)
	f.lb = &testenv.Proc{Dir: f.dir, LogFile: filepath.Join(f.dir, "haproxy.log"),
		Args: append(append([]string{}, in...), haproxy, "-db", "-f", conf), Ready: f.dialable(fleetLB + ":80")}
	f.lb.Start(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("haproxy:\n%s", f.lb.Log())
		}
	})
	return f
}

func (f *fleet) servers(port string) string {
	var b strings.Builder
	for _, g := range f.gws {
		fmt.Fprintf(&b, "  server %s %s:%s\n", g.name, g.addr, port)
	}
	return b.String()
}

// waitLB waits (10 s at most) until HAProxy's log satisfies ok.
func (f *fleet) waitLB(ok func(log string) bool) {
	f.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(f.lb.Log()); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.t.Fatalf("HAProxy's log:\n%s", f.lb.Log())
		}
	}
}

// fleetObject is the origin's clean object at path: its own bytes.
func fleetObject(path string) string {
	return "clean object " + path + "\n" + strings.Repeat("x", 1024)
}

// pid is a gateway's master.
func (g *fleetGateway) pid(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(g.dir, "fsigkd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func (g *fleetGateway) accessLog() string {
	b, _ := os.ReadFile(filepath.Join(g.dir, "log", "access.log"))
	return string(b)
}

func (g *fleetGateway) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(g.dir, "log", "error.log"))
	return string(b)
}

// get fetches url through proxy (host:port), from the clients' address.
func (f *fleet) get(proxy, u string) (int, string, error) {
	pu, _ := url.Parse("http://" + proxy)
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu), DialContext: f.dial, DisableKeepAlives: true}}
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// load is the clients' traffic through HAProxy, counted per phase.
type load struct {
	f        *fleet
	phase    atomic.Pointer[string]
	mu       sync.Mutex
	failures map[string][]string // by phase: requests and tries that failed
	served   map[string]int      // by phase: requests answered and mails taken or refused
	bad      []string            // infected delivered, or a wrong body
	accepted map[string]bool     // clean mails the relay took (250)
	refused  map[string]bool     // infected mails refused (5xx)
	sent     int
}

func (l *load) fail(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures[*l.phase.Load()] = append(l.failures[*l.phase.Load()], what)
}

func (l *load) setPhase(p string) { l.phase.Store(&p) }

func (l *load) answered() {
	l.mu.Lock()
	l.served[*l.phase.Load()]++
	l.mu.Unlock()
}

// web fetches clean objects and EICAR until ctx ends.
func (l *load) web(ctx context.Context, n int) {
	for i := 0; ctx.Err() == nil; i++ {
		path := fmt.Sprintf("/obj/%d-%d", n, i) // each new: scanned, not a cache's answer
		if i%5 == 4 {
			path = "/eicar"
		}
		code, body, err := l.f.get(fleetLB+":80", "http://"+fleetLB+":8080"+path)
		if err == nil {
			l.answered()
		}
		switch {
		case err != nil:
			l.fail(fmt.Sprintf("GET %s: %v", path, err))
		case path == "/eicar" && strings.Contains(body, eicar.String):
			l.mu.Lock()
			l.bad = append(l.bad, "EICAR delivered")
			l.mu.Unlock()
		case path == "/eicar" && code != 403:
			l.fail(fmt.Sprintf("GET /eicar: %d", code))
		case path != "/eicar" && code != 200:
			l.fail(fmt.Sprintf("GET %s: %d", path, code))
		case path != "/eicar" && body != fleetObject(path):
			l.mu.Lock()
			l.bad = append(l.bad, "a wrong body for "+path)
			l.mu.Unlock()
		}
	}
}

// mail sends mails until ctx ends, each tried again through HAProxy
// until a gateway takes it (250) or refuses it for good (5xx), as an
// MTA does.
func (l *load) mail(ctx context.Context, n int) {
	for i := 0; ctx.Err() == nil; i++ {
		id := fmt.Sprintf("m%d-%d@fleet.test", n, i)
		infected := i%7 == 6
		body := "Message-Id: <" + id + ">\r\nSubject: fleet\r\n\r\nhello\r\n"
		if infected {
			body = "Message-Id: <" + id + ">\r\nSubject: fleet\r\n\r\n" + eicar.String + "\r\n"
		}
		l.mu.Lock()
		l.sent++
		l.mu.Unlock()
		for try := 0; ; try++ {
			err := l.f.sendMail(body)
			var se *gosmtp.SMTPError
			if err == nil || errors.As(err, &se) && se.Code >= 500 {
				l.answered()
			}
			switch {
			case err == nil:
				l.mu.Lock()
				l.accepted[id] = true
				if infected {
					l.bad = append(l.bad, "infected mail taken: "+id)
				}
				l.mu.Unlock()
			case errors.As(err, &se) && se.Code >= 500:
				l.mu.Lock()
				l.refused[id] = true
				if !infected {
					l.bad = append(l.bad, fmt.Sprintf("clean mail refused: %s: %v", id, err))
				}
				l.mu.Unlock()
			default:
				l.fail(fmt.Sprintf("mail %s: %v", id, err))
				if try < 50 {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				l.mu.Lock()
				l.bad = append(l.bad, "mail never taken: "+id)
				l.mu.Unlock()
			}
			break
		}
	}
}

func (f *fleet) sendMail(body string) error {
	nc, err := f.dial(context.Background(), "tcp", fleetLB+":25")
	if err != nil {
		return err
	}
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := gosmtp.NewClient(nc)
	defer c.Close()
	if err := c.Hello("client.fleet.test"); err != nil {
		return err
	}
	if err := c.SendMail("a@fleet.test", []string{"b@fleet.test"}, strings.NewReader(body)); err != nil {
		return err
	}
	return c.Quit()
}

// TestFleetBehindHAProxy: three gateways behind HAProxy (send-proxy-v2,
// checks on /readyz) in a network namespace, sharing Redis, two clamd and
// one quarantine, under HTTP and SMTP load: an object scanned through one
// gateway is answered from the shared cache by another; a gateway killed,
// then one stopped with SIGTERM (HAProxy takes it out before its
// listeners close), Redis stopped and started, an engine stopped: no
// infected object or mail delivered, no mail lost (clients try again
// through HAProxy, as MTAs do), and no request failed from the moment
// the two survivors' fleet settled.
func TestFleetBehindHAProxy(t *testing.T) {
	f := newFleet(t)
	gw1, gw2, gw3 := f.gws[0], f.gws[1], f.gws[2]

	// The shared cache: scanned through gw1, answered to gw2 from Redis
	// (its own cache has never seen it).
	if code, _, err := f.get(gw1.addr+":9080", "http://"+fleetLB+":8080/shared"); err != nil || code != 200 {
		t.Fatalf("through gw1: %d %v", code, err)
	}
	time.Sleep(200 * time.Millisecond) // the verdict is stored in the background
	if code, _, err := f.get(gw2.addr+":9080", "http://"+fleetLB+":8080/shared"); err != nil || code != 200 {
		t.Fatalf("through gw2: %d %v", code, err)
	}
	waitFor(t, func() bool {
		for _, l := range strings.Split(gw2.accessLog(), "\n") {
			if strings.Contains(l, "/shared ") && strings.Contains(l, "verdict%20cached") {
				return true
			}
		}
		return false
	}, gw2.accessLog)

	l := &load{f: f, failures: map[string][]string{}, served: map[string]int{}, accepted: map[string]bool{}, refused: map[string]bool{}}
	l.setPhase("three gateways")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); l.web(ctx, i) }()
		go func() { defer wg.Done(); l.mail(ctx, i) }()
	}
	defer func() { stop(); wg.Wait() }()
	time.Sleep(2 * time.Second)

	l.setPhase("gw1 killed")
	syscall.Kill(gw1.pid(t), syscall.SIGKILL)
	f.waitLB(func(log string) bool {
		return strings.Contains(log, "gw_http/gw1 is DOWN") && strings.Contains(log, "gw_smtp/gw1 is DOWN")
	})
	time.Sleep(time.Second)

	l.setPhase("gw2 stopping")
	term := time.Now()
	syscall.Kill(gw2.pid(t), syscall.SIGTERM)
	f.waitLB(func(log string) bool {
		return strings.Contains(log, "gw_http/gw2 is DOWN") && strings.Contains(log, "gw_smtp/gw2 is DOWN")
	})
	if took := time.Since(term); took >= 2*time.Second {
		t.Errorf("HAProxy took gw2 out %v after SIGTERM: not before its listeners closed (unready_before_stop = 2)", took)
	}
	time.Sleep(3 * time.Second) // gw2 has stopped

	l.setPhase("Redis stopped")
	f.redis.Stop()
	time.Sleep(2 * time.Second)
	l.setPhase("Redis started again")
	f.redis.Restart()
	time.Sleep(time.Second)

	l.setPhase("an engine stopped")
	f.clamds[0].Stop()
	time.Sleep(3 * time.Second)
	l.setPhase("the end")
	time.Sleep(time.Second)
	stop()
	wg.Wait()

	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bad) > 0 {
		t.Errorf("%d wrong outcomes: %v", len(l.bad), l.bad[:min(10, len(l.bad))])
	}
	for _, phase := range []string{"three gateways", "gw1 killed", "gw2 stopping", "Redis stopped", "Redis started again", "an engine stopped"} {
		if l.served[phase] < 20 {
			t.Errorf("%s: only %d requests and mails answered: too little load to tell", phase, l.served[phase])
		}
	}
	t.Logf("answered by phase: %v", l.served)
	for phase, fails := range l.failures {
		t.Logf("%s: %d failed tries (%v)", phase, len(fails), fails[:min(3, len(fails))])
		if phase != "gw1 killed" && phase != "three gateways" && len(fails) > 0 {
			// Killed under load, gw1 breaks what it was serving; from then
			// on HAProxy sends nothing to a gateway that cannot take it.
			t.Errorf("%s: %d failed tries: %v", phase, len(fails), fails[:min(5, len(fails))])
		}
	}
	// No mail lost: every mail a gateway took is at the next hop.
	got := map[string]bool{}
	for _, m := range f.hop.Mails() {
		for _, line := range strings.Split(string(m.Data), "\r\n") {
			if id, ok := strings.CutPrefix(line, "Message-Id: <"); ok {
				got[strings.TrimSuffix(id, ">")] = true
			}
		}
	}
	for id := range l.accepted {
		if !got[id] {
			t.Errorf("mail %s was taken but never reached the next hop", id)
		}
	}
	for id := range l.refused {
		if got[id] {
			t.Errorf("infected mail %s reached the next hop", id)
		}
	}
	if len(l.accepted) < 10 || len(l.refused) < 2 {
		t.Errorf("too little load to tell: %d mails taken, %d refused, %d sent", len(l.accepted), len(l.refused), l.sent)
	}
	t.Logf("%d mails sent, %d taken, %d refused; %d at the next hop", l.sent, len(l.accepted), len(l.refused), len(got))
	// What the survivor said: Redis's absence, the engine's fall; and
	// its scans went on on the other engine.
	log := gw3.errorLog()
	if !strings.Contains(log, "the shared verdict cache (verdict_cache_redis) does not answer") {
		t.Errorf("gw3 said nothing of Redis's stop:\n%s", log)
	}
	engineDown := false
	for _, l := range strings.Split(log, "\n") {
		engineDown = engineDown || strings.Contains(l, "engine endpoint down") && strings.Contains(l, f.clamds[0].Sock)
	}
	if !engineDown {
		t.Errorf("gw3 said nothing of the stopped engine %s:\n%s", f.clamds[0].Sock, log)
	}
	// (An object that could not be scanned has an empty DETECT-STAT.)
	if n := strings.Count(gw3.accessLog(), " DETECT-STAT::"); n > 0 {
		t.Errorf("gw3 could not scan %d objects", n)
	}
}
