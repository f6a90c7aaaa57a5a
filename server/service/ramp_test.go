package service

import (
	"context"
	"strings"
	"testing"

	"github.com/grayzone/grayzone/engine/runbook"
)

// serve with the embedded front door gives a recovered zone its traffic back
// in steps (on by default): the shift stays active while the front door
// weighs the zone 5 %, then 25 %, status and audit say so, and the shift ends
// at 100 %. With ramp off it ends in one step.
func TestServeRampsTrafficBack(t *testing.T) {
	s, fc := guardService(t, "recovery_hold: 10s")
	run(t, s, fc, 10, "")
	run(t, s, fc, 5, "z2")
	sh, ok := active(s)
	if !ok || sh.AwayFrom != "z2" {
		t.Fatalf("not shifted\n%s", auditKinds(t, s))
	}
	table := s.byName["web"].table
	seen := map[int]bool{}
	for range 40 {
		run(t, s, fc, 1, "")
		st, err := s.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rs := st.Resources[0]
		if rs.Phase == string(runbook.Ramping) {
			if _, still := active(s); !still || !table.Shifted("z2") || table.Weight("z2") != rs.Returning {
				t.Fatalf("ramping at %d %%: shift active %v, front door shifted %v at %d %%", rs.Returning, still, table.Shifted("z2"), table.Weight("z2"))
			}
			seen[rs.Returning] = true
		}
		if _, still := active(s); !still {
			break
		}
	}
	if _, still := active(s); still || !seen[5] || !seen[25] {
		t.Fatalf("steps seen %v, shift still active %v\n%s", seen, still, auditKinds(t, s))
	}
	if table.Shifted("z2") || table.Weight("z2") != 0 {
		t.Error("front door not back to normal after the ramp")
	}
	a := auditKinds(t, s)
	for _, want := range []string{"decision: returning: 5 %", "decision: returning: 25 %", "action: set_weight web/z2 25% done", "shift_ended: "} {
		if !strings.Contains(a, want) {
			t.Errorf("audit lacks %q:\n%s", want, a)
		}
	}

	off, fc2 := guardService(t, "recovery_hold: 10s, ramp: {enabled: false}")
	run(t, off, fc2, 10, "")
	run(t, off, fc2, 5, "z2")
	run(t, off, fc2, 25, "")
	if _, still := active(off); still || strings.Contains(auditKinds(t, off), "set_weight") {
		t.Errorf("ramp off: shift still active %v, or weights set:\n%s", still, auditKinds(t, off))
	}
}
