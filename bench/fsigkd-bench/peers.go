package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/servertest"
)

// peerFigures measures, in one run and with the same clamd (-clamd),
// fsigkd beside the open peers that run here: HTTP through Squid + c-icap
// (virus_scan) and e2guardian (clamdscan), through fsigkd with clamd and
// with its bundled engine; SMTP through ClamSMTP and through fsigkd. Each
// with its shipped settings, only ports, state directories and the
// engine's socket changed.
func peerFigures(dir string) {
	if *clamd == "" {
		fmt.Println("## Peers\n\nskipped: needs a clamd (-clamd; bench/run starts one)")
		return
	}
	os.Chmod(dir, 0o755)
	var procs started
	defer procs.stopAll()
	clamdKeys := "av_engine = clamd\nav_servers = " + *clamd + "\nfsavd_start = no\n"

	origin := "http://" + startOrigin().addr

	// Each row names the process groups whose CPU is its own (clamd's is
	// counted apart: the peers and fsigkd (clamd) share it).
	type row struct {
		name, proxy string
		pgids       []int
	}
	last := func() int { return procs[len(procs)-1].cmd.Process.Pid }
	var rows []row
	rows = append(rows, row{"direct", "", nil})
	if addr, d := startRelay(filepath.Join(dir, "peer-relay"), strings.TrimPrefix(origin, "http://")); d != nil {
		procs = append(procs, d)
		rows = append(rows, row{"nginx proxy_pass (does not scan)", addr, []int{last()}})
	}
	if squid := lookup("squid"); squid != "" {
		if caddr := procs.cicap(filepath.Join(dir, "peer-cicap")); caddr != "" {
			cicap := last()
			sdir := filepath.Join(dir, "peer-squid")
			check(os.MkdirAll(sdir, 0o777))
			os.Chmod(sdir, 0o777)
			sp := freePort()
			check(os.WriteFile(filepath.Join(sdir, "squid.conf"), []byte(servertest.SquidConfig(sdir, "127.0.0.1:"+strconv.Itoa(sp), "icap://"+caddr+"/avscan", "icap://"+caddr+"/avscan")), 0o644))
			addr := procs.run(sp, squid, "-N", "-f", filepath.Join(sdir, "squid.conf"))
			rows = append(rows, row{"Squid 5 + c-icap (clamd)", addr, []int{cicap, last()}})
		}
	}
	if e2 := lookup("e2guardian"); e2 != "" {
		edir := filepath.Join(dir, "peer-e2g")
		check(os.MkdirAll(edir, 0o755))
		ep := freePort()
		main, err := servertest.E2guardianSetup(edir, "127.0.0.1:"+strconv.Itoa(ep), freePort(), "clamdscan", *clamd)
		if err == nil {
			addr := procs.run(ep, e2, "-N", "-c", main)
			rows = append(rows, row{"e2guardian 5 (clamd)", addr, []int{last()}})
		}
	}
	ours := map[string]*daemon{}
	for _, f := range []struct{ name, keys string }{{"fsigkd (clamd)", clamdKeys}, {"fsigkd (bundled fsavd)", "fsavd_start = yes\n"}} {
		p := freePort()
		d := startWithEngine(filepath.Join(dir, "peer-"+strconv.Itoa(p)), p, f.keys, fmt.Sprintf("[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\n", p))
		procs = append(procs, d)
		ours[f.name] = d
		rows = append(rows, row{f.name, "127.0.0.1:" + strconv.Itoa(p), []int{last()}})
	}
	cached := map[string]int{}
	for name, d := range ours {
		cached[name] = cachedAnswers(d)
	}
	// Rounds in turn, every path once a round, so that what drifts
	// meanwhile weighs on all of them alike; the medians are shown. Beside
	// each rate, the CPU the path's own processes and clamd spent an
	// object (ms).
	type figures struct{ small, mid, big, smallCPU, smallClamd, midCPU, midClamd []float64 }
	got := make([]figures, len(rows))
	cpu := func(r row) (own, cd time.Duration) {
		for _, g := range r.pgids {
			own += groupCPU(g)
		}
		return own, clamdCPU()
	}
	perObject := func(d time.Duration, n int) float64 { return d.Seconds() * 1000 / float64(n) }
	for range *rounds {
		for i, r := range rows {
			cl := client(r.proxy)
			run(cl, origin+"/small", 50, *conc)
			o0, c0 := cpu(r)
			ls, ts := run(cl, origin+"/small", *requests, *conc)
			o1, c1 := cpu(r)
			lm, tm := run(cl, origin+"/mid", 200, *conc)
			o2, c2 := cpu(r)
			_, tb := run(cl, origin+"/big", 1, 1)
			got[i].small = append(got[i].small, float64(len(ls))/ts.Seconds())
			got[i].mid = append(got[i].mid, float64(len(lm))/tm.Seconds())
			got[i].big = append(got[i].big, tb.Seconds())
			got[i].smallCPU = append(got[i].smallCPU, perObject(o1-o0, len(ls)))
			got[i].smallClamd = append(got[i].smallClamd, perObject(c1-c0, len(ls)))
			got[i].midCPU = append(got[i].midCPU, perObject(o2-o1, len(lm)))
			got[i].midClamd = append(got[i].midClamd, perObject(c2-c1, len(lm)))
		}
	}
	fmt.Printf("## Peers: HTTP, %d clients, the same clamd, %d round(s) (medians, ranges), each object unique\n\n"+
		"| path | 1 KiB objects/s | its CPU, ms an object | clamd's | 1 MiB objects/s | its CPU, ms an object | clamd's | one %d MiB download, s |\n|---|---|---|---|---|---|---|---|\n", *conc, *rounds, *bigMiB)
	for i, r := range rows {
		if r.pgids == nil {
			fmt.Printf("| %s | %s | | | %s | | | %s |\n", r.name, spread(got[i].small, "%.0f"), spread(got[i].mid, "%.0f"), spread(got[i].big, "%.3f"))
			continue
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name, spread(got[i].small, "%.0f"), spread(got[i].smallCPU, "%.3f"), spread(got[i].smallClamd, "%.3f"),
			spread(got[i].mid, "%.0f"), spread(got[i].midCPU, "%.2f"), spread(got[i].midClamd, "%.2f"), spread(got[i].big, "%.3f"))
	}
	fmt.Println()
	for _, name := range []string{"fsigkd (clamd)", "fsigkd (bundled fsavd)"} {
		if d := ours[name]; d != nil {
			fmt.Printf("Answered by the verdict cache of %s: %d of the objects (the rest scanned).\n", name, cachedAnswers(d)-cached[name])
		}
	}
	// The ratios: fsigkd against the best peer (rates) and against the
	// direct download (time), and the relay that does not scan.
	fmt.Printf("\n| ratio (medians) | 1 KiB | 1 MiB | %d MiB against direct |\n|---|---|---|---|\n", *bigMiB)
	best := func(f func(figures) []float64) (float64, string) {
		v, name := 0.0, ""
		for i, r := range rows {
			if r.proxy != "" && !strings.HasPrefix(r.name, "fsigkd") && !strings.HasPrefix(r.name, "nginx") && median(f(got[i])) > v {
				v, name = median(f(got[i])), r.name
			}
		}
		return v, name
	}
	bs, bsName := best(func(f figures) []float64 { return f.small })
	bm, bmName := best(func(f figures) []float64 { return f.mid })
	relay := -1
	for i, r := range rows {
		if strings.HasPrefix(r.name, "nginx") {
			relay = i
		}
	}
	for i, r := range rows {
		if !strings.HasPrefix(r.name, "fsigkd") {
			continue
		}
		fmt.Printf("| %s | %s | %s | %.1fx |\n", r.name, ratio(median(got[i].small), bs, bsName), ratio(median(got[i].mid), bm, bmName), median(got[i].big)/median(got[0].big))
		if relay >= 0 {
			fmt.Printf("| %s | %s | %s | %.1fx the relay's |\n", r.name, ratio(median(got[i].small), median(got[relay].small), rows[relay].name), ratio(median(got[i].mid), median(got[relay].mid), rows[relay].name), median(got[i].big)/median(got[relay].big))
		}
	}
	fmt.Println()
	peerMail(dir, clamdKeys, &procs)
}

