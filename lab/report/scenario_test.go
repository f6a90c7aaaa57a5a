package report

import (
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/report"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func sec(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func scen(t *testing.T, expect string) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.Parse("t.yaml", []byte(`version: 1
name: t
duration: 5m
topology: {zones: [a, b, c], instances_per_zone: 2}
load: {rps: 10}
faults:
  - {at: 60s, duration: 2m, kind: blackhole, zone: a}
`+expect))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// events is a runbook history: shift of zone from..to, exclusion ex..in (0: none).
func events(zone string, from, to, ex, in float64) []runbook.Event {
	evs := []runbook.Event{{At: sec(from), Kind: runbook.ShiftStarted, Zone: zone}}
	if ex > 0 {
		evs = append(evs, runbook.Event{At: sec(ex), Kind: runbook.Excluded, Zone: zone})
	}
	if in > 0 {
		evs = append(evs, runbook.Event{At: sec(in), Kind: runbook.Included, Zone: zone})
	}
	if to > 0 {
		evs = append(evs, runbook.Event{At: sec(to), Kind: runbook.ShiftEnded, Zone: zone})
	}
	return evs
}

// TestCheck: the scenario judges the report (scenario.Unmet through Report.Check).
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		expect string
		events []runbook.Event
		req    report.Requests
		fail   string // "" = met
	}{
		{"met", "expect: {shift: {away_from: a, within: 30s}, control_plane: true, recovered_within: 2m}", events("a", 70, 250, 100, 249), report.Requests{Total: 100, Failed: 1}, ""},
		{"none but shifted", "expect: {shift: none}", events("a", 70, 250, 0, 0), report.Requests{}, "expected none, but a was shifted at 70.0s"},
		{"none held", "expect: {shift: none}", nil, report.Requests{}, ""},
		{"never shifted", "expect: {shift: {away_from: a}}", nil, report.Requests{}, "a was never shifted away"},
		{"wrong zone too", "expect: {shift: {away_from: a}}", append(events("a", 70, 250, 0, 0), events("b", 260, 0, 0, 0)...), report.Requests{}, "b was shifted at 260.0s, but only a may be"},
		{"too late", "expect: {shift: {away_from: a, within: 5s}}", events("a", 70, 250, 0, 0), report.Requests{}, "10.0s after the first fault"},
		{"never excluded", "expect: {shift: {away_from: a}, control_plane: true}", events("a", 70, 250, 0, 0), report.Requests{}, "not excluded"},
		{"included after end", "expect: {shift: {away_from: a}, control_plane: true}", events("a", 70, 250, 100, 0), report.Requests{}, "never included again"},
		{"control plane false", "expect: {shift: {away_from: a}, control_plane: false}", events("a", 70, 250, 100, 249), report.Requests{}, "expected no exclusion"},
		{"not recovered", "expect: {shift: {away_from: a}, recovered_within: 1m}", events("a", 70, 0, 0, 0), report.Requests{}, "never ended"},
		{"recovered late", "expect: {shift: {away_from: a}, recovered_within: 10s}", events("a", 70, 250, 0, 0), report.Requests{}, "70.0s after the last fault ended"},
		{"too many failed", "expect: {max_failed_ratio: 0.01}", nil, report.Requests{Total: 100, Failed: 2}, "2 of 100 customer requests failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkCase(t, scen(t, tc.expect), tc.req, tc.events, tc.fail)
		})
	}
}

func TestBuildShapesTheContract(t *testing.T) {
	sc := scen(t, "")
	r := Build(Run{Scenario: sc, Mode: "real", Detector: "default", Start: t0, Elapsed: 100 * time.Second,
		Detections: []autoshift.Detection{{Alarm: "a-isolated-impact", Zone: "a", At: sec(66.5), Why: "because"}},
		Events:     events("a", 66.5, 0, 96.5, 0)})
	if !r.Interrupted || r.Duration != 100 {
		t.Errorf("interrupted %v duration %v", r.Interrupted, r.Duration)
	}
	if len(r.Faults) != 1 || r.Faults[0].End != nil || r.Faults[0].Target != "zone a" {
		t.Errorf("faults = %+v (the fault had not ended when the run stopped)", r.Faults)
	}
	if len(r.Shifts) != 1 || r.Shifts[0].End != nil || r.Shifts[0].Start != 66.5 || r.Shifts[0].Origin != "auto" {
		t.Errorf("shifts = %+v", r.Shifts)
	}
	if len(r.ControlPlane) != 1 || r.ControlPlane[0].Action != "exclude_zone" || r.ControlPlane[0].Restored != nil {
		t.Errorf("control plane = %+v", r.ControlPlane)
	}
	if len(r.Detections) != 1 || r.Detections[0].At != 66.5 {
		t.Errorf("detections = %+v", r.Detections)
	}
}

func TestSceneTellsTheFault(t *testing.T) {
	sc := scen(t, "")
	r := Build(Run{Scenario: sc, Mode: "sim", Start: t0, Elapsed: sc.Duration})
	s := Scene(r, sc)
	if len(s.Faults) != 1 || s.Faults[0].Zone != "a" || s.Faults[0].What != "database unreachable from a (blackhole)" {
		t.Errorf("scene faults = %+v", s.Faults)
	}
	if !strings.Contains(strings.Join(s.Meta, ", "), "3 zones × 2 instances") {
		t.Errorf("scene meta = %v", s.Meta)
	}
}

// A day's expectation: the shift is timed from the named fault, not from
// the nuisance before it, and flapping fails one_episode.
func TestCheckNamedFaultAndEpisodes(t *testing.T) {
	const src = `version: 1
name: t
duration: 10m
topology: {zones: [a, b, c], instances_per_zone: 2}
load: {rps: 10}
faults:
  - {at: 10s, duration: 30s, kind: latency, region: true, latency: 50ms}
  - {at: 100s, duration: 2m, kind: packet_loss, zone: a, percent: 10, name: gray}
expect:
`
	for _, tc := range []struct {
		name, expect string
		events       []runbook.Event
		fail         string
	}{
		{"timed from the named fault", "  shift: {away_from: a, within: 30s, from: gray, one_episode: true}\n", events("a", 125, 250, 0, 0), ""},
		{"timed from the first fault", "  shift: {away_from: a, within: 30s}\n", events("a", 125, 250, 0, 0), "115.0s after the first fault (10.0s)"},
		{"late after the named fault", "  shift: {away_from: a, within: 10s, from: gray}\n", events("a", 125, 250, 0, 0), "25.0s after fault gray (100.0s)"},
		{"flapping", "  shift: {away_from: a, from: gray, one_episode: true}\n", append(events("a", 105, 150, 0, 0), events("a", 160, 250, 0, 0)...),
			"one_episode: the shift away from a ended at 150.0s while its fault (packet_loss from 100.0s) was in force until 220.0s; one_episode: 2 shift episodes away from a during its fault"},
		{"flapping allowed without one_episode", "  shift: {away_from: a, from: gray}\n", append(events("a", 105, 150, 0, 0), events("a", 160, 250, 0, 0)...), ""},
		{"ended early", "  shift: {away_from: a, one_episode: true}\n", events("a", 105, 200, 0, 0), "ended at 200.0s while its fault"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := scenario.Parse("t.yaml", []byte(src+tc.expect))
			if err != nil {
				t.Fatal(err)
			}
			checkCase(t, sc, report.Requests{}, tc.events, tc.fail)
		})
	}
}

// checkCase checks sc against a run with req and events: met when fail is
// "", else not met with a failure containing fail.
func checkCase(t *testing.T, sc *scenario.Scenario, req report.Requests, events []runbook.Event, fail string) {
	t.Helper()
	r := Build(Run{Scenario: sc, Mode: "sim", Start: t0, Elapsed: sc.Duration, Requests: req, Events: events})
	r.Check(sc)
	got := strings.Join(r.Expect.Failures, "; ")
	if fail == "" {
		if !r.Expect.Met {
			t.Fatalf("not met: %s", got)
		}
		return
	}
	if r.Expect.Met || !strings.Contains(got, fail) {
		t.Fatalf("failures %q, want one containing %q", got, fail)
	}
}
