package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/lab/console"
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
	ramped := *sc
	ramped.Policy.Ramp = []int{5, 100}
	for _, o := range []Options{
		{},
		{Scenario: sc, Mode: "fast"},
		{Scenario: sc, Mode: ModeSim, Detector: "magic"},
		{Scenario: &ramped, Mode: ModeSim, FrontDoor: FrontDoorARC},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) succeeded, want an error", o)
		}
	}
}

// The piped form of a whole run, end to end: the smoke scenario in sim mode
// through a plain console, as `grayzone lab --mode sim | cat` shows it.
func TestSimPlainProgress(t *testing.T) {
	sc := loadPublic(t, "smoke")
	var out bytes.Buffer
	r, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeSim, Baseline: true,
		Progress: console.New(&out, console.Options{Mode: console.Plain})})
	if err != nil {
		t.Fatal(err)
	}
	var status, events []string
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if n := utf8.RuneCountInString(l); n > console.PlainWidth {
			t.Errorf("line of %d runes: %q", n, l)
		}
		if strings.ContainsRune(l, '\x1b') {
			t.Errorf("escape sequence in piped output: %q", l)
		}
		switch f := strings.Fields(l); {
		case strings.Contains(l, "/100s | "):
			status = append(status, f[0])
		case len(f) > 1 && strings.HasSuffix(f[0], "s") && strings.Contains(f[0], "."):
			events = append(events, f[0]+" "+f[1])
		}
	}
	// One status line every 10 s of the scenario's clock, and only the
	// mitigated run's (the baseline ran after it, unseen).
	if got, want := strings.Join(status, " "), "10/100s 20/100s 30/100s 40/100s 50/100s 60/100s 70/100s 80/100s 90/100s 100/100s"; got != want {
		t.Errorf("status lines at\n%s\nwant\n%s\n%s", got, want, out.String())
	}
	// Every event on its own line, in order, at the time the report gives it
	// (the report has no time for the recovery: it is the step before the inclusion).
	at := func(s float64) string { return fmt.Sprintf("%.1fs", s) }
	want := []string{
		at(r.Faults[0].Start) + " fault",
		at(r.Detections[0].At) + " detected",
		at(r.Shifts[0].Start) + " shifted",
		at(r.ControlPlane[0].At) + " excluded",
		at(*r.Faults[0].End) + " fault",
		at(*r.ControlPlane[0].Restored) + " recovered",
		at(*r.ControlPlane[0].Restored) + " included",
		at(*r.Shifts[0].End) + " shift",
	}
	if len(events) < len(want) || strings.Join(events[:len(want)], ", ") != strings.Join(want, ", ") {
		t.Errorf("events %v\nwant %v first\n%s", events, want, out.String())
	}
}

