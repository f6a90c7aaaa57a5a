package lab

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/grayzone/grayzone/lab/telemetrypath"
	"github.com/grayzone/grayzone/telemetry/listener"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/otlp"
)

// realOTLP is real mode's OTLP path: each instance has its own
// OpenTelemetry SDK meter provider exporting the HTTP server duration
// histogram every second over OTLP/HTTP to a real receiver on loopback,
// whose gate the controller drains at each tick, as grayzone serve does.
type realOTLP struct {
	gated
	stop   context.CancelFunc
	done   chan error
	url    string
	mu     sync.Mutex
	apps   map[string]*otelApp
	closed bool
}

type otelApp struct {
	mp   *sdkmetric.MeterProvider
	hist metric.Float64Histogram
}

func startRealOTLP(ctx context.Context, g gated) (*realOTLP, error) {
	recv, err := otlp.New(otlp.Config{HTTP: "127.0.0.1:0", Sink: g.gate, Log: slog.New(slog.DiscardHandler),
		Security: listener.Security{Insecure: true}}) // the lab's own loopback receiver
	if err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(ctx)
	r := &realOTLP{gated: g, stop: stop, done: make(chan error, 1), url: recv.HTTPAddr(), apps: map[string]*otelApp{}}
	go func() { r.done <- recv.Run(rctx) }()
	return r, nil
}

// observe records a completed server-side request in its instance's SDK.
func (r *realOTLP) observe(o observation.Observation) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	app := r.apps[o.Instance]
	if app == nil {
		exp, err := otlpmetrichttp.New(context.Background(), otlpmetrichttp.WithEndpoint(r.url), otlpmetrichttp.WithInsecure())
		if err != nil {
			r.mu.Unlock()
			return err
		}
		res := resource.NewSchemaless(attribute.String("cloud.availability_zone", o.Zone), attribute.String("service.instance.id", o.Instance))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
			sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(telemetrypath.Interval))))
		h, err := mp.Meter("grayzone-lab").Float64Histogram(otlp.DefaultDurationMetric, metric.WithUnit("s"),
			metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10))
		if err != nil {
			r.mu.Unlock()
			return err
		}
		app = &otelApp{mp: mp, hist: h}
		r.apps[o.Instance] = app
	}
	r.mu.Unlock()
	status := statusOf(o.Outcome)
	app.hist.Record(context.Background(), o.Latency.Seconds(),
		metric.WithAttributes(attribute.String("http.route", o.Operation), attribute.Int("http.response.status_code", status)))
	return nil
}

func (r *realOTLP) close() error {
	r.mu.Lock()
	r.closed = true
	apps := r.apps
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, a := range apps {
		_ = a.mp.Shutdown(ctx)
	}
	r.stop()
	if err := <-r.done; err != nil {
		return fmt.Errorf("lab: otlp receiver: %w", err)
	}
	return nil
}
