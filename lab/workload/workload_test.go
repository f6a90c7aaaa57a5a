package workload

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/observation"
)

// fakeDB stands in for the database client; it counts calls and behaves as told.
type fakeDB struct {
	rides, pays atomic.Int64
	lastCents   atomic.Int64
	fail        error // returned by every call when set
	block       bool  // wait for ctx to end, then return its error
}

func (d *fakeDB) call(ctx context.Context, n *atomic.Int64) (int64, error) {
	id := n.Add(1)
	if d.block {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	if d.fail != nil {
		return 0, d.fail
	}
	return id, nil
}

func (d *fakeDB) Ride(ctx context.Context, _, _ string) (int64, error) { return d.call(ctx, &d.rides) }

func (d *fakeDB) Pay(ctx context.Context, _, _ string, cents int64) (int64, error) {
	d.lastCents.Store(cents)
	return d.call(ctx, &d.pays)
}

func (d *fakeDB) calls() int64 { return d.rides.Load() + d.pays.Load() }

// recorder collects observations; wait blocks until n have arrived.
type recorder struct {
	mu   sync.Mutex
	obs  []observation.Observation
	more chan struct{}
}

func newRecorder() *recorder { return &recorder{more: make(chan struct{}, 1)} }

func (r *recorder) Record(o observation.Observation) {
	r.mu.Lock()
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

func start(t *testing.T, db DB, rec *recorder, mod func(*Config)) *Instance {
	t.Helper()
	cfg := Config{Zone: "az1", ID: "az1-1", DB: db, Seed: 42}
	if rec != nil {
		cfg.Record = rec.Record
	}
	if mod != nil {
		mod(&cfg)
	}
	in, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := in.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return in
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

type reply struct {
	status int
	body   string
	hdr    http.Header
}

func get(t *testing.T, c *http.Client, url string) reply {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return reply{resp.StatusCode, string(b), resp.Header}
}

func TestRoutes(t *testing.T) {
	db := &fakeDB{}
	rec := newRecorder()
	in := start(t, db, rec, nil)
	c := newClient(t)

	if !strings.HasPrefix(in.Addr(), "127.0.0.1:") || in.URL() != "http://"+in.Addr() {
		t.Fatalf("Addr %q URL %q", in.Addr(), in.URL())
	}
	tests := []struct {
		path    string
		status  int
		want    string // substring of the body
		outcome observation.Outcome
		op      string // "" when no observation is expected
	}{
		{"/ride", 200, `"id":1`, observation.Success, "ride"},
		{"/pay?cents=250", 200, `"id":1`, observation.Success, "pay"},
		{"/pay?cents=nope", 400, `"error"`, observation.Error, "pay"},
		{"/signin", 200, `"operation":"signin"`, observation.Success, "signin"},
		{"/home", 200, `"operation":"home"`, observation.Success, "home"},
		{"/health", 200, "ok", 0, ""},
		{"/nope", 404, `"error":"not found"`, 0, ""},
		{"/", 404, `"error":"not found"`, 0, ""},
	}
	var wantObs []observation.Observation
	for _, tc := range tests {
		r := get(t, c, in.URL()+tc.path)
		if r.status != tc.status || !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: got %d %q, want %d containing %q", tc.path, r.status, r.body, tc.status, tc.want)
		}
		if z, i := r.hdr.Get(HeaderZone), r.hdr.Get(HeaderInstance); z != "az1" || i != "az1-1" {
			t.Errorf("%s: identity headers %q %q", tc.path, z, i)
		}
		if tc.op != "" {
			wantObs = append(wantObs, observation.Observation{Operation: tc.op, Outcome: tc.outcome})
		}
	}
	if db.rides.Load() != 1 || db.pays.Load() != 1 || db.lastCents.Load() != 250 {
		t.Errorf("db calls: rides %d pays %d cents %d", db.rides.Load(), db.pays.Load(), db.lastCents.Load())
	}
	got := rec.wait(t, len(wantObs))
	if len(got) != len(wantObs) {
		t.Fatalf("%d observations, want %d: %+v", len(got), len(wantObs), got)
	}
	for i, o := range got {
		w := wantObs[i]
		if o.Source != observation.Server || o.Zone != "az1" || o.Instance != "az1-1" ||
			o.Operation != w.Operation || o.Outcome != w.Outcome || o.Regional ||
			o.At.IsZero() || o.Latency <= 0 {
			t.Errorf("observation %d = %+v, want %s/%s from the server", i, o, w.Operation, w.Outcome)
		}
	}
}

func TestDBErrorIsFault(t *testing.T) {
	db := &fakeDB{fail: errors.New("connection reset by peer")}
	rec := newRecorder()
	in := start(t, db, rec, nil)
	c := newClient(t)
	for _, op := range []string{"ride", "pay"} {
		r := get(t, c, in.URL()+"/"+op)
		var body struct{ Error string }
		if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != 500 || body.Error != "database error" {
			t.Errorf("/%s: %d %q (%v)", op, r.status, r.body, err)
		}
	}
	for _, o := range rec.wait(t, 2) {
		if o.Outcome != observation.Fault {
			t.Errorf("%s: outcome %s, want fault", o.Operation, o.Outcome)
		}
	}
}

func TestDBTimeout(t *testing.T) {
	db := &fakeDB{block: true}
	rec := newRecorder()
	in := start(t, db, rec, func(c *Config) { c.DBTimeout = 50 * time.Millisecond })
	r := get(t, newClient(t), in.URL()+"/ride")
	if r.status != 500 || !strings.Contains(r.body, "database timeout") {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	o := rec.wait(t, 1)[0]
	if o.Outcome != observation.Fault || o.Latency < 50*time.Millisecond {
		t.Fatalf("observation %+v", o)
	}
}

func TestHealthNeverTouchesDB(t *testing.T) {
	db := &fakeDB{}
	rec := newRecorder()
	in := start(t, db, rec, nil)
	c := newClient(t)
	for i := range 20 {
		if i == 10 {
			in.SetFaults(InstanceFaults{HTTPErrorPercent: 50})
		}
		get(t, c, in.URL()+"/health")
	}
	if n := db.calls(); n != 0 {
		t.Fatalf("/health made %d database calls", n)
	}
	if n := len(rec.snapshot()); n != 0 {
		t.Fatalf("/health produced %d observations", n)
	}
}

func TestHTTPErrorAll(t *testing.T) {
	db := &fakeDB{}
	rec := newRecorder()
	in := start(t, db, rec, nil)
	c := newClient(t)
	in.SetFaults(InstanceFaults{HTTPErrorPercent: 100})
	if got := in.Faults(); got.HTTPErrorPercent != 100 {
		t.Fatalf("Faults() = %+v", got)
	}
	for _, p := range []string{"/health", "/home", "/ride", "/nope"} {
		r := get(t, c, in.URL()+p)
		if r.status != 500 || r.hdr.Get(HeaderInstance) != "az1-1" {
			t.Errorf("%s: %d, instance %q; want 500 from az1-1", p, r.status, r.hdr.Get(HeaderInstance))
		}
	}
	if n := db.calls(); n != 0 {
		t.Errorf("failed requests reached the database %d times", n)
	}
	obs := rec.wait(t, 2)
	if len(obs) != 2 || obs[0].Operation != "home" || obs[1].Operation != "ride" {
		t.Fatalf("observations %+v", obs)
	}
	for _, o := range obs {
		if o.Outcome != observation.Fault {
			t.Errorf("%s: %s, want fault", o.Operation, o.Outcome)
		}
	}
	in.SetFaults(InstanceFaults{})
	if r := get(t, c, in.URL()+"/health"); r.status != 200 {
		t.Fatalf("after clearing faults /health = %d", r.status)
	}
}

func TestHTTPErrorPercent(t *testing.T) {
	in := start(t, &fakeDB{}, nil, nil)
	in.SetFaults(InstanceFaults{HTTPErrorPercent: 50})
	c := newClient(t)
	const n = 400
	failed := 0
	for range n {
		if get(t, c, in.URL()+"/home").status == 500 {
			failed++
		}
	}
	// Binomial(400, 0.5) has sd 10: this band is 8 sd wide on each side.
	if failed < 120 || failed > 280 {
		t.Fatalf("%d of %d failed at 50%%", failed, n)
	}
}

func TestSlowAddsLatency(t *testing.T) {
	rec := newRecorder()
	in := start(t, &fakeDB{}, rec, nil)
	c := newClient(t)
	in.SetFaults(InstanceFaults{Slow: 150 * time.Millisecond, SlowJitter: 50 * time.Millisecond})
	for _, p := range []string{"/home", "/ride", "/health"} {
		t0 := time.Now()
		if r := get(t, c, in.URL()+p); r.status != 200 {
			t.Fatalf("%s: %d", p, r.status)
		}
		if d := time.Since(t0); d < 100*time.Millisecond {
			t.Errorf("%s took %v, want >= 100ms", p, d)
		}
	}
	for _, o := range rec.wait(t, 2) {
		if o.Latency < 100*time.Millisecond || o.Outcome != observation.Success {
			t.Errorf("observation %+v: want success with latency >= 100ms", o)
		}
	}
}

func TestSlowHonoursCancellation(t *testing.T) {
	rec := newRecorder()
	in := start(t, &fakeDB{}, rec, nil)
	in.SetFaults(InstanceFaults{Slow: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.URL()+"/signin", nil)
	if resp, err := newClient(t).Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("an hour-slow request answered: %d", resp.StatusCode)
	}
	// The handler notices the caller left and records a fault.
	o := rec.wait(t, 1)[0]
	if o.Outcome != observation.Fault || o.Operation != "signin" {
		t.Fatalf("observation %+v", o)
	}
	// Nothing is left in flight, so Close (in Cleanup) is graceful.
}

func TestSetFaultsConcurrent(t *testing.T) {
	db := &fakeDB{}
	in := start(t, db, newRecorder(), nil)
	c := newClient(t)
	sets := []InstanceFaults{
		{},
		{HTTPErrorPercent: 50},
		{Slow: time.Millisecond, SlowJitter: time.Millisecond},
		{HTTPErrorPercent: 100, SlowJitter: 2 * time.Millisecond},
	}
	done := make(chan struct{})
	var flipper sync.WaitGroup
	flipper.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			in.SetFaults(sets[i%len(sets)])
			_ = in.Faults()
		}
	})
	var clients sync.WaitGroup
	for w := range 4 {
		clients.Go(func() {
			for i := range 25 {
				path := []string{"/ride", "/pay", "/home", "/health"}[(w+i)%4]
				resp, err := c.Get(in.URL() + path)
				if err != nil {
					t.Errorf("GET %s: %v", path, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 500 {
					t.Errorf("GET %s: %d", path, resp.StatusCode)
				}
			}
		})
	}
	clients.Wait()
	close(done)
	flipper.Wait()
}

func TestCloseOnContextAndIdempotent(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rec := newRecorder()
	in, err := Start(ctx, Config{Zone: "az2", ID: "az2-1", DB: &fakeDB{}, Record: rec.Record})
	if err != nil {
		t.Fatal(err)
	}
	if r := get(t, newClient(t), in.URL()+"/home"); r.status != 200 {
		t.Fatalf("/home = %d", r.status)
	}
	cancel()
	// Close joins the shutdown the cancellation started.
	if err := in.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := in.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if conn, err := net.Dial("tcp", in.Addr()); err == nil {
		conn.Close()
		t.Fatal("instance still accepts connections after Close")
	}
}

// stuckDB ignores its context until released, like a misbehaving driver.
type stuckDB struct {
	entered chan struct{}
	release chan struct{}
}

func (d *stuckDB) Ride(context.Context, string, string) (int64, error) {
	d.entered <- struct{}{}
	<-d.release
	return 1, nil
}

func (d *stuckDB) Pay(context.Context, string, string, int64) (int64, error) {
	return 0, errors.New("unused")
}

func TestCloseCutsStragglers(t *testing.T) {
	db := &stuckDB{entered: make(chan struct{}, 1), release: make(chan struct{})}
	rec := newRecorder()
	// The grace period is DBTimeout+1s; the stuck call outlives it.
	in, err := Start(context.Background(), Config{Zone: "az1", ID: "az1-1", DB: db, Record: rec.Record, DBTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	c := newClient(t)
	go func() {
		resp, err := c.Get(in.URL() + "/ride")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-db.entered
	if err := in.Close(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want a shutdown deadline error", err)
	}
	if err := <-errc; err == nil {
		t.Error("request through a cut connection succeeded")
	}
	close(db.release)
	// Recording is off once Close has returned, whatever stragglers do.
	in.emit(observation.Observation{Operation: "ride"})
	if n := len(rec.snapshot()); n != 0 {
		t.Fatalf("%d observations recorded after Close", n)
	}
}

func TestStartValidation(t *testing.T) {
	ok := Config{Zone: "z", ID: "z-1", DB: &fakeDB{}}
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no zone", func(c *Config) { c.Zone = "" }, "Zone is required"},
		{"no id", func(c *Config) { c.ID = "" }, "ID is required"},
		{"no db", func(c *Config) { c.DB = nil }, "DB is required"},
		{"negative timeout", func(c *Config) { c.DBTimeout = -time.Second }, "negative"},
	}
	for _, tc := range tests {
		cfg := ok
		tc.mod(&cfg)
		in, err := Start(context.Background(), cfg)
		if err == nil {
			in.Close()
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to mention %q", tc.name, err, tc.want)
		}
	}
}
