package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/servertest"
)

// icapFigures measures Squid with fsigkd's ICAP server beside Squid with
// c-icap (virus_scan), both scanning with the same clamd (-clamd), Squid
// alone, and Squid with an ICAP server that reads nothing and answers 204
// (startNullICAP: what Squid's ICAP client costs by itself, the ceiling
// of every ICAP server through it): 1 KiB and 1 MiB objects, -c clients.
func icapFigures(dir string) {
	squid, err1 := exec.LookPath("squid")
	if err1 != nil {
		squid = "/usr/sbin/squid"
	}
	if _, err := os.Stat(squid); err != nil || lookup("c-icap") == "" || enginetest.CICAPModules() == "" || *clamd == "" {
		fmt.Println("## ICAP\n\nskipped: needs squid, c-icap with virus_scan (libc-icap-mod-virus-scan) and a clamd (-clamd; bench/run starts one)")
		return
	}
	os.Chmod(dir, 0o755)
	origin := "http://" + startOrigin().addr

	// fsigkd's ICAP server, with clamd.
	fp := freePort()
	d := startWith(filepath.Join(dir, "icap"), fp, fmt.Sprintf("[icap]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\n", fp))
	defer stop(d)
	fsigkd := "127.0.0.1:" + strconv.Itoa(fp)
	// And with its bundled engine, for what fsigkd does on its own (the
	// issue's figure is the one on the same clamd).
	bp := freePort()
	db := startWithEngine(filepath.Join(dir, "icap-bundled"), bp, "fsavd_start = yes\n", fmt.Sprintf("[icap]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\n", bp))
	defer stop(db)
	bundled := "127.0.0.1:" + strconv.Itoa(bp)

	// c-icap with virus_scan over the same clamd.
	var procs started
	defer procs.stopAll()
	caddr := procs.cicap(filepath.Join(dir, "c-icap"))

	var squids []*daemon
	startSquid := func(name, resp, req string) string {
		sdir := filepath.Join(dir, name)
		check(os.MkdirAll(sdir, 0o777))
		os.Chmod(sdir, 0o777)
		port := freePort()
		addr := "127.0.0.1:" + strconv.Itoa(port)
		conf := servertest.SquidConfig(sdir, addr, resp, req)
		if resp == "" {
			conf = fmt.Sprintf("http_port %s\npid_filename %s/squid.pid\ncache_log %s/cache.log\naccess_log none\ncache deny all\ncache_mem 8 MB\nhttp_access allow all\nshutdown_lifetime 1 seconds\n", addr, sdir, sdir)
		}
		check(os.WriteFile(filepath.Join(sdir, "squid.conf"), []byte(conf), 0o644))
		cmd := daemonCommand(squid, "-N", "-f", filepath.Join(sdir, "squid.conf"))
		check(cmd.Start())
		squids = append(squids, &daemon{cmd: cmd, dir: sdir})
		waitPort(port)
		return addr
	}
	defer func() {
		for _, d := range squids {
			stop(d)
		}
	}()
	null := startNullICAP()
	rows := []struct{ name, proxy string }{
		{"Squid alone (no scanning)", startSquid("squid-plain", "", "")},
		{"Squid + an ICAP server that answers 204 unread (the ceiling)", startSquid("squid-null", "icap://"+null+"/respmod", "icap://"+null+"/reqmod")},
		{"Squid + c-icap (virus_scan, clamd)", startSquid("squid-cicap", "icap://"+caddr+"/avscan", "icap://"+caddr+"/avscan")},
		{"Squid + fsigkd ICAP (clamd)", startSquid("squid-fsigkd", "icap://"+fsigkd+"/respmod", "icap://"+fsigkd+"/reqmod")},
		{"Squid + fsigkd ICAP (its bundled fsavd)", startSquid("squid-fsigkd-bundled", "icap://"+bundled+"/respmod", "icap://"+bundled+"/reqmod")},
	}
	fmt.Printf("## ICAP: Squid 5 and an ICAP server, the same clamd, %d clients\n\n| path | 1 KiB objects/s | p50 | 1 MiB objects/s | p50 |\n|---|---|---|---|---|\n", *conc)
	for _, row := range rows {
		cl := client(row.proxy)
		run(cl, origin+"/small", 50, *conc) // warm
		ls, ts := run(cl, origin+"/small", *requests/3, *conc)
		lm, tm := run(cl, origin+"/mid", 200, *conc)
		fmt.Printf("| %s | %.0f | %s | %.0f | %s |\n", row.name, float64(len(ls))/ts.Seconds(), pct(ls, 0.5), float64(len(lm))/tm.Seconds(), pct(lm, 0.5))
	}
	fmt.Println()
}
