package lab

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/report"
)

// exampleScenario loads one of the example scenarios (examples/scenarios).
func exampleScenario(t *testing.T, name string) *scenario.Scenario {
	t.Helper()
	f := filepath.Join("..", "examples", "scenarios", name+".yaml")
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenario.Parse(f, data)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// runSeeds runs the scenario in sim mode with seeds 1..n and checks each
// report with check, after its own expect block.
func runSeeds(t *testing.T, name string, n int64, check func(t *testing.T, sc *scenario.Scenario, r *report.Report)) {
	t.Helper()
	sc := exampleScenario(t, name)
	for seed := int64(1); seed <= n; seed++ {
		s := *sc
		s.Seed = seed
		r, err := Run(context.Background(), Options{Scenario: &s, Mode: ModeSim})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Expect.Met {
			t.Errorf("seed %d: expect not met: %v", seed, r.Expect.Failures)
		}
		check(t, &s, r)
	}
}

// onlyDoubt returns the one fail-static span, which must have the reason.
func onlyDoubt(t *testing.T, r *report.Report, reason string) report.FailStatic {
	t.Helper()
	if len(r.FailStatic) != 1 {
		t.Fatalf("seed %d: fail static spans %+v, want exactly one", r.Seed, r.FailStatic)
	}
	fs := r.FailStatic[0]
	if fs.Reason != reason || fs.End == nil || fs.Why == "" {
		t.Fatalf("seed %d: fail static %+v, want reason %s, a why and an end", r.Seed, fs, reason)
	}
	return fs
}

// Every zone's telemetry stops, then a zone breaks: no shift while blind,
// the broken zone is shifted once telemetry is back.
func TestFailStaticTelemetryLostStartsNoShift(t *testing.T) {
	runSeeds(t, "fail-static-telemetry-lost", 5, func(t *testing.T, sc *scenario.Scenario, r *report.Report) {
		fs := onlyDoubt(t, r, detect.ReasonTelemetryLost)
		loss := sc.Faults[0]
		// Doubt begins one silence window (the 10 s health window) into the
		// loss and ends as soon as observations arrive again.
		if fs.Start < loss.At.Seconds()+9 || fs.Start > loss.At.Seconds()+12 {
			t.Errorf("seed %d: fail static at %.1fs, want about 10s after the loss at %s", r.Seed, fs.Start, loss.At)
		}
		if end := loss.At + loss.Duration; *fs.End < end.Seconds() || *fs.End > end.Seconds()+2 {
			t.Errorf("seed %d: fail static ended %.1fs, want right after telemetry is back at %s", r.Seed, *fs.End, end)
		}
		for _, d := range r.Detections {
			if d.At < *fs.End {
				t.Errorf("seed %d: detection %s at %.1fs while failing static", r.Seed, d.Alarm, d.At)
			}
		}
		if len(r.Shifts) != 1 || r.Shifts[0].Start < *fs.End {
			t.Errorf("seed %d: shifts %+v, want one, after telemetry is back (%.1fs)", r.Seed, r.Shifts, *fs.End)
		}
	})
}

// A zone shifted before the doubt stays shifted while in doubt, although its
// canaries see it healthy: recovery waits for a full hold after the doubt.
func TestFailStaticHoldsShiftInForce(t *testing.T) {
	runSeeds(t, "fail-static-holds-shift", 5, func(t *testing.T, sc *scenario.Scenario, r *report.Report) {
		fs := onlyDoubt(t, r, detect.ReasonTelemetryLost)
		if len(r.Shifts) != 1 || r.Shifts[0].Start > fs.Start || r.Shifts[0].End == nil {
			t.Fatalf("seed %d: shifts %+v, want one started before the doubt (%.1fs) and ended", r.Seed, r.Shifts, fs.Start)
		}
		// The zone was healthy again long before the doubt ended (its fault
		// ends at 90 s): without failing static it would be back by ~110 s.
		if want := *fs.End + sc.Policy.RecoveryHold.Seconds(); *r.Shifts[0].End < want {
			t.Errorf("seed %d: shift ended at %.1fs, before the doubt's end (%.1fs) + the recovery hold", r.Seed, *r.Shifts[0].End, *fs.End)
		}
		if len(r.ControlPlane) != 1 || r.ControlPlane[0].Restored == nil || *r.ControlPlane[0].Restored < *fs.End {
			t.Errorf("seed %d: control plane %+v, want capacity restored only after the doubt", r.Seed, r.ControlPlane)
		}
	})
}

// grayzone's canaries fail in every zone while a zone breaks: no shift while
// in doubt.
func TestFailStaticCanariesFailingStartsNoShift(t *testing.T) {
	runSeeds(t, "fail-static-canaries-failing", 5, func(t *testing.T, sc *scenario.Scenario, r *report.Report) {
		fs := onlyDoubt(t, r, detect.ReasonCanariesFailing)
		cut := sc.Faults[0]
		if fs.Start < cut.At.Seconds() || fs.Start > cut.At.Seconds()+10 {
			t.Errorf("seed %d: fail static at %.1fs, want within the health window of the cut at %s", r.Seed, fs.Start, cut.At)
		}
		for _, sh := range r.Shifts {
			if sh.Start < *fs.End {
				t.Errorf("seed %d: shift away from %s at %.1fs while failing static", r.Seed, sh.AwayFrom, sh.Start)
			}
		}
	})
}

// One zone silent while its canaries fail is impact, not doubt: it is
// shifted, and no doubt is ever reported.
func TestOneSilentZoneIsShifted(t *testing.T) {
	runSeeds(t, "fail-static-one-zone-silent", 5, func(t *testing.T, sc *scenario.Scenario, r *report.Report) {
		if len(r.FailStatic) != 0 {
			t.Errorf("seed %d: fail static %+v, want none", r.Seed, r.FailStatic)
		}
		if len(r.Shifts) != 1 || r.Shifts[0].AwayFrom != "az-a" {
			t.Errorf("seed %d: shifts %+v, want az-a", r.Seed, r.Shifts)
		}
	})
}

// No public scenario ever puts grayzone in doubt: fail static is not a
// second way of saying "regional".
func TestPublicScenariosNeverFailStatic(t *testing.T) {
	for _, sc := range publicScenarios(t) {
		r, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeSim})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.FailStatic) != 0 {
			t.Errorf("%s: fail static %+v", sc.Name, r.FailStatic)
		}
	}
}
