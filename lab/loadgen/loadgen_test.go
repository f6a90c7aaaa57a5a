package loadgen

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/lab/workload"
)

func offsets(rate func(time.Duration) float64, end time.Duration) []time.Duration {
	s := newSchedule(rate, end)
	var out []time.Duration
	for {
		off, ok := s.next()
		if !ok {
			return out
		}
		out = append(out, off)
	}
}

func TestScheduleConstant(t *testing.T) {
	got := offsets(ConstantRate(10), time.Second)
	if len(got) != 10 {
		t.Fatalf("%d requests, want 10: %v", len(got), got)
	}
	for i, off := range got {
		if want := time.Duration(i) * 100 * time.Millisecond; off != want {
			t.Errorf("request %d at %v, want %v", i, off, want)
		}
	}
}

func TestScheduleNoDrift(t *testing.T) {
	// 1/3 s is not a whole number of nanoseconds: adding a rounded gap
	// 30000 times would be 10µs off by the end.
	s := newSchedule(ConstantRate(3), 3*time.Hour)
	var off time.Duration
	for range 30001 {
		off, _ = s.next()
	}
	if off != 10000*time.Second {
		t.Fatalf("request 30000 at %v, want exactly 10000s", off)
	}
}

func TestScheduleSteps(t *testing.T) {
	load := scenario.Load{RPS: 10, Steps: []scenario.Step{{At: 500 * time.Millisecond, RPS: 40}}}
	got := offsets(load.RPSAt, time.Second)
	if len(got) != 5+20 {
		t.Fatalf("%d requests, want 25: %v", len(got), got)
	}
	if got[4] != 400*time.Millisecond || got[5] != 500*time.Millisecond || got[6] != 525*time.Millisecond || got[24] != 975*time.Millisecond {
		t.Fatalf("offsets around the step: %v", got)
	}
}

func TestSchedulePause(t *testing.T) {
	rate := func(t time.Duration) float64 {
		if t < 100*time.Millisecond || (t >= 300*time.Millisecond && t < 500*time.Millisecond) {
			return 0
		}
		return 10
	}
	got := offsets(rate, 600*time.Millisecond)
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond}
	if len(got) != len(want) {
		t.Fatalf("offsets %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("offsets %v, want %v", got, want)
		}
	}
	if n := len(offsets(func(time.Duration) float64 { return math.NaN() }, time.Second)); n != 0 {
		t.Fatalf("NaN rate sent %d requests", n)
	}
}

// site is a test endpoint that counts requests per path.
type site struct {
	mu     sync.Mutex
	counts map[string]int
}

