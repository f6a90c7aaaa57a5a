package middleware_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/middleware"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// sink is the real batch API (api.NewHandler) over a backend that keeps
// what it is given; only the ingestion methods are implemented.
type sink struct {
	api.Backend
	mu     sync.Mutex
	aggs   []record.Aggregate
	source string
	down   bool
}

func (s *sink) IngestAggregates(ctx context.Context, resource, source string, obs []observation.Observation, aggs []record.Aggregate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aggs = append(s.aggs, aggs...)
	s.source = source
	return nil
}

func newSink(t *testing.T) (*sink, *httptest.Server) {
	s := &sink{}
	h := api.NewHandler(s, api.Options{Tokens: func() []config.Token { return []config.Token{{Name: "app", Secret: "tok-0123456789abcdef"}} }})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down := s.down
		s.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

func app() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad", 400) })
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	return mux
}

func TestShipsAggregatesByRoute(t *testing.T) {
	s, srv := newSink(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); clock = clock.Add(20 * time.Millisecond); return clock }
	mw, err := middleware.New(middleware.Options{Zone: "az1", Instance: "i-1", Endpoint: srv.URL, Resource: "web",
		Token: "tok-0123456789abcdef", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	h := mw.Wrap(app())
	for _, req := range []struct{ method, path string }{{"GET", "/orders/1"}, {"GET", "/orders/2"}, {"POST", "/orders"}, {"GET", "/boom"}, {"GET", "/nope"}} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	if err := mw.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := map[string]record.Aggregate{}
	for _, a := range s.aggs {
		got[a.Key.Operation] = a
		if a.Key.Zone != "az1" || a.Key.Instance != "i-1" || a.Key.Source != observation.Server {
			t.Errorf("key %+v", a.Key)
		}
	}
	if s.source != "middleware" {
		t.Errorf("source %q", s.source)
	}
	for op, want := range map[string][3]uint64{"GET /orders/{id}": {2, 0, 0}, "POST /orders": {1, 0, 1}, "GET /boom": {1, 1, 0}, "": {1, 0, 1}} {
		if op == "" {
			op = middleware.Unmatched
		}
		a := got[op]
		if [3]uint64{a.Requests, a.Faults, a.Errors} != want {
			t.Errorf("%s: requests, faults, errors = %d %d %d, want %v", op, a.Requests, a.Faults, a.Errors, want)
		}
		if a.Requests > 0 && (len(a.Latency) != 1 || record.BucketMid(a.Latency[0].Index) < 18*time.Millisecond || a.Slow != 0) {
			t.Errorf("%s: latency %+v slow %d, want one bucket around 20ms", op, a.Latency, a.Slow)
		}
	}
	if st := mw.Stats(); st.Shipped != 4 || st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestGrayzoneDownNeverBlocksAndDropsAreCounted(t *testing.T) {
	s, srv := newSink(t)
	s.down = true
	mw, err := middleware.New(middleware.Options{Zone: "az1", Instance: "i-1", Endpoint: srv.URL, Resource: "web", Token: "tok-0123456789abcdef", MaxPending: 3})
	if err != nil {
		t.Fatal(err)
	}
	h := mw.Wrap(app())
	for range 5 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/orders/1", nil))
		if rec.Code != 200 {
			t.Fatalf("request failed with grayzone down: %d", rec.Code)
		}
		if err := mw.Flush(context.Background()); err == nil {
			t.Fatal("Flush succeeded with grayzone down")
		}
	}
	st := mw.Stats()
	if st.Pending != 3 || st.Dropped != 2 || !strings.Contains(st.LastErr, "HTTP 503") {
		t.Fatalf("stats %+v, want 3 pending, 2 dropped", st)
	}
	s.mu.Lock()
	s.down = false
	s.mu.Unlock()
	if err := mw.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := mw.Stats(); st.Shipped != 3 || st.Pending != 0 {
		t.Fatalf("after recovery: %+v", st)
	}
}

func TestOperationCap(t *testing.T) {
	mw, _ := middleware.New(middleware.Options{Zone: "az1", Instance: "i-1", MaxOperations: 2,
		Operation: func(r *http.Request) string { return r.URL.Path }})
	h := mw.Wrap(app())
	for _, p := range []string{"/a", "/b", "/c", "/d", "/a"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	rec := httptest.NewRecorder()
	mw.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`http_requests_total{code="4xx",instance="i-1",route="/a",zone="az1"} 2`,
		`http_requests_total{code="4xx",instance="i-1",route="other",zone="az1"} 2`,
		`http_request_duration_seconds_count{instance="i-1",route="/b",zone="az1"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `route="/c"`) {
		t.Errorf("an operation past the cap got its own series")
	}
}

func TestPanicCountsAsFault(t *testing.T) {
	mw, _ := middleware.New(middleware.Options{Zone: "az1", Instance: "i-1"})
	h := mw.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	func() {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	}()
	rec := httptest.NewRecorder()
	mw.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `http_requests_total{code="5xx",instance="i-1",route="unmatched",zone="az1"} 1`) {
		t.Errorf("panic not counted as a fault:\n%s", rec.Body.String())
	}
}

// nopWriter is a ResponseWriter that allocates nothing.
type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header       { return w.h }
func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nopWriter) WriteHeader(int)             {}

func TestRequestPathDoesNotAllocate(t *testing.T) {
	mw, _ := middleware.New(middleware.Options{Zone: "az1", Instance: "i-1", Operation: func(*http.Request) string { return "get" }})
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	req := httptest.NewRequest("GET", "/", nil)
	w := nopWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, req) }); n != 0 {
		t.Errorf("%v allocations per request, want 0", n)
	}
}

// go test -run '^$' -bench . -benchmem ./telemetry/middleware/
func BenchmarkObserve(b *testing.B) {
	mw, _ := middleware.New(middleware.Options{Zone: "az1", Instance: "i-1"})
	mw.Observe("GET /orders/{id}", 200, time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		mw.Observe("GET /orders/{id}", 200, time.Millisecond)
	}
}

func BenchmarkWrap(b *testing.B) {
	mw, _ := middleware.New(middleware.Options{Zone: "az1", Instance: "i-1", Operation: func(*http.Request) string { return "get" }})
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	req := httptest.NewRequest("GET", "/", nil)
	w := nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// BenchmarkRoute is a request through mw.Route: the series is resolved when
// the route is registered, so the request path does no lookup (two clock
// reads, the pooled status writer, one atomic add).
func BenchmarkRoute(b *testing.B) {
	mw, _ := middleware.New(middleware.Options{Zone: "az1", Instance: "i-1"})
	h := mw.Route("get-order", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	req := httptest.NewRequest("GET", "/", nil)
	w := nopWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// BenchmarkServeMux is a ServeMux routing "GET /orders/{id}" with and
// without the default Wrap (operation = r.Pattern, looked up per request):
// the difference is the middleware's cost on a real route.
func BenchmarkServeMux(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	mw, _ := middleware.New(middleware.Options{Zone: "az1", Instance: "i-1"})
	req := httptest.NewRequest("GET", "/orders/42", nil)
	w := nopWriter{h: http.Header{}}
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", mux}, {"wrapped", mw.Wrap(mux)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}

// With the default clock, latencies come from the monotonic clock: a
// handler that takes 30ms is counted in a bucket at or above 30ms (and far
// below a second).
func TestDefaultClockTimesRequests(t *testing.T) {
	s, srv := newSink(t)
	mw, err := middleware.New(middleware.Options{Zone: "az1", Instance: "i-1", Endpoint: srv.URL, Resource: "web", Token: "tok-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	h := mw.Route("slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(30 * time.Millisecond) }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if err := mw.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(s.aggs) != 1 || len(s.aggs[0].Latency) != 1 {
		t.Fatalf("aggregates %+v", s.aggs)
	}
	if d := record.BucketMid(s.aggs[0].Latency[0].Index); d < 28*time.Millisecond || d > time.Second {
		t.Errorf("latency %s, want about 30ms", d)
	}
}
