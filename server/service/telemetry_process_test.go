package service_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/grayzone/grayzone/internal/freeport"
	"github.com/grayzone/grayzone/telemetry/middleware"
)

// TestServeTakesEveryTelemetrySource runs grayzone serve with an OTLP and
// an EMF source configured, and feeds it through the Go middleware, the
// OpenTelemetry SDK's OTLP/HTTP exporter and EMF lines; each source's
// counts appear in /metrics.
func TestServeTakesEveryTelemetrySource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokens, _ := filepath.Abs("../../examples/tokens.txt")
	otlpAddr, emfAddr := freeport.Addr(t), freeport.Addr(t)
	cfg := fmt.Sprintf(`auth: {tokens_file: %s}
resources:
  - name: web
    zones: [z1, z2]
    frontdoor:
      type: embedded
      regional: 127.0.0.1:0
      zonal: {z1: 127.0.0.1:0, z2: 127.0.0.1:0}
      record: false
      targets:
        - {id: a1, zone: z1, addr: 127.0.0.1:1}
        - {id: a2, zone: z1, addr: 127.0.0.1:2}
        - {id: b1, zone: z2, addr: 127.0.0.1:3}
        - {id: b2, zone: z2, addr: 127.0.0.1:4}
    telemetry:
      sources:
        - {type: otlp, http: %s}
        - {type: emf, listen: %s}
`, tokens, otlpAddr, emfAddr)
	path := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "--config", path, "--data-dir", filepath.Join(dir, "data"))
	ctx := context.Background()

	// The Go middleware.
	mw, err := middleware.New(middleware.Options{Endpoint: s.url(), Resource: "web", Token: exampleToken(t), Zone: "z1", Instance: "a1"})
	if err != nil {
		t.Fatal(err)
	}
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 3 {
		h.ServeHTTP(discard{http.Header{}}, mustReq(t))
	}
	if err := mw.Flush(ctx); err != nil {
		t.Fatalf("middleware flush: %v", err)
	}

	// The OpenTelemetry SDK.
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(otlpAddr), otlpmetrichttp.WithInsecure(),
		otlpmetrichttp.WithHeaders(map[string]string{"Authorization": "Bearer " + exampleToken(t)}))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("cloud.availability_zone", "z2"), attribute.String("service.instance.id", "b1"))))
	hist, _ := mp.Meter("t").Float64Histogram("http.server.request.duration", metric.WithUnit("s"))
	hist.Record(ctx, 0.01, metric.WithAttributes(attribute.String("http.route", "/x"), attribute.Int("http.response.status_code", 200)))
	if err := mp.ForceFlush(ctx); err != nil {
		t.Fatalf("otlp export: %v", err)
	}
	_ = mp.Shutdown(ctx)

	// EMF lines over HTTP.
	line := fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Dimensions":[["AZ-ID"]],"Metrics":[{"Name":"Success"},{"Name":"SuccessLatency","Unit":"Milliseconds"}]}]},"AZ-ID":"z2","InstanceId":"b2","Operation":"ride","Success":1,"SuccessLatency":4}`,
		time.Now().Add(-2*time.Second).UnixMilli())
	req, _ := http.NewRequest("POST", "http://"+emfAddr+"/", strings.NewReader(line+"\n"+line+"\n"))
	req.Header.Set("Authorization", "Bearer "+exampleToken(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("emf post: %d", resp.StatusCode)
	}

	want := []string{
		`grayzone_telemetry_requests_total{resource="web",source="middleware"} 3`,
		`grayzone_telemetry_requests_total{resource="web",source="otlp"} 1`,
		`grayzone_telemetry_requests_total{resource="web",source="emf"} 2`,
	}
	deadline := time.Now().Add(30 * time.Second) // the EMF source flushes on its own ticker
	for {
		m := get(t, s.url()+"/metrics")
		missing := ""
		for _, w := range want {
			if !strings.Contains(m, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s:\n%s\nserve stderr:\n%s", missing, grepLines(m, "grayzone_telemetry"), s.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type discard struct{ h http.Header }

func (d discard) Header() http.Header       { return d.h }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

func mustReq(t *testing.T) *http.Request {
	r, err := http.NewRequest("GET", "http://x/ride", nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