// peerMail: 10 KiB mails, 20 sessions, smtp-source to smtp-sink, through
// ClamSMTP and through fsigkd's relay.
func peerMail(dir, clamdKeys string, procs *started) {
	source, sink := lookup("smtp-source"), lookup("smtp-sink")
	if source == "" || sink == "" {
		fmt.Println("## Peers: SMTP\n\nskipped: smtp-source and smtp-sink (postfix) are not installed")
		return
	}
	sinkPort := freePort()
	args := []string{sink, "127.0.0.1:" + strconv.Itoa(sinkPort), "100"}
	if os.Geteuid() == 0 {
		args = []string{sink, "-u", "nobody", "127.0.0.1:" + strconv.Itoa(sinkPort), "100"}
	}
	procs.run(sinkPort, args...)
	type row struct {
		name, addr string
		pgid       int // its own processes' group; 0: not measured
	}
	rows := []row{{"direct (smtp-sink)", "127.0.0.1:" + strconv.Itoa(sinkPort), 0}}
	if cs := lookup("clamsmtpd"); cs != "" {
		cdir := filepath.Join(dir, "peer-clamsmtp")
		check(os.MkdirAll(cdir, 0o777))
		os.Chmod(cdir, 0o777)
		p := freePort()
		conf := fmt.Sprintf("OutAddress: 127.0.0.1:%d\nListen: 127.0.0.1:%d\nClamAddress: %s\nTempDirectory: %s\nPidFile: %s/clamsmtpd.pid\n", sinkPort, p, *clamd, cdir, cdir)
		check(os.WriteFile(filepath.Join(cdir, "clamsmtpd.conf"), []byte(conf), 0o644))
		addr := procs.run(p, cs, "-d", "1", "-f", filepath.Join(cdir, "clamsmtpd.conf"))
		rows = append(rows, row{"ClamSMTP (clamd)", addr, (*procs)[len(*procs)-1].cmd.Process.Pid})
	}
	for _, f := range []struct{ name, keys string }{{"fsigkd (clamd)", clamdKeys}, {"fsigkd (bundled fsavd)", "fsavd_start = yes\n"}} {
		p := freePort()
		d := startWithEngine(filepath.Join(dir, "peer-smtp-"+strconv.Itoa(p)), p, f.keys, fmt.Sprintf("[smtp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\nparent_server_host = 127.0.0.1\nparent_server_port = %d\n", p, sinkPort))
		defer stop(d)
		rows = append(rows, row{f.name, "127.0.0.1:" + strconv.Itoa(p), d.cmd.Process.Pid})
	}
	rates := make([][]float64, len(rows))
	own, clamds := make([][]float64, len(rows)), make([][]float64, len(rows))
	for range *rounds {
		for i, r := range rows {
			t0, o0, c0 := time.Now(), groupCPU(r.pgid), clamdCPU()
			out, err := exec.Command(source, "-s", "20", "-m", strconv.Itoa(*mails), "-l", "10240", "-f", "a@example.com", "-t", "b@example.com", r.addr).CombinedOutput()
			if err != nil {
				fmt.Printf("%s: smtp-source failed: %v %s\n", r.name, err, out)
				continue
			}
			rates[i] = append(rates[i], float64(*mails)/time.Since(t0).Seconds())
			own[i] = append(own[i], (groupCPU(r.pgid)-o0).Seconds()*1000/float64(*mails))
			clamds[i] = append(clamds[i], (clamdCPU()-c0).Seconds()*1000/float64(*mails))
		}
	}
	fmt.Printf("## Peers: SMTP, %d mails of 10 KiB, 20 sessions, the same clamd, %d round(s) (medians, ranges)\n\n| path | mails/s | its CPU, ms a mail | clamd's | against ClamSMTP |\n|---|---|---|---|---|\n", *mails, *rounds)
	peer := -1
	for i, r := range rows {
		if strings.HasPrefix(r.name, "ClamSMTP") {
			peer = i
		}
	}
	for i, r := range rows {
		against := ""
		if peer >= 0 && strings.HasPrefix(r.name, "fsigkd") {
			against = ratio(median(rates[i]), median(rates[peer]), "")
		}
		if r.pgid == 0 {
			fmt.Printf("| %s | %s | | | |\n", r.name, spread(rates[i], "%.0f"))
			continue
		}
		fmt.Printf("| %s | %s | %s | %s | %s |\n", r.name, spread(rates[i], "%.0f"), spread(own[i], "%.2f"), spread(clamds[i], "%.2f"), against)
	}
	fmt.Println()
}

