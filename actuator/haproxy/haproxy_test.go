package haproxy

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/internal/freeport"
)

// lab is a real HAProxy in front of real HTTP backends on loopback.
type lab struct {
	proc     *Process
	layout   Layout
	regional string // http://addr of the regional frontend
	zoneOf   map[string]string
}

// startLab starts two targets per zone and HAProxy in front of them, its
// configuration declaring the epoch record. Without haproxy it skips,
// except in CI, where haproxy is installed.
func startLab(t testing.TB, zones ...string) *lab {
	t.Helper()
	return startLabWith(t, true, zones...)
}

// startLabWith is startLab, with or without the epoch record's map.
func startLabWith(t testing.TB, epochMap bool, zones ...string) *lab {
	t.Helper()
	if _, err := Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %v", err)
		}
		t.Skipf("skipping the real-HAProxy test: %v", err)
	}
	// Unix socket paths are limited to 108 bytes; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "gzhap")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l := &lab{zoneOf: map[string]string{}}
	l.layout = Layout{Socket: filepath.Join(dir, "admin.sock"), Regional: freeport.Addr(t), Zonal: map[string]string{},
		HealthPath: "/health", HealthInterval: time.Second, Rise: 1, Fall: 3}
	if epochMap {
		l.layout.EpochMap = filepath.Join(dir, EpochMapFile)
		if err := os.WriteFile(l.layout.EpochMap, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, z := range zones {
		l.layout.Zonal[z] = freeport.Addr(t)
		for i := 1; i <= 2; i++ {
			id := fmt.Sprintf("%s-%d", z, i)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Target", id)
				io.WriteString(w, "ok")
			}))
			t.Cleanup(srv.Close)
			l.layout.Targets = append(l.layout.Targets, Target{ID: id, Zone: z, Addr: srv.Listener.Addr().String()})
			l.zoneOf[id] = z
		}
	}
	p, err := Start(context.Background(), dir, l.layout.Config(), l.layout.Socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	l.proc = p
	l.regional = "http://" + l.layout.Regional
	return l
}

// spread sends n requests through the regional frontend on keep-alive
// connections and counts them per zone; any failure fails the test.
func (l *lab) spread(t testing.TB, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	for i := 0; i < n; i++ {
		resp, err := c.Get(l.regional + "/x")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
		got[l.zoneOf[resp.Header.Get("X-Target")]]++
	}
	return got
}

func TestShiftDrainsZoneInRealHAProxy(t *testing.T) {
	l := startLab(t, "za", "zb", "zc")
	ctx := context.Background()
	a, err := New(Options{Runtime: l.proc.Runtime, Zones: l.layout.Zones()})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.spread(t, 60); got["za"] == 0 || got["zb"] == 0 || got["zc"] == 0 {
		t.Fatalf("before the shift every zone should get requests: %v", got)
	}
	if err := a.Apply(ctx, actuator.Action{Kind: actuator.ShiftAway, Resource: "web", Zone: "za"}); err != nil {
		t.Fatal(err)
	}
	rows, err := l.proc.Runtime.ServersState(ctx, RegionalBackend)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if want := l.zoneOf[r.Server] == "za"; r.Drained() != want {
			t.Errorf("server %s: drained=%v, want %v (admin state %d)", r.Server, r.Drained(), want, r.AdminState)
		}
	}
	if got := l.spread(t, 60); got["za"] != 0 || got["zb"] == 0 || got["zc"] == 0 {
		t.Fatalf("during the shift no request may reach za: %v", got)
	}
	// The zonal frontend still reaches the shifted zone (canaries watch it recover).
	resp, err := http.Get("http://" + l.layout.Zonal["za"] + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("zonal frontend of the shifted zone: %v %v", resp, err)
	}
	resp.Body.Close()
	// Idempotent: applying again changes nothing.
	if err := a.Apply(ctx, actuator.Action{Kind: actuator.ShiftAway, Zone: "za"}); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Reconcile(ctx); err != nil || n != 0 {
		t.Fatalf("reconcile with HAProxy in step: changed %d, err %v", n, err)
	}
	if err := a.Apply(ctx, actuator.Action{Kind: actuator.EndShift, Zone: "za"}); err != nil {
		t.Fatal(err)
	}
	if got := l.spread(t, 60); got["za"] == 0 {
		t.Fatalf("after the shift ended za should get requests again: %v", got)
	}
}

