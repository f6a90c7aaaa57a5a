// Package middleware is grayzone's Go HTTP middleware: it wraps an
// http.Handler, counts each request's outcome and latency per operation
// (the route pattern) for the instance's zone, and ships the counts to
// grayzone serve as per-interval aggregates — one record per operation and
// interval, never one per request. It also exposes the same counts in
// Prometheus' shape (http_requests_total and
// http_request_duration_seconds), so a Prometheus that scrapes the instance
// works with grayzone's default Prometheus queries.
//
// Import path: github.com/grayzone/grayzone/telemetry/middleware.
//
//	mw, err := middleware.New(middleware.Options{
//		Endpoint: "http://grayzone:8080", Resource: "web", Token: tok,
//		Zone: "use2-az1", Instance: hostname,
//	})
//	go mw.Run(ctx)
//	http.ListenAndServe(":8080", mw.Wrap(mux))
//
// The request path allocates nothing. What it costs (measured in
// BENCHMARKS.md, "Middleware request path"):
//
//   - Counting a request is record's Series.Observe, one atomic add: the
//     part held to 10 ns. mw.Route(op, h) resolves the series when the route
//     is registered, so this is all the counting a request costs there.
//   - Wrap, and Observe(op, ...), first find the operation's series: a
//     lock-free map read keyed by the operation (r.Pattern by default, the
//     string ServeMux set). That read costs about as much again as the
//     count, so counting on the default path does not meet 10 ns; on
//     Route's it does.
//   - Wrap and Route time the request: two monotonic clock reads (with the
//     default clock), which on a VM cost more than everything above
//     together, plus a pooled status writer.
//
// It never blocks or fails a request when grayzone is
// slow or down: shipping runs on its own goroutine, batches that cannot be
// sent wait in a bounded buffer, and what overflows it is dropped and
// counted (Stats).
package middleware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grayzone/grayzone/telemetry/batch"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Defaults of Options.
const (
	DefaultInterval      = time.Second
	DefaultMaxPending    = 60
	DefaultMaxOperations = 100
	// Unmatched names requests no route matched; Other names operations
	// past MaxOperations.
	Unmatched = "unmatched"
	Other     = "other"
	// maxPerBatch is the batch API's limit of aggregates per request.
	maxPerBatch = 10_000
)

// Options configure a Middleware. Zone and Instance are required.
type Options struct {
	Zone     string // the zone this instance runs in (e.g. use2-az1)
	Instance string // the instance's id
	// Endpoint is grayzone serve's base URL (http://host:8080). Empty: no
	// shipping; the counts are only exposed by Metrics for Prometheus.
	Endpoint string
	Resource string // the resource in grayzone's configuration
	Token    string // bearer token for the batch API
	// Interval is how often counts are shipped (default 1s): the delay this
	// source adds to detection.
	Interval time.Duration
	// MaxPending is how many intervals' batches are kept while grayzone
	// cannot take them (default 60); older ones are dropped and counted.
	MaxPending int
	// Operation names a request's operation. Default: the ServeMux pattern
	// that matched (r.Pattern), or Unmatched.
	Operation func(*http.Request) string
	// MaxOperations bounds the distinct operations (default 100); the rest
	// count as Other, so a path-derived name cannot flood grayzone.
	MaxOperations int
	// Thresholds and DefaultThreshold (100ms) say when a request is slow;
	// match grayzone's operations section.
	Thresholds       map[string]time.Duration
	DefaultThreshold time.Duration
	Client           *http.Client // default: a client with a 5s timeout
	Now              func() time.Time
	Log              *slog.Logger
}

// Stats are the middleware's own counts.
type Stats struct {
	Shipped  uint64 // aggregates grayzone accepted
	Rejected uint64 // aggregates grayzone refused as bad input (not retried)
	Dropped  uint64 // aggregates dropped because the buffer was full
	Pending  int    // batches waiting to be sent
	LastErr  string // the latest shipping error
}

