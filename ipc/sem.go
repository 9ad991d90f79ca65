// Package ipc is the plumbing between fsigkd's processes, so that the
// supervisor reads as policy: the System V semaphore sets that count each
// service's connection slots (sem.go), what the master hands a worker and
// the worker's word that it serves (handoff.go), the readiness pipe of a
// detached master, the state file and the pid file (state.go), and
// systemd's notify socket (sdnotify.go).
//
// A semaphore set has one semaphore per slot: 1 is free, 0 is taken.
// Every take is made with SEM_UNDO, so when a worker dies the kernel gives
// its slots back; the sets are visible in /proc/sysvipc/sem, which is how
// `fsigkd status` and the stale-set clean-up at start find them.
//
// golang.org/x/sys/unix has the syscall numbers but no wrappers for
// semget/semctl/semop; the few needed are here. semop is made through
// semtimedop with no timeout, the one call every Linux architecture has.
package ipc

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	ipcPrivate = 0
	ipcCreat   = 0o1000
	ipcExcl    = 0o2000
	ipcNoWait  = 0o4000
	ipcRmid    = 0
	getAll     = 13
	setAll     = 17
	semUndo    = 0x1000
)

// SemSet is one semaphore set of N slots.
type SemSet struct {
	ID int
	N  int
	// CTime is the set's change time as /proc/sysvipc/sem showed it after
	// Create (0 for Open): with ID and N it tells our set from a later one
	// that got the same id.
	CTime int64
}

type sembuf struct {
	num uint16
	op  int16
	flg int16
}

// Create makes a new private set of n semaphores, all free, readable and
// writable by this user only.
func Create(n int) (*SemSet, error) {
	id, _, errno := unix.Syscall(unix.SYS_SEMGET, ipcPrivate, uintptr(n), ipcCreat|ipcExcl|0o600)
	if errno != 0 {
		return nil, os.NewSyscallError("semget", errno)
	}
	s := &SemSet{ID: int(id), N: n}
	vals := make([]uint16, n)
	for i := range vals {
		vals[i] = 1
	}
	if err := s.ctlArray(setAll, vals); err != nil {
		s.Remove()
		return nil, err
	}
	if info, err := Lookup(s.ID); err == nil {
		s.CTime = info.CTime
	}
	return s, nil
}

// Open names an existing set without checking it.
func Open(id, n int) *SemSet { return &SemSet{ID: id, N: n} }

// ErrBusy is TryTake's answer for a slot that is taken.
var ErrBusy = syscall.EAGAIN

// TryTake takes slot i without waiting: ErrBusy when it is taken.
func (s *SemSet) TryTake(i int) error { return s.op(i, -1, ipcNoWait|semUndo) }

// Give frees slot i.
func (s *SemSet) Give(i int) error { return s.op(i, 1, semUndo) }

func (s *SemSet) op(i, delta, flags int) error {
	b := sembuf{num: uint16(i), op: int16(delta), flg: int16(flags)}
	for {
		_, _, errno := unix.Syscall6(unix.SYS_SEMTIMEDOP, uintptr(s.ID), uintptr(unsafe.Pointer(&b)), 1, 0, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return ErrBusy
		}
		return os.NewSyscallError("semop", errno)
	}
}

// Values reads every semaphore of the set (1 free, 0 taken).
func (s *SemSet) Values() ([]uint16, error) {
	vals := make([]uint16, s.N)
	return vals, s.ctlArray(getAll, vals)
}

// InUse counts the taken slots.
func (s *SemSet) InUse() (int, error) {
	vals, err := s.Values()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range vals {
		if v == 0 {
			n++
		}
	}
	return n, nil
}

func (s *SemSet) ctlArray(cmd int, vals []uint16) error {
	if len(vals) == 0 {
		return nil
	}
	_, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(s.ID), 0, uintptr(cmd), uintptr(unsafe.Pointer(&vals[0])), 0, 0)
	if errno != 0 {
		return os.NewSyscallError("semctl", errno)
	}
	return nil
}

// Remove deletes the set; anyone waiting on it gets EIDRM.
func (s *SemSet) Remove() error {
	_, _, errno := unix.Syscall(unix.SYS_SEMCTL, uintptr(s.ID), 0, ipcRmid)
	if errno != 0 {
		return os.NewSyscallError("semctl", errno)
	}
	return nil
}

// Info is a set as /proc/sysvipc/sem shows it.
type Info struct {
	Key, ID, Perms, NSems, UID int
	CTime                      int64
}

// List reads /proc/sysvipc/sem: every set this process can see (its IPC
// namespace's).
func List() ([]Info, error) {
	f, err := os.Open("/proc/sysvipc/sem")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Info
	sc := bufio.NewScanner(f)
	sc.Scan() // the header line
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 {
			continue
		}
		n := make([]int64, 10)
		for i := range n {
			n[i], _ = strconv.ParseInt(fs[i], 10, 64)
		}
		perms, _ := strconv.ParseInt(fs[2], 8, 32) // shown in octal
		out = append(out, Info{Key: int(n[0]), ID: int(n[1]), Perms: int(perms), NSems: int(n[3]), UID: int(n[4]), CTime: n[9]})
	}
	return out, sc.Err()
}

// Lookup finds set id in /proc/sysvipc/sem.
func Lookup(id int) (Info, error) {
	sets, err := List()
	if err != nil {
		return Info{}, err
	}
	for _, s := range sets {
		if s.ID == id {
			return s, nil
		}
	}
	return Info{}, fmt.Errorf("semaphore set %d: %w", id, os.ErrNotExist)
}
