// Package worker is the contract between a worker process and the
// service it runs: what a service is built from (Env), what it does (Serve,
// Shutdown), and the registry the daemon is built with. The proxies and the
// supervisor both import it; the proxies know nothing of processes,
// semaphores or signals.
package worker

import (
	"context"
	"net"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/logs"
	"github.com/fsigkd/fsigkd/spool"
)

// Service is what a worker runs.
type Service interface {
	// Serve accepts connections from ln until ln is closed.
	Serve(ln net.Listener) error
	// Shutdown waits for the sessions under way to end, until ctx does;
	// then it cuts the rest.
	Shutdown(ctx context.Context) error
}

// TLSServer is a service with an implicit-TLS listener (tls_port): its
// clients speak TLS from their first byte, with the service's tls_cert.
type TLSServer interface {
	// ServeTLS accepts connections from ln until ln is closed; Serve
	// runs beside it on the service's plain listener.
	ServeTLS(ln net.Listener) error
}

// Env is what a service is built from.
type Env struct {
	Config  *conf.Config
	Service *conf.Service
	Logs    *logs.Logs
	Log     *zap.Logger // named for the service
	Spool   spool.Dir
}

// Factory builds a service for a worker.
type Factory func(env *Env) (Service, error)

// Registry maps the service names of the settings to their factories.
type Registry map[string]Factory