func TestReloadForgetsAndReconcileReapplies(t *testing.T) {
	l := startLab(t, "za", "zb")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	a, err := New(Options{Runtime: l.proc.Runtime, Zones: l.layout.Zones(), Clock: clk, Interval: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetShifted(ctx, "zb", true); err != nil {
		t.Fatal(err)
	}
	if err := l.proc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := drained(t, l, "zb"); got != 0 {
		t.Fatalf("after the reload HAProxy should have forgotten the drain; %d server(s) still drained", got)
	}
	if got := l.spread(t, 40); got["zb"] == 0 {
		t.Fatalf("after the reload zb gets traffic again until reconciled: %v", got)
	}
	// Run reconciles at once, then each interval: the first pass re-applies.
	reconciled := make(chan struct{})
	go func() { a.Run(ctx); close(reconciled) }()
	waitFor(t, func() bool { return drained(t, l, "zb") == 2 })
	if got := l.spread(t, 40); got["zb"] != 0 {
		t.Fatalf("reconcile should have re-drained zb: %v", got)
	}
	// A second reload between two ticks: the next tick (one interval) fixes it.
	if err := l.proc.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if drained(t, l, "zb") != 0 {
		t.Fatal("reload should forget the drain")
	}
	clk.Advance(5 * time.Second)
	waitFor(t, func() bool { return drained(t, l, "zb") == 2 })
	cancel()
	<-reconciled
}

// waitFor polls cond (HAProxy is another process: there is no event to
// wait on) for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}

func drained(t *testing.T, l *lab, zone string) int {
	t.Helper()
	rows, err := l.proc.Runtime.ServersState(context.Background(), RegionalBackend)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range rows {
		if l.zoneOf[r.Server] == zone && r.Drained() {
			n++
		}
	}
	return n
}

func TestErrorsFromRealHAProxy(t *testing.T) {
	l := startLab(t, "za", "zb")
	ctx := context.Background()
	if _, err := l.proc.Runtime.ServersState(ctx, "nope"); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("unknown backend: %v", err)
	}
	a, _ := New(Options{Runtime: l.proc.Runtime, Zones: map[string][]Server{"za": {{Backend: RegionalBackend, Name: "ghost"}}}})
	if err := a.SetShifted(ctx, "za", true); err == nil {
		t.Fatal("a server HAProxy does not have must be an error")
	}
	if err := l.proc.Runtime.SetState(ctx, "drain", Server{Backend: RegionalBackend, Name: "ghost"}); err == nil {
		t.Fatal("set server on a missing server must fail")
	}
	down, _ := New(Options{Runtime: Runtime{Addr: filepath.Join(t.TempDir(), "none.sock")}, Zones: l.layout.Zones()})
	if err := down.SetShifted(ctx, "za", true); err == nil {
		t.Fatal("an unreachable runtime API must be an error")
	}
	if !down.Shifted("za") {
		t.Fatal("the desired state is kept for the next reconcile")
	}
}

func TestParseServersState(t *testing.T) {
	out := "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n3 regional 1 a-1 127.0.0.1 2 8 1\n3 regional 2 a-2 127.0.0.1 2 0 1\n\n"
	rows, err := parseServersState("regional", out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || !rows[0].Drained() || rows[1].Drained() || rows[0].Server != "a-1" {
		t.Fatalf("rows: %+v", rows)
	}
	if _, err := parseServersState("x", "Can't find backend.\n"); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("missing backend: %v", err)
	}
	if _, err := parseServersState("x", "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state\n3 regional 1 a-1 127.0.0.1 x 8\n"); err == nil {
		t.Fatal("unreadable row must be an error")
	}
}

// The example configuration is one HAProxy accepts, and declares the
// epoch record as the lab does.
func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := os.ReadFile("../../examples/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "\n    "+EpochMapDeclaration(EpochMapFile)+"\n") {
		t.Errorf("examples/haproxy.cfg does not declare the epoch record: want the line %q", EpochMapDeclaration(EpochMapFile))
	}
	if _, err := os.Stat("../../examples/" + EpochMapFile); err != nil {
		t.Errorf("the example's epoch map file: %v", err)
	}
	bin, err := Binary()
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	if out, err := exec.Command(bin, "-c", "-q", "-f", "../../examples/haproxy.cfg").CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c examples/haproxy.cfg: %v: %s", err, out)
	}
}

