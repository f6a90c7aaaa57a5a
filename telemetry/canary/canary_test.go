package canary

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
)

// recorder collects observations; wait blocks until n have arrived.
type recorder struct {
	mu   sync.Mutex
	obs  []observation.Observation
	more chan struct{}
	done bool // Run has returned
	late int
}

func newRecorder() *recorder { return &recorder{more: make(chan struct{}, 1)} }

func (r *recorder) Record(o observation.Observation) {
	r.mu.Lock()
	if r.done {
		r.late++
	}
	r.obs = append(r.obs, o)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() []observation.Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]observation.Observation(nil), r.obs...)
}

func (r *recorder) wait(t *testing.T, n int) []observation.Observation {
	t.Helper()
	deadline := time.After(10 * time.Second) // failure guard only
	for {
		if got := r.snapshot(); len(got) >= n {
			return got
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("waited for %d observations, have %d", n, len(r.snapshot()))
		}
	}
}

// server answers like an instance of zone/instance; empty strings omit the header.
func server(t *testing.T, zone, instance string, status int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if zone != "" {
			w.Header().Set(observation.HeaderZone, zone)
		}
		if instance != "" {
			w.Header().Set(observation.HeaderInstance, instance)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// start runs the canaries in the background; the returned stop cancels them,
// waits for Run and checks that nothing was recorded after it returned.
func start(t *testing.T, cfg Config, rec *recorder) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Record = rec.Record
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
			rec.mu.Lock()
			rec.done = true
			rec.mu.Unlock()
		})
	}
	t.Cleanup(func() {
		stop()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.late > 0 {
			t.Errorf("%d observations recorded after Run returned", rec.late)
		}
	})
	return stop
}

func TestRoundsFollowTheClock(t *testing.T) {
	az1 := server(t, "az1", "az1-1", 200)
	az2 := server(t, "", "", 200) // a zonal endpoint's zone comes from the config, not the answer
	regional := server(t, "az2", "az2-1", 200)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fake := clock.NewFake(t0)
	rec := newRecorder()
	const interval = 5 * time.Second
	ops := []string{"ride", "home"}
	stop := start(t, Config{
		Interval:   interval,
		Endpoints:  []Endpoint{{Zone: "az1", URL: az1.URL}, {Zone: "az2", URL: az2.URL + "/"}, {URL: regional.URL}},
		Operations: ops,
		Clock:      fake,
	}, rec)

	const perRound = 3 * 2
	const rounds = 4
	rec.wait(t, perRound) // the first round runs at once
	for k := 1; k < rounds; k++ {
		fake.Advance(interval)
		rec.wait(t, perRound*(k+1))
	}
	stop()
	got := rec.snapshot()
	if len(got) != perRound*rounds {
		t.Fatalf("%d observations, want %d", len(got), perRound*rounds)
	}

	type key struct {
		zone, instance, op string
		regional           bool
	}
	count := map[key]int{}
	atRound := map[time.Time]int{}
	for _, o := range got {
		if o.Source != observation.Canary || o.Outcome != observation.Success || o.Latency <= 0 {
			t.Errorf("observation %+v", o)
		}
		count[key{o.Zone, o.Instance, o.Operation, o.Regional}]++
		atRound[o.At]++
	}
	for _, op := range ops {
		for _, k := range []key{{"az1", "az1-1", op, false}, {"az2", "", op, false}, {"az2", "az2-1", op, true}} {
			if count[k] != rounds {
				t.Errorf("%+v: %d observations, want one per round (%d)", k, count[k], rounds)
			}
		}
	}
	for k := range rounds {
		if n := atRound[t0.Add(time.Duration(k)*interval)]; n != perRound {
			t.Errorf("round %d: %d observations stamped with its time, want %d", k, n, perRound)
		}
	}
}

