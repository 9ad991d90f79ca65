package catalog

import (
	"strconv"
	"strings"
)

// Lifecycle are the lines an operator greps for besides the faults of
// the published catalogue: the start (with the command line and the
// version), entering daemon mode, the moment every service accepts, and
// the stop. They are logged at INFO by the master, text and all from
// here, so that a runbook's grep finds them as written.
var Lifecycle = map[string]Entry{
	"L01": {"L01", Info, "### START ### fsigkd {version} {argv}"},
	"L02": {"L02", Info, "Entering daemon mode. pid={pid}"},
	"L03": {"L03", Info, "Starting to accept connection on each proxy process."},
	"L04": {"L04", Info, "### STOP ###"},
}

func lifecycle(id string, kv ...string) Message {
	e := Lifecycle[id]
	return Message{ID: id, Level: e.Level, Text: Fill(e.Template, kv...)}
}

// L01: the master starts, run as argv.
func L01(version string, argv []string) Message {
	return lifecycle("L01", "version", version, "argv", strings.Join(argv, " "))
}

// L02: the master runs detached, as pid.
func L02(pid int) Message { return lifecycle("L02", "pid", strconv.Itoa(pid)) }

// L03: every service accepts.
func L03() Message { return lifecycle("L03") }

// L04: the master has stopped.
func L04() Message { return lifecycle("L04") }
