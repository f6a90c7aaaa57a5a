package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/lab/scenario"
)

// publicScenarios loads the contract's public scenarios from ../shared (the
// builtin copies when the folder is absent).
func publicScenarios(t *testing.T) []*scenario.Scenario {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "..", "shared", "scenarios", "*.yaml"))
	var out []*scenario.Scenario
	if len(files) == 0 {
		for _, n := range scenario.BuiltinNames() {
			sc, err := scenario.Builtin(n)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, sc)
		}
		return out
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := scenario.Parse(f, data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sc)
	}
	return out
}

func TestSimMeetsEveryPublicExpectFor20Seeds(t *testing.T) {
	for _, sc := range publicScenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			for seed := int64(1); seed <= 20; seed++ {
				s := *sc
				s.Seed = seed
				r, err := Run(context.Background(), Options{Scenario: &s, Mode: ModeSim})
				if err != nil {
					t.Fatal(err)
				}
				if !r.Expect.Met {
					t.Errorf("seed %d: %v", seed, r.Expect.Failures)
				}
			}
		})
	}
}

func TestSimSameSeedSameReport(t *testing.T) {
	sc, err := scenario.Builtin(scenario.DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	var outs [2][]byte
	for i := range outs {
		r, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeSim, Baseline: true})
		if err != nil {
			t.Fatal(err)
		}
		outs[i], _ = json.Marshal(r)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Fatal("two sim runs with the same seed produced different reports")
	}
	other := *sc
	other.Seed++
	r, _ := Run(context.Background(), Options{Scenario: &other, Mode: ModeSim})
	b, _ := json.Marshal(r)
	if bytes.Equal(b, outs[0]) {
		t.Error("a different seed produced the same report")
	}
}

func TestSimBaselineFailsMore(t *testing.T) {
	for _, sc := range publicScenarios(t) {
		if sc.Expect.Shift == nil || sc.Expect.Shift.None {
			continue
		}
		r, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeSim, Baseline: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Baseline == nil {
			t.Fatal("no baseline in report")
		}
		// Latency-only faults fail nobody; the rest must fail clearly more without mitigation.
		if r.Baseline.Requests.Failed == 0 {
			continue
		}
		if r.Baseline.Requests.Failed < 3*r.Requests.Failed {
			t.Errorf("%s: baseline failed %d, mitigated %d: want the baseline clearly worse",
				sc.Name, r.Baseline.Requests.Failed, r.Requests.Failed)
		}
	}
}

func TestSimWorkshopTimeline(t *testing.T) {
	sc, _ := scenario.Builtin(scenario.DefaultName)
	r, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeSim})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Detections) != 1 || r.Detections[0].Alarm != detect.IsolatedAlarmName("use2-az1") {
		t.Fatalf("detections = %+v", r.Detections)
	}
	d := r.Detections[0].At - 60
	if d <= 0 || d > 10 {
		t.Errorf("detected %.1fs after the fault, want within 10s", d)
	}
	if len(r.Shifts) != 1 || len(r.ControlPlane) != 1 {
		t.Fatalf("shifts %+v control plane %+v", r.Shifts, r.ControlPlane)
	}
	s, cp := r.Shifts[0], r.ControlPlane[0]
	// Data plane first, control plane after control_plane_after; back in reverse order.
	if cp.At < s.Start+sc.Policy.ControlPlaneAfter.Seconds() {
		t.Errorf("excluded at %.1f, before the shift (%.1f) + %s", cp.At, s.Start, sc.Policy.ControlPlaneAfter)
	}
	if cp.Restored == nil || s.End == nil || *cp.Restored > *s.End {
		t.Errorf("capacity restored %v, shift ended %v: want capacity first", cp.Restored, s.End)
	}
	if len(r.Timeline) < 300 {
		t.Errorf("timeline has %d points, want one a second", len(r.Timeline))
	}
}

func TestOptionsErrors(t *testing.T) {
	sc, _ := scenario.Builtin("smoke")
	for _, o := range []Options{
		{},
		{Scenario: sc, Mode: "fast"},
		{Scenario: sc, Mode: ModeSim, Detector: "magic"},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) succeeded, want an error", o)
		}
	}
}
