package frontdoor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/internal/freeport"
)

var quiet = slog.New(slog.DiscardHandler)

// backend is an app instance for the proxy tests: it answers every request
// with its id, and /health with healthStatus. With a gate, each /health
// request waits for a token first, so a test can hold a health-check round
// open.
type backend struct {
	id, zone     string
	srv          *httptest.Server
	hits         atomic.Int64 // customer requests
	healthHits   atomic.Int64
	healthStatus atomic.Int32
	gate         chan struct{}
	closeGate    func()
}

func newBackend(t *testing.T, id, zone string, gated bool) *backend {
	t.Helper()
	b := &backend{id: id, zone: zone, closeGate: func() {}}
	b.healthStatus.Store(http.StatusOK)
	if gated {
		b.gate = make(chan struct{}, 16)
		var once sync.Once
		b.closeGate = func() { once.Do(func() { close(b.gate) }) }
	}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			b.healthHits.Add(1)
			if b.gate != nil {
				<-b.gate
			}
			w.WriteHeader(int(b.healthStatus.Load()))
			return
		}
		b.hits.Add(1)
		w.Header().Set("X-Backend-Host", r.Host)
		w.Header().Set("X-Backend-URI", r.URL.RequestURI())
		io.WriteString(w, b.id)
	}))
	// Cleanups run last-in first-out: the gate opens before the server waits for its requests.
	t.Cleanup(b.srv.Close)
	t.Cleanup(b.closeGate)
	return b
}

func (b *backend) addr() string { return b.srv.Listener.Addr().String() }

func (b *backend) target() Target { return Target{ID: b.id, Zone: b.zone, Addr: b.addr()} }

type fleet struct {
	table    *Table
	proxy    *Proxy
	backends map[string]*backend
	client   *http.Client
}

// startFleet starts perZone backends in each zone (ids <zone>-<n>), a table
// holding them, and a proxy in front. gated lists backends whose /health is gated.
func startFleet(t *testing.T, zones []string, perZone int, policy HealthPolicy, gated ...string) *fleet {
	t.Helper()
	f := &fleet{table: NewTable(zones, policy), backends: map[string]*backend{}}
	for _, z := range zones {
		for n := 1; n <= perZone; n++ {
			id := fmt.Sprintf("%s-%d", z, n)
			b := newBackend(t, id, z, slices.Contains(gated, id))
			f.backends[id] = b
			if err := f.table.AddTarget(b.target()); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.proxy = startProxy(t, f.table)
	f.client = newClient(t)
	return f
}

func startProxy(t *testing.T, tb *Table) *Proxy {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := StartProxy(ctx, tb, ProxyOptions{Log: quiet})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); p.Close() })
	return p
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type reply struct {
	status int
	body   string
	header http.Header
}

func get(t *testing.T, c *http.Client, url string) reply {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return reply{resp.StatusCode, string(body), resp.Header}
}

// send makes n requests to base+"/op" and counts the answering backends by id.
func (f *fleet) send(t *testing.T, base string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		r := get(t, f.client, base+"/op")
		if r.status != http.StatusOK {
			t.Fatalf("GET %s/op: status %d, body %q", base, r.status, r.body)
		}
		got[r.body]++
	}
	return got
}

func TestProxyRoutesRegionalAndZonalAndFollowsShifts(t *testing.T) {
	zones := []string{"az1", "az2", "az3"}
	f := startFleet(t, zones, 2, DefaultHealthPolicy)
	act := Actuator{Table: f.table}
	ctx := context.Background()

	// Every zone, every backend, evenly.
	got := f.send(t, f.proxy.RegionalURL(), 300)
	want := map[string]int{}
	for id := range f.backends {
		want[id] = 50
	}
	assertCounts(t, "regional", got, want)

	// Shift az1 away: the regional endpoint never reaches it...
	if err := act.Apply(ctx, actuator.Action{Kind: actuator.ShiftAway, Resource: "app", Zone: "az1"}); err != nil {
		t.Fatal(err)
	}
	got = byZone(f.send(t, f.proxy.RegionalURL(), 300))
	assertCounts(t, "regional while az1 shifted", got, map[string]int{"az2": 150, "az3": 150})

	// ...while its zonal endpoint still answers from its own backends, and
	// every other zonal endpoint from its own.
	for _, z := range zones {
		got := f.send(t, f.proxy.ZonalURL(z), 20)
		assertCounts(t, "zonal "+z, got, map[string]int{z + "-1": 10, z + "-2": 10})
	}

	// End the shift: az1 is back in the regional rotation.
	if err := act.Apply(ctx, actuator.Action{Kind: actuator.EndShift, Resource: "app", Zone: "az1"}); err != nil {
		t.Fatal(err)
	}
	got = byZone(f.send(t, f.proxy.RegionalURL(), 300))
	assertCounts(t, "regional after the shift ended", got, map[string]int{"az1": 100, "az2": 100, "az3": 100})
}

