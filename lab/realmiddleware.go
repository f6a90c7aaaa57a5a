package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/grayzone/grayzone/lab/telemetrypath"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/middleware"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// realMiddleware is real mode's middleware path: every instance counts its
// requests with grayzone's Go middleware, which ships per-interval
// aggregates over HTTP to grayzone's batch API (POST /v1/observations,
// served by the API's own handler, with a bearer token) on loopback; the
// batches pass the gate the controller drains at each tick, as in serve.
type realMiddleware struct {
	gated
	srv   *http.Server
	url   string
	token string
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	mu     sync.Mutex
	mws    map[string]*middleware.Middleware
	closed bool
}

// batchReceiver is the api.Backend behind the lab's batch endpoint: it
// takes aggregates into the gate. Only POST /v1/observations is routed to
// the handler, so the rest of the interface is never called.
type batchReceiver struct {
	api.Backend
	gate *ingest.Gate
}

var _ api.AggregateIngester = batchReceiver{}

func (b batchReceiver) Ingest(ctx context.Context, resource string, obs []observation.Observation) error {
	return b.IngestAggregates(ctx, resource, "batch", obs, nil)
}

func (b batchReceiver) IngestAggregates(_ context.Context, resource, source string, obs []observation.Observation, aggs []record.Aggregate) error {
	if resource != Resource {
		return fmt.Errorf("resource %q: the lab's is %q: %w", resource, Resource, errNoResource)
	}
	all := append([]record.Aggregate(nil), aggs...)
	for _, o := range obs {
		all = append(all, record.Single(o))
	}
	return b.gate.Offer(source, all, time.Now())
}

var errNoResource = errors.New("no such resource")

const labToken = "lab-middleware"

func startRealMiddleware(ctx context.Context, g gated) (*realMiddleware, error) {
	r := &realMiddleware{gated: g, mws: map[string]*middleware.Middleware{}, token: labToken}
	tokens := []config.Token{{Name: "lab", Secret: labToken}}
	h := api.NewHandler(batchReceiver{gate: r.gate}, api.Options{Tokens: func() []config.Token { return tokens }, Log: slog.New(slog.DiscardHandler)})
	mux := http.NewServeMux()
	mux.Handle("POST /v1/observations", h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	r.url = "http://" + ln.Addr().String()
	go func() { _ = r.srv.Serve(ln) }()
	r.ctx, r.stop = context.WithCancel(ctx)
	return r, nil
}

// observe counts a completed request in its instance's middleware, which
// ships every interval on its own goroutine.
func (r *realMiddleware) observe(o observation.Observation) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	mw := r.mws[o.Instance]
	if mw == nil {
		var err error
		mw, err = middleware.New(middleware.Options{Zone: o.Zone, Instance: o.Instance, Endpoint: r.url, Resource: Resource,
			Token: r.token, Interval: telemetrypath.Interval, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			r.mu.Unlock()
			return err
		}
		r.mws[o.Instance] = mw
		r.wg.Add(1)
		go func() { defer r.wg.Done(); _ = mw.Run(r.ctx) }()
	}
	r.mu.Unlock()
	mw.Observe(o.Operation, statusOf(o.Outcome), o.Latency)
	return nil
}

func (r *realMiddleware) close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.stop()
	r.wg.Wait() // each middleware ships once more on the way out
	return r.srv.Close()
}