// With a ramp, the workshop's zone gets its traffic back through the front
// door's weights, 5 % then 25 % of a full zone's, each step held, and the
// shift ends at 100 %: one shift, after the steps, and the scenario still
// meets its expect. Then the fault comes back while the zone is at 25 %: the
// ramp aborts to 0 (the shift fully in force again) within the same episode,
// one shift in the report, and the zone gets its traffic back only after the
// second fault, through the ramp again.
func TestSimRampStepsAndRegression(t *testing.T) {
	sc, _ := scenario.Builtin(scenario.DefaultName)
	s := *sc
	s.Policy.Ramp = []int{5, 25, 100}
	r, err := Run(context.Background(), Options{Scenario: &s, Mode: ModeSim})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expect.Met {
		t.Errorf("expect: %v", r.Expect.Failures)
	}
	if len(r.Shifts) != 1 || r.Shifts[0].End == nil {
		t.Fatalf("shifts %+v, want one that ended", r.Shifts)
	}
	steps := r.Shifts[0].Returning
	if len(steps) != 2 || steps[0].Percent != 5 || steps[1].Percent != 25 {
		t.Fatalf("ramp steps %+v, want 5 %% then 25 %%", steps)
	}
	hold := (s.Policy.RecoveryHold / 3).Seconds()
	if d := steps[1].At - steps[0].At; d < hold {
		t.Errorf("25 %% came %.1fs after 5 %%, before the step hold %.0fs", d, hold)
	}
	if end := *r.Shifts[0].End; end < steps[1].At+hold {
		t.Errorf("shift ended at %.1fs, before 25 %% (%.1fs) was held %.0fs", end, steps[1].At, hold)
	}

	again := s.Faults[0]
	again.At, again.Duration, again.Name = time.Duration(steps[1].At*float64(time.Second))+2*time.Second, 3*time.Minute, ""
	s.Faults = append(append([]scenario.Fault(nil), s.Faults...), again)
	s.Duration = again.At + again.Duration + 10*time.Minute
	s.Expect = scenario.Expect{}
	r, err = Run(context.Background(), Options{Scenario: &s, Mode: ModeSim})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Shifts) != 1 {
		t.Fatalf("shifts %+v, want one episode", r.Shifts)
	}
	sh := r.Shifts[0]
	var pcts []int
	abortAt := -1.0
	for _, st := range sh.Returning {
		pcts = append(pcts, st.Percent)
		if st.Percent == 0 && abortAt < 0 {
			abortAt = st.At
		}
	}
	if fmt.Sprint(pcts) != "[5 25 0 5 25]" {
		t.Fatalf("return steps %v, want 5 25, an abort to 0, then 5 25", pcts)
	}
	if end2 := (again.At + again.Duration).Seconds(); abortAt > end2 || sh.End == nil || *sh.End < end2 {
		t.Errorf("aborted at %.1fs, ended %v; the second fault ran %.1fs to %.1fs", abortAt, sh.End, again.At.Seconds(), end2)
	}
	if d := abortAt - again.At.Seconds(); d > 30 {
		t.Errorf("aborted %.1fs after the fault came back, want within 30 s", d)
	}
}

// The example scenario of a ramp that meets the fault again meets its expect
// (one episode), with the abort in its report.
func TestSimRampExampleScenario(t *testing.T) {
	r, err := Run(context.Background(), Options{Scenario: exampleScenario(t, "ramp-fault-returns"), Mode: ModeSim})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expect.Met {
		t.Errorf("expect: %v", r.Expect.Failures)
	}
	var out bytes.Buffer
	r.Summary(&out)
	if !strings.Contains(out.String(), "aborted to 0 %") {
		t.Errorf("summary without the abort:\n%s", out.String())
	}
}

// A zone that recovers and fails again is two shift episodes in the report,
// the second marked as a relapse (the detector calls it isolated again less
// than detect.RelapseWindow after its recovery test passed), and the summary
// says so: nothing folds it into the first.
func TestSimRelapseIsASecondShiftEpisode(t *testing.T) {
	src := []byte(`version: 1
name: relapse
seed: 7
duration: 10m
topology: {zones: [use2-az1, use2-az2, use2-az3], instances_per_zone: 2, database_zone: use2-az2}
load: {rps: 20}
canary: {interval: 5s}
policy: {control_plane_after: 30s, recovery_hold: 60s}
faults:
  - {at: 60s, duration: 2m, kind: packet_loss, zone: use2-az1, percent: 30}
  - {at: 330s, duration: 2m, kind: packet_loss, zone: use2-az1, percent: 30}
`)
	sc, err := scenario.Parse("relapse.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeSim})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Shifts) != 2 {
		t.Fatalf("shifts = %+v, want 2 (one per fault)", r.Shifts)
	}
	first, second := r.Shifts[0], r.Shifts[1]
	if first.End == nil || *first.End > 330 || first.Episode != 1 || first.Relapse {
		t.Errorf("first shift = %+v, want episode 1, ended before the second fault", first)
	}
	if second.AwayFrom != "use2-az1" || second.Start < 330 || second.Episode != 2 || !second.Relapse {
		t.Errorf("second shift = %+v, want use2-az1's episode 2 after 330 s, a relapse", second)
	}
	var b bytes.Buffer
	r.Summary(&b)
	if !strings.Contains(b.String(), "shift 2 of use2-az1") || !strings.Contains(b.String(), "a relapse") {
		t.Errorf("summary does not tell the second episode:\n%s", b.String())
	}
}