func TestProxyForwardsRequestAsIs(t *testing.T) {
	f := startFleet(t, []string{"az1"}, 1, DefaultHealthPolicy)
	r := get(t, f.client, f.proxy.RegionalURL()+"/orders/7?verbose=1")
	if r.status != http.StatusOK || r.body != "az1-1" {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	if got := r.header.Get("X-Backend-URI"); got != "/orders/7?verbose=1" {
		t.Errorf("backend saw URI %q", got)
	}
	if got, want := r.header.Get("X-Backend-Host"), strings.TrimPrefix(f.proxy.RegionalURL(), "http://"); got != want {
		t.Errorf("backend saw Host %q, want the front door's %q", got, want)
	}
}

func TestActuatorErrors(t *testing.T) {
	act := Actuator{Table: NewTable([]string{"az1"}, DefaultHealthPolicy)}
	ctx := context.Background()
	for _, k := range []actuator.Kind{actuator.ExcludeZone, actuator.IncludeZone, actuator.RemoveExtra} {
		if err := act.Apply(ctx, actuator.Action{Kind: k, Zone: "az1"}); !errors.Is(err, actuator.ErrUnsupported) {
			t.Errorf("Apply(%s) = %v, want ErrUnsupported", k, err)
		}
	}
	if err := act.Apply(ctx, actuator.Action{Kind: actuator.ShiftAway, Zone: "az9"}); err == nil {
		t.Error("ShiftAway of an unknown zone: no error")
	}
	// Idempotent, as the runbook's retries need.
	for range 2 {
		if err := act.Apply(ctx, actuator.Action{Kind: actuator.ShiftAway, Zone: "az1"}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := act.Apply(ctx, actuator.Action{Kind: actuator.EndShift, Zone: "az1"}); err != nil {
			t.Fatal(err)
		}
	}
	if act.Table.Shifted("az1") {
		t.Error("az1 still shifted")
	}
}

// signalClock is a clock.Fake that tells when the health checker has made its ticker.
type signalClock struct {
	*clock.Fake
	ticker chan struct{}
}

func (c signalClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	ch, stop := c.Fake.NewTicker(d)
	close(c.ticker)
	return ch, stop
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHealthCheckerEjectsAndRestoresBackend(t *testing.T) {
	f := startFleet(t, []string{"az1", "az2"}, 2, DefaultHealthPolicy, "az1-2")
	bad := f.backends["az1-2"]
	bad.healthStatus.Store(http.StatusInternalServerError)

	const interval = time.Second
	clk := signalClock{clock.NewFake(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)), make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	hc := &HealthChecker{Table: f.table, Interval: interval, Timeout: time.Minute, Clock: clk, Log: quiet}
	go func() { defer close(done); hc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		bad.closeGate()
		<-done
	})
	select {
	case <-clk.ticker:
	case <-time.After(10 * time.Second):
		t.Fatal("health checker made no ticker")
	}

	// round advances the fake clock by one interval and waits until every
	// backend has been asked for the k-th time. (Round k has then begun, so
	// round k-1 is fully reported.)
	round := func(k int64) {
		t.Helper()
		clk.Advance(interval)
		waitFor(t, "health-check round", func() bool {
			for _, b := range f.backends {
				if b.healthHits.Load() < k {
					return false
				}
			}
			return true
		})
	}

	healthy := func() bool { return healthOf(t, f.table, "az1-2") }

	bad.gate <- struct{}{} // round 1 answers at once: one failure
	round(1)
	round(2) // round 1 reported; round 2 held at the gate
	if !healthy() {
		t.Fatal("az1-2 taken out after one failed check; threshold is 2")
	}
	if got := f.send(t, f.proxy.ZonalURL("az1"), 10); got["az1-2"] != 5 {
		t.Errorf("before the threshold az1-2 should still get traffic: %v", got)
	}
	bad.gate <- struct{}{} // second failure
	waitFor(t, "az1-2 to be taken out", func() bool { return !healthy() })
	if n := bad.healthHits.Load(); n != 2 {
		t.Errorf("taken out after %d checks, want 2", n)
	}
	for _, id := range []string{"az1-1", "az2-1", "az2-2"} {
		if !healthOf(t, f.table, id) {
			t.Errorf("%s marked unhealthy", id)
		}
	}

	// No more traffic to it, from either endpoint.
	got := f.send(t, f.proxy.RegionalURL(), 300)
	assertCounts(t, "regional, az1-2 out", got, map[string]int{"az1-1": 150, "az2-1": 75, "az2-2": 75})
	got = f.send(t, f.proxy.ZonalURL("az1"), 20)
	assertCounts(t, "zonal az1, az1-2 out", got, map[string]int{"az1-1": 20})

	// It recovers: two passing checks bring it back.
	bad.healthStatus.Store(http.StatusOK)
	bad.gate <- struct{}{}
	round(3)
	round(4) // round 3 reported (one pass), round 4 held
	if healthy() {
		t.Fatal("az1-2 back after one passing check; threshold is 2")
	}
	bad.gate <- struct{}{}
	waitFor(t, "az1-2 to be healthy again", healthy)
	got = f.send(t, f.proxy.ZonalURL("az1"), 20)
	assertCounts(t, "zonal az1, az1-2 back", got, map[string]int{"az1-1": 10, "az1-2": 10})
}

func TestHealthCheckerCountsUnreachableAsFailed(t *testing.T) {
	tb := NewTable([]string{"az1"}, HealthPolicy{UnhealthyThreshold: 1})
	if err := tb.AddTarget(Target{ID: "az1-1", Zone: "az1", Addr: freeport.Addr(t)}); err != nil {
		t.Fatal(err)
	}
	// A sim-mode target (no address) is never probed.
	if err := tb.AddTarget(Target{ID: "az1-2", Zone: "az1"}); err != nil {
		t.Fatal(err)
	}
	clk := signalClock{clock.NewFake(time.Unix(0, 0)), make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&HealthChecker{Table: tb, Interval: time.Second, Timeout: 5 * time.Second, Clock: clk, Log: quiet}).Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	<-clk.ticker
	clk.Advance(time.Second)
	waitFor(t, "az1-1 to be taken out", func() bool { return !healthOf(t, tb, "az1-1") })
	if !healthOf(t, tb, "az1-2") {
		t.Error("target without an address was marked unhealthy")
	}
}

func TestProxyNoTargetIs503(t *testing.T) {
	tb := NewTable([]string{"az1", "az2"}, DefaultHealthPolicy)
	p := startProxy(t, tb)
	c := newClient(t)
	for _, u := range []string{p.RegionalURL(), p.ZonalURL("az1"), p.ZonalURL("az2")} {
		if r := get(t, c, u+"/op"); r.status != http.StatusServiceUnavailable {
			t.Errorf("%s with no targets: status %d, want 503", u, r.status)
		}
	}
	// One zone populated: the other's zonal endpoint still has nothing.
	b := newBackend(t, "az1-1", "az1", false)
	if err := tb.AddTarget(b.target()); err != nil {
		t.Fatal(err)
	}
	if r := get(t, c, p.RegionalURL()+"/op"); r.status != http.StatusOK || r.body != "az1-1" {
		t.Errorf("regional: %d %q, want 200 az1-1", r.status, r.body)
	}
	if r := get(t, c, p.ZonalURL("az2")+"/op"); r.status != http.StatusServiceUnavailable {
		t.Errorf("zonal az2 with no targets: status %d, want 503", r.status)
	}
}

func TestProxyBackendDownIs502(t *testing.T) {
	tb := NewTable([]string{"az1"}, DefaultHealthPolicy)
	if err := tb.AddTarget(Target{ID: "az1-1", Zone: "az1", Addr: freeport.Addr(t)}); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, tb)
	c := newClient(t)
	for _, u := range []string{p.RegionalURL(), p.ZonalURL("az1")} {
		r := get(t, c, u+"/op")
		if r.status != http.StatusBadGateway {
			t.Errorf("%s: status %d, want 502", u, r.status)
		}
		if r.header.Get("X-Grayzone-Instance") != "az1-1" || r.header.Get("X-Grayzone-Zone") != "az1" {
			t.Errorf("%s: 502 headers %v, want the failed target named", u, r.header)
		}
	}
}

// TestProxyFollowsReRegisteredTarget: a target removed and registered again
// under the same id at a new address must be reached at the new address.
func TestProxyFollowsReRegisteredTarget(t *testing.T) {
	tb := NewTable([]string{"az1"}, DefaultHealthPolicy)
	old := newBackend(t, "old", "az1", false)
	if err := tb.AddTarget(Target{ID: "az1-1", Zone: "az1", Addr: old.addr()}); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, tb)
	c := newClient(t)
	if r := get(t, c, p.RegionalURL()+"/op"); r.body != "old" {
		t.Fatalf("first request answered by %q", r.body)
	}
	tb.RemoveTarget("az1-1")
	replacement := newBackend(t, "new", "az1", false)
	if err := tb.AddTarget(Target{ID: "az1-1", Zone: "az1", Addr: replacement.addr()}); err != nil {
		t.Fatal(err)
	}
	if r := get(t, c, p.RegionalURL()+"/op"); r.status != http.StatusOK || r.body != "new" {
		t.Errorf("after re-registering az1-1 at a new address: %d %q, want 200 from the new backend", r.status, r.body)
	}
}