func newSite(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *site) {
	s := &site{counts: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.counts[strings.TrimPrefix(r.URL.Path, "/")]++
		s.mu.Unlock()
		w.Header().Set(workload.HeaderZone, "az1")
		w.Header().Set(workload.HeaderInstance, "az1-2")
		if h != nil {
			h(w, r)
			return
		}
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

// collector gathers results and notices any delivered after Run returned.
type collector struct {
	mu       sync.Mutex
	results  []Result
	returned atomic.Bool
	late     atomic.Int64
}

func (c *collector) add(r Result) {
	if c.returned.Load() {
		c.late.Add(1)
	}
	c.mu.Lock()
	c.results = append(c.results, r)
	c.mu.Unlock()
}

func (c *collector) run(t *testing.T, ctx context.Context, cfg Config) error {
	t.Helper()
	cfg.OnResult = c.add
	err := Run(ctx, cfg)
	c.returned.Store(true)
	if n := c.late.Load(); n > 0 {
		t.Errorf("%d results delivered after Run returned", n)
	}
	return err
}

func sh(op string, share float64) scenario.OperationShare {
	return scenario.OperationShare{Operation: op, Share: share}
}

var workshopMix = []scenario.OperationShare{sh("ride", 0.4), sh("pay", 0.2), sh("signin", 0.2), sh("home", 0.2)}

func TestRunCountAndMix(t *testing.T) {
	srv, s := newSite(t, nil)
	var c collector
	t0 := time.Now()
	err := c.run(t, context.Background(), Config{
		Target: srv.URL + "/", Rate: ConstantRate(300), Mix: workshopMix, Seed: 7, Duration: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 900*time.Millisecond {
		t.Errorf("Run returned after %v, before its Duration", d)
	}
	// The schedule is deterministic, so the count is exact up to rounding.
	if n := len(c.results); n < 297 || n > 303 {
		t.Fatalf("%d results, want ~300", n)
	}
	byOp := map[string]int{}
	for _, r := range c.results {
		byOp[r.Operation]++
		if r.Failed() || r.Status != 200 || r.Zone != "az1" || r.Instance != "az1-2" || r.Latency <= 0 || r.Start.Before(t0) {
			t.Fatalf("result %+v", r)
		}
	}
	for _, m := range workshopMix {
		share := float64(byOp[m.Operation]) / float64(len(c.results))
		if math.Abs(share-m.Share) > 0.1 {
			t.Errorf("%s: share %.3f, want %.1f ± 0.1", m.Operation, share, m.Share)
		}
		if s.counts[m.Operation] != byOp[m.Operation] {
			t.Errorf("%s: server saw %d, results say %d", m.Operation, s.counts[m.Operation], byOp[m.Operation])
		}
	}
}

func TestRunCountsServerErrors(t *testing.T) {
	srv, _ := newSite(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/pay" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	var c collector
	mix := []scenario.OperationShare{sh("pay", 1), sh("home", 1)} // normalised to halves
	if err := c.run(t, context.Background(), Config{Target: srv.URL, Rate: ConstantRate(100), Mix: mix, Seed: 1, Duration: 500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	pays, failed := 0, 0
	for _, r := range c.results {
		if r.Operation == "pay" {
			pays++
			if r.Status != 500 {
				t.Errorf("pay status %d", r.Status)
			}
		}
		if r.Failed() {
			failed++
		}
	}
	if len(c.results) != 50 || pays == 0 || pays == 50 || failed != pays {
		t.Fatalf("%d results, %d pay, %d failed: want 50 results and failures == pays", len(c.results), pays, failed)
	}
}

func TestRunTimeoutFails(t *testing.T) {
	srv, _ := newSite(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; returns when the client gives up
	})
	var c collector
	t0 := time.Now()
	err := c.run(t, context.Background(), Config{
		Target: srv.URL, Rate: ConstantRate(20), Mix: workshopMix, Duration: 500 * time.Millisecond, Timeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("Run took %v: in-flight requests not bounded by Timeout", d)
	}
	if len(c.results) != 10 {
		t.Fatalf("%d results, want 10", len(c.results))
	}
	for _, r := range c.results {
		if !r.Failed() || r.Status != 0 || !errors.Is(r.Err, context.DeadlineExceeded) || r.Latency < 100*time.Millisecond {
			t.Errorf("result %+v: want a timeout failure", r)
		}
	}
}

func TestRunBrokenConnectionFails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	var c collector
	if err := c.run(t, context.Background(), Config{Target: url, Rate: ConstantRate(20), Mix: workshopMix, Duration: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if len(c.results) != 4 {
		t.Fatalf("%d results, want 4", len(c.results))
	}
	for _, r := range c.results {
		if !r.Failed() || r.Err == nil || r.Zone != "" {
			t.Errorf("result %+v: want a connection failure", r)
		}
	}
}

func TestRunRateStep(t *testing.T) {
	srv, _ := newSite(t, nil)
	load := scenario.Load{RPS: 40, Steps: []scenario.Step{{At: 500 * time.Millisecond, RPS: 160}}}
	var c collector
	t0 := time.Now()
	if err := c.run(t, context.Background(), Config{Target: srv.URL, Rate: load.RPSAt, Mix: workshopMix, Duration: time.Second}); err != nil {
		t.Fatal(err)
	}
	if n := len(c.results); n < 98 || n > 102 {
		t.Fatalf("%d results, want 20 + 80", n)
	}
	// A request is never sent before it is due (it may be late), so at most
	// the 20 first-half requests can start in the first half.
	early := 0
	for _, r := range c.results {
		if r.Start.Sub(t0) < 500*time.Millisecond {
			early++
		}
	}
	if early > 21 {
		t.Fatalf("%d requests started before the step, want <= 20", early)
	}
}

func TestRunIsOpenLoop(t *testing.T) {
	// The server answers nobody until all 20 requests of the run are in: a
	// generator that waited for answers would never get there.
	const n = 20
	var arrived atomic.Int64
	release := make(chan struct{})
	srv, _ := newSite(t, func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == n {
			close(release)
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	var c collector
	if err := c.run(t, context.Background(), Config{Target: srv.URL, Rate: ConstantRate(50), Mix: workshopMix, Duration: 400 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.results {
		if r.Failed() {
			t.Fatalf("result %+v: requests waited on each other", r)
		}
	}
	if len(c.results) != n {
		t.Fatalf("%d results, want %d", len(c.results), n)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	srv, _ := newSite(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c collector
	var seen atomic.Int64
	t0 := time.Now()
	err := Run(ctx, Config{
		Target: srv.URL, Rate: ConstantRate(100), Mix: workshopMix, Duration: time.Minute,
		OnResult: func(r Result) {
			if seen.Add(1) == 10 {
				cancel()
			}
			c.add(r)
		},
	})
	c.returned.Store(true)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if d := time.Since(t0); d > 30*time.Second {
		t.Fatalf("Run took %v after cancellation", d)
	}
	if n := seen.Load(); n < 10 {
		t.Fatalf("%d results", n)
	}
	// Any result after Run returned would have been counted as late by add.
	if n := c.late.Load(); n > 0 {
		t.Fatalf("%d results delivered after Run returned", n)
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{Target: "http://127.0.0.1:1", Rate: ConstantRate(1), Mix: workshopMix, Duration: time.Second}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"relative target", func(c *Config) { c.Target = "/ride" }, "absolute http(s) URL"},
		{"bad scheme", func(c *Config) { c.Target = "ftp://x" }, "absolute http(s) URL"},
		{"unparsable target", func(c *Config) { c.Target = "http://[::1" }, "Target"},
		{"no rate", func(c *Config) { c.Rate = nil }, "Rate is required"},
		{"no duration", func(c *Config) { c.Duration = 0 }, "Duration"},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, "Timeout"},
		{"empty mix", func(c *Config) { c.Mix = nil }, "Mix is empty"},
		{"unnamed op", func(c *Config) { c.Mix = []scenario.OperationShare{sh("", 1)} }, "name is empty"},
		{"negative share", func(c *Config) { c.Mix = []scenario.OperationShare{sh("ride", -1)} }, "ride"},
		{"NaN share", func(c *Config) { c.Mix = []scenario.OperationShare{sh("ride", math.NaN())} }, "finite"},
		{"zero shares", func(c *Config) { c.Mix = []scenario.OperationShare{sh("ride", 0)} }, "sum to 0"},
		{"duplicate", func(c *Config) { c.Mix = []scenario.OperationShare{sh("ride", 1), sh("ride", 1)} }, "twice"},
	}
	for _, tc := range tests {
		cfg := ok
		tc.mod(&cfg)
		err := Run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestPick(t *testing.T) {
	p, err := prepare(Config{Target: "http://h", Rate: ConstantRate(1), Duration: 1, Mix: []scenario.OperationShare{sh("a", 0.25), sh("skip", 0), sh("b", 0.75)}})
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[float64]string{0: "a", 0.2499: "a", 0.25: "b", 0.9999999: "b"} {
		if got := p.pick(u); got != want {
			t.Errorf("pick(%v) = %s, want %s", u, got, want)
		}
	}
	if p.urls["a"] != "http://h/a" {
		t.Errorf("url %q", p.urls["a"])
	}
}
