package otlp_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/listener"
	"github.com/grayzone/grayzone/telemetry/otlp"
	"github.com/grayzone/grayzone/telemetry/record"
)

// The OpenTelemetry Go SDK's own exporters send to the receiver over real
// sockets; ForceFlush makes each export happen exactly when the test says.

func startReceiver(t *testing.T) (*otlp.Receiver, *ingest.Gate) {
	t.Helper()
	gate := ingest.New("web", []string{"az1", "az2"}, ingest.Limits{})
	r, err := otlp.New(otlp.Config{HTTP: "127.0.0.1:0", GRPC: "127.0.0.1:0", Sink: gate, Log: slog.New(slog.DiscardHandler),
		Security: listener.Security{Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r, gate
}

type app struct {
	mp   *sdkmetric.MeterProvider
	hist metric.Float64Histogram
}

func newApp(t *testing.T, exp sdkmetric.Exporter, zone, instance string) *app {
	t.Helper()
	res := resource.NewSchemaless(attribute.String("cloud.availability_zone", zone), attribute.String("service.instance.id", instance))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	h, err := mp.Meter("test").Float64Histogram("http.server.request.duration", metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1))
	if err != nil {
		t.Fatal(err)
	}
	return &app{mp: mp, hist: h}
}

// serve records n requests of route with status and latency.
func (a *app) serve(n int, route string, status int, latency time.Duration) {
	for range n {
		a.hist.Record(context.Background(), latency.Seconds(), metric.WithAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status)))
	}
}

func drain(g *ingest.Gate) map[string]record.Aggregate {
	out := map[string]record.Aggregate{}
	g.Drain(time.Now(), 0, func(b []record.Aggregate) {
		for _, a := range b {
			k := a.Key.Zone + "/" + a.Key.Instance + "/" + a.Key.Operation
			if _, dup := out[k]; dup {
				panic("two aggregates for " + k)
			}
			out[k] = a
		}
	})
	return out
}

func check(t *testing.T, got map[string]record.Aggregate, key string, req, faults, errs, slow uint64) {
	t.Helper()
	a, ok := got[key]
	if !ok {
		t.Errorf("no aggregate for %s (got %v)", key, got)
		return
	}
	if a.Requests != req || a.Faults != faults || a.Errors != errs || a.Slow != slow {
		t.Errorf("%s: requests %d faults %d errors %d slow %d, want %d %d %d %d", key, a.Requests, a.Faults, a.Errors, a.Slow, req, faults, errs, slow)
	}
}

func exporters(t *testing.T, r *otlp.Receiver, temporality metricdata.Temporality) map[string]func() sdkmetric.Exporter {
	sel := func(sdkmetric.InstrumentKind) metricdata.Temporality { return temporality }
	ctx := context.Background()
	return map[string]func() sdkmetric.Exporter{
		"http": func() sdkmetric.Exporter {
			e, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(r.HTTPAddr()), otlpmetrichttp.WithInsecure(),
				otlpmetrichttp.WithTemporalitySelector(sel), otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
			if err != nil {
				t.Fatal(err)
			}
			return e
		},
		"grpc": func() sdkmetric.Exporter {
			e, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(r.GRPCAddr()), otlpmetricgrpc.WithInsecure(),
				otlpmetricgrpc.WithTemporalitySelector(sel), otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: false}))
			if err != nil {
				t.Fatal(err)
			}
			return e
		},
	}
}

func TestSDKExportersDeltaAndCumulative(t *testing.T) {
	ctx := context.Background()
	for _, temp := range []metricdata.Temporality{metricdata.CumulativeTemporality, metricdata.DeltaTemporality} {
		r, gate := startReceiver(t)
		for name, exp := range exporters(t, r, temp) {
			t.Run(temp.String()+"/"+name, func(t *testing.T) {
				a := newApp(t, exp(), "az1", "i-"+name)
				a.serve(7, "/orders/{id}", 200, 20*time.Millisecond)
				a.serve(1, "/orders/{id}", 200, 300*time.Millisecond) // slow
				a.serve(2, "/orders/{id}", 503, 2*time.Millisecond)
				a.serve(3, "/pay", 404, 5*time.Millisecond)
				if err := a.mp.ForceFlush(ctx); err != nil {
					t.Fatal(err)
				}
				got := drain(gate)
				check(t, got, "az1/i-"+name+"//orders/{id}", 10, 2, 0, 1)
				check(t, got, "az1/i-"+name+"//pay", 3, 0, 3, 0)

				// The next export carries only what is new, whatever the temporality.
				a.serve(4, "/orders/{id}", 200, 20*time.Millisecond)
				if err := a.mp.ForceFlush(ctx); err != nil {
					t.Fatal(err)
				}
				got = drain(gate)
				check(t, got, "az1/i-"+name+"//orders/{id}", 4, 0, 0, 0)
				if _, ok := got["az1/i-"+name+"//pay"]; ok {
					t.Errorf("a route with no new requests produced an aggregate: %+v", got)
				}

				// A restart: the process ends (its last export has nothing
				// new) and a new one counts from zero again.
				if err := a.mp.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
				if got := drain(gate); len(got) != 0 {
					t.Errorf("the final export of an unchanged process produced %+v", got)
				}
				b := newApp(t, exp(), "az1", "i-"+name)
				b.serve(2, "/orders/{id}", 200, 20*time.Millisecond)
				if err := b.mp.ForceFlush(ctx); err != nil {
					t.Fatal(err)
				}
				check(t, drain(gate), "az1/i-"+name+"//orders/{id}", 2, 0, 0, 0)
			})
		}
		st := gate.Stats()
		if len(st) != 1 || st[0].Source != "otlp" || st[0].Requests != 2*(13+4+2) {
			t.Errorf("stats %+v", st)
		}
	}
}

func TestBadExportRejectedWithReason(t *testing.T) {
	ctx := context.Background()
	r, gate := startReceiver(t)
	for name, exp := range exporters(t, r, metricdata.DeltaTemporality) {
		t.Run(name, func(t *testing.T) {
			a := newApp(t, exp(), "", "i-1") // no zone
			a.serve(1, "/x", 200, time.Millisecond)
			err := a.mp.ForceFlush(ctx)
			if err == nil || !strings.Contains(err.Error(), "no zone attribute (looked for cloud.availability_zone, cloud.zone)") {
				t.Fatalf("flush err = %v", err)
			}
			b := newApp(t, exp(), "az9", "i-1") // a zone web does not have
			b.serve(1, "/x", 200, time.Millisecond)
			if err := b.mp.ForceFlush(ctx); err == nil || !strings.Contains(err.Error(), `"az9" is not a zone of web`) {
				t.Fatalf("flush err = %v", err)
			}
		})
	}
	if gate.Pending() != 0 {
		t.Error("a rejected export reached the engine's queue")
	}
	st := gate.Stats()[0]
	if st.Rejected[ingest.ReasonInvalid] != 2 || st.Rejected[ingest.ReasonZone] != 2 || st.Accepted != 0 {
		t.Errorf("stats %+v", st)
	}
}
