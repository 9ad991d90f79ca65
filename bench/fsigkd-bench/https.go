package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/tlsca"
)

// httpsFigures measures intercepted HTTPS, in one run and with the same
// clamd (-clamd): fsigkd (tls_intercept = yes, with clamd and with its
// bundled engine) beside Squid's ssl-bump with c-icap and e2guardian's
// MITM with clamdscan, each with its shipped settings but for ports,
// state directories, its CA and the origin's root. The origin is
// https://localhost (port 443: e2guardian intercepts that port only),
// every answer a new object. Figures: 1 KiB objects on kept-alive
// connections, 1 KiB with a new connection (two TLS handshakes) per
// request, 1 MiB objects; then, for fsigkd, what interception adds to the
// first byte of a new connection for a host seen before and for a new
// one (its certificate made), and the memory of an idle intercepted
// connection.
func httpsFigures(dir string) {
	if *clamd == "" {
		fmt.Println("## HTTPS\n\nskipped: needs a clamd (-clamd; bench/run starts one)")
		return
	}
	os.Chmod(dir, 0o755)
	var procs started
	defer procs.stopAll()
	// The origin's root, and a gateway CA for each peer.
	rootPEM, rootKey := filepath.Join(dir, "origin-root.pem"), filepath.Join(dir, "origin-root.key")
	_, err := tlsca.Ensure(rootPEM, rootKey, "bench origin root")
	check(err)
	root, err := tlsca.Load(rootPEM, rootKey)
	check(err)
	leaf, err := root.Leaf("localhost")
	check(err)
	startTLSOrigin(leaf, wildLeaf(root))

	type row struct {
		name, proxy string
		ca          *x509.CertPool
	}
	rows := []row{{"direct", "", poolOf(rootPEM)}}
	if squid := lookup("squid"); squid != "" && squidBumps(squid) {
		caddr := procs.cicap(filepath.Join(dir, "https-cicap"))
		sdir := filepath.Join(dir, "https-squid")
		check(os.MkdirAll(sdir, 0o777))
		caPEM, caKey := filepath.Join(sdir, "ca.pem"), filepath.Join(sdir, "ca.key")
		_, err := tlsca.Ensure(caPEM, caKey, "bench squid CA")
		check(err)
		db := filepath.Join(sdir, "ssl_db")
		out, err := exec.Command("/usr/lib/squid/security_file_certgen", "-c", "-s", db, "-M", "16MB").CombinedOutput()
		if err != nil {
			fmt.Printf("squid: security_file_certgen: %v %s\n", err, out)
		}
		exec.Command("chmod", "-R", "a+rwX", sdir).Run()
		os.Chmod(caKey, 0o644) // read by squid's own user
		sp := freePort()
		addr := "127.0.0.1:" + strconv.Itoa(sp)
		conf := servertest.SquidConfig(sdir, addr, "icap://"+caddr+"/avscan", "icap://"+caddr+"/avscan")
		conf = strings.Replace(conf, "http_port "+addr, "http_port "+addr+" ssl-bump generate-host-certificates=on dynamic_cert_mem_cache_size=16MB tls-cert="+caPEM+" tls-key="+caKey, 1)
		conf += "sslcrtd_program /usr/lib/squid/security_file_certgen -s " + db + " -M 16MB\nacl step1 at_step SslBump1\nssl_bump peek step1\nssl_bump bump all\ntls_outgoing_options cafile=" + rootPEM + "\n"
		check(os.WriteFile(filepath.Join(sdir, "squid.conf"), []byte(conf), 0o644))
		if caddr != "" {
			rows = append(rows, row{"Squid 5 ssl-bump + c-icap (clamd)", procs.run(sp, squid, "-N", "-f", filepath.Join(sdir, "squid.conf")), poolOf(caPEM)})
		}
	}
	if e2 := lookup("e2guardian"); e2 != "" {
		edir := filepath.Join(dir, "https-e2g")
		check(os.MkdirAll(edir, 0o755))
		ep := freePort()
		main, err := servertest.E2guardianSetup(edir, "127.0.0.1:"+strconv.Itoa(ep), freePort(), "clamdscan", *clamd)
		if err == nil {
			err = e2guardianMITM(edir, main, rootPEM)
		}
		if err == nil {
			rows = append(rows, row{"e2guardian 5 MITM (clamd)", procs.run(ep, e2, "-N", "-c", main), poolOf(filepath.Join(edir, "ca.pem"))})
		} else {
			fmt.Printf("e2guardian: %v\n", err)
		}
	}
	clamdKeys := "av_engine = clamd\nav_servers = " + *clamd + "\nfsavd_start = no\n"
	var fsigkdAddr, fsigkdDir string
	for _, f := range []struct{ name, keys string }{{"fsigkd (clamd)", clamdKeys}, {"fsigkd (bundled fsavd)", "fsavd_start = yes\n"}} {
		p := freePort()
		d := startWithEngine(filepath.Join(dir, "https-"+strconv.Itoa(p)), p, f.keys,
			fmt.Sprintf("[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\ntls_intercept = yes\ntls_ca_file = %s\n", p, rootPEM))
		procs = append(procs, d)
		rows = append(rows, row{f.name, "127.0.0.1:" + strconv.Itoa(p), poolOf(filepath.Join(d.dir, tlsca.CertFile))})
		fsigkdAddr, fsigkdDir = rows[len(rows)-1].proxy, d.dir
	}
	type figures struct{ kept, fresh, mid []float64 }
	got := make([]figures, len(rows))
	base := "https://localhost"
	for range *rounds {
		for i, r := range rows {
			cl := tlsClient(r.proxy, r.ca, false)
			run(cl, base+"/small", 50, *conc)
			ls, ts := run(cl, base+"/small", *requests, *conc)
			lm, tm := run(cl, base+"/mid", 100, *conc)
			cl.CloseIdleConnections()
			fresh := tlsClient(r.proxy, r.ca, true)
			lf, tf := run(fresh, base+"/small", *requests/4, *conc)
			got[i].kept = append(got[i].kept, float64(len(ls))/ts.Seconds())
			got[i].fresh = append(got[i].fresh, float64(len(lf))/tf.Seconds())
			got[i].mid = append(got[i].mid, float64(len(lm))/tm.Seconds())
		}
	}
	fmt.Printf("## HTTPS intercepted: %d clients, the same clamd, %d round(s) (medians, ranges)\n\n| path | 1 KiB objects/s, kept-alive | 1 KiB, a new connection each | 1 MiB objects/s |\n|---|---|---|---|\n", *conc, *rounds)
	for i, r := range rows {
		fmt.Printf("| %s | %s | %s | %s |\n", r.name, spread(got[i].kept, "%.0f"), spread(got[i].fresh, "%.0f"), spread(got[i].mid, "%.0f"))
	}
	best := func(f func(figures) []float64) (float64, string) {
		v, name := 0.0, ""
		for i, r := range rows {
			if r.proxy != "" && !strings.HasPrefix(r.name, "fsigkd") && median(f(got[i])) > v {
				v, name = median(f(got[i])), r.name
			}
		}
		return v, name
	}
	bk, bkName := best(func(f figures) []float64 { return f.kept })
	bf, bfName := best(func(f figures) []float64 { return f.fresh })
	bm, bmName := best(func(f figures) []float64 { return f.mid })
	fmt.Printf("\n| ratio (medians) against the best peer | 1 KiB kept-alive | 1 KiB new connections | 1 MiB |\n|---|---|---|---|\n")
	for i, r := range rows {
		if strings.HasPrefix(r.name, "fsigkd") {
			fmt.Printf("| %s | %s | %s | %s |\n", r.name, ratio(median(got[i].kept), bk, bkName), ratio(median(got[i].fresh), bf, bfName), ratio(median(got[i].mid), bm, bmName))
		}
	}
	fmt.Println()
	firstByte(rows[0].ca, fsigkdAddr, poolOf(filepath.Join(fsigkdDir, tlsca.CertFile)))
	idleIntercepted(dir, rootPEM)
}

