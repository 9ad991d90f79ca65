package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/fsigkd/fsigkd/ipc"
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

func writeState(baseDir string, s *State) error {
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

// removeStaleSems removes the semaphore sets a previous master of this
// base_dir recorded and did not remove (it was killed). It returns how many.
func removeStaleSems(baseDir string) (int, error) {
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
			info, err := ipc.Lookup(s.ID)
			if err != nil || info.NSems != s.N || info.CTime != s.CTime || info.UID != os.Geteuid() {
				continue // gone, or no longer ours
			}
			if ipc.Open(s.ID, s.N).Remove() == nil {
				n++
			}
		}
	}
	return n, os.Remove(stateFile(baseDir))
}

// pidFile is the master's pid file, locked for as long as the master runs
// so that a second master on the same base_dir refuses to start.
type pidFile struct {
	f    *os.File
	path string
}

func lockPidFile(path string) (*pidFile, error) {
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
	return &pidFile{f: f, path: path}, nil
}

func (p *pidFile) remove() {
	os.Remove(p.path)
	p.f.Close()
}