func TestProxyStopsWhenContextEnds(t *testing.T) {
	tb := NewTable([]string{"az1"}, DefaultHealthPolicy)
	ctx, cancel := context.WithCancel(context.Background())
	p, err := StartProxy(ctx, tb, ProxyOptions{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addrs := []string{strings.TrimPrefix(p.RegionalURL(), "http://"), strings.TrimPrefix(p.ZonalURL("az1"), "http://")}
	cancel()
	for _, a := range addrs {
		waitFor(t, a+" to stop listening", func() bool {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return true
			}
			c.Close()
			return false
		})
	}
}

// Each target's health checks reuse one connection: a serve with a fleet of
// resources has thousands of targets, and a connection per check would run
// the machine out of ephemeral ports (each closed one waits in TIME_WAIT).
func TestHealthCheckerKeepsOneConnectionPerTarget(t *testing.T) {
	var conns, closed, checks atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		checks.Add(1)
		w.Write([]byte("ok\n")) // a body, read or not, must not cost the connection
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			conns.Add(1)
		case http.StateClosed:
			closed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	tb := NewTable([]string{"az1"}, DefaultHealthPolicy)
	if err := tb.AddTarget(Target{ID: "az1-1", Zone: "az1", Addr: srv.Listener.Addr().String()}); err != nil {
		t.Fatal(err)
	}
	const interval = time.Second
	clk := signalClock{clock.NewFake(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)), make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&HealthChecker{Table: tb, Interval: interval, Timeout: time.Minute, Clock: clk, Log: quiet}).Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-clk.ticker:
	case <-time.After(10 * time.Second):
		t.Fatal("health checker made no ticker")
	}
	for k := int64(1); k <= 5; k++ {
		clk.Advance(interval)
		waitFor(t, "a health check", func() bool { return checks.Load() >= k })
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 checks of one target, want 1", n)
	}
	// A target gone (its pod replaced, say) has its connection closed at the
	// next round, not kept for as long as the checker runs.
	if err := tb.AddTarget(Target{ID: "az1-2", Zone: "az1", Addr: freeport.Addr(t)}); err != nil {
		t.Fatal(err)
	}
	tb.RemoveTarget("az1-1")
	clk.Advance(interval)
	waitFor(t, "the removed target's connection to close", func() bool { return closed.Load() == 1 })
}