// firstByte measures the first byte of a new connection's first request,
// direct and through fsigkd, for one host again and again (its leaf
// cached) and for a new name each time (*.bench.test: a leaf made).
func firstByte(direct *x509.CertPool, proxy string, gw *x509.CertPool) {
	const n = 300
	measure := func(proxyAddr string, roots *x509.CertPool, name func(i int) string) []time.Duration {
		var out []time.Duration
		for i := 0; i < n; i++ {
			cl := tlsClient(proxyAddr, roots, true)
			cl.Transport.(*http.Transport).TLSClientConfig.ServerName = name(i)
			t0 := time.Now()
			resp, err := cl.Get("https://localhost/small")
			if err != nil {
				continue
			}
			resp.Body.Read(make([]byte, 1))
			out = append(out, time.Since(t0))
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return out
	}
	same := func(int) string { return "localhost" }
	seq := time.Now().UnixNano()
	fresh := func(i int) string { return fmt.Sprintf("h%d-%d.bench.test", seq, i) }
	d, c, f := measure("", direct, same), measure(proxy, gw, same), measure(proxy, gw, fresh)
	fmt.Printf("## HTTPS: the first byte of a new connection, %d requests, one at a time\n\n| path | p50 | p99 | added by interception, p50 / p99 |\n|---|---|---|---|\n", n)
	for _, r := range []struct {
		name string
		lat  []time.Duration
	}{{"direct", d}, {"fsigkd, a host seen before (leaf cached)", c}, {"fsigkd, a new host each time (leaf made)", f}} {
		added := "-"
		if r.name != "direct" {
			added = fmt.Sprintf("%v / %v", (pct(r.lat, 0.50) - pct(d, 0.50)).Round(10*time.Microsecond), (pct(r.lat, 0.99) - pct(d, 0.99)).Round(10*time.Microsecond))
		}
		fmt.Printf("| %s | %v | %v | %s |\n", r.name, pct(r.lat, 0.50).Round(10*time.Microsecond), pct(r.lat, 0.99).Round(10*time.Microsecond), added)
	}
	fmt.Println()
}

// idleIntercepted is the HTTP worker's memory for each idle intercepted
// connection (one request served, then kept alive), with slots enough
// for all (as the idle figures of the other services are taken).
func idleIntercepted(dir, rootPEM string) {
	n := min(*idle, 1000)
	p := freePort()
	d := startWith(filepath.Join(dir, "https-idle"), p, fmt.Sprintf("[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\npre_spawn = %d\ntls_intercept = yes\ntls_ca_file = %s\n", p, n+100, rootPEM))
	defer stop(d)
	proxy := "127.0.0.1:" + strconv.Itoa(p)
	gw := poolOf(filepath.Join(d.dir, tlsca.CertFile))
	pid := workerPID(d, "http")
	conns := make([]*tls.Conn, 0, n)
	warm := func() *tls.Conn {
		c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
		if err != nil {
			return nil
		}
		fmt.Fprintf(c, "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n")
		buf := make([]byte, 39)
		if _, err := io.ReadFull(c, buf); err != nil {
			c.Close()
			return nil
		}
		tc := tls.Client(c, &tls.Config{ServerName: "localhost", RootCAs: gw})
		fmt.Fprintf(tc, "GET /small HTTP/1.1\r\nHost: localhost\r\n\r\n")
		b := make([]byte, 4096)
		tc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := tc.Read(b); err != nil {
			tc.Close()
			return nil
		}
		return tc
	}
	if c := warm(); c != nil {
		c.Close()
	}
	time.Sleep(500 * time.Millisecond)
	before := rssKiB(pid)
	for i := 0; i < n; i++ {
		if c := warm(); c != nil {
			conns = append(conns, c)
		}
	}
	time.Sleep(2 * time.Second)
	after := rssKiB(pid)
	fmt.Printf("## HTTPS: idle intercepted connections\n\n| connections | worker RSS before | after | per connection |\n|---|---|---|---|\n| %d | %d KiB | %d KiB | %.1f KiB |\n\n",
		len(conns), before, after, float64(after-before)/float64(max(1, len(conns))))
	for _, c := range conns {
		c.Close()
	}
}

// tlsClient is a client of proxy (none: direct) trusting roots; fresh:
// a new connection for every request.
func tlsClient(proxy string, roots *x509.CertPool, fresh bool) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true, DisableKeepAlives: fresh,
		TLSClientConfig: &tls.Config{RootCAs: roots}}
	if proxy != "" {
		u, _ := url.Parse("http://" + proxy)
		tr.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Transport: tr, Timeout: 120 * time.Second}
}

