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

	type row struct{ name, proxy string }
	var rows []row
	rows = append(rows, row{"direct", ""})
	if squid := lookup("squid"); squid != "" {
		if caddr := procs.cicap(filepath.Join(dir, "peer-cicap")); caddr != "" {
			sdir := filepath.Join(dir, "peer-squid")
			check(os.MkdirAll(sdir, 0o777))
			os.Chmod(sdir, 0o777)
			sp := freePort()
			check(os.WriteFile(filepath.Join(sdir, "squid.conf"), []byte(servertest.SquidConfig(sdir, "127.0.0.1:"+strconv.Itoa(sp), "icap://"+caddr+"/avscan", "icap://"+caddr+"/avscan")), 0o644))
			rows = append(rows, row{"Squid 5 + c-icap (clamd)", procs.run(sp, squid, "-N", "-f", filepath.Join(sdir, "squid.conf"))})
		}
	}
	if e2 := lookup("e2guardian"); e2 != "" {
		edir := filepath.Join(dir, "peer-e2g")
		check(os.MkdirAll(edir, 0o755))
		ep := freePort()
		main, err := servertest.E2guardianSetup(edir, "127.0.0.1:"+strconv.Itoa(ep), freePort(), "clamdscan", *clamd)
		if err == nil {
			rows = append(rows, row{"e2guardian 5 (clamd)", procs.run(ep, e2, "-N", "-c", main)})
		}
	}
	for _, f := range []struct{ name, keys string }{{"fsigkd (clamd)", clamdKeys}, {"fsigkd (bundled fsavd)", "fsavd_start = yes\n"}} {
		p := freePort()
		d := startWithEngine(filepath.Join(dir, "peer-"+strconv.Itoa(p)), p, f.keys, fmt.Sprintf("[http]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\n", p))
		procs = append(procs, d)
		rows = append(rows, row{f.name, "127.0.0.1:" + strconv.Itoa(p)})
	}
	// Rounds in turn, every path once a round, so that what drifts
	// meanwhile weighs on all of them alike; the medians are shown.
	type figures struct{ small, mid, big []float64 }
	got := make([]figures, len(rows))
	for range *rounds {
		for i, r := range rows {
			cl := client(r.proxy)
			run(cl, origin+"/small", 50, *conc)
			ls, ts := run(cl, origin+"/small", *requests, *conc)
			lm, tm := run(cl, origin+"/mid", 200, *conc)
			_, tb := run(cl, origin+"/big", 1, 1)
			got[i].small = append(got[i].small, float64(len(ls))/ts.Seconds())
			got[i].mid = append(got[i].mid, float64(len(lm))/tm.Seconds())
			got[i].big = append(got[i].big, tb.Seconds())
		}
	}
	fmt.Printf("## Peers: HTTP, %d clients, the same clamd, %d round(s) (medians, ranges)\n\n| path | 1 KiB objects/s | 1 MiB objects/s | one %d MiB download, s |\n|---|---|---|---|\n", *conc, *rounds, *bigMiB)
	for i, r := range rows {
		fmt.Printf("| %s | %s | %s | %s |\n", r.name, spread(got[i].small, "%.0f"), spread(got[i].mid, "%.0f"), spread(got[i].big, "%.3f"))
	}
	// The ratios: fsigkd against the best peer (rates) and against the
	// direct download (time).
	fmt.Printf("\n| ratio (medians) | 1 KiB | 1 MiB | %d MiB against direct |\n|---|---|---|---|\n", *bigMiB)
	best := func(f func(figures) []float64) (float64, string) {
		v, name := 0.0, ""
		for i, r := range rows {
			if r.proxy != "" && !strings.HasPrefix(r.name, "fsigkd") && median(f(got[i])) > v {
				v, name = median(f(got[i])), r.name
			}
		}
		return v, name
	}
	bs, bsName := best(func(f figures) []float64 { return f.small })
	bm, bmName := best(func(f figures) []float64 { return f.mid })
	for i, r := range rows {
		if !strings.HasPrefix(r.name, "fsigkd") {
			continue
		}
		fmt.Printf("| %s | %s | %s | %.1fx |\n", r.name, ratio(median(got[i].small), bs, bsName), ratio(median(got[i].mid), bm, bmName), median(got[i].big)/median(got[0].big))
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
	type row struct{ name, addr string }
	rows := []row{{"direct (smtp-sink)", "127.0.0.1:" + strconv.Itoa(sinkPort)}}
	if cs := lookup("clamsmtpd"); cs != "" {
		cdir := filepath.Join(dir, "peer-clamsmtp")
		check(os.MkdirAll(cdir, 0o777))
		os.Chmod(cdir, 0o777)
		p := freePort()
		conf := fmt.Sprintf("OutAddress: 127.0.0.1:%d\nListen: 127.0.0.1:%d\nClamAddress: %s\nTempDirectory: %s\nPidFile: %s/clamsmtpd.pid\n", sinkPort, p, *clamd, cdir, cdir)
		check(os.WriteFile(filepath.Join(cdir, "clamsmtpd.conf"), []byte(conf), 0o644))
		rows = append(rows, row{"ClamSMTP (clamd)", procs.run(p, cs, "-d", "1", "-f", filepath.Join(cdir, "clamsmtpd.conf"))})
	}
	for _, f := range []struct{ name, keys string }{{"fsigkd (clamd)", clamdKeys}, {"fsigkd (bundled fsavd)", "fsavd_start = yes\n"}} {
		p := freePort()
		d := startWithEngine(filepath.Join(dir, "peer-smtp-"+strconv.Itoa(p)), p, f.keys, fmt.Sprintf("[smtp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\nparent_server_host = 127.0.0.1\nparent_server_port = %d\n", p, sinkPort))
		defer stop(d)
		rows = append(rows, row{f.name, "127.0.0.1:" + strconv.Itoa(p)})
	}
	rates := make([][]float64, len(rows))
	for range *rounds {
		for i, r := range rows {
			t0 := time.Now()
			out, err := exec.Command(source, "-s", "20", "-m", strconv.Itoa(*mails), "-l", "10240", "-f", "a@example.com", "-t", "b@example.com", r.addr).CombinedOutput()
			if err != nil {
				fmt.Printf("%s: smtp-source failed: %v %s\n", r.name, err, out)
				continue
			}
			rates[i] = append(rates[i], float64(*mails)/time.Since(t0).Seconds())
		}
	}
	fmt.Printf("## Peers: SMTP, %d mails of 10 KiB, 20 sessions, the same clamd, %d round(s) (medians, ranges)\n\n| path | mails/s | against ClamSMTP |\n|---|---|---|\n", *mails, *rounds)
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
		fmt.Printf("| %s | %s | %s |\n", r.name, spread(rates[i], "%.0f"), against)
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
