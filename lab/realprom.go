package lab

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/grayzone/grayzone/lab/telemetrypath"
	"github.com/grayzone/grayzone/telemetry/middleware"
	"github.com/grayzone/grayzone/telemetry/observation"
	promsource "github.com/grayzone/grayzone/telemetry/prometheus"
)

// realProm is real mode's Prometheus path: the instances count their
// requests with grayzone's middleware, exposed in Prometheus' format on
// loopback; Debian's Prometheus scrapes it every second; the Prometheus
// source queries it every second with its default queries into the gate
// the controller drains at each tick.
type realProm struct {
	gated
	srv   *http.Server
	local *promsource.Local
	dir   string
	stop  context.CancelFunc
	done  chan struct{}

	mu   sync.Mutex
	mws  map[string]*middleware.Middleware
	regs []*prometheus.Registry
}

func startRealProm(ctx context.Context, g gated) (*realProm, error) {
	r := &realProm{gated: g,
		mws: map[string]*middleware.Middleware{}, done: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// Each instance's middleware has its own registry (their collectors
	// describe the same metrics); a scrape gathers them all.
	gather := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		r.mu.Lock()
		gs := make(prometheus.Gatherers, 0, len(r.regs))
		for _, reg := range r.regs {
			gs = append(gs, reg)
		}
		r.mu.Unlock()
		return gs.Gather()
	})
	r.srv = &http.Server{Handler: promhttp.HandlerFor(gather, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	if r.dir, err = os.MkdirTemp("", "grayzone-lab-prometheus-"); err != nil {
		r.srv.Close()
		return nil, err
	}
	if r.local, err = promsource.StartLocal(ctx, r.dir, []string{ln.Addr().String()}, telemetrypath.Interval); err != nil {
		r.srv.Close()
		os.RemoveAll(r.dir)
		if errors.Is(err, promsource.ErrNoPrometheus) {
			return nil, errors.Join(ErrUsage, err)
		}
		return nil, err
	}
	src, err := promsource.New(promsource.Config{URL: r.local.URL, Interval: telemetrypath.Interval, Sink: r.gate})
	if err != nil {
		r.close()
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	r.stop = stop
	go func() { defer close(r.done); _ = src.Run(sctx) }()
	return r, nil
}

func (r *realProm) observe(o observation.Observation) error {
	r.mu.Lock()
	mw := r.mws[o.Instance]
	if mw == nil {
		var err error
		if mw, err = middleware.New(middleware.Options{Zone: o.Zone, Instance: o.Instance}); err != nil {
			r.mu.Unlock()
			return err
		}
		reg := prometheus.NewRegistry()
		if err := reg.Register(mw.Collector()); err != nil {
			r.mu.Unlock()
			return err
		}
		r.mws[o.Instance] = mw
		r.regs = append(r.regs, reg)
	}
	r.mu.Unlock()
	status := statusOf(o.Outcome)
	mw.Observe(o.Operation, status, o.Latency)
	return nil
}

func (r *realProm) close() error {
	if r.stop != nil {
		r.stop()
		<-r.done
	}
	if r.local != nil {
		r.local.Close()
	}
	r.srv.Close()
	return os.RemoveAll(r.dir)
}