// poolOf is the CA certificate in file, waited for a while: a gateway's
// worker makes its CA after the master is listening.
func poolOf(file string) *x509.CertPool {
	b, err := os.ReadFile(file)
	for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); b, err = os.ReadFile(file) {
		time.Sleep(50 * time.Millisecond)
	}
	check(err)
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}

// startTLSOrigin serves the bench's objects over TLS on localhost:443
// (both loopback addresses), as localhost and as any *.bench.test.
func startTLSOrigin(leaf, wild *tls.Certificate) {
	h := startOrigin().handler
	cfg := &tls.Config{Certificates: []tls.Certificate{*leaf, *wild}}
	for _, a := range []string{"127.0.0.1:443", "[::1]:443"} {
		ln, err := tls.Listen("tcp", a, cfg)
		if err != nil && a == "127.0.0.1:443" {
			check(err)
		}
		if err == nil {
			go http.Serve(ln, h)
		}
	}
}

// wildLeaf is a certificate for *.bench.test signed by the origin's root.
func wildLeaf(root *tlsca.CA) *tls.Certificate {
	c, err := root.Leaf("*.bench.test")
	check(err)
	return c
}

// squidBumps tells whether this Squid was built with ssl-bump (the
// squid-openssl package).
func squidBumps(squid string) bool {
	out, _ := exec.Command(squid, "-v").Output()
	return strings.Contains(string(out), "--with-openssl") && strings.Contains(string(out), "--enable-ssl-crtd")
}

