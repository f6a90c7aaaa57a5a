package runbook

import (
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator"
)

func TestRestoreResumesInFlightAction(t *testing.T) {
	p := Policy{Resource: "web", ControlPlaneAfter: 10 * time.Second, RecoveryHold: 20 * time.Second}
	r := New(p)
	acts := r.Step(at(0), Input{Isolated: "az1"})
	r.Done(at(0), acts[0], nil) // shifted
	acts = r.Step(at(10), Input{})
	if len(acts) != 1 || acts[0].Kind != actuator.ExcludeZone {
		t.Fatalf("acts = %v, want exclude", acts)
	}
	// The process dies with the exclusion on the wire.
	data, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Unmarshal(p, data)
	if err != nil {
		t.Fatal(err)
	}
	if ph, z := r2.Phase(); ph != Shifted || z != "az1" {
		t.Fatalf("restored phase %s %s", ph, z)
	}
	onWire := acts[0]
	acts = r2.Step(at(11), Input{})
	if len(acts) != 1 || acts[0].Kind != actuator.ExcludeZone {
		t.Fatalf("after restore: %v, want the exclusion again (idempotent), not forgotten", acts)
	}
	// The retry is recognisably the same intent: same ID, which names the episode.
	if acts[0].ID != onWire.ID || acts[0].ID != "web/1/exclude_zone/az1" {
		t.Fatalf("retried action ID %q, was %q, want web/1/exclude_zone/az1 both times", acts[0].ID, onWire.ID)
	}
	r2.Done(at(11), acts[0], nil)
	// No second exclusion: it is not repeated once done.
	if acts = r2.Step(at(12), Input{}); len(acts) != 0 {
		t.Fatalf("after restore and done: %v", acts)
	}
	if !r2.Excluded() {
		t.Fatal("exclusion not recorded")
	}
}

func TestUnmarshalRejectsGarbage(t *testing.T) {
	if _, err := Unmarshal(Policy{}, []byte(`{"phase":"dancing"}`)); err == nil {
		t.Error("unknown phase accepted")
	}
	if _, err := Unmarshal(Policy{}, []byte(`{`)); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestAbandonBringsCapacityBack(t *testing.T) {
	r := New(Policy{Resource: "web", ControlPlaneAfter: 0, RecoveryHold: time.Minute})
	acts := r.Step(at(0), Input{Isolated: "az1"})
	r.Done(at(0), acts[0], nil)
	acts = r.Step(at(1), Input{})
	r.Done(at(1), acts[0], nil) // excluded
	r.Abandon(at(5), "operator cancelled the shift")
	if ph, _ := r.Phase(); ph != Idle {
		t.Fatalf("phase %s after abandon", ph)
	}
	acts = r.Step(at(6), Input{})
	kinds := map[actuator.Kind]bool{}
	for _, a := range acts {
		kinds[a.Kind] = true
		if a.Kind.DataPlane() {
			t.Errorf("abandon issued a data-plane action %v", a)
		}
	}
	if !kinds[actuator.IncludeZone] || !kinds[actuator.RemoveExtra] {
		t.Fatalf("acts = %v, want include and remove_extra", acts)
	}
}

func TestNoControlPlaneOnlyShifts(t *testing.T) {
	r := New(Policy{Resource: "web", ControlPlaneAfter: time.Second, RecoveryHold: 5 * time.Second, NoControlPlane: true})
	var kinds []actuator.Kind
	step := func(s int, in Input) {
		for _, a := range r.Step(at(s), in) {
			kinds = append(kinds, a.Kind)
			r.Done(at(s), a, nil)
		}
	}
	step(0, Input{Isolated: "az1"})
	for s := 1; s < 10; s++ {
		step(s, Input{Healthy: map[string]bool{"az1": s >= 3}})
	}
	want := []actuator.Kind{actuator.ShiftAway, actuator.EndShift}
	if len(kinds) != 2 || kinds[0] != want[0] || kinds[1] != want[1] {
		t.Fatalf("actions %v, want %v", kinds, want)
	}
}
