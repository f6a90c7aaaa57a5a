package runbook

import (
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator"
)

// rampPolicy: the default ramp, each step held 20 s (RecoveryHold/3).
var rampPolicy = func() Policy { p := policy; p.Ramp = DefaultRamp; return p }()

// impact sets whether each zone shows impact: "az1=1".
func (s *script) impact(spec string) *script {
	if s.impacted == nil {
		s.impacted = map[string]bool{}
	}
	setZones(s.impacted, spec)
	return s
}

func (s *script) wantWeight(w int) *script {
	s.t.Helper()
	if got := s.rb.Weight(); got != w {
		s.t.Errorf("at %ds: Weight() = %d, want %d", s.next-1, got, w)
	}
	return s
}

func TestRampCompletes(t *testing.T) {
	s := newScript(t, rampPolicy)
	s.health("az1=1").until(9).isolate("az1").health("az1=0").until(10).wantPhase(Shifted, "az1")
	s.until(99).isolate("").health("az1=1").until(159).wantWeight(0)
	// Healthy for the hold: capacity back, then 5 % of the zone's share.
	s.until(161).wantPhase(Ramping, "az1").wantWeight(5)
	// Each step is held StepHold (20 s) from when the data plane carried it.
	s.until(180).wantWeight(5)
	s.until(181).wantWeight(25).wantPhase(Ramping, "az1")
	s.until(200).wantWeight(25)
	s.until(201).wantPhase(Idle, "") // the last step, 100 %, ends the shift
	s.until(230).wantPhase(Idle, "").wantWeight(0).wantPending()
	s.wantActions(`
		10s shift_away az1
		40s exclude_zone az1
		160s include_zone az1
		161s set_weight az1 5%
		181s set_weight az1 25%
		201s end_shift az1
		202s remove_extra az1
	`).wantEvents(`
		10s decided az1
		10s shift_started az1
		40s excluded az1
		160s recovered az1
		160s included az1
		161s ramp_step az1 returning: 5 %
		181s ramp_step az1 returning: 25 %
		201s shift_ended az1
		202s extra_removed az1
	`)
}

// A regression at 25 % sets the weight back to 0: the shift is fully in
// force again, in the same episode (no new decision, no new shift), and the
// zone's return starts over once it is shown recovered again.
func TestRampRegressionAbortsToZeroInOneEpisode(t *testing.T) {
	p := rampPolicy
	p.NoControlPlane = true
	s := newScript(t, p)
	s.health("az1=1").until(9).isolate("az1").health("az1=0").until(10)
	s.isolate("").health("az1=1").until(71).wantPhase(Ramping, "az1").wantWeight(5)
	s.until(90).wantWeight(5)
	s.until(91).wantWeight(25)
	s.impact("az1=1").health("az1=0").until(95).wantPhase(Shifted, "az1").wantWeight(0)
	s.impact("az1=0").until(120)
	s.health("az1=1").until(300).wantPhase(Idle, "")
	s.wantActions(`
		10s shift_away az1
		71s set_weight az1 5%
		91s set_weight az1 25%
		92s set_weight az1 0%
		181s set_weight az1 5%
		201s set_weight az1 25%
		221s end_shift az1
	`).wantEvents(`
		10s decided az1
		10s shift_started az1
		71s recovered az1
		71s ramp_step az1 returning: 5 %
		91s ramp_step az1 returning: 25 %
		92s ramp_aborted az1
		92s ramp_step az1 returning: 0 % (the shift fully in force again)
		181s recovered az1
		181s ramp_step az1 returning: 5 %
		201s ramp_step az1 returning: 25 %
		221s shift_ended az1
	`)
	n := 0
	for _, e := range s.rb.Events() {
		if e.Kind == Decided || e.Kind == ShiftStarted {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d decided/shift_started events, want one of each: one episode", n)
	}
}

// Not shown recovered during a step (a dip of the test, or doubt) holds the
// step and restarts its hold; it is not a regression.
func TestRampHoldsWhileNotShownRecovered(t *testing.T) {
	p := rampPolicy
	p.NoControlPlane = true
	s := newScript(t, p)
	s.health("az1=1").until(9).isolate("az1").health("az1=0").until(10)
	s.isolate("").health("az1=1").until(75).wantWeight(5)
	s.health("az1=0").until(100).wantPhase(Ramping, "az1").wantWeight(5)
	s.health("az1=1").until(120).wantWeight(5) // healthy again from 101: held 20 s from then
	s.until(121).wantWeight(25)
}

// A weight change while the last one is on the wire is sent once that one is
// answered; a failed weight is retried with the weight wanted then.
func TestRampWeightOnTheWire(t *testing.T) {
	p := rampPolicy
	p.NoControlPlane = true
	s := newScript(t, p)
	s.health("az1=1").until(9).isolate("az1").health("az1=0").until(10)
	s.isolate("").health("az1=1").until(71).wantWeight(5)
	s.holdInFlight(actuator.SetWeight, true).until(91).wantWeight(25)
	s.impact("az1=1").until(92).wantWeight(0)
	s.holdInFlight(actuator.SetWeight, false).answer(actuator.SetWeight, nil).until(95)
	s.wantActions(`
		10s shift_away az1
		71s set_weight az1 5%
		91s set_weight az1 25% (in flight)
		92s set_weight az1 25% answered
		93s set_weight az1 0%
	`)
	if st := s.rb.State(); st.Weight != 0 || st.Phase != Shifted {
		t.Errorf("state %+v, want shifted at weight 0", st)
	}
}

func TestRampStateSurvivesRestart(t *testing.T) {
	s := newScript(t, rampPolicy)
	s.health("az1=1").until(9).isolate("az1").health("az1=0").until(10)
	s.until(99).isolate("").health("az1=1").until(185).wantWeight(25)
	data, err := s.rb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Unmarshal(rampPolicy, data)
	if err != nil {
		t.Fatal(err)
	}
	if ph, z := rb.Phase(); ph != Ramping || z != "az1" || rb.Weight() != 25 {
		t.Fatalf("restored %s %s at %d %%, want ramping az1 at 25 %%", ph, z, rb.Weight())
	}
	acts := rb.Step(at(201), Input{Healthy: map[string]bool{"az1": true}})
	if len(acts) != 1 || acts[0].Kind != actuator.EndShift {
		t.Errorf("restored ramp at 201s: %v, want end_shift (25 %% held since 181s)", acts)
	}
	// The ramp reconfigured across the restart: the traffic is given back in one step.
	rb, err = Unmarshal(Policy{Resource: resource, RecoveryHold: time.Minute, Ramp: []int{10, 100}}, data)
	if err != nil {
		t.Fatal(err)
	}
	if ph, _ := rb.Phase(); ph != Ending {
		t.Errorf("restored under another ramp: %s, want ending", ph)
	}
}

func TestCheckRamp(t *testing.T) {
	for _, c := range []struct {
		steps []int
		err   string
	}{
		{nil, ""},
		{[]int{100}, ""},
		{[]int{5, 25, 100}, ""},
		{[]int{0, 100}, "step 1 is 0%: want 1 to 100"},
		{[]int{50, 20, 100}, "step 2 (20%) is not above step 1 (50%)"},
		{[]int{5, 25}, "the last step is 25%: it must be 100"},
		{[]int{5, 101}, "step 2 is 101%"},
	} {
		err := CheckRamp(c.steps)
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("CheckRamp(%v) = %v, want %q", c.steps, err, c.err)
		}
	}
}
