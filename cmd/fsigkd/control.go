package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/fsigkd/fsigkd/supervisor"
)

// control is `fsigkd stop` and `fsigkd reload`, for machines without
// systemd, as `postfix reload` and `squid -k reconfigure` serve: SIGTERM
// or SIGHUP to the running master, found by its state under base_dir.
// reload checks the settings file first, as the master will, and a file
// that does not load changes nothing (exit 1, its error said); stop waits
// until the master has ended (its sessions' shutdown_grace, and a margin).
func control(name string, args []string) int {
	baseDir, _, _, cfg, code := statusBase(args)
	if baseDir == "" {
		return code
	}
	if name == "reload" && cfg == nil {
		return fail(exitBadFile, "reload: the settings do not load: the running gateway keeps its own")
	}
	master, _, err := supervisor.Services(baseDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fsigkd is not running (%v)\n", err)
		return 3
	}
	sig := syscall.SIGHUP
	if name == "stop" {
		sig = syscall.SIGTERM
	}
	if err := syscall.Kill(master, sig); err != nil {
		return fail(exitBadFile, "%s: master pid %d: %v", name, master, err)
	}
	if name == "reload" {
		fmt.Printf("reload asked of master pid %d\n", master)
		return 0
	}
	grace := 30 * time.Second
	if cfg != nil {
		grace = cfg.Global.ShutdownGrace
	}
	for deadline := time.Now().Add(grace + 15*time.Second); alive(master); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fail(exitBadFile, "stop: master pid %d has not ended", master)
		}
	}
	fmt.Printf("stopped master pid %d\n", master)
	return 0
}

// alive tells whether process pid runs: it exists and has not ended (a
// zombie, not yet reaped by whoever started it, has).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: the state follows the last parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