func TestSetTargetsAddsAndRemovesServers(t *testing.T) {
	l := startLab(t, "za", "zb")
	ctx := context.Background()
	a, err := New(Options{Runtime: l.proc.Runtime, Zones: l.layout.Zones()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetShifted(ctx, "zb", true); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Target", "za-3")
	}))
	defer srv.Close()
	l.zoneOf["za-3"] = "za"
	var targets []Target
	for _, tg := range l.layout.Targets {
		if tg.ID != "za-2" {
			targets = append(targets, tg)
		}
	}
	targets = append(targets, Target{ID: "za-3", Zone: "za", Addr: srv.Listener.Addr().String()},
		Target{ID: "zb-3", Zone: "zb", Addr: srv.Listener.Addr().String()})
	if err := a.SetTargets(ctx, l.layout, targets); err != nil {
		t.Fatal(err)
	}
	rows, err := l.proc.Runtime.ServersState(ctx, RegionalBackend)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range rows {
		got[r.Server] = r.Drained()
	}
	want := map[string]bool{"za-1": false, "za-3": false, "zb-1": true, "zb-2": true, "zb-3": true}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("regional backend: %v, want %v (server: drained)", got, want)
	}
	zonal, err := l.proc.Runtime.ServersState(ctx, ZonalBackend("zb"))
	if err != nil {
		t.Fatal(err)
	}
	if len(zonal) != 3 || zonal[2].Server != "zb-3" || zonal[2].Drained() {
		t.Fatalf("zonal backend zb: %+v", zonal)
	}
	if n, err := a.Reconcile(ctx); err != nil || n != 0 {
		t.Fatalf("reconcile after SetTargets: %d changes, %v", n, err)
	}
	// Requests reach the new za server and never the drained zone.
	hits := map[string]int{}
	c := &http.Client{}
	for i := 0; i < 40; i++ {
		resp, err := c.Get(l.regional)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		hits[resp.Header.Get("X-Target")]++
	}
	if hits["za-3"] == 0 || hits["za-2"] != 0 || hits["zb-1"]+hits["zb-2"] != 0 {
		t.Fatalf("hits: %v", hits)
	}
}