// Middleware counts requests and ships the counts. Safe for concurrent use.
type Middleware struct {
	o    Options
	rec  *record.Recorder
	mono bool // Options.Now is the real clock: time latencies on the monotonic clock alone

	ops   atomic.Pointer[map[string]*record.Series] // copy on write
	opsMu sync.Mutex

	shipMu  sync.Mutex // one collect/send at a time
	mu      sync.Mutex
	pending [][]record.Aggregate
	totals  map[record.SeriesKey]*total // cumulative, for Metrics
	stats   Stats
}

// New checks the options and returns a middleware.
func New(o Options) (*Middleware, error) {
	switch {
	case o.Zone == "":
		return nil, errors.New("middleware: Zone is required")
	case o.Instance == "":
		return nil, errors.New("middleware: Instance is required")
	case o.Endpoint != "" && o.Resource == "":
		return nil, errors.New("middleware: Resource is required with Endpoint")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxOperations <= 0 {
		o.MaxOperations = DefaultMaxOperations
	}
	if o.Operation == nil {
		o.Operation = func(r *http.Request) string { return r.Pattern }
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 5 * time.Second}
	}
	mono := o.Now == nil
	if mono {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	o.Endpoint = strings.TrimSuffix(o.Endpoint, "/")
	m := &Middleware{o: o, rec: record.New(record.Options{DefaultThreshold: o.DefaultThreshold, Thresholds: o.Thresholds}),
		totals: map[record.SeriesKey]*total{}, mono: mono}
	m.ops.Store(&map[string]*record.Series{})
	return m, nil
}

// series returns the operation's series: a lock-free map read once the
// operation has been seen.
func (m *Middleware) series(op string) *record.Series {
	if s := (*m.ops.Load())[op]; s != nil {
		return s
	}
	return m.newSeries(op)
}

func (m *Middleware) newSeries(op string) *record.Series {
	m.opsMu.Lock()
	defer m.opsMu.Unlock()
	cur := *m.ops.Load()
	if s := cur[op]; s != nil {
		return s
	}
	name := op
	if name == "" {
		name = Unmatched
	}
	if len(cur) >= m.o.MaxOperations {
		if s := cur[Other]; s != nil {
			return s
		}
		name = Other
	}
	s := m.rec.Series(observation.Server, m.o.Zone, m.o.Instance, name)
	next := make(map[string]*record.Series, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[op] = s
	m.ops.Store(&next)
	return s
}

// Observe counts one request of op outside Wrap (e.g. a gRPC interceptor).
func (m *Middleware) Observe(op string, status int, latency time.Duration) {
	m.series(op).Observe(observation.FromStatus(status), latency)
}

// Wrap returns next, counting every request it serves. A request whose
// handler panics counts as a fault (the panic goes on up).
func (m *Middleware) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.serve(nil, w, r, next)
	})
}

// Route is Wrap for one handler of a known operation: the series is
// resolved once, here, so the request path does no lookup at all.
//
//	mux.Handle("GET /orders/{id}", mw.Route("get-order", getOrder))
func (m *Middleware) Route(op string, next http.Handler) http.Handler {
	s := m.series(op)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.serve(s, w, r, next)
	})
}

// serve runs next and counts the request in s (nil: the request's operation).
func (m *Middleware) serve(s *record.Series, w http.ResponseWriter, r *http.Request, next http.Handler) {
	var start time.Time
	var monoStart time.Duration
	if m.mono {
		monoStart = time.Since(epoch)
	} else {
		start = m.o.Now()
	}
	sw := writers.Get().(*StatusWriter)
	sw.ResponseWriter, sw.Code = w, 0
	ok := false
	defer func() {
		code := sw.Code
		switch {
		case !ok:
			code = 0 // panicked: no proper answer
		case code == 0:
			code = http.StatusOK
		}
		sw.ResponseWriter = nil
		writers.Put(sw)
		if s == nil {
			s = m.series(m.o.Operation(r))
		}
		var latency time.Duration
		if m.mono {
			latency = time.Since(epoch) - monoStart
		} else {
			latency = m.o.Now().Sub(start)
		}
		s.Observe(observation.FromStatus(code), latency)
	}()
	next.ServeHTTP(sw, r)
	ok = true
}

