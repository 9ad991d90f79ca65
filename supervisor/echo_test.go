package supervisor

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/internal/sessions"
	"github.com/fsigkd/fsigkd/slots"
	"github.com/fsigkd/fsigkd/worker"
)

// echo is the test-only service the supervisor tests run in real worker
// processes: it answers "slot" and "pid" about itself and echoes the rest.
type echo struct {
	sessions sessions.Set
	svc      *conf.Service
}

func newEcho(env *worker.Env) (worker.Service, error) {
	if os.Getenv("FSIGKD_TEST_ECHO_FAIL") == env.Service.Name {
		return nil, errors.New("told to fail")
	}
	return &echo{svc: env.Service}, nil
}

func (e *echo) Serve(ln net.Listener) error { return e.sessions.Serve(ln, e.handle) }

// ServeTLS echoes over TLS (tls_cert) on tls_port.
func (e *echo) ServeTLS(ln net.Listener) error {
	cert, err := tls.LoadX509KeyPair(e.svc.TLSCert, e.svc.TLSKey)
	if err != nil {
		return err
	}
	return e.sessions.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}), e.handle)
}

func (e *echo) handle(c net.Conn) {
	sc := bufio.NewScanner(c)
	// Every echo session counts as busy: on a drain it is let finish.
	for first := true; sc.Scan(); first = false {
		if first {
			slots.Started(c) // as the real services do after the first request
		}
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

func (e *echo) Shutdown(ctx context.Context) error { return e.sessions.Shutdown(ctx) }

// ask sends one line and reads one back.
func ask(c net.Conn, line string) (string, error) {
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	s, err := r.ReadString('\n')
	return strings.TrimSpace(s), err
}
