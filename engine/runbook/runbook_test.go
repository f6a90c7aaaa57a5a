package runbook

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator"
)

// The tests drive the runbook with a small script: set what the detector
// says, step once a second up to a time, and compare what the runbook did
// (actions as they were started, events as recorded) with an expected
// transcript, one line per entry, times in seconds from t0.

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

var errDown = errors.New("down")

const resource = "app"

var policy = Policy{Resource: resource, ControlPlaneAfter: 30 * time.Second, RecoveryHold: 60 * time.Second,
	RetryMin: time.Second, RetryMax: 10 * time.Second}

type script struct {
	t    *testing.T
	rb   *Runbook
	next int // the next second to step

	isolated string
	healthy  map[string]bool
	impacted map[string]bool

	failN    map[actuator.Kind]int // the next n attempts of the kind fail
	failFrom map[actuator.Kind][2]int
	hold     map[actuator.Kind]bool // attempts of the kind stay in flight until answer
	inflight []actuator.Action

	actions []string
}

func newScript(t *testing.T, p Policy) *script {
	return &script{t: t, rb: New(p), healthy: map[string]bool{},
		failN: map[actuator.Kind]int{}, failFrom: map[actuator.Kind][2]int{}, hold: map[actuator.Kind]bool{}}
}

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// isolate sets the detector's isolated zone ("" for none).
func (s *script) isolate(zone string) *script { s.isolated = zone; return s }

// health sets whether each zone looks healthy: "az1=0 az2=1".
func (s *script) health(spec string) *script { setZones(s.healthy, spec); return s }

// setZones sets m from "az1=0 az2=1".
func setZones(m map[string]bool, spec string) {
	for _, f := range strings.Fields(spec) {
		z, v, _ := strings.Cut(f, "=")
		m[z] = v == "1"
	}
}

// fail makes the next n attempts of kind fail with errDown.
func (s *script) fail(kind actuator.Kind, n int) *script { s.failN[kind] = n; return s }

// failBetween makes every attempt of kind in [from, to) seconds fail.
func (s *script) failBetween(kind actuator.Kind, from, to int) *script {
	s.failFrom[kind] = [2]int{from, to}
	return s
}

// holdInFlight leaves attempts of kind unanswered until answer.
func (s *script) holdInFlight(kind actuator.Kind, on bool) *script { s.hold[kind] = on; return s }

// until steps once a second from the next unstepped second through end.
func (s *script) until(end int) *script {
	s.t.Helper()
	for ; s.next <= end; s.next++ {
		sec := s.next
		in := Input{Isolated: s.isolated, Healthy: map[string]bool{}, Impacted: s.impacted, Why: s.isolated + " isolated"}
		for z, ok := range s.healthy {
			in.Healthy[z] = ok
		}
		for _, a := range s.rb.Step(at(sec), in) {
			if a.Resource != resource {
				s.t.Errorf("%ds: action %v: resource %q, want %q", sec, a, a.Resource, resource)
			}
			line := fmt.Sprintf("%ds %s %s", sec, a.Kind, a.Zone)
			if a.Kind == actuator.SetWeight {
				line += fmt.Sprintf(" %d%%", a.Weight)
			}
			if s.hold[a.Kind] {
				s.inflight = append(s.inflight, a)
				s.actions = append(s.actions, line+" (in flight)")
				continue
			}
			var err error
			if w, ok := s.failFrom[a.Kind]; ok && sec >= w[0] && sec < w[1] {
				err = errDown
			}
			if s.failN[a.Kind] > 0 {
				s.failN[a.Kind]--
				err = errDown
			}
			if err != nil {
				line += " FAIL"
			}
			s.actions = append(s.actions, line)
			s.rb.Done(at(sec), a, err)
		}
	}
	return s
}

