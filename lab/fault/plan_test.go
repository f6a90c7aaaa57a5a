package fault

import (
	"slices"
	"testing"
	"time"

	"github.com/grayzone/grayzone/lab/scenario"
)

const src = `version: 1
name: plan
duration: 10m
topology:
  zones: [a, b, c]
  instances_per_zone: 2
load:
  rps: 10
faults:
  - {at: 1m, duration: 2m, kind: packet_loss, zone: a, percent: 30}
  - {at: 2m, duration: 2m, kind: latency, region: true, latency: 100ms, jitter: 10ms}
  - {at: 2m, duration: 1m, kind: http_error, instance: b-1, percent: 50}
  - {at: 2m, duration: 1m, kind: http_error, zone: b, percent: 50}
  - {at: 2m30s, duration: 1m, kind: slow, zone: b, latency: 200ms, jitter: 20ms}
  - {at: 5m, duration: 1m, kind: control_plane_outage, region: true}
  - {at: 7m, duration: 1m, kind: telemetry_loss, instance: c-2}
  - {at: 8m, duration: 1m, kind: canary_failure, zone: c}
  - {at: 9m, kind: blackhole, zone: c}
`

func plan(t *testing.T) Plan {
	t.Helper()
	sc, err := scenario.Parse("plan.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return NewPlan(sc)
}

func TestChanges(t *testing.T) {
	m := time.Minute
	want := []time.Duration{0, m, 2 * m, 2*m + 30*time.Second, 3 * m, 3*m + 30*time.Second, 4 * m, 5 * m, 6 * m, 7 * m, 8 * m, 9 * m, 10 * m}
	if got := plan(t).Changes(); !slices.Equal(got, want) {
		t.Errorf("Changes() = %v\nwant %v", got, want)
	}
}

func kinds(fs []scenario.Fault) []scenario.Kind {
	var out []scenario.Kind
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

func TestActiveIsHalfOpen(t *testing.T) {
	p := plan(t)
	for _, tc := range []struct {
		at   time.Duration
		want []scenario.Kind
	}{
		{59 * time.Second, nil},
		{time.Minute, []scenario.Kind{scenario.PacketLoss}},                   // starts at its at
		{3 * time.Minute, []scenario.Kind{scenario.Latency, scenario.Slow}},   // packet_loss and http_error end at 3m
		{4 * time.Minute, nil},                                                // latency ends at 4m
		{9*time.Minute + 59*time.Second, []scenario.Kind{scenario.Blackhole}}, // no duration: to the end
		{10 * time.Minute, nil},                                               // the run is over
	} {
		if got := kinds(p.Active(tc.at)); !slices.Equal(got, tc.want) {
			t.Errorf("Active(%s) = %v, want %v", tc.at, got, tc.want)
		}
	}
}

func TestLinkFaultsByTarget(t *testing.T) {
	p := plan(t)
	at := 2*time.Minute + 10*time.Second
	if got := kinds(p.Link(at, "a", "a-1")); !slices.Equal(got, []scenario.Kind{scenario.PacketLoss, scenario.Latency}) {
		t.Errorf("zone a: %v", got)
	}
	// Instance faults (http_error) are not link faults.
	if got := kinds(p.Link(at, "b", "b-1")); !slices.Equal(got, []scenario.Kind{scenario.Latency}) {
		t.Errorf("zone b: %v", got)
	}
}

func TestInstanceFaultsCombine(t *testing.T) {
	p := plan(t)
	at := 2*time.Minute + 45*time.Second
	// b-1: two independent 50 % error faults fail 75 % of requests, plus slow.
	pct, slow, jitter := p.Instance(at, "b", "b-1")
	if pct != 75 || slow != 200*time.Millisecond || jitter != 20*time.Millisecond {
		t.Errorf("b-1: %v%% slow %v jitter %v", pct, slow, jitter)
	}
	if pct, _, _ := p.Instance(at, "b", "b-2"); pct != 50 {
		t.Errorf("b-2: %v%%, want 50", pct)
	}
	if pct, slow, _ := p.Instance(at, "a", "a-1"); pct != 0 || slow != 0 {
		t.Errorf("a-1 has no instance fault: %v%% %v", pct, slow)
	}
}

func TestControlPlaneTelemetryAndCanaryFaults(t *testing.T) {
	p := plan(t)
	m := time.Minute
	if p.ControlPlaneDown(5*m-time.Nanosecond) || !p.ControlPlaneDown(5*m) || p.ControlPlaneDown(6*m) {
		t.Error("control plane outage window wrong")
	}
	if !p.TelemetryLost(7*m, "c", "c-2") || p.TelemetryLost(7*m, "c", "c-1") || p.TelemetryLost(8*m, "c", "c-2") {
		t.Error("telemetry_loss must hit c-2 only, during its window")
	}
	if !p.CanaryFails(8*m, "c") || p.CanaryFails(8*m, "b") || p.CanaryFails(9*m, "c") {
		t.Error("canary_failure must cut zone c only, during its window")
	}
}

func TestRegionTelemetryLossAndCanaryFailureHitEveryZone(t *testing.T) {
	sc, err := scenario.Parse("r.yaml", []byte(`version: 1
name: r
duration: 1m
topology: {zones: [a, b], instances_per_zone: 1}
load: {rps: 1}
faults:
  - {at: 10s, kind: telemetry_loss, region: true}
  - {at: 10s, kind: canary_failure, region: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPlan(sc)
	for _, z := range []string{"a", "b"} {
		if !p.TelemetryLost(20*time.Second, z, z+"-1") || !p.CanaryFails(20*time.Second, z) {
			t.Errorf("zone %s not hit", z)
		}
	}
}

// TestCursorSpan: the cursor's span number changes exactly where the plan
// changes, and the effects it gives within a span are the plan's there.
func TestCursorSpan(t *testing.T) {
	p := plan(t)
	c := p.Cursor()
	changes := p.Changes()
	last, spans := 0, 0
	for at := time.Duration(0); at <= 10*time.Minute; at += 10 * time.Second {
		n := c.Span(at)
		if changed := slices.Contains(changes, at); (n != last) != changed {
			t.Errorf("at %v: span %d after %d; the plan changes here: %v", at, n, last, changed)
		}
		if n != last {
			spans++
		}
		last = n
		fx := c.Target(at, "b", "b-1")
		errPct, slow, jitter := p.Instance(at, "b", "b-1")
		if fx.ErrPct != errPct || fx.Slow != slow || fx.Jitter != jitter || !slices.Equal(fx.Link, p.Link(at, "b", "b-1")) {
			t.Errorf("at %v: effects %+v, want the plan's %v %v %v %v", at, fx, errPct, slow, jitter, p.Link(at, "b", "b-1"))
		}
	}
	if spans != len(changes) {
		t.Errorf("%d spans, want %d (one per change)", spans, len(changes))
	}
}
