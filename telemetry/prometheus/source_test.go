package prometheus_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/middleware"
	"github.com/grayzone/grayzone/telemetry/prometheus"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Debian's Prometheus scrapes three instances instrumented with grayzone's
// middleware every second; the source's default queries read them.

type instance struct {
	url string
	h   http.Handler
}

func startInstance(t *testing.T, zone, id string) *instance {
	mw, err := middleware.New(middleware.Options{Zone: zone, Instance: id})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad", 400) })
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) { time.Sleep(150 * time.Millisecond) })
	app := mw.Wrap(mux)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			mw.Metrics().ServeHTTP(w, r)
			return
		}
		app.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return &instance{url: srv.URL, h: app}
}

func (in *instance) hit(t *testing.T, n int, method, path string) {
	for range n {
		req, _ := http.NewRequest(method, in.url+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
}

func startPrometheus(t *testing.T, targets []string) string {
	t.Helper()
	p, err := prometheus.StartLocal(context.Background(), t.TempDir(), targets, time.Second)
	if errors.Is(err, prometheus.ErrNoPrometheus) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v: required in CI", err)
		}
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p.URL
}

// waitFor waits for an outside process (Prometheus scraping on its own
// schedule) to reach a state; the deadline only bounds a broken run.
func waitFor(t *testing.T, what string, cond func() bool, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type noLogs struct{}

func (noLogs) String() string { return "" }

func TestDefaultQueriesAgainstRealPrometheus(t *testing.T) {
	ins := []*instance{startInstance(t, "z1", "i-1"), startInstance(t, "z1", "i-2"), startInstance(t, "z2", "i-3")}
	url := startPrometheus(t, []string{ins[0].url, ins[1].url, ins[2].url})
	c, _ := promapi.NewClient(promapi.Config{Address: url})
	api := v1.NewAPI(c)
	total := func() float64 {
		v, _, _, err := api.Query(context.Background(), "sum(http_requests_total)", time.Now())
		if err != nil {
			return -1
		}
		vec, _ := v.(model.Vector)
		if len(vec) != 1 {
			return -1
		}
		return float64(vec[0].Value)
	}
	gate := ingest.New("web", []string{"z1", "z2"}, ingest.Limits{})
	src, err := prometheus.New(prometheus.Config{URL: url, Sink: gate, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	for _, in := range ins {
		in.hit(t, 5, "GET", "/orders/1")
	}
	waitFor(t, "the first requests scraped", func() bool { return total() == 15 }, noLogs{})
	if err := src.Poll(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := gate.Pending(); n != 0 {
		t.Fatalf("the first poll is a baseline, got %d aggregates", n)
	}

	ins[0].hit(t, 8, "GET", "/orders/2")
	ins[0].hit(t, 2, "GET", "/boom") // a new series: the first 5xx of i-1
	ins[1].hit(t, 2, "GET", "/slow")
	ins[2].hit(t, 4, "POST", "/orders")
	waitFor(t, "the second requests scraped", func() bool { return total() == 31 }, noLogs{})
	if err := src.Poll(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	got := map[string]record.Aggregate{}
	gate.Drain(time.Now(), 0, func(b []record.Aggregate) {
		for _, a := range b {
			got[a.Key.Zone+" "+a.Key.Instance+" "+a.Key.Operation] = a
		}
	})
	for key, want := range map[string][4]uint64{ // requests, faults, errors, slow
		"z1 i-1 GET /orders/{id}": {8, 0, 0, 0},
		"z1 i-1 GET /boom":        {2, 2, 0, 0},
		"z1 i-2 GET /slow":        {2, 0, 0, 2},
		"z2 i-3 POST /orders":     {4, 0, 4, 0},
	} {
		a := got[key]
		if g := [4]uint64{a.Requests, a.Faults, a.Errors, a.Slow}; g != want {
			t.Errorf("%s: requests, faults, errors, slow = %v, want %v", key, g, want)
		}
	}
	if len(got) != 4 {
		t.Errorf("got %d aggregates, want 4: %v", len(got), got)
	}
	if st := gate.Stats()[0]; st.Source != "prometheus" || st.Requests != 16 {
		t.Errorf("stats %+v", st)
	}
}

func TestBadResultRejected(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"i-1","route":"a"},"value":[1,"3"]}]}}`)
	}))
	defer srv.Close()
	gate := ingest.New("web", []string{"z1", "z2"}, ingest.Limits{})
	src, _ := prometheus.New(prometheus.Config{URL: srv.URL, Sink: gate, Latency: "x", Requests: "y"})
	err := src.Poll(context.Background(), time.Now())
	if err == nil || !strings.Contains(err.Error(), `requests result 0 ({instance="i-1", route="a"}): no "zone" label`) {
		t.Fatalf("err = %v", err)
	}
	if st := gate.Stats()[0]; st.Rejected[ingest.ReasonInvalid] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestBearerTLSAndSelector: over https with a configured CA, each query
// carries the file's bearer token (re-read after rotation), and the default
// queries select the scrape job, so another job's series are not read.
func TestBearerTLSAndSelector(t *testing.T) {
	var auths, queries []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		auths, queries = append(auths, r.Header.Get("Authorization")), append(queries, r.Form.Get("query"))
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte("prom-token-1\n"), 0o600)
	gate := ingest.New("web", []string{"z1"}, ingest.Limits{})
	src, err := prometheus.New(prometheus.Config{URL: srv.URL, Sink: gate, BearerTokenFile: file, TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Poll(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(file, []byte("prom-token-2\n"), 0o600)
	if err := src.Poll(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if auths[0] != "Bearer prom-token-1" || auths[len(auths)-1] != "Bearer prom-token-2" {
		t.Errorf("Authorization headers %q", auths)
	}
	for _, q := range queries {
		if !strings.Contains(q, `{job="grayzone"}`) {
			t.Errorf("query %q has no job selector", q)
		}
	}
	// Without the CA, the server is not trusted.
	src, _ = prometheus.New(prometheus.Config{URL: srv.URL, Sink: gate})
	if err := src.Poll(context.Background(), time.Now()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("unverified server: %v", err)
	}
}