// spread is the median of vs, with its range when there are several.
func spread(vs []float64, format string) string {
	if len(vs) == 0 {
		return "failed"
	}
	m := fmt.Sprintf(format, median(vs))
	if len(vs) == 1 {
		return m
	}
	return m + " (" + fmt.Sprintf(format, slices.Min(vs)) + "-" + fmt.Sprintf(format, slices.Max(vs)) + ")"
}

// ratio is v against the peer's figure, named when name is set.
func ratio(v, peer float64, name string) string {
	if peer == 0 {
		return "-"
	}
	if name == "" {
		return fmt.Sprintf("%.1fx", v/peer)
	}
	return fmt.Sprintf("%.1fx %s", v/peer, name)
}

// lookup finds a program on the path or in the sbin directories.
func lookup(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name)
		}
	}
	return ""
}

// started are the servers a figure started, stopped together.
type started []*daemon

// run starts a server that listens on port, and gives its address.
func (p *started) run(port int, args ...string) string {
	cmd := daemonCommand(args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	check(cmd.Start())
	*p = append(*p, &daemon{cmd: cmd})
	waitPort(port)
	return "127.0.0.1:" + strconv.Itoa(port)
}

func (p *started) stopAll() {
	for _, d := range *p {
		stop(d)
	}
}

// cicap starts c-icap with its virus_scan module on -clamd, its state in
// dir; its address, or "" when c-icap or the module is not installed.
func (p *started) cicap(dir string) string {
	cicap, mods := lookup("c-icap"), enginetest.CICAPModules()
	if cicap == "" || mods == "" {
		return ""
	}
	check(os.MkdirAll(dir, 0o755))
	cp := freePort()
	caddr := "127.0.0.1:" + strconv.Itoa(cp)
	check(os.WriteFile(filepath.Join(dir, "c.conf"), []byte(enginetest.CICAPConfig(dir, caddr, *clamd, mods, 16)), 0o644))
	p.run(cp, cicap, "-N", "-f", filepath.Join(dir, "c.conf"))
	return caddr
}