// epoch anchors the monotonic clock readings: time.Since reads the
// monotonic clock alone, where time.Now also reads the wall clock.
var epoch = time.Now()

var writers = sync.Pool{New: func() any { return new(StatusWriter) }}

// Run ships the counts every Interval until ctx ends, then once more.
func (m *Middleware) Run(ctx context.Context) error {
	t := time.NewTicker(m.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), m.o.Interval)
			defer cancel()
			_ = m.Flush(fctx)
			return nil
		case <-t.C:
			if err := m.Flush(ctx); err != nil && ctx.Err() == nil {
				m.o.Log.Debug("grayzone middleware: ship failed; kept for retry", "err", err)
			}
		}
	}
}

// Flush collects what was counted since the last call and sends every
// pending batch (oldest first) to grayzone. A batch grayzone cannot take
// now stays pending; one it refuses as bad input is dropped and counted.
func (m *Middleware) Flush(ctx context.Context) error {
	m.shipMu.Lock()
	defer m.shipMu.Unlock()
	m.collect()
	if m.o.Endpoint == "" {
		return nil
	}
	for {
		m.mu.Lock()
		if len(m.pending) == 0 {
			m.mu.Unlock()
			return nil
		}
		b := m.pending[0]
		m.mu.Unlock()
		err := m.send(ctx, b)
		m.mu.Lock()
		var rej *rejectedError
		switch {
		case err == nil:
			m.stats.Shipped += uint64(len(b))
		case errors.As(err, &rej):
			m.stats.Rejected += uint64(len(b))
		default:
			m.stats.LastErr = err.Error()
			m.mu.Unlock()
			return err
		}
		m.pending = m.pending[1:]
		m.mu.Unlock()
		if err != nil {
			m.o.Log.Warn("grayzone middleware: batch refused", "err", err)
		}
	}
}

// collect drains the recorder into the cumulative totals and a new pending batch.
func (m *Middleware) collect() {
	now := m.o.Now()
	var batch []record.Aggregate
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rec.Drain(func(k record.SeriesKey, d record.Snapshot) {
		t := m.totals[k]
		if t == nil {
			t = &total{}
			m.totals[k] = t
		}
		t.add(&d)
		if m.o.Endpoint != "" {
			batch = append(batch, d.Aggregate(now, k))
		}
	})
	for len(batch) > 0 {
		n := min(len(batch), maxPerBatch)
		m.pending = append(m.pending, batch[:n])
		batch = batch[n:]
	}
	if over := len(m.pending) - m.o.MaxPending; over > 0 {
		for _, b := range m.pending[:over] {
			m.stats.Dropped += uint64(len(b))
		}
		m.pending = append([][]record.Aggregate(nil), m.pending[over:]...)
	}
}

type rejectedError struct{ msg string }

func (e *rejectedError) Error() string { return e.msg }

func (m *Middleware) send(ctx context.Context, b []record.Aggregate) error {
	// The batch format's own encoder: the wire form is defined once, in
	// telemetry/batch, which imports nothing of the server.
	w := batch.ObservationBatch{Resource: m.o.Resource, Aggregates: make([]batch.AggregateIn, len(b))}
	for i, a := range b {
		w.Aggregates[i] = batch.EncodeAggregate(a)
	}
	body, err := json.Marshal(w)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.o.Endpoint+"/v1/observations", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(batch.SourceHeader, "middleware")
	if m.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+m.o.Token)
	}
	resp, err := m.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("grayzone middleware: post: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusAccepted:
		return nil
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusNotFound:
		return &rejectedError{msg: fmt.Sprintf("grayzone middleware: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))}
	}
	return fmt.Errorf("grayzone middleware: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
}

// Stats returns the shipping counts.
func (m *Middleware) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Pending = len(m.pending)
	return s
}
