package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsigkd/fsigkd/internal/dbgen"
	"github.com/fsigkd/fsigkd/scanner"
)

// sigdbFigures sets the bundled fsavd beside clamd on one generated
// database at the scale of ClamAV's own (-hashes MD5 signatures, a tenth
// as many SHA-256, -bodies body and as many logical signatures, a tenth
// as many of pages' scripts as ClamAV normalises them): how long
// each takes to load it, its resident memory, its peak during a reload
// after part of the database changed (as freshclam's update of daily
// does, the bulk unchanged) and the longest scan meanwhile, its rate for 1 KiB and 1 MiB objects
// (clamd by descriptor, its cache off; the bundled engine keeps no
// verdicts: each scan is a scan), and whether both name the planted
// corpus alike.
func sigdbFigures(dir string) {
	clamd := lookup("clamd")
	if clamd == "" {
		fmt.Println("## The bundled fsavd beside clamd, one database\n\nclamd not found (apt-get install clamav-daemon): not measured.")
		return
	}
	db := filepath.Join(dir, "sigdb")
	corpus := filepath.Join(dir, "corpus")
	check(os.MkdirAll(db, 0o755))
	check(os.MkdirAll(corpus, 0o755))
	sc := dbgen.Scale{MD5: *hashes, SHA256: *hashes / 10, Body: *bodies, Logical: *bodies, Script: *bodies / 10, Planted: 250}
	t := time.Now()
	objs, err := dbgen.Write(db, sc, 7)
	check(err)
	for _, o := range objs {
		check(os.WriteFile(filepath.Join(corpus, o.Name), o.Data, 0o644))
	}
	fmt.Printf("## The bundled fsavd beside clamd, one database\n\n")
	fmt.Printf("Generated in %v: %d MD5, %d SHA-256, %d body, %d logical and %d script signatures; a corpus of %d objects.\n\n",
		time.Since(t).Round(time.Millisecond), sc.MD5, sc.SHA256, sc.Body, sc.Logical, sc.Script, len(objs))

	type engine struct {
		name   string
		start  func() (*exec.Cmd, string)
		client func(sock string) scanner.Scanner
		reload func(cmd *exec.Cmd, sock string)
		loaded func() bool // the reload's end, in the engine's log
	}
	clamdLog := filepath.Join(dir, "clamd.log")
	engines := []engine{
		{
			name: "clamd " + clamdVersion(clamd),
			start: func() (*exec.Cmd, string) {
				sock := filepath.Join(dir, "clamd.sock")
				conf := filepath.Join(dir, "clamd.conf")
				os.WriteFile(conf, []byte(fmt.Sprintf("Foreground yes\nLocalSocket %s\nDatabaseDirectory %s\nMaxThreads 8\nDisableCache yes\nLogFile %s\nLogTime yes\n", sock, db, clamdLog)), 0o644)
				cmd := exec.Command(clamd, "-c", conf)
				check(cmd.Start())
				return cmd, sock
			},
			client: func(sock string) scanner.Scanner {
				eps, _ := scanner.ParseEndpoints(sock, dir)
				return scanner.NewClamd(&scanner.Pool{Endpoints: eps}, false)
			},
			reload: func(_ *exec.Cmd, sock string) {
				c, err := net.Dial("unix", sock)
				check(err)
				c.Write([]byte("zRELOAD\x00"))
				c.SetReadDeadline(time.Now().Add(time.Minute))
				c.Read(make([]byte, 64)) // RELOADING
				c.Close()
			},
			loaded: func() bool { return logHas(clamdLog, "Database correctly reloaded") },
		},
		{
			name: "the bundled fsavd",
			start: func() (*exec.Cmd, string) {
				sock := filepath.Join(dir, "fsavd.sock")
				cmd := daemonCommand(*bin, "fsavd", "-socket", sock, "-signatures", db, "-log-dir", dir)
				check(cmd.Start())
				return cmd, sock
			},
			client: func(sock string) scanner.Scanner {
				eps, _ := scanner.ParseEndpoints(sock, dir)
				return scanner.NewFsavd(&scanner.Pool{Endpoints: eps}, true)
			},
			reload: func(cmd *exec.Cmd, _ string) { cmd.Process.Signal(syscall.SIGHUP) },
			loaded: func() bool { return logHas(filepath.Join(dir, "error.log"), "signatures reloaded") },
		},
	}
	small, big := filepath.Join(dir, "small.bin"), filepath.Join(dir, "big.bin")
	check(os.WriteFile(small, filler(1<<10), 0o644))
	check(os.WriteFile(big, filler(1<<20), 0o644))

	fmt.Println("| engine | load | resident memory | reload: peak memory, longest scan meanwhile | 1 KiB objects/s | 1 MiB objects/s | corpus named as planted |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, e := range engines {
		os.Remove(filepath.Join(dir, "error.log"))
		start := time.Now()
		cmd, sock := e.start()
		for !dialable(sock) {
			if time.Since(start) > 10*time.Minute {
				check(fmt.Errorf("%s did not start", e.name))
			}
			time.Sleep(20 * time.Millisecond)
		}
		load := time.Since(start)
		s := e.client(sock)
		scan(s, small) // the first connection made
		time.Sleep(time.Second)
		rss := rssKiB(cmd.Process.Pid)
		rate1 := scanRate(s, small, 4000)
		rate2 := scanRate(s, big, 200)
		right := 0
		for _, o := range objs {
			names := scan(s, filepath.Join(corpus, o.Name))
			if strings.TrimSuffix(names, ".UNOFFICIAL") == o.Want {
				right++
			}
		}
		// As freshclam's updates do: a part of the database changes (here
		// the SHA-256, body and logical files), the bulk (the MD5 file)
		// does not. clamd reads it all again; fsavd the changed files.
		for _, f := range []string{"gen.hsb", "gen.ndb", "gen.ldb"} {
			now := time.Now()
			check(os.Chtimes(filepath.Join(db, f), now, now))
		}
		peak, longest := reloadFigures(cmd, sock, s, small, e.reload, e.loaded)
		fmt.Printf("| %s | %v | %d MiB | %d MiB, %v | %.0f | %.0f | %d of %d |\n", e.name, load.Round(10*time.Millisecond), rss>>10,
			peak>>10, longest.Round(time.Millisecond), rate1, rate2, right, len(objs))
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	fmt.Println()
}

// reloadFigures asks the engine to reload and, until it says it has,
// samples its memory and scans 1 KiB objects: the peak, the longest scan.
func reloadFigures(cmd *exec.Cmd, sock string, s scanner.Scanner, obj string, reload func(*exec.Cmd, string), loaded func() bool) (int, time.Duration) {
	var stop atomic.Bool
	var longest atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			t := time.Now()
			scan(s, obj)
			if d := int64(time.Since(t)); d > longest.Load() {
				longest.Store(d)
			}
		}
	})
	peak := rssKiB(cmd.Process.Pid)
	reload(cmd, sock)
	deadline := time.Now().Add(10 * time.Minute)
	for !loaded() && time.Now().Before(deadline) {
		peak = max(peak, rssKiB(cmd.Process.Pid))
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	return peak, time.Duration(longest.Load())
}

// scanRate is objects scanned a second, -c clients, n objects in all.
func scanRate(s scanner.Scanner, path string, n int) float64 {
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	t := time.Now()
	for range *conc {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				scan(s, path)
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(t).Seconds()
}

// scan scans the file at path: the names the engine gives.
func scan(s scanner.Scanner, path string) string {
	f, err := os.Open(path)
	check(err)
	defer f.Close()
	st, _ := f.Stat()
	v, err := s.Scan(context.Background(), &scanner.Object{File: f, Path: path, Size: st.Size()})
	check(err)
	return strings.Join(v.Names, ",")
}

func filler(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz \n"[i*7%28]
	}
	return b
}

func dialable(sock string) bool {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func logHas(path, s string) bool { return strings.Contains(readFile(path), s) }

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// clamdVersion is clamd's version ("ClamAV 1.4.3/27481/..." says 1.4.3).
func clamdVersion(bin string) string {
	out, _ := exec.Command(bin, "--version").Output()
	f := strings.Fields(string(out) + " ? ?")
	v, _, _ := strings.Cut(f[1], "/")
	return v
}
