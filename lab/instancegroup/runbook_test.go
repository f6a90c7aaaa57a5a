package instancegroup

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/engine/runbook"
)

// TestRunbookWithGroupLeavesNoExclusionBehind drives the runbook against a
// real Group, one Step a second, applying each action at once as the lab's
// sync executor does. Whatever the control plane did on the way, once the
// runbook is idle again the zone must take capacity again and no replacement
// capacity may be left running.
func TestRunbookWithGroupLeavesNoExclusionBehind(t *testing.T) {
	for _, tc := range []struct {
		name string
		// down reports whether the control plane is unavailable at second s.
		down func(s int) bool
		// fail reports whether launching in is refused at second s.
		fail func(s int, in Instance) bool
	}{
		{
			name: "control plane outage around the exclusion",
			down: func(s int) bool { return s >= 25 && s < 50 },
		},
		{
			// The exclusion half-happens: az1 is marked excluded and az2-3
			// is launched, then az3 has no capacity until long after recovery.
			name: "launch fails in one zone",
			fail: func(s int, in Instance) bool { return in.Zone == "az3" && s < 300 },
		},
		{
			name: "every launch fails",
			fail: func(s int, in Instance) bool { return s < 300 },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := 0
			l := &fakeLauncher{failOnce: map[string]int{}}
			if tc.fail != nil {
				l.failAlways = func(op string, in Instance) bool { return op == "launch" && tc.fail(sec, in) }
			}
			available := func() bool { return tc.down == nil || !tc.down(sec) }
			g := New(zones, initial(map[string]int{"az1": 2, "az2": 2, "az3": 2}), l, available)

			shifted := map[string]bool{}
			data := actuator.Func(func(_ context.Context, a actuator.Action) error {
				shifted[a.Zone] = a.Kind == actuator.ShiftAway
				return nil
			})
			act := actuator.Planes{Data: data, Control: Actuator{Group: g}}
			rb := runbook.New(runbook.Policy{Resource: "app", ControlPlaneAfter: 30 * time.Second, RecoveryHold: time.Minute})
			t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

			var log []string
			for sec = 0; sec <= 400; sec++ {
				now := t0.Add(time.Duration(sec) * time.Second)
				in := runbook.Input{Healthy: map[string]bool{"az1": sec >= 40, "az2": true, "az3": true}}
				if sec < 40 {
					in.Isolated = "az1"
				}
				for _, a := range rb.Step(now, in) {
					err := act.Apply(context.Background(), a)
					rb.Done(now, a, err)
					log = append(log, fmt.Sprintf("%ds %s err=%v", sec, a.Kind, err))
				}
			}
			if ph, _ := rb.Phase(); ph != runbook.Idle || len(rb.Pending()) != 0 {
				t.Fatalf("runbook not done: phase %s, pending %v\n%q", ph, rb.Pending(), log)
			}
			if shifted["az1"] {
				t.Error("az1 still shifted away")
			}
			if g.Excluded("az1") {
				t.Errorf("az1 is still excluded from the instance group after the runbook finished\nactions: %q", log)
			}
			if ex := extrasFor(g, "az1"); len(ex) != 0 {
				t.Errorf("replacement capacity %v left running after the runbook finished\nactions: %q", ex, log)
			}
		})
	}
}