func TestFaults(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(observation.HeaderInstance, "az3-1")
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	rec := newRecorder()
	start(t, Config{
		Interval: time.Minute,
		Endpoints: []Endpoint{
			{Zone: "az1", URL: server(t, "az1", "az1-2", 500).URL},
			{Zone: "az2", URL: gone.URL},
			{Zone: "az3", URL: hang.URL},
			{Zone: "az4", URL: server(t, "az4", "az4-1", 404).URL},
			{URL: gone.URL}, // the regional endpoint, unreachable
		},
		Operations: []string{"pay"},
		Timeout:    50 * time.Millisecond,
		Clock:      clock.NewFake(time.Unix(0, 0)),
	}, rec)
	got := map[string]observation.Observation{}
	for _, o := range rec.wait(t, 5) {
		k := o.Zone
		if o.Regional {
			k = "regional"
		}
		got[k] = o
	}
	want := map[string]observation.Observation{
		"az1":      {Zone: "az1", Instance: "az1-2", Outcome: observation.Fault},
		"az2":      {Zone: "az2", Outcome: observation.Fault},
		"az3":      {Zone: "az3", Outcome: observation.Fault}, // timed out: no answer, no headers
		"az4":      {Zone: "az4", Instance: "az4-1", Outcome: observation.Error},
		"regional": {Zone: "", Regional: true, Outcome: observation.Fault},
	}
	for k, w := range want {
		o, ok := got[k]
		if !ok || o.Zone != w.Zone || o.Instance != w.Instance || o.Outcome != w.Outcome || o.Regional != w.Regional || o.Operation != "pay" {
			t.Errorf("%s: got %+v, want %+v", k, o, w)
		}
	}
	if o := got["az3"]; o.Latency < 50*time.Millisecond {
		t.Errorf("timed-out call latency %v, want >= the 50ms timeout", o.Latency)
	}
}