// answer reports the in-flight action of kind as done at the last stepped second.
func (s *script) answer(kind actuator.Kind, err error) *script {
	s.t.Helper()
	i := slices.IndexFunc(s.inflight, func(a actuator.Action) bool { return a.Kind == kind })
	if i < 0 {
		s.t.Fatalf("no %s in flight", kind)
	}
	a := s.inflight[i]
	s.inflight = slices.Delete(s.inflight, i, i+1)
	line := fmt.Sprintf("%ds %s %s answered", s.next-1, a.Kind, a.Zone)
	if a.Kind == actuator.SetWeight {
		line = fmt.Sprintf("%ds %s %s %d%% answered", s.next-1, a.Kind, a.Zone, a.Weight)
	}
	if err != nil {
		line += " FAIL"
	}
	s.actions = append(s.actions, line)
	s.rb.Done(at(s.next-1), a, err)
	return s
}

func lines(want string) []string {
	var out []string
	for _, l := range strings.Split(want, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func diff(t *testing.T, what string, got, want []string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		g, w := "", ""
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		mark := "  "
		if g != w {
			mark = "! "
		}
		fmt.Fprintf(&b, "%s%-45s | %s\n", mark, g, w)
	}
	t.Errorf("%s differ (got | want):\n%s", what, b.String())
}

func (s *script) wantActions(want string) *script {
	s.t.Helper()
	diff(s.t, "actions", s.actions, lines(want))
	return s
}

func (s *script) wantEvents(want string) *script {
	s.t.Helper()
	var got []string
	for _, e := range s.rb.Events() {
		l := fmt.Sprintf("%ds %s %s", int(e.At.Sub(t0)/time.Second), e.Kind, e.Zone)
		switch e.Kind {
		case Failed:
			l += fmt.Sprintf(" %s: %s", e.Action, e.Detail)
		case RampStep:
			l += " " + e.Detail
		}
		got = append(got, l)
	}
	diff(s.t, "events", got, lines(want))
	return s
}

func (s *script) wantPhase(ph Phase, zone string) *script {
	s.t.Helper()
	if gp, gz := s.rb.Phase(); gp != ph || gz != zone {
		s.t.Errorf("at %ds: phase %s %q, want %s %q", s.next-1, gp, gz, ph, zone)
	}
	return s
}

func (s *script) wantPending(want ...actuator.Kind) *script {
	s.t.Helper()
	var got []actuator.Kind
	for _, a := range s.rb.Pending() {
		got = append(got, a.Kind)
	}
	if !slices.Equal(got, want) {
		s.t.Errorf("at %ds: pending %v, want %v", s.next-1, got, want)
	}
	return s
}

func (s *script) wantExcluded(want bool) *script {
	s.t.Helper()
	if got := s.rb.Excluded(); got != want {
		s.t.Errorf("at %ds: Excluded() = %v, want %v", s.next-1, got, want)
	}
	return s
}

func TestHappyPath(t *testing.T) {
	s := newScript(t, policy).wantPhase(Idle, "")
	s.health("az1=1 az2=1 az3=1").until(9).wantActions(``).wantPhase(Idle, "")

	s.isolate("az1").health("az1=0").until(10).wantPhase(Shifted, "az1")
	s.until(39).wantExcluded(false) // no exclusion before ControlPlaneAfter
	s.until(40).wantExcluded(true).wantPhase(Shifted, "az1")
	s.until(99)
	// Recovery: the hold counts from the first healthy step.
	s.isolate("").health("az1=1").until(100)
	s.until(159).wantPhase(Shifted, "az1")
	s.until(160).wantPhase(Ending, "az1").wantPending(actuator.EndShift)
	s.until(161).wantPhase(Idle, "").wantPending(actuator.RemoveExtra)
	s.until(200).wantPending()

	s.wantActions(`
		10s shift_away az1
		40s exclude_zone az1
		160s include_zone az1
		161s end_shift az1
		162s remove_extra az1
	`).wantEvents(`
		10s decided az1
		10s shift_started az1
		40s excluded az1
		160s recovered az1
		160s included az1
		161s shift_ended az1
		162s extra_removed az1
	`)
	if e := s.rb.Events()[0]; e.Detail != "az1 isolated" {
		t.Errorf("decided event detail %q, want the detector's why", e.Detail)
	}

	// The runbook is reusable: another episode, another zone.
	s.isolate("az2").health("az2=0").until(240).isolate("").health("az2=1").until(400)
	s.wantActions(`
		10s shift_away az1
		40s exclude_zone az1
		160s include_zone az1
		161s end_shift az1
		162s remove_extra az1
		201s shift_away az2
		231s exclude_zone az2
		301s include_zone az2
		302s end_shift az2
		303s remove_extra az2
	`)
}

func TestRelapseDuringHoldRestartsIt(t *testing.T) {
	s := newScript(t, policy)
	s.isolate("az1").health("az1=0").until(99)
	s.isolate("").health("az1=1").until(139) // 40s of the 60s hold
	s.health("az1=0").until(140)             // relapse
	s.health("az1=1").until(199).wantPhase(Shifted, "az1")
	s.until(300)
	s.wantActions(`
		0s shift_away az1
		30s exclude_zone az1
		201s include_zone az1
		202s end_shift az1
		203s remove_extra az1
	`).wantEvents(`
		0s decided az1
		0s shift_started az1
		30s excluded az1
		201s recovered az1
		201s included az1
		202s shift_ended az1
		203s extra_removed az1
	`)
}

func TestNilHealthMapIsUnhealthy(t *testing.T) {
	rb := New(policy)
	rb.Step(at(0), Input{Isolated: "az1"})
	rb.Done(at(0), actuator.Action{Kind: actuator.ShiftAway, Resource: resource, Zone: "az1"}, nil)
	for sec := 1; sec <= 29; sec++ {
		if acts := rb.Step(at(sec), Input{}); len(acts) != 0 {
			t.Fatalf("%ds: %v", sec, acts)
		}
	}
	if acts := rb.Step(at(30), Input{}); len(acts) != 1 || acts[0].Kind != actuator.ExcludeZone {
		t.Fatalf("30s: %v, want exclude_zone", acts)
	}
}

func TestControlPlaneFailuresRetryWithBackoffAndHoldTheShift(t *testing.T) {
	s := newScript(t, policy)
	s.isolate("az1").health("az1=0").fail(actuator.ExcludeZone, 4).until(99)
	s.wantPhase(Shifted, "az1").wantExcluded(true)
	s.isolate("").health("az1=1").fail(actuator.IncludeZone, 6).until(194)
	// Healthy well past the hold, but the zone's capacity is not back: the shift holds.
	s.wantPhase(Restoring, "az1").wantPending(actuator.IncludeZone).wantExcluded(true)
	s.until(300).wantPhase(Idle, "").wantPending()
	s.wantActions(`
		0s shift_away az1
		30s exclude_zone az1 FAIL
		31s exclude_zone az1 FAIL
		33s exclude_zone az1 FAIL
		37s exclude_zone az1 FAIL
		45s exclude_zone az1
		160s include_zone az1 FAIL
		161s include_zone az1 FAIL
		163s include_zone az1 FAIL
		167s include_zone az1 FAIL
		175s include_zone az1 FAIL
		185s include_zone az1 FAIL
		195s include_zone az1
		196s end_shift az1
		197s remove_extra az1
	`).wantEvents(`
		0s decided az1
		0s shift_started az1
		30s failed az1 exclude_zone: attempt 1: down; retry in 1s
		31s failed az1 exclude_zone: attempt 2: down; retry in 2s
		33s failed az1 exclude_zone: attempt 3: down; retry in 4s
		37s failed az1 exclude_zone: attempt 4: down; retry in 8s
		45s excluded az1
		160s recovered az1
		160s failed az1 include_zone: attempt 1: down; retry in 1s
		161s failed az1 include_zone: attempt 2: down; retry in 2s
		163s failed az1 include_zone: attempt 3: down; retry in 4s
		167s failed az1 include_zone: attempt 4: down; retry in 8s
		175s failed az1 include_zone: attempt 5: down; retry in 10s
		185s failed az1 include_zone: attempt 6: down; retry in 10s
		195s included az1
		196s shift_ended az1
		197s extra_removed az1
	`)
}

func TestDefaultRetryPolicy(t *testing.T) {
	s := newScript(t, Policy{Resource: resource, ControlPlaneAfter: 30 * time.Second, RecoveryHold: time.Minute})
	s.isolate("az1").health("az1=0").fail(actuator.ShiftAway, 7).until(60)
	s.wantActions(`
		0s shift_away az1 FAIL
		1s shift_away az1 FAIL
		3s shift_away az1 FAIL
		7s shift_away az1 FAIL
		15s shift_away az1 FAIL
		25s shift_away az1 FAIL
		35s shift_away az1 FAIL
		45s shift_away az1
	`)
}

// TestRetryMaxDefaultIsNotBelowRetryMin: with only RetryMin set, the first
// retry waits RetryMin; the default cap must not cut it short.
func TestRetryMaxDefaultIsNotBelowRetryMin(t *testing.T) {
	s := newScript(t, Policy{Resource: resource, ControlPlaneAfter: 30 * time.Second, RecoveryHold: time.Minute, RetryMin: 30 * time.Second})
	s.isolate("az1").health("az1=0").fail(actuator.ShiftAway, 2).until(70)
	s.wantActions(`
		0s shift_away az1 FAIL
		30s shift_away az1 FAIL
		60s shift_away az1
	`)
}

func TestRecoveryBeforeControlPlaneAfterSkipsTheControlPlane(t *testing.T) {
	s := newScript(t, policy)
	s.isolate("az1").health("az1=0").until(9)
	s.isolate("").health("az1=1").until(200).wantPhase(Idle, "").wantExcluded(false).wantPending()
	s.wantActions(`
		0s shift_away az1
		70s end_shift az1
	`).wantEvents(`
		0s decided az1
		0s shift_started az1
		70s recovered az1
		70s shift_ended az1
	`)
}

func TestRelapseAfterControlPlaneAfterExcludesThen(t *testing.T) {
	s := newScript(t, policy)
	s.isolate("az1").health("az1=0").until(9)
	s.isolate("").health("az1=1").until(44) // healthy through ControlPlaneAfter: no exclusion yet
	s.health("az1=0").until(49)             // relapse after it: exclude now
	s.health("az1=1").until(200)
	s.wantActions(`
		0s shift_away az1
		45s exclude_zone az1
		110s include_zone az1
		111s end_shift az1
		112s remove_extra az1
	`)
}

func TestExclusionStillFailingAtRecoveryIsDropped(t *testing.T) {
	s := newScript(t, policy)
	s.isolate("az1").health("az1=0").failBetween(actuator.ExcludeZone, 0, 1000).until(99)
	s.wantPhase(Shifted, "az1").wantExcluded(false).wantPending(actuator.ExcludeZone)
	s.isolate("").health("az1=1").until(159).wantPhase(Shifted, "az1")
	s.until(160).wantPhase(Idle, "")
	s.wantActions(`
		0s shift_away az1
		30s exclude_zone az1 FAIL
		31s exclude_zone az1 FAIL
		33s exclude_zone az1 FAIL
		37s exclude_zone az1 FAIL
		45s exclude_zone az1 FAIL
		55s exclude_zone az1 FAIL
		65s exclude_zone az1 FAIL
		75s exclude_zone az1 FAIL
		85s exclude_zone az1 FAIL
		95s exclude_zone az1 FAIL
		105s exclude_zone az1 FAIL
		115s exclude_zone az1 FAIL
		125s exclude_zone az1 FAIL
		135s exclude_zone az1 FAIL
		145s exclude_zone az1 FAIL
		155s exclude_zone az1 FAIL
		160s end_shift az1
	`)
	// Whatever clean-up follows, the zone is never included: it never was excluded.
	s.until(400)
	for _, a := range s.actions {
		if strings.Contains(a, string(actuator.IncludeZone)) {
			t.Errorf("unexpected action: %s", a)
		}
	}
	ev := s.rb.Events()
	if i := slices.IndexFunc(ev, func(e Event) bool { return e.Kind == ShiftEnded }); i < 0 || !ev[i].At.Equal(at(160)) {
		t.Errorf("events %+v: want shift_ended at 160s", ev)
	}
	for _, e := range ev {
		if e.Kind == Excluded || e.Kind == Included {
			t.Errorf("unexpected event %+v", e)
		}
	}
}

func TestExclusionInFlightAtRecovery(t *testing.T) {
	t.Run("succeeds: include, then end the shift", func(t *testing.T) {
		s := newScript(t, policy)
		s.isolate("az1").health("az1=0").holdInFlight(actuator.ExcludeZone, true).until(99)
		s.isolate("").health("az1=1").until(170).wantPhase(Restoring, "az1")
		s.answer(actuator.ExcludeZone, nil).until(200).wantPhase(Idle, "")
		s.wantActions(`
			0s shift_away az1
			30s exclude_zone az1 (in flight)
			170s exclude_zone az1 answered
			171s include_zone az1
			172s end_shift az1
			173s remove_extra az1
		`)
	})
	t.Run("fails: dropped, end the shift", func(t *testing.T) {
		s := newScript(t, policy)
		s.isolate("az1").health("az1=0").holdInFlight(actuator.ExcludeZone, true).until(99)
		s.isolate("").health("az1=1").until(170).wantPhase(Restoring, "az1")
		s.answer(actuator.ExcludeZone, errDown).until(171).wantPhase(Idle, "")
		s.wantActions(`
			0s shift_away az1
			30s exclude_zone az1 (in flight)
			170s exclude_zone az1 answered FAIL
			171s end_shift az1
		`)
	})
}

func TestRelapseWhileIncludeRetriesReturnsToShifted(t *testing.T) {
	s := newScript(t, policy)
	s.isolate("az1").health("az1=0").until(99)
	s.isolate("").health("az1=1").fail(actuator.IncludeZone, 1).until(160)
	s.wantPhase(Restoring, "az1").wantPending(actuator.IncludeZone)
	s.health("az1=0").until(161).wantPhase(Shifted, "az1").wantPending() // the waiting include is dropped
	s.health("az1=1").until(300)
	s.wantActions(`
		0s shift_away az1
		30s exclude_zone az1
		160s include_zone az1 FAIL
		222s include_zone az1
		223s end_shift az1
		224s remove_extra az1
	`).wantEvents(`
		0s decided az1
		0s shift_started az1
		30s excluded az1
		160s recovered az1
		160s failed az1 include_zone: attempt 1: down; retry in 1s
		222s recovered az1
		222s included az1
		223s shift_ended az1
		224s extra_removed az1
	`)
}

// TestRelapseWhileIncludeInFlightDoesNotEndShift: the zone relapses while
// its inclusion is on the wire. The inclusion is answered first, but the
// shift must not then end on a zone that no longer looks healthy: it ends
// only after a new full hold.
func TestRelapseWhileIncludeInFlightDoesNotEndShift(t *testing.T) {
	s := newScript(t, policy)
	s.isolate("az1").health("az1=0").until(99)
	s.isolate("").health("az1=1").holdInFlight(actuator.IncludeZone, true).until(160)
	s.health("az1=0").until(165)
	s.holdInFlight(actuator.IncludeZone, false).answer(actuator.IncludeZone, nil)
	s.until(169)
	s.health("az1=1").until(300)
	s.wantActions(`
		0s shift_away az1
		30s exclude_zone az1
		160s include_zone az1 (in flight)
		165s include_zone az1 answered
		230s end_shift az1
		231s remove_extra az1
	`)
}

func TestSecondIsolatedZoneIsIgnoredWhileShifted(t *testing.T) {
	s := newScript(t, policy)
	// While the shift is being applied...
	s.isolate("az1").health("az1=0 az2=1").holdInFlight(actuator.ShiftAway, true).until(0)
	s.isolate("az2").until(5).wantPhase(Shifting, "az1")
	s.holdInFlight(actuator.ShiftAway, false).answer(actuator.ShiftAway, nil)
	// ...and once it is in force.
	s.health("az2=0").until(50).wantPhase(Shifted, "az1")
	// az1 recovers; az2 is still reported isolated: after az1's episode, az2's begins.
	s.health("az1=1").until(110).wantPhase(Shifted, "az1")
	s.until(200)
	s.wantActions(`
		0s shift_away az1 (in flight)
		5s shift_away az1 answered
		35s exclude_zone az1
		111s include_zone az1
		112s end_shift az1
		113s remove_extra az1
		113s shift_away az2
		143s exclude_zone az2
	`)
	for _, e := range s.rb.Events() {
		if e.Kind == Decided && e.Zone == "az2" && e.At.Before(at(113)) {
			t.Errorf("az2 decided while az1 was shifted: %+v", e)
		}
	}
}

func TestDataPlaneFailuresAreRetried(t *testing.T) {
	s := newScript(t, policy)
	s.isolate("az1").health("az1=0").fail(actuator.ShiftAway, 3).until(6).wantPhase(Shifting, "az1")
	s.until(7).wantPhase(Shifted, "az1")
	// ControlPlaneAfter counts from when the shift took effect.
	s.until(99)
	s.isolate("").health("az1=1").fail(actuator.EndShift, 2).until(300).wantPhase(Idle, "")
	s.wantActions(`
		0s shift_away az1 FAIL
		1s shift_away az1 FAIL
		3s shift_away az1 FAIL
		7s shift_away az1
		37s exclude_zone az1
		160s include_zone az1
		161s end_shift az1 FAIL
		162s end_shift az1 FAIL
		164s end_shift az1
		165s remove_extra az1
	`).wantEvents(`
		0s decided az1
		0s failed az1 shift_away: attempt 1: down; retry in 1s
		1s failed az1 shift_away: attempt 2: down; retry in 2s
		3s failed az1 shift_away: attempt 3: down; retry in 4s
		7s shift_started az1
		37s excluded az1
		160s recovered az1
		160s included az1
		161s failed az1 end_shift: attempt 1: down; retry in 1s
		162s failed az1 end_shift: attempt 2: down; retry in 2s
		164s shift_ended az1
		165s extra_removed az1
	`)
}

func TestRemoveExtraFailureDoesNotBlockTheNextEpisode(t *testing.T) {
	s := newScript(t, policy)
	s.isolate("az1").health("az1=0").until(99)
	s.isolate("").health("az1=1").failBetween(actuator.RemoveExtra, 0, 170).until(161)
	s.wantPhase(Idle, "")
	s.until(165).wantPending(actuator.RemoveExtra)
	// A new episode starts while the clean-up is still retrying.
	s.isolate("az2").health("az2=0").until(166).isolate("")
	s.until(200)
	s.wantActions(`
		0s shift_away az1
		30s exclude_zone az1
		160s include_zone az1
		161s end_shift az1
		162s remove_extra az1 FAIL
		163s remove_extra az1 FAIL
		165s remove_extra az1 FAIL
		166s shift_away az2
		169s remove_extra az1 FAIL
		177s remove_extra az1
		196s exclude_zone az2
	`)
}

func TestDoneForUnknownActionIsIgnored(t *testing.T) {
	rb := New(policy)
	shift := actuator.Action{Kind: actuator.ShiftAway, Resource: resource, Zone: "az1"}
	rb.Done(at(0), shift, nil) // never started
	if ph, _ := rb.Phase(); ph != Idle || len(rb.Events()) != 0 {
		t.Fatalf("Done for an action never started changed the runbook: %s %v", ph, rb.Events())
	}
	acts := rb.Step(at(1), Input{Isolated: "az1"})
	if want := (actuator.Action{Kind: actuator.ShiftAway, Resource: resource, Zone: "az1", ID: resource + "/1/shift_away/az1"}); !slices.Equal(acts, []actuator.Action{want}) {
		t.Fatalf("Step = %+v, want %+v (the ID names episode 1)", acts, want)
	}
	// In flight: not started again.
	if acts := rb.Step(at(2), Input{Isolated: "az1"}); len(acts) != 0 {
		t.Fatalf("in-flight action started again: %v", acts)
	}
	rb.Done(at(3), shift, nil)
	rb.Done(at(3), shift, nil) // a duplicate answer
	if ph, z := rb.Phase(); ph != Shifted || z != "az1" {
		t.Fatalf("phase %s %s", ph, z)
	}
	if n := len(rb.Events()); n != 2 {
		t.Errorf("%d events, want decided and shift_started: %v", n, rb.Events())
	}
}
