package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fsigkd/fsigkd/internal/servertest"
)

// milterFigures measures Postfix taking 10 KiB mails from smtp-source
// (20 sessions) and relaying them to smtp-sink: with no milter (the
// limit), with clamav-milter and with fsigkd's milter behind the same
// clamd (-clamd), and with fsigkd's milter and its bundled engine; then
// with fsigkd's relay as Postfix's content_filter (XFORWARD, a second
// smtpd taking the mail back), behind clamd and with the bundled engine.
// Each path has its own private Postfix, the same but for the milter or
// the filter; the rounds go in turn, and each run waits for its Postfix's
// queue to empty before the next starts, so that no delivery of one
// weighs on another. Two rates: the mails Postfix took (with a milter,
// each scanned before its 250; a content filter scans after), and the
// mails delivered to the sink, until the queue is empty (what the whole
// path carries).
func milterFigures(dir string) {
	source, sink, pf := lookup("smtp-source"), lookup("smtp-sink"), lookup("postfix")
	switch {
	case *clamd == "":
		fmt.Println("## Milter\n\nskipped: needs a clamd (-clamd; bench/run starts one)")
		return
	case source == "" || sink == "" || pf == "":
		fmt.Println("## Milter\n\nskipped: postfix, smtp-source and smtp-sink (Debian package postfix) are needed")
		return
	case os.Geteuid() != 0:
		fmt.Println("## Milter\n\nskipped: a private Postfix needs root")
		return
	}
	os.Chmod(dir, 0o755)
	var procs started
	defer procs.stopAll()
	sinkPort := freePort()
	procs.run(sinkPort, sink, "-u", "nobody", "127.0.0.1:"+strconv.Itoa(sinkPort), "100")
	type milter struct {
		name, socket string
		pgid         int    // its processes' group (0: none)
		filter       string // the relay's port, as content_filter ("": none)
	}
	milters := []milter{{name: "Postfix, no milter (the limit)"}}
	if cm := lookup("clamav-milter"); cm != "" {
		cdir := filepath.Join(dir, "peer-clamav-milter")
		check(os.MkdirAll(cdir, 0o755))
		p := freePort()
		conf := fmt.Sprintf("MilterSocket inet:%d@127.0.0.1\nClamdSocket unix:%s\nForeground yes\nUser root\nPidFile %s/pid\nOnClean Accept\nOnInfected Reject\nOnFail Defer\nAddHeader Replace\nMaxFileSize 100M\nTemporaryDirectory %s\nLogFile %s/log\n",
			p, *clamd, cdir, cdir, cdir)
		check(os.WriteFile(filepath.Join(cdir, "clamav-milter.conf"), []byte(conf), 0o644))
		procs.run(p, cm, "-c", filepath.Join(cdir, "clamav-milter.conf"))
		milters = append(milters, milter{name: "Postfix + clamav-milter (clamd)", socket: fmt.Sprintf("inet:127.0.0.1:%d", p), pgid: procs[len(procs)-1].cmd.Process.Pid})
	}
	for _, f := range []struct{ name, keys string }{{"Postfix + fsigkd's milter (clamd)", "av_engine = clamd\nav_servers = " + *clamd + "\nfsavd_start = no\n"}, {"Postfix + fsigkd's milter (bundled fsavd)", "fsavd_start = yes\n"}} {
		p := freePort()
		d := startWithEngine(filepath.Join(dir, "milter-"+strconv.Itoa(p)), p, f.keys, fmt.Sprintf("[milter]\nenable = yes\nport = %d\n", p))
		defer stop(d)
		milters = append(milters, milter{name: f.name, socket: fmt.Sprintf("inet:127.0.0.1:%d", p), pgid: d.cmd.Process.Pid})
	}
	// The relay as content_filter: Postfix hands each mail to it, and it
	// on to a second smtpd of the same Postfix (back, port back), which
	// relays it to the sink; XFORWARD says who the client was.
	for _, f := range []struct{ name, keys string }{{"Postfix + fsigkd's relay as content_filter (clamd)", "av_engine = clamd\nav_servers = " + *clamd + "\nfsavd_start = no\n"}, {"Postfix + fsigkd's relay as content_filter (bundled fsavd)", "fsavd_start = yes\n"}} {
		p, back := freePort(), freePort()
		d := startWithEngine(filepath.Join(dir, "relay-"+strconv.Itoa(p)), p, f.keys,
			fmt.Sprintf("[smtp]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\nparent_server_host = 127.0.0.1\nparent_server_port = %d\ntrusted_mtas = 127.0.0.1\n", p, back))
		defer stop(d)
		milters = append(milters, milter{name: f.name, pgid: d.cmd.Process.Pid, filter: strconv.Itoa(p) + "," + strconv.Itoa(back)})
	}
	postfixes := make([]*servertest.Postfix, len(milters))
	for i, m := range milters {
		main, master := "milter_default_action = tempfail\n", ""
		if m.socket != "" {
			main += "smtpd_milters = " + m.socket + "\n"
		}
		if port, back, ok := strings.Cut(m.filter, ","); ok {
			// The README's content_filter lines.
			main += "content_filter = fsigkd:[127.0.0.1]:" + port + "\n"
			master = "fsigkd unix - - n - 20 smtp\n  -o smtp_send_xforward_command=yes\n" +
				"127.0.0.1:" + back + " inet n - n - - smtpd\n  -o content_filter=\n" +
				"  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters\n" +
				"  -o mynetworks=127.0.0.0/8\n  -o smtpd_authorized_xforward_hosts=127.0.0.0/8\n"
		}
		p, err := servertest.NewPostfix(filepath.Join(dir, "postfix-"+strconv.Itoa(i)), servertest.PostfixOptions{
			Addr: "127.0.0.1:" + strconv.Itoa(freePort()), RelayHost: "127.0.0.1:" + strconv.Itoa(sinkPort), Main: main, Master: master})
		check(err)
		defer p.Stop()
		postfixes[i] = p
	}
	rates := make([][]float64, len(milters))
	delivered := make([][]float64, len(milters))
	cpu := make([][2][]float64, len(milters)) // the milter's, clamd's: ms a mail
	isClamd := func(_ int, comm string) bool { return comm == "clamd" }
	for range *rounds {
		for i, m := range milters {
			inGroup := func(pgrp int, _ string) bool { return m.pgid != 0 && pgrp == m.pgid }
			c0, k0 := cpuOf(inGroup), cpuOf(isClamd)
			t0 := time.Now()
			out, err := exec.Command(source, "-s", "20", "-m", strconv.Itoa(*mails), "-l", "10240", "-f", "a@example.com", "-t", "b@example.net", postfixes[i].Addr).CombinedOutput()
			if err != nil {
				fmt.Printf("%s: smtp-source failed: %v %s\n", m.name, err, out)
				continue
			}
			rates[i] = append(rates[i], float64(*mails)/time.Since(t0).Seconds())
			if !postfixes[i].WaitDrained(2 * time.Minute) {
				fmt.Printf("%s: the queue did not empty in 2 minutes\n", m.name)
				continue
			}
			delivered[i] = append(delivered[i], float64(*mails)/time.Since(t0).Seconds())
			perMail := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(*mails) }
			cpu[i][0] = append(cpu[i][0], perMail(cpuOf(inGroup)-c0))
			cpu[i][1] = append(cpu[i][1], perMail(cpuOf(isClamd)-k0))
		}
	}
	fmt.Printf("## Milter and content filter: Postfix taking %d mails of 10 KiB, 20 sessions, the same clamd, %d round(s) (medians, ranges)\n\n"+
		"| path | mails/s taken | mails/s delivered | the filter's CPU, ms a mail | clamd's CPU, ms a mail | against clamav-milter (taken / delivered) | against no filter (taken / delivered) |\n|---|---|---|---|---|---|---|\n", *mails, *rounds)
	peerAt := -1
	if len(milters) > 1 && milters[1].name == "Postfix + clamav-milter (clamd)" {
		peerAt = 1
	}
	for i, m := range milters {
		peer, limit, taken := "", "", spread(rates[i], "%.0f")
		if m.filter != "" {
			taken = "(before the scan)"
		}
		if i > 0 {
			limit = ratio(median(rates[i]), median(rates[0]), "") + " / " + ratio(median(delivered[i]), median(delivered[0]), "")
		}
		if peerAt > 0 && i > peerAt {
			peer = ratio(median(rates[i]), median(rates[peerAt]), "") + " / " + ratio(median(delivered[i]), median(delivered[peerAt]), "")
		}
		if m.filter != "" {
			limit = "- / " + ratio(median(delivered[i]), median(delivered[0]), "")
			if peerAt > 0 {
				peer = "- / " + ratio(median(delivered[i]), median(delivered[peerAt]), "")
			}
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", m.name, taken, spread(delivered[i], "%.0f"), spread(cpu[i][0], "%.2f"), spread(cpu[i][1], "%.2f"), peer, limit)
	}
	fmt.Println()
}

// cpuOf is the CPU time (user and system) the running processes that
// match (by process group and command name) have spent so far, from
// /proc/PID/stat.
func cpuOf(match func(pgrp int, comm string) bool) time.Duration {
	dirs, _ := os.ReadDir("/proc")
	var ticks int64
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(b[j+1:]))
		if len(f) < 13 {
			continue
		}
		pgrp, _ := strconv.Atoi(f[2])
		if !match(pgrp, string(b[i+1:j])) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}
