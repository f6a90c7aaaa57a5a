package runbook

import (
	"testing"
	"time"
)

func TestSpacing(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := Spacing(t0, time.Time{}, 10*time.Minute, false); err != nil {
		t.Errorf("first shift refused: %v", err)
	}
	if err := Spacing(t0.Add(5*time.Minute), t0, 10*time.Minute, false); err == nil {
		t.Error("a new shift 5 min after the last passed a 10 min spacing")
	}
	if err := Spacing(t0.Add(5*time.Minute), t0, 10*time.Minute, true); err != nil {
		t.Errorf("a relapsed zone (the same episode) was held in service: %v", err)
	}
	if err := Spacing(t0.Add(10*time.Minute), t0, 10*time.Minute, false); err != nil {
		t.Errorf("refused after the interval: %v", err)
	}
}

// The recovery hold counts from when the evidence that shows the zone
// healthy began (Input.Since), not from when the test passed, but never from
// before the shift.
func TestHoldCountsFromTheEvidence(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := New(Policy{Resource: "r", RecoveryHold: time.Minute, NoControlPlane: true})
	acts := r.Step(t0, Input{Isolated: "z1"})
	r.Done(t0, acts[0], nil)
	at := t0.Add(2 * time.Minute)
	acts = r.Step(at, Input{Healthy: map[string]bool{"z1": true}, Since: map[string]time.Time{"z1": at.Add(-time.Minute)}})
	if ph, _ := r.Phase(); ph != Ending || len(acts) != 1 {
		t.Fatalf("phase %s, actions %v: want the shift ending (evidence a minute old)", ph, acts)
	}
	r2 := New(Policy{Resource: "r", RecoveryHold: time.Minute, NoControlPlane: true})
	acts = r2.Step(t0, Input{Isolated: "z1"})
	r2.Done(t0, acts[0], nil)
	at = t0.Add(30 * time.Second)
	r2.Step(at, Input{Healthy: map[string]bool{"z1": true}, Since: map[string]time.Time{"z1": t0.Add(-time.Hour)}})
	if ph, _ := r2.Phase(); ph != Shifted {
		t.Fatalf("phase %s: evidence from before the shift shortened the hold", ph)
	}
}

// A relapse's shift is marked as the same episode in the history.
func TestRelapseIsTheSameEpisode(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := New(Policy{Resource: "r", RecoveryHold: time.Second, NoControlPlane: true})
	step := func(at time.Time, in Input) {
		for _, a := range r.Step(at, in) {
			r.Done(at, a, nil)
		}
	}
	step(t0, Input{Isolated: "z1"})
	step(t0.Add(time.Minute), Input{Healthy: map[string]bool{"z1": true}})
	step(t0.Add(time.Minute+2*time.Second), Input{Healthy: map[string]bool{"z1": true}})
	if ph, _ := r.Phase(); ph != Idle {
		t.Fatalf("phase %s, want idle after the shift ended", ph)
	}
	step(t0.Add(2*time.Minute), Input{Isolated: "z1", Relapse: true, Why: "x"})
	var starts, relapses int
	for _, e := range r.Events() {
		if e.Kind == ShiftStarted {
			starts++
			if e.Relapse {
				relapses++
			}
		}
		if e.Kind == Decided && e.Relapse && e.Detail != "relapse, the same episode continues: x" {
			t.Errorf("relapse decision detail %q", e.Detail)
		}
	}
	if starts != 2 || relapses != 1 {
		t.Errorf("%d shifts started, %d marked relapse; want 2 and 1 (one episode)", starts, relapses)
	}
}
