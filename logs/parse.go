package logs

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/fsigkd/fsigkd/internal/hexesc"
)

// ParseAccess reads one access-log line back, in either format (native or
// json), for the console's list of detections. It takes what it can: a
// line of another shape is an error.
func ParseAccess(line string) (Access, error) {
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "{") {
		return parseJSON(line)
	}
	f := strings.Split(line, " ")
	if len(f) != 13 || !strings.HasPrefix(f[10], "DETECT-STAT:") || !strings.HasPrefix(f[11], "ACTION:") || !strings.HasPrefix(f[12], "PROXY-STAT:") {
		return Access{}, errors.New("not an access-log line")
	}
	var a Access
	sec, ms, _ := strings.Cut(f[0], ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	m, err2 := strconv.ParseInt(ms, 10, 64)
	if err1 != nil || err2 != nil {
		return Access{}, errors.New("not an access-log line: its time")
	}
	a.Start = time.Unix(s, m*1e6)
	if el, err := strconv.ParseInt(f[1], 10, 64); err == nil {
		a.Elapsed = time.Duration(el) * time.Millisecond
	}
	a.Client = undash(f[2])
	if r, st, ok := strings.Cut(f[3], "/"); ok {
		a.Result = undash(r)
		a.Status, _ = strconv.Atoi(st)
	}
	a.Bytes, _ = strconv.ParseInt(f[4], 10, 64)
	a.Method, a.URL, a.User = undash(f[5]), undash(f[6]), undash(f[7])
	a.ContentType = undash(f[9])
	d := strings.Split(strings.TrimPrefix(f[10], "DETECT-STAT:"), ":")
	if len(d) >= 4 {
		a.Detect, a.Name, a.File, a.Quarantine = unescape(d[0]), unescape(d[1]), unescape(d[2]), unescape(d[3])
	}
	a.Action = unescape(strings.TrimSuffix(strings.TrimPrefix(f[11], "ACTION:"), ":"))
	p := strings.Split(strings.TrimPrefix(f[12], "PROXY-STAT:"), ":")
	if len(p) >= 8 {
		a.Service = unescape(p[0])
		a.Slot, _ = strconv.Atoi(p[1])
		a.PID, _ = strconv.Atoi(p[2])
		a.Server = unescape(p[3])
		a.Files, _ = strconv.Atoi(p[4])
		a.Checks, _ = strconv.Atoi(p[5])
		if ms, err := strconv.ParseInt(p[6], 10, 64); err == nil {
			a.ScanTime = time.Duration(ms) * time.Millisecond
		}
		a.Detail = unescape(p[7])
	}
	return a, nil
}

func parseJSON(line string) (Access, error) {
	var j accessJSON
	if err := json.Unmarshal([]byte(line), &j); err != nil {
		return Access{}, err
	}
	return Access{Start: time.UnixMilli(int64(j.Time * 1000)), Elapsed: time.Duration(j.ElapsedMS) * time.Millisecond,
		Client: j.Client, Result: j.Result, Status: j.Status, Bytes: j.Bytes, Method: j.Method, URL: j.URL, User: j.User,
		Server: j.Server, ContentType: j.ContentType, Detect: j.Detect, Name: j.Name, File: j.File, Quarantine: j.Quarantine,
		Action: j.Action, Service: j.Service, Slot: j.Slot, PID: j.PID, Files: j.Files, Checks: j.Checks,
		ScanTime: time.Duration(j.ScanMS) * time.Millisecond, Detail: j.Detail}, nil
}

func undash(s string) string {
	if s == "-" {
		return ""
	}
	return unescape(s)
}

// unescape undoes escape's %XX.
func unescape(s string) string { return hexesc.Decode(s, '%') }
