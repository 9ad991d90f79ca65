package ipc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// State is what the master records in base_dir/fsigkd.state for `fsigkd
// status` and for the next start: which semaphore sets are ours (a killed
// master leaves them behind; the next one removes them) and which worker
// serves each service.
type State struct {
	MasterPID int            `json:"master_pid"`
	Services  []ServiceState `json:"services"`
	// Down lists the enabled services that could not start, and why.
	Down []DownService `json:"down,omitempty"`
}

// DownService is an enabled service that is not running.
type DownService struct {
	Name string `json:"name"`
	Why  string `json:"why"` // the documented message it failed with
}

// ServiceState is one service's entry.
type ServiceState struct {
	Name   string `json:"name"`
	Listen string `json:"listen"`
	PID    int    `json:"pid"`
	Sems   []Sem  `json:"sems"` // the current set first; older ones are draining
}

// Sem identifies one of our semaphore sets beyond doubt: a set id can be
// reused by the kernel, but not with the same size, owner and creation time.
type Sem struct {
	ID    int   `json:"id"`
	N     int   `json:"n"`
	CTime int64 `json:"ctime"`
}

func stateFile(baseDir string) string { return filepath.Join(baseDir, "fsigkd.state") }

// RemoveState removes base_dir's state file, at the master's end.
func RemoveState(baseDir string) { os.Remove(stateFile(baseDir)) }

// ReadState reads the state file of base_dir.
func ReadState(baseDir string) (*State, error) {
	b, err := os.ReadFile(stateFile(baseDir))
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", stateFile(baseDir), err)
	}
	return &s, nil
}

// WriteState records s as base_dir's state, replacing the file whole.
func WriteState(baseDir string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := stateFile(baseDir) + ".new"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, stateFile(baseDir))
}

// RemoveStaleSems removes the semaphore sets a previous master of this
// base_dir recorded and did not remove (it was killed). It returns how many.
func RemoveStaleSems(baseDir string) (int, error) {
	prev, err := ReadState(baseDir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, svc := range prev.Services {
		for _, s := range svc.Sems {
			info, err := Lookup(s.ID)
			if err != nil || info.NSems != s.N || info.CTime != s.CTime || info.UID != os.Geteuid() {
				continue // gone, or no longer ours
			}
			if Open(s.ID, s.N).Remove() == nil {
				n++
			}
		}
	}
	return n, os.Remove(stateFile(baseDir))
}

// PidFile is the master's pid file, locked for as long as the master runs
// so that a second master on the same base_dir refuses to start.
type PidFile struct {
	f    *os.File
	path string
}

// LockPidFile takes path as this process's pid file, or says which
// process holds it.
func LockPidFile(path string) (*PidFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.Read(b)
		f.Close()
		return nil, fmt.Errorf("another fsigkd (pid %s) runs with %s", strings.TrimSpace(string(b[:n])), path)
	}
	f.Truncate(0)
	f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	return &PidFile{f: f, path: path}, nil
}

// Remove removes the pid file and lets go of it, at the master's end.
func (p *PidFile) Remove() {
	os.Remove(p.path)
	p.f.Close()
}
