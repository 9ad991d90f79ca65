package supervisor

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/fsigkd/fsigkd/slots"
)

// echo is the test-only service the supervisor tests run in real worker
// processes: it answers "slot" and "pid" about itself and echoes the rest.
type echo struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func newEcho(env *Env) (Service, error) {
	if os.Getenv("FSIGKD_TEST_ECHO_FAIL") == env.Service.Name {
		return nil, errors.New("told to fail")
	}
	return &echo{conns: map[net.Conn]bool{}}, nil
}

func (e *echo) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		e.mu.Lock()
		e.conns[c] = true
		e.mu.Unlock()
		e.wg.Add(1)
		go e.handle(c)
	}
}

func (e *echo) handle(c net.Conn) {
	defer e.wg.Done()
	defer func() {
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		c.Close()
	}()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		switch line {
		case "slot":
			line = strconv.Itoa(slots.SlotOf(c))
		case "pid":
			line = strconv.Itoa(os.Getpid())
		case "quit":
			return
		}
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			return
		}
	}
}

func (e *echo) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		e.mu.Lock()
		for c := range e.conns {
			c.Close()
		}
		e.mu.Unlock()
		return ctx.Err()
	}
}

// ask sends one line and reads one back.
func ask(c net.Conn, line string) (string, error) {
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	s, err := r.ReadString('\n')
	return strings.TrimSpace(s), err
}
