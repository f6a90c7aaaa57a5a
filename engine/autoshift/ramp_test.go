package autoshift

import (
	"strings"
	"testing"
	"time"
)

// The ramp through the controller, the real engine and the front door
// table: the recovered zone comes back at 5 % then 25 %; when it fails again
// during a step the table's weight goes back to 0 in the same episode, the
// engine's recovery test starts over backed off (a relapse), and the zone
// returns through the ramp once it is shown recovered again.
func TestRampAbortIsARelapseInOneEpisode(t *testing.T) {
	r := newRig(t, opts{mitigate: true, ramp: []int{5, 25, 100}})
	r.run(10, "", true)
	r.run(5, "z2", true)
	if !r.table.Shifted("z2") {
		t.Fatalf("z2 not shifted; why: %s", r.c.Last().Why)
	}
	for i := 0; i < 200 && r.table.Weight("z2") == 0; i++ { // up to 50 s, tick by tick
		r.feed("", true)
		r.now = r.now.Add(250 * time.Millisecond)
		r.tick()
	}
	if w := r.table.Weight("z2"); w != 5 || !r.table.Shifted("z2") {
		t.Fatalf("return at %d %%, want 5 %% first: events %s", w, eventKinds(r.c))
	}
	a := r.run(10, "z2", true) // fails again during the ramp
	if w := r.table.Weight("z2"); w != 0 || !r.table.Shifted("z2") {
		t.Fatalf("after a regression: shifted %v at %d %%, want the shift fully in force", r.table.Shifted("z2"), w)
	}
	if !strings.Contains(eventKinds(r.c), "ramp_aborted") {
		t.Fatalf("events %s, want ramp_aborted", eventKinds(r.c))
	}
	relapsed := false
	for _, al := range a.Alarms.All() {
		if al.Name == "z2-recovered" && strings.Contains(al.Reason.String(), "×1 relapses") {
			relapsed = true
		}
	}
	if !relapsed {
		t.Errorf("the engine's recovery test was not backed off after the abort: %+v", a.Alarms.Slice())
	}
	if d := r.audits("decision"); !strings.Contains(strings.Join(d, "\n"), "ramp aborted: ") || !strings.Contains(strings.Join(d, "\n"), "returning: 5 %") {
		t.Errorf("decision audits %q", d)
	}
	r.run(90, "", true)
	if r.table.Shifted("z2") {
		t.Fatalf("still shifted after the second recovery: %s", eventKinds(r.c))
	}
	got := eventKinds(r.c)
	if strings.Count(got, "decided") != 1 || strings.Count(got, "shift_started") != 1 || strings.Count(got, "shift_ended") != 1 {
		t.Errorf("events %q: want one episode (one decision, one shift)", got)
	}
}
