package ipc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// A worker is started by the master as `fsigkd worker` with what it
// serves handed over on descriptors and in its environment: the
// service's listening socket, the settings the master checked (JSON, read
// to its end: a worker never reads a settings file), a pipe on which the
// worker says it serves, and the implicit-TLS listener (tls_port) when
// the service has one.
const (
	fdListener    = 3
	fdSettings    = 4
	fdReady       = 5
	fdTLSListener = 6

	envService = "FSIGKD_SERVICE"
	envSem     = "FSIGKD_SEM" // id:n of the slot semaphore set
	envFg      = "FSIGKD_FOREGROUND"
	envTLS     = "FSIGKD_TLS_LISTENER" // 1: fdTLSListener is handed over
)

// maxSettings bounds the settings a worker reads.
const maxSettings = 1 << 20

// Handoff is what the master hands a worker.
type Handoff struct {
	Service    string
	Listener   *os.File
	TLS        *os.File // the implicit-TLS listener; nil: none
	Sem        *SemSet  // the slots; nil: none
	Settings   []byte   // conf.Config, marshalled
	Foreground bool     // the worker logs to standard error too
}

// Spawn starts cmd (the worker's command, its other fields set) with h
// handed over. ready is closed once the worker says it serves; a worker
// that ends first never closes it.
func Spawn(cmd *exec.Cmd, h Handoff) (ready <-chan struct{}, err error) {
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		cfgR.Close()
		cfgW.Close()
		return nil, err
	}
	fg := "0"
	if h.Foreground {
		fg = "1"
	}
	cmd.Env = append(cmd.Env, envService+"="+h.Service, envFg+"="+fg)
	if h.Sem != nil {
		cmd.Env = append(cmd.Env, envSem+"="+strconv.Itoa(h.Sem.ID)+":"+strconv.Itoa(h.Sem.N))
	}
	cmd.ExtraFiles = []*os.File{h.Listener, cfgR, readyW}
	if h.TLS != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, h.TLS)
		cmd.Env = append(cmd.Env, envTLS+"=1")
	}
	err = cmd.Start()
	cfgR.Close()
	readyW.Close()
	if err != nil {
		cfgW.Close()
		readyR.Close()
		return nil, err
	}
	go func() {
		cfgW.Write(h.Settings)
		cfgW.Close()
	}()
	done := make(chan struct{})
	go func() {
		line, _ := bufio.NewReader(readyR).ReadString('\n')
		readyR.Close()
		if line == "ready\n" {
			close(done)
		}
	}()
	return done, nil
}

// Inherited is what a worker was handed.
type Inherited struct {
	Service    string
	Listener   net.Listener
	TLS        net.Listener // the implicit-TLS listener; nil: none
	Sem        *SemSet      // nil: none
	Settings   []byte
	Foreground bool
}

// Inherit takes what the master handed this worker.
func Inherit() (*Inherited, error) {
	in := &Inherited{Service: os.Getenv(envService), Foreground: os.Getenv(envFg) == "1"}
	f := os.NewFile(fdSettings, "settings")
	raw, err := io.ReadAll(io.LimitReader(f, maxSettings))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the settings: %v", err)
	}
	in.Settings = raw
	if id, n, ok := parseSem(os.Getenv(envSem)); ok {
		in.Sem = Open(id, n)
	}
	lf := os.NewFile(fdListener, "listener")
	in.Listener, err = net.FileListener(lf)
	lf.Close()
	if err != nil {
		return nil, fmt.Errorf("the inherited listener is unusable: %v", err)
	}
	if os.Getenv(envTLS) == "1" {
		tf := os.NewFile(fdTLSListener, "tls listener")
		in.TLS, err = net.FileListener(tf)
		tf.Close()
		if err != nil {
			return nil, fmt.Errorf("the inherited TLS listener is unusable: %v", err)
		}
	}
	return in, nil
}

// Ready tells the master that this worker serves.
func Ready() {
	if f := os.NewFile(fdReady, "ready"); f != nil {
		f.WriteString("ready\n")
		f.Close()
	}
}

func parseSem(s string) (id, n int, ok bool) {
	a, b, found := strings.Cut(s, ":")
	id, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	return id, n, found && err1 == nil && err2 == nil
}

// envDaemon carries the descriptor on which a detached master tells the
// command that started it that it serves.
const envDaemon = "FSIGKD_DAEMON_FD"

// Detached tells whether this process is a master started by Detach.
func Detached() bool { return os.Getenv(envDaemon) != "" }

// Detach starts this program again with args, in a session of its own,
// and returns once it serves (nil) or has failed.
func Detach(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), envDaemon+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	w.Close()
	b, _ := io.ReadAll(r)
	if strings.TrimSpace(string(b)) != "ready" {
		return errors.New("did not start; see the error log")
	}
	return nil
}

// DaemonReady is, in a master started by Detach, what tells the command
// that started it that it serves; it also points the standard streams at
// /dev/null. Elsewhere it is nil.
func DaemonReady() func() {
	if !Detached() {
		return nil
	}
	os.Unsetenv(envDaemon)
	// The readiness pipe is the launcher's alone: a child that kept it
	// (the bundled fsavd is started before the master is ready) would
	// keep the launcher waiting for ever.
	syscall.CloseOnExec(3)
	w := os.NewFile(3, "daemon")
	if devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		for _, std := range []int{0, 1, 2} {
			syscall.Dup2(int(devnull.Fd()), std)
		}
	}
	return func() { w.WriteString("ready\n"); w.Close() }
}