// TestPinnedLayoutRunsOneThreadOnItsCPU: with PinCPU the worker is one
// thread bound to that CPU (the benchmark's own-core HAProxy).
func TestPinnedLayoutRunsOneThreadOnItsCPU(t *testing.T) {
	cpu := 0
	cfg := Layout{Socket: "/s", Regional: "127.0.0.1:1", PinCPU: &cpu}.Config()
	if !strings.Contains(cfg, "    nbthread 1\n    cpu-map 1/1 0\n") {
		t.Fatalf("config:\n%s", cfg)
	}
	if strings.Contains(Layout{Socket: "/s", Regional: "127.0.0.1:1"}.Config(), "cpu-map") {
		t.Error("unpinned layout has a cpu-map")
	}
	if _, err := Binary(); err != nil {
		t.Skipf("no haproxy: %v", err)
	}
	dir, err := os.MkdirTemp("", "gzhap")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l := Layout{Socket: filepath.Join(dir, "admin.sock"), Regional: freeport.Addr(t), Zonal: map[string]string{}, PinCPU: &cpu}
	p, err := Start(context.Background(), dir, l.Config(), l.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	pid, err := p.Pid(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(pid)
	if err != nil {
		t.Fatal(err)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(n, &set); err != nil {
		t.Fatal(err)
	}
	if set.Count() != 1 || !set.IsSet(0) {
		t.Errorf("worker %d affinity: %d CPUs, CPU 0 set %v; want CPU 0 alone", n, set.Count(), set.IsSet(0))
	}
}

// A gradual return in a real HAProxy: the shifted zone's servers at 5 % and
// 25 % of their weight take that share of new requests (weights are
// relative: za at w against 100 for zb and zc gets w/(w+200)), a reload that
// forgets the weight is corrected by the reconcile, 0 drains them again and
// the end of the shift gives them their full weight back.
func TestSetWeightInRealHAProxy(t *testing.T) {
	l := startLab(t, "za", "zb", "zc")
	ctx := context.Background()
	a, err := New(Options{Runtime: l.proc.Runtime, Zones: l.layout.Zones()})
	if err != nil {
		t.Fatal(err)
	}
	var w actuator.Weigher = a
	if err := a.SetShifted(ctx, "za", true); err != nil {
		t.Fatal(err)
	}
	weights := func() map[string]int {
		rows, err := l.proc.Runtime.ServersState(ctx, RegionalBackend)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, r := range rows {
			out[r.Server] = r.UWeight
			if l.zoneOf[r.Server] != "za" && r.UWeight != 100 {
				t.Errorf("server %s of a full zone: weight %d, want 100", r.Server, r.UWeight)
			}
		}
		return out
	}
	for _, pct := range []int{5, 25} {
		if err := w.SetWeight(ctx, "za", pct); err != nil {
			t.Fatal(err)
		}
		if got := weights(); got["za-1"] != pct || got["za-2"] != pct {
			t.Fatalf("at %d %%: za weights %v", pct, got)
		}
		// HAProxy's round robin over weights is exact per cycle: allow a
		// cycle's slack. 25 %: 2·25 of 450 per cycle of 450 requests.
		n := 900
		got := l.spread(t, n)
		want := float64(n) * float64(pct) / float64(pct+200)
		if d := float64(got["za"]) - want; d > 5 || d < -5 {
			t.Errorf("at %d %%: za got %d of %d requests, want %.1f ± 5 (%v)", pct, got["za"], n, want, got)
		}
	}
	// The reconcile keeps the weight: a server set back by hand (as after a
	// reload) is weighed again.
	if err := l.proc.Runtime.Command(ctx, "set weight regional/za-1 100%"); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Reconcile(ctx); err != nil || n != 1 {
		t.Fatalf("reconcile after drift: changed %d, err %v; want 1", n, err)
	}
	if got := weights(); got["za-1"] != 25 {
		t.Fatalf("after reconcile za-1 weight %d, want 25", got["za-1"])
	}
	if n, err := a.Reconcile(ctx); err != nil || n != 0 {
		t.Fatalf("reconcile in step: changed %d, err %v", n, err)
	}
	// Back to 0: drained again, at full weight for later.
	if err := w.SetWeight(ctx, "za", 0); err != nil {
		t.Fatal(err)
	}
	if got := l.spread(t, 60); got["za"] != 0 {
		t.Fatalf("at 0 %% za got requests: %v", got)
	}
	if err := w.SetWeight(ctx, "za", 25); err != nil {
		t.Fatal(err)
	}
	// The shift ends: ready at full weight.
	if err := a.SetShifted(ctx, "za", false); err != nil {
		t.Fatal(err)
	}
	if got := weights(); got["za-1"] != 100 || got["za-2"] != 100 {
		t.Fatalf("after the shift za weights %v, want 100", got)
	}
	if got := l.spread(t, 300); got["za"] < 90 {
		t.Fatalf("after the shift za got %d of 300 requests, want its third", got["za"])
	}
	if err := w.SetWeight(ctx, "za", 101); err == nil {
		t.Error("weight 101: no error")
	}
}
