// Package workload is one app instance of the workshop's service: a real HTTP
// server on its own loopback port that serves the operations of
// operation.Catalog, records what it served (the server-side view the
// detector reads), and can be made to fail or slow down from inside its own
// handler chain (the http_error and slow fault kinds).
package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grayzone/grayzone/telemetry/middleware"
	"github.com/grayzone/grayzone/telemetry/observation"
)

// Response headers every instance sets on every response (see observation).
const (
	HeaderZone     = observation.HeaderZone
	HeaderInstance = observation.HeaderInstance
)

// DefaultDBTimeout bounds each database call, like the workshop app's 2 s.
const DefaultDBTimeout = 2 * time.Second

// defaultCents is what /pay charges when the request names no amount.
const defaultCents = 1000

// DB is the instance's database client. Implementations must honour ctx: it
// carries the DBTimeout deadline and is cancelled when the caller goes away.
type DB interface {
	Ride(ctx context.Context, zone, instance string) (int64, error)
	Pay(ctx context.Context, zone, instance string, cents int64) (int64, error)
}

// Config describes one instance.
type Config struct {
	Zone string // required
	ID   string // required, e.g. scenario.InstanceID(zone, n)
	DB   DB     // required
	// Record receives one server-side observation per operation request (not
	// for /health or unknown paths). It is called from many goroutines and
	// never after Close has returned. Nil: observations are dropped.
	Record func(observation.Observation)
	// DBTimeout bounds each database call; 0 means DefaultDBTimeout.
	DBTimeout time.Duration
	// Seed drives the fault draws; it is mixed with ID so that instances
	// sharing a seed still fail independently.
	Seed int64
	// Listen is the address to serve on (default 127.0.0.1:0, a free port).
	Listen string
}

// InstanceFaults are the faults injected into the instance's own handler
// chain. The zero value injects nothing.
type InstanceFaults struct {
	// HTTPErrorPercent is the chance (0..100) that any request, /health
	// included, is answered with 500.
	HTTPErrorPercent float64
	// Slow is added to every request, plus a uniform draw in
	// [-SlowJitter, +SlowJitter]; the total is never negative.
	Slow, SlowJitter time.Duration
}

func (f InstanceFaults) active() bool {
	return f.HTTPErrorPercent > 0 || f.Slow > 0 || f.SlowJitter > 0
}

// Instance is a running app instance.
type Instance struct {
	zone, id  string
	db        DB
	dbTimeout time.Duration
	addr      string
	srv       *http.Server
	served    chan error // Serve's result
	// stopWatch unregisters the ctx watcher; atomic because the watcher can
	// fire (and call Close) before Start has stored it.
	stopWatch atomic.Pointer[func() bool]

	// faults is swapped whole by SetFaults so that the request path reads it
	// with one atomic load and no lock.
	faults atomic.Pointer[InstanceFaults]

	rngMu sync.Mutex // rand.Rand is not safe for concurrent use
	rng   *rand.Rand

	// recordMu lets Close wait for in-progress Record calls and then turn
	// recording off, so Record is never called after Close returns.
	recordMu  sync.RWMutex
	record    func(observation.Observation)
	recordOff bool

	closeOnce sync.Once
	closeErr  error
}

// Start listens on a fresh 127.0.0.1 port and serves until Close is called
// or ctx is done, whichever is first.
func Start(ctx context.Context, cfg Config) (*Instance, error) {
	if cfg.Zone == "" {
		return nil, errors.New("workload: Config.Zone is required")
	}
	if cfg.ID == "" {
		return nil, errors.New("workload: Config.ID is required")
	}
	if cfg.DB == nil {
		return nil, fmt.Errorf("workload: instance %s: Config.DB is required", cfg.ID)
	}
	if cfg.DBTimeout < 0 {
		return nil, fmt.Errorf("workload: instance %s: Config.DBTimeout %v is negative", cfg.ID, cfg.DBTimeout)
	}
	if cfg.DBTimeout == 0 {
		cfg.DBTimeout = DefaultDBTimeout
	}

	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("workload: instance %s: listen: %w", cfg.ID, err)
	}

	h := fnv.New64a()
	h.Write([]byte(cfg.ID))
	in := &Instance{
		zone:      cfg.Zone,
		id:        cfg.ID,
		db:        cfg.DB,
		dbTimeout: cfg.DBTimeout,
		addr:      ln.Addr().String(),
		served:    make(chan error, 1),
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), h.Sum64())),
		record:    cfg.Record,
	}
	in.faults.Store(&InstanceFaults{})
	in.srv = &http.Server{
		Handler:           in,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		// No WriteTimeout: the slow fault must be able to exceed any fixed bound.
	}
	go func() { in.served <- in.srv.Serve(ln) }()
	stop := context.AfterFunc(ctx, func() { _ = in.Close() })
	in.stopWatch.Store(&stop)
	return in, nil
}

// Zone is the instance's zone.
func (in *Instance) Zone() string { return in.zone }

// ID is the instance's id.
func (in *Instance) ID() string { return in.id }

// Addr is the host:port the instance listens on.
func (in *Instance) Addr() string { return in.addr }

// URL is the instance's base URL, without a trailing slash.
func (in *Instance) URL() string { return "http://" + in.addr }

// SetFaults replaces the injected faults; safe to call at any time from any
// goroutine. Requests already past the fault stage are not affected.
func (in *Instance) SetFaults(f InstanceFaults) {
	in.faults.Store(&f)
}

