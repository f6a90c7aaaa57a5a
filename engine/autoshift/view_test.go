package autoshift

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/runbook"
)

// The View is what the locked accessors say after every change: ticks that
// decide, the actions' answers, a runbook replaced.
func TestViewFollowsEveryChange(t *testing.T) {
	r := newRig(t, opts{mitigate: true})
	check := func(when string) {
		t.Helper()
		v := r.c.View()
		phase, zone := r.c.Phase()
		st, version := r.c.RunbookState()
		if v.Phase != phase || v.Zone != zone || v.Version != version || v.State.Phase != st.Phase || v.State.Excluded != st.Excluded || v.State.Weight != st.Weight {
			t.Fatalf("%s: view %s %q v%d excluded %v weight %d; controller %s %q v%d excluded %v weight %d", when,
				v.Phase, v.Zone, v.Version, v.State.Excluded, v.State.Weight, phase, zone, version, st.Excluded, st.Weight)
		}
		if !slices.Equal(v.Pending, r.c.Pending()) {
			t.Fatalf("%s: view pending %v, controller %v", when, v.Pending, r.c.Pending())
		}
		if last := r.c.Last(); !v.Assessment.At.Equal(last.At) || v.Assessment.Isolated != last.Isolated || v.Assessment.Why != last.Why {
			t.Fatalf("%s: view assessed at %s (isolated %q), controller's last at %s (isolated %q)", when, v.Assessment.At, v.Assessment.Isolated, last.At, last.Isolated)
		}
	}
	check("new")
	if v := r.c.View(); v.Phase != runbook.Idle || !v.Assessment.At.IsZero() {
		t.Fatalf("new controller's view: %s, assessed at %s", v.Phase, v.Assessment.At)
	}
	seen := map[runbook.Phase]bool{}
	for i := range 60 {
		r.run(1, "z2", true)
		check(fmt.Sprintf("tick %d", i))
		seen[r.c.View().Phase] = true
	}
	if r.c.View().Zone != "z2" || !seen[runbook.Shifted] {
		t.Fatalf("phases seen %v, zone %q: the rig never shifted z2\n%s", seen, r.c.View().Zone, eventKinds(r.c))
	}
	// An action answered between ticks (as serve's driver does) shows at once.
	rd := r.c.Tick(r.now)
	for _, act := range rd.Actions {
		r.c.Ack(r.now, rd.Epoch, act, nil)
		check("ack " + act.String())
	}
	r.c.Abandon(r.now, "test")
	check("abandon")
	r.c.SetRunbook(runbook.New(runbook.Policy{Resource: "web"}))
	check("set runbook")
	if v := r.c.View(); v.Phase != runbook.Idle {
		t.Fatalf("after SetRunbook of a new runbook: %s", v.Phase)
	}
}

// View does not wait for a Tick in progress: it answers with what the last
// change left while the Tick holds the lock (here blocked in the guard,
// which the controller asks under its lock).
func TestViewDoesNotWaitForTick(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	blocking := true
	r := newRig(t, opts{mitigate: true, guard: func(time.Time, string, string) error {
		if blocking {
			blocking = false
			close(entered)
			<-release
		}
		return nil
	}})
	r.run(10, "", true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(10, "z2", true) // reaches the guard once z2 is isolated
	}()
	<-entered
	got := make(chan *View, 1)
	go func() { got <- r.c.View() }()
	select {
	case v := <-got:
		if v.Assessment.Isolated != "" || v.Phase != runbook.Idle {
			t.Errorf("view during the tick: isolated %q, phase %s; want the last published (none, idle)", v.Assessment.Isolated, v.Phase)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("View waited for the tick holding the lock")
	}
	close(release)
	<-done
	if v := r.c.View(); v.Phase == runbook.Idle {
		t.Errorf("after the tick: phase %s, want the shift under way", v.Phase)
	}
}

// A View is made once per change, when asked for: asked twice without a
// change in between, it is the same View; a View kept is not modified by
// the changes after it.
func TestViewMadeOncePerChange(t *testing.T) {
	r := newRig(t, opts{mitigate: true})
	r.run(1, "", true)
	v := r.c.View()
	at := v.Assessment.At
	if r.c.View() != v {
		t.Fatal("a new View without a change")
	}
	r.run(1, "", true)
	if w := r.c.View(); w == v || !w.Assessment.At.After(at) {
		t.Fatalf("after a tick: the same View (assessed at %s), want a new one", w.Assessment.At)
	}
	if !v.Assessment.At.Equal(at) {
		t.Fatalf("a View kept changed: assessed at %s, was %s", v.Assessment.At, at)
	}
}