// e2guardianMITM turns e2guardian's MITM on in the settings
// servertest.E2guardianSetup made: a CA and the generated certificates'
// key (RSA, made by openssl), their validity from now (its default start
// is a fixed day in 2014: ten years later its certificates are expired),
// and the origin's root trusted.
func e2guardianMITM(dir, main, rootPEM string) error {
	certs := filepath.Join(dir, "certs")
	os.MkdirAll(filepath.Join(dir, "gen"), 0o777)
	os.MkdirAll(certs, 0o755)
	for _, args := range [][]string{
		{"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", filepath.Join(dir, "ca.key"), "-out", filepath.Join(dir, "ca.pem"), "-days", "30", "-subj", "/CN=bench e2guardian CA"},
		{"genrsa", "-out", filepath.Join(dir, "cert.key"), "2048"},
	} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("openssl %v: %v %s", args[0], err, out)
		}
	}
	b, _ := os.ReadFile(rootPEM)
	os.WriteFile(filepath.Join(certs, "root.pem"), b, 0o644)
	if out, err := exec.Command("openssl", "rehash", certs).CombinedOutput(); err != nil {
		return fmt.Errorf("openssl rehash: %v %s", err, out)
	}
	exec.Command("chmod", "-R", "a+rwX", dir).Run()
	conf, _ := os.ReadFile(main)
	s := string(conf)
	confDir := filepath.Dir(main)
	now := time.Now().Unix()
	for old, repl := range map[string]string{
		"\nenablessl = off":                                               "\nenablessl = on",
		"\n#sslcertificatepath = ''":                                      "\nsslcertificatepath = '" + certs + "/'",
		"\ncacertificatepath = '" + confDir + "/private/ca.pem'":          "\ncacertificatepath = '" + dir + "/ca.pem'",
		"\ncaprivatekeypath = '" + confDir + "/private/ca.key'":           "\ncaprivatekeypath = '" + dir + "/ca.key'",
		"\ncertprivatekeypath = '" + confDir + "/private/cert.key'":       "\ncertprivatekeypath = '" + dir + "/cert.key'",
		"\ngeneratedcertpath = '" + confDir + "/private/generatedcerts/'": "\ngeneratedcertpath = '" + dir + "/gen/'",
	} {
		if !strings.Contains(s, old) {
			return fmt.Errorf("e2guardian's shipped settings changed: no %q", strings.TrimSpace(old))
		}
		s = strings.Replace(s, old, repl, 1)
	}
	s += fmt.Sprintf("\ngeneratedcertstart = %d\ngeneratedcertend = %d\n", now-3600, now+365*24*3600)
	if err := os.WriteFile(main, []byte(s), 0o644); err != nil {
		return err
	}
	f1 := filepath.Join(confDir, "e2guardianf1.conf")
	b, err := os.ReadFile(f1)
	if err != nil || !strings.Contains(string(b), "\nsslmitm = off") {
		return fmt.Errorf("e2guardian's shipped group settings changed: no sslmitm = off")
	}
	return os.WriteFile(f1, []byte(strings.Replace(string(b), "\nsslmitm = off", "\nsslmitm = on", 1)), 0o644)
}