// Faults returns the faults in force.
func (in *Instance) Faults() InstanceFaults { return *in.faults.Load() }

// Close stops the instance: it stops accepting, lets in-flight requests finish
// for up to DBTimeout+1s (the longest a well-behaved request takes), then cuts
// the remaining connections. It is idempotent; the error says whether the
// shutdown had to cut connections.
func (in *Instance) Close() error {
	in.closeOnce.Do(func() {
		if stop := in.stopWatch.Load(); stop != nil {
			(*stop)()
		}
		ctx, cancel := context.WithTimeout(context.Background(), in.dbTimeout+time.Second)
		defer cancel()
		if err := in.srv.Shutdown(ctx); err != nil {
			// Cutting the connections cancels the stragglers' request
			// contexts, which ends their fault sleeps and database calls.
			_ = in.srv.Close()
			in.closeErr = fmt.Errorf("workload: instance %s: graceful shutdown: %w", in.id, err)
		}
		if err := <-in.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			in.closeErr = errors.Join(in.closeErr, fmt.Errorf("workload: instance %s: serve: %w", in.id, err))
		}
		in.recordMu.Lock()
		in.recordOff = true
		in.recordMu.Unlock()
	})
	return in.closeErr
}

// ServeHTTP is the instance's handler chain: identity headers, injected
// faults, routing, then the server-side observation.
func (in *Instance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	hdr := w.Header()
	hdr.Set(HeaderZone, in.zone)
	hdr.Set(HeaderInstance, in.id)

	op, handle := in.route(r.URL.Path)
	sw := &middleware.StatusWriter{ResponseWriter: w}
	in.serveWithFaults(sw, r, handle)
	if op == "" {
		return // /health and unknown paths are not workload operations
	}
	end := time.Now()
	in.emit(observation.Observation{
		At:        end,
		Source:    observation.Server,
		Zone:      in.zone,
		Instance:  in.id,
		Operation: op,
		Outcome:   observation.FromStatus(sw.Status()),
		Latency:   end.Sub(start),
	})
}

func (in *Instance) emit(o observation.Observation) {
	in.recordMu.RLock()
	defer in.recordMu.RUnlock()
	if in.record != nil && !in.recordOff {
		in.record(o)
	}
}

// route maps a path to its operation name ("" for non-operations) and handler.
func (in *Instance) route(path string) (string, http.HandlerFunc) {
	switch path {
	case "/ride":
		return "ride", in.ride
	case "/pay":
		return "pay", in.pay
	case "/signin":
		return "signin", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"operation": "signin", "user": "rider"})
		}
	case "/home":
		return "home", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"operation": "home", "rides": []string{}})
		}
	case "/health":
		// Shallow on purpose: it never touches the database, which is what
		// keeps a database-link failure invisible to health checks.
		return "", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("ok"))
		}
	}
	return "", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{"not found"})
	}
}

// serveWithFaults applies the injected faults, then the handler.
func (in *Instance) serveWithFaults(w http.ResponseWriter, r *http.Request, next http.HandlerFunc) {
	f := in.faults.Load()
	if !f.active() {
		next(w, r)
		return
	}
	delay, fail := in.draw(f)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			// The caller gave up (or the server is cutting connections):
			// the request was not served, which the server counts as a fault.
			t.Stop()
			writeJSON(w, http.StatusServiceUnavailable, errorBody{"request cancelled"})
			return
		}
	}
	if fail {
		writeJSON(w, http.StatusInternalServerError, errorBody{"injected error"})
		return
	}
	next(w, r)
}

// draw decides one request's fault delay and whether it fails. Only requests
// that need a random draw take the lock.
func (in *Instance) draw(f *InstanceFaults) (delay time.Duration, fail bool) {
	delay = f.Slow
	needJitter := f.SlowJitter > 0
	needFail := f.HTTPErrorPercent > 0 && f.HTTPErrorPercent < 100
	if needJitter || needFail {
		in.rngMu.Lock()
		if needJitter {
			delay += time.Duration(in.rng.Int64N(2*int64(f.SlowJitter)+1)) - f.SlowJitter
		}
		if needFail {
			fail = in.rng.Float64()*100 < f.HTTPErrorPercent
		}
		in.rngMu.Unlock()
	}
	if f.HTTPErrorPercent >= 100 {
		fail = true
	}
	return max(delay, 0), fail
}

type errorBody struct {
	Error string `json:"error"`
}

type idBody struct {
	Operation string `json:"operation"`
	ID        int64  `json:"id"`
}

func (in *Instance) ride(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), in.dbTimeout)
	defer cancel()
	id, err := in.db.Ride(ctx, in.zone, in.id)
	if err != nil {
		writeDBError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, idBody{"ride", id})
}

func (in *Instance) pay(w http.ResponseWriter, r *http.Request) {
	cents := int64(defaultCents)
	if s := r.URL.Query().Get("cents"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v <= 0 {
			writeJSON(w, http.StatusBadRequest, errorBody{"cents must be a positive integer"})
			return
		}
		cents = v
	}
	ctx, cancel := context.WithTimeout(r.Context(), in.dbTimeout)
	defer cancel()
	id, err := in.db.Pay(ctx, in.zone, in.id, cents)
	if err != nil {
		writeDBError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, idBody{"pay", id})
}

// writeDBError answers a failed database call with a short message; the
// underlying error stays out of the response, as a real service's would.
func writeDBError(w http.ResponseWriter, err error) {
	msg := "database error"
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "database timeout"
	}
	writeJSON(w, http.StatusInternalServerError, errorBody{msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