func TestCancelAbandonsCallsInFlight(t *testing.T) {
	arrived := make(chan struct{}, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	rec := newRecorder()
	stop := start(t, Config{
		Interval: time.Minute, Endpoints: []Endpoint{{Zone: "az1", URL: srv.URL}}, Operations: []string{"ride"},
		Timeout: time.Hour, Clock: clock.NewFake(time.Unix(0, 0)),
	}, rec)
	<-arrived
	stop() // returns only once the abandoned call has ended
	if n := len(rec.snapshot()); n != 0 {
		t.Fatalf("%d observations from a call cut short by shutdown", n)
	}
}

func TestDefaultsWithRealClock(t *testing.T) {
	srv := server(t, "az1", "az1-1", 200)
	rec := newRecorder()
	stop := start(t, Config{Interval: 20 * time.Millisecond, Endpoints: []Endpoint{{Zone: "az1", URL: srv.URL}}}, rec)
	n := len(operation.Names())
	rec.wait(t, 3*n) // three rounds of every catalogue operation
	stop()
	seen := map[string]int{}
	for _, o := range rec.snapshot() {
		seen[o.Operation]++
	}
	for _, op := range operation.Names() {
		if seen[op] < 3 {
			t.Errorf("%s called %d times in three rounds", op, seen[op])
		}
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{Interval: time.Second, Endpoints: []Endpoint{{Zone: "a", URL: "http://127.0.0.1:1"}}, Record: func(observation.Observation) {}}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no interval", func(c *Config) { c.Interval = 0 }, "Interval"},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, "Timeout"},
		{"no record", func(c *Config) { c.Record = nil }, "Record is required"},
		{"no endpoints", func(c *Config) { c.Endpoints = nil }, "Endpoints is empty"},
		{"relative url", func(c *Config) { c.Endpoints = []Endpoint{{Zone: "a", URL: "/x"}} }, `Endpoints[0] (zone "a")`},
		{"bad url", func(c *Config) { c.Endpoints = []Endpoint{{URL: "http://[::1"}} }, "Endpoints[0]"},
		{"empty op", func(c *Config) { c.Operations = []string{"ride", ""} }, "Operations[1]"},
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

// A shifted zone's zonal endpoint is probed ProbeSteps times per interval;
// the other endpoints keep the configured interval.
func TestShiftedZoneIsProbedHarder(t *testing.T) {
	az1 := server(t, "az1", "az1-1", 200)
	az2 := server(t, "az2", "az2-1", 200)
	regional := server(t, "az2", "az2-1", 200)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fake := clock.NewFake(t0)
	rec := newRecorder()
	const interval = 10 * time.Second
	steps := ProbeSteps(interval)
	if steps != 5 || ProbeInterval(interval) != 2*time.Second || ProbeSteps(3*time.Second) != 3 || ProbeSteps(500*time.Millisecond) != 1 {
		t.Fatalf("ProbeSteps(10s) = %d, ProbeInterval(10s) = %s, ProbeSteps(3s) = %d, ProbeSteps(500ms) = %d",
			steps, ProbeInterval(interval), ProbeSteps(3*time.Second), ProbeSteps(500*time.Millisecond))
	}
	stop := start(t, Config{
		Interval:   interval,
		Endpoints:  []Endpoint{{Zone: "az1", URL: az1.URL}, {Zone: "az2", URL: az2.URL}, {URL: regional.URL}},
		Operations: []string{"ride"},
		Clock:      fake,
		Shifted:    func(z string) bool { return z == "az1" },
	}, rec)
	rec.wait(t, 3) // the first (full) round
	want := 3
	for k := 1; k <= 2*steps; k++ {
		fake.Advance(ProbeInterval(interval))
		want++ // az1, every probe round
		if k%steps == 0 {
			want += 2 // az2 and the regional endpoint, every full round
		}
		rec.wait(t, want)
	}
	stop()
	perZone := map[string]int{}
	for _, o := range rec.snapshot() {
		if !o.Regional {
			perZone[o.Zone]++
		}
	}
	if perZone["az1"] != 2*steps+1 || perZone["az2"] != 3 {
		t.Errorf("calls per zone %v, want az1 %d, az2 3", perZone, 2*steps+1)
	}
}

// afterCounter is a fake clock that signals every After registered.
type afterCounter struct {
	*clock.Fake
	afters chan struct{}
}

func (a afterCounter) After(d time.Duration) <-chan time.Time {
	c := a.Fake.After(d)
	a.afters <- struct{}{}
	return c
}

// With Spread, a round's calls start each at its own hashed offset within
// the interval, never before it, and the same offsets hold in the next round.
func TestSpreadCallsOverTheInterval(t *testing.T) {
	srvs := []*httptest.Server{server(t, "az1", "i1", 200), server(t, "az2", "i2", 200), server(t, "az3", "i3", 200)}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := afterCounter{Fake: clock.NewFake(t0), afters: make(chan struct{}, 64)}
	const interval = 10 * time.Second
	ops := []string{"ride", "pay", "signin", "home"}
	var eps []Endpoint
	for i, s := range srvs {
		eps = append(eps, Endpoint{Zone: fmt.Sprintf("az%d", i+1), URL: s.URL})
	}
	rec := newRecorder()
	start(t, Config{Interval: interval, Endpoints: eps, Operations: ops, Clock: clk, Spread: true}, rec)

	offset := map[string]time.Duration{} // zone/op
	zero := 0
	for _, ep := range eps {
		for _, op := range ops {
			d := spreadOffset(interval, ep.Zone, strings.TrimSuffix(ep.URL, "/")+"/"+op, op)
			if d < 0 || d >= interval {
				t.Fatalf("offset %v outside the interval", d)
			}
			if d == 0 {
				zero++
			}
			offset[ep.Zone+"/"+op] = d
		}
	}
	perRound := len(eps) * len(ops)
	const step = 100 * time.Millisecond
	for round := range 2 {
		for range perRound - zero { // every delayed call is registered
			<-clk.afters
		}
		for k := 0; k < int(interval/step); k++ {
			clk.Advance(step)
			elapsed := time.Duration(k+1) * step
			due := 0
			for _, d := range offset {
				if d < elapsed {
					due++
				}
			}
			rec.wait(t, round*perRound+due)
		}
	}
	got := rec.snapshot()
	if len(got) != 2*perRound {
		t.Fatalf("%d observations, want %d", len(got), 2*perRound)
	}
	distinct := map[time.Time]bool{}
	for i, o := range got {
		roundStart := t0.Add(time.Duration(i/perRound) * interval)
		d := offset[o.Zone+"/"+o.Operation]
		// Stamped when the call ended: at or after its offset, and within the
		// step in which it fell due (the test waits for it there).
		if at := o.At.Sub(roundStart); at < d || at > d+step {
			t.Errorf("%s/%s at +%v, its offset is %v", o.Zone, o.Operation, at, d)
		}
		distinct[o.At] = true
	}
	if len(distinct) < perRound { // 12 hashed offsets over 100 steps
		t.Logf("only %d distinct call times of %d calls", len(distinct), 2*perRound)
	}
	if len(distinct) < 2*perRound/3 {
		t.Errorf("calls bunched: %d distinct times for %d calls", len(distinct), 2*perRound)
	}
}

// Canaries without a Transport of their own share the process's one, with
// its per-host bounds; one with a Transport keeps it.
func TestSharedTransport(t *testing.T) {
	if SharedTransport() != SharedTransport() {
		t.Fatal("SharedTransport is not one transport")
	}
	tr := SharedTransport()
	if tr.MaxConnsPerHost != maxConnsPerHost || tr.MaxIdleConnsPerHost != maxIdleConnsPerHost || tr.Proxy != nil {
		t.Errorf("shared transport bounds: %d conns, %d idle per host", tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost)
	}
	// Three canaries, one after the other, on one endpoint: the later ones
	// reuse the first one's connection (a pool per canary makes three).
	var mu sync.Mutex
	conns := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	own := &countingTransport{RoundTripper: http.DefaultTransport}
	for i, c := range []Config{{}, {}, {}, {Transport: own}} {
		rec := newRecorder()
		c.Interval, c.Endpoints, c.Operations, c.Clock = time.Hour, []Endpoint{{Zone: "az1", URL: srv.URL}}, []string{"ride"}, clock.NewFake(time.Unix(0, 0))
		stop := start(t, c, rec)
		rec.wait(t, 1)
		stop()
		if i == 2 {
			mu.Lock()
			n := conns
			mu.Unlock()
			// The connection returns to the pool just after the body ends;
			// allow one call that raced it.
			if n >= 3 {
				t.Errorf("%d connections for three canaries' calls", n)
			}
		}
	}
	if own.n.Load() != 1 {
		t.Errorf("own transport used %d times, want 1", own.n.Load())
	}
}

type countingTransport struct {
	http.RoundTripper
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.RoundTripper.RoundTrip(r)
}

// With Phase, the first round (and so every round) starts Phase after Run:
// nothing is called before it, the round's calls come at Phase, the next
// round's an interval later.
func TestPhaseDelaysTheRounds(t *testing.T) {
	srv := server(t, "az1", "i1", 200)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := afterCounter{Fake: clock.NewFake(t0), afters: make(chan struct{}, 64)}
	const interval, phase = 10 * time.Second, 3 * time.Second
	rec := newRecorder()
	start(t, Config{Interval: interval, Endpoints: []Endpoint{{Zone: "az1", URL: srv.URL}}, Operations: []string{"ride"}, Clock: clk, Phase: phase}, rec)
	<-clk.afters // the phase's timer
	clk.Advance(phase - time.Millisecond)
	if got := rec.snapshot(); len(got) != 0 {
		t.Fatalf("%d calls before the phase", len(got))
	}
	clk.Advance(time.Millisecond)
	rec.wait(t, 1)
	clk.Advance(interval)
	rec.wait(t, 2)
	for i, o := range rec.snapshot() {
		if want := t0.Add(phase + time.Duration(i)*interval); !o.At.Equal(want) {
			t.Errorf("call %d at %v, want %v", i, o.At, want)
		}
	}
}
