// Package console is the master's web listener (console, console_bind,
// console_port): /metrics in the Prometheus text format, one view across
// the worker processes (package metrics), and the console's pages. Off
// loopback it is served only with a password (HTTP basic authentication
// against console_password's bcrypt hash) and TLS: check refuses the
// settings otherwise, and Start refuses again, so that no code path serves
// it bare.
package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/metrics"
)

// User is the console's one user name.
const User = "admin"

// Server is a running console.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Addr is where it listens.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// ErrBare is Start's refusal of a console off loopback without a password
// and TLS.
var ErrBare = errors.New("a console off loopback needs console_password and console_tls_cert/_key")

// Start listens on the console's address and serves: /metrics from
// totals (and more), the pages mux gives (nil: none yet), and, when ready is set,
// /healthz (alive) and /readyz (ready says whether, and if not why), the
// two without the password, for load balancers.
func Start(g conf.Global, totals *metrics.Totals, pages http.Handler, ready func() (bool, string), more ...prometheus.Collector) (*Server, error) {
	ip := net.ParseIP(g.ConsoleBind)
	if ip == nil || !ip.IsLoopback() && (g.ConsolePassword == "" || g.ConsoleTLSCert == "") {
		return nil, ErrBare
	}
	reg := prometheus.NewRegistry()
	// The totals, and what the caller adds (the process_* and go_* of
	// every process of the gateway).
	reg.MustRegister(totals.Collector())
	reg.MustRegister(more...)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	if pages != nil {
		mux.Handle("/", pages)
	}
	var h http.Handler = mux
	if g.ConsolePassword != "" {
		h = basicAuth(g.ConsolePassword, mux)
	}
	if ready != nil {
		// For balancers: unauthenticated, and saying nothing but alive or
		// ready (and, not ready, why in a word or two).
		top := http.NewServeMux()
		top.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "ok\n")
		})
		top.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			if ok, why := ready(); !ok {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, "not ready: "+why+"\n")
				return
			}
			io.WriteString(w, "ready\n")
		})
		top.Handle("/", h)
		h = top
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(g.ConsoleBind, strconv.Itoa(g.ConsolePort)))
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	if g.ConsoleTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(g.ConsoleTLSCert, g.ConsoleTLSKey)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("console_tls_cert: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s := &Server{srv: srv, ln: ln}
	go srv.Serve(ln)
	return s, nil
}

// Close stops the console, letting requests under way finish for a
// moment.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
}

// basicAuth lets through requests with the user and a password matching
// hash; the others get 401. bcrypt makes each try slow on purpose, which
// would make every page (and a scraper's every /metrics) slow, and a
// stream of wrong tries a load on the master: a credential that passed is
// remembered (its SHA-256) for authTTL, and one bcrypt check runs at a
// time, the others waiting a moment, then told to come back (503).
func basicAuth(hash string, next http.Handler) http.Handler {
	var mu sync.Mutex
	good := map[[32]byte]time.Time{}
	checking := make(chan struct{}, 1)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		key := sha256.Sum256([]byte(user + "\x00" + pass))
		mu.Lock()
		until, known := good[key]
		mu.Unlock()
		if ok && known && time.Now().Before(until) {
			next.ServeHTTP(w, r)
			return
		}
		if ok {
			select {
			case checking <- struct{}{}:
			case <-time.After(2 * time.Second):
				http.Error(w, "The console is busy; try again.", http.StatusServiceUnavailable)
				return
			}
			ok = subtle.ConstantTimeCompare([]byte(user), []byte(User)) == 1 &&
				bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) == nil
			<-checking
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="fsigkd console", charset="UTF-8"`)
			http.Error(w, "The console needs its password.", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		if len(good) > 64 {
			clear(good)
		}
		good[key] = time.Now().Add(authTTL)
		mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// authTTL is how long a credential that passed is taken without bcrypt.
const authTTL = 10 * time.Minute
