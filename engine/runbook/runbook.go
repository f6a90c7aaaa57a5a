// Package runbook is grayzone's mitigation state machine: data plane first,
// control plane second, and the reverse on the way back.
//
//  1. isolated impact in a zone is detected: shift traffic away from it;
//  2. after ControlPlaneAfter: exclude the zone from the instance group;
//  3. once the zone has looked healthy for RecoveryHold: include it again,
//     then give its traffic back (in weighted steps where the data plane
//     can weigh: Policy.Ramp), end the shift, then remove the extra capacity.
//
// Like etcd's raft, it does no I/O and reads no clock: Step is told the time
// and the detector's view and returns the actions to carry out; Done reports
// how each went. A failed action is retried with capped exponential backoff.
// The data plane never waits on the control plane, and a shift never ends
// before its zone's capacity is back.
package runbook

import (
	"fmt"
	"time"

	"github.com/grayzone/grayzone/actuator"
)

// Policy is the runbook's timing.
type Policy struct {
	Resource          string
	ControlPlaneAfter time.Duration
	RecoveryHold      time.Duration
	RetryMin          time.Duration // first retry delay (default 1s)
	RetryMax          time.Duration // cap (default 10s)
	// NoControlPlane: there is no control plane to act on; the runbook only
	// shifts traffic and brings it back.
	NoControlPlane bool
	// Ramp gives a recovered zone its traffic back in steps instead of at
	// once: each step below 100 is a weight (percent of a full zone's
	// weight in the regional traffic, the shift staying in force) held for
	// StepHold while the zone stays shown recovered, now on customer traffic
	// as well as canaries; the last step, 100, ends the shift. Impact or an
	// isolated call during a step sets the weight back to 0: the shift is
	// fully in force again and the episode goes on (the detector's relapse
	// back-off applies). Empty: the shift ends in one step, all a data plane
	// that cannot weigh (ARC, EndpointSlices) can do. Checked by CheckRamp.
	Ramp []int
	// StepHold is how long each weighted step is held (default
	// RecoveryHold/3, at least a second).
	StepHold time.Duration
}

// DefaultRamp is the ramp of a data plane that can weigh.
var DefaultRamp = []int{5, 25, 100}

// CheckRamp validates ramp steps: each 1 to 100, increasing, the last 100.
func CheckRamp(steps []int) error {
	if len(steps) == 0 {
		return nil
	}
	for i, w := range steps {
		switch {
		case w < 1 || w > 100:
			return fmt.Errorf("step %d is %d%%: want 1 to 100", i+1, w)
		case i > 0 && w <= steps[i-1]:
			return fmt.Errorf("step %d (%d%%) is not above step %d (%d%%): steps must increase", i+1, w, i, steps[i-1])
		}
	}
	if last := steps[len(steps)-1]; last != 100 {
		return fmt.Errorf("the last step is %d%%: it must be 100 (the shift ends there)", last)
	}
	return nil
}

// Input is what the detector says at a tick.
type Input struct {
	// Isolated is the zone with isolated impact, or "".
	Isolated string
	// Healthy reports, per zone, whether it is shown recovered now (the
	// detector's recovery test, detect.Assessment.Recovered).
	Healthy map[string]bool
	// Since, when it names the zone, is when the evidence that shows it
	// healthy began: the recovery hold counts from then, so a test that
	// needed a minute of evidence does not wait a further hold on top.
	Since map[string]time.Time
	// Impacted reports, per zone, whether the detector shows impact (its
	// sequential test past the threshold; not while its view is in doubt).
	// During a ramp step that is a regression.
	Impacted map[string]bool
	// Why is the detector's explanation, kept with the decision.
	Why string
	// Relapse: the isolated zone's last shift ended on a recovery that
	// proved premature (detect.ZoneStatus.Relapsing). Its new shift is the
	// same episode continuing: its Decided and ShiftStarted events say so
	// (Event.Relapse), so a history counts one episode, not several.
	Relapse bool
}

// Phase is where the runbook stands.
type Phase string

const (
	Idle      Phase = "idle"
	Shifting  Phase = "shifting"  // shift requested, not yet applied
	Shifted   Phase = "shifted"   // traffic away; waiting for recovery
	Restoring Phase = "restoring" // healthy for the hold: bringing capacity back
	Ramping   Phase = "ramping"   // capacity back: giving traffic back step by step (Policy.Ramp)
	Ending    Phase = "ending"    // capacity back (and the ramp done): ending the shift
)

// EventKind names a step in the runbook's history.
type EventKind string

const (
	Decided      EventKind = "decided"       // isolated impact: shift decided
	ShiftStarted EventKind = "shift_started" // data plane applied
	Excluded     EventKind = "excluded"      // zone excluded from the instance group
	Included     EventKind = "included"      // zone included again
	ShiftEnded   EventKind = "shift_ended"
	ExtraRemoved EventKind = "extra_removed"
	Recovered    EventKind = "recovered" // healthy for the hold
	// RampStep: the data plane carries a new weight of the zone ("returning:
	// 25 %"); RampAborted: a regression during a step set it back to 0.
	RampStep    EventKind = "ramp_step"
	RampAborted EventKind = "ramp_aborted"
	Failed      EventKind = "failed" // an action failed; it will be retried
)

// Event is one entry of the runbook's history.
type Event struct {
	At     time.Time
	Kind   EventKind
	Zone   string
	Action actuator.Kind // for Failed
	Detail string
	// Relapse marks the Decided and ShiftStarted events of a shift that
	// continues the zone's previous episode (Input.Relapse).
	Relapse bool
	// Weight is a RampStep's weight, percent of a full zone's weight.
	Weight int `json:",omitempty"`
}

type task struct {
	action   actuator.Action
	inFlight bool
	// stale: the weight was changed while a SetWeight was on the wire; it is
	// re-sent with the new weight once answered.
	stale    bool
	nextTry  time.Time
	attempts int
}

// Runbook runs one resource's mitigation. Not safe for concurrent use.
type Runbook struct {
	p     Policy
	phase Phase
	zone  string

	shiftedAt    time.Time
	healthySince time.Time
	excluded     bool // the zone's exclusion succeeded and is still in force
	excludeTried bool // exclusion requested during this shift
	relapse      bool // this shift continues the zone's previous episode
	extra        map[string]bool
	// episode counts the shifts this runbook decided; it names actions
	// (Action.ID) so that a retry after a restart is recognisably the same one.
	episode uint64
	// The ramp: weight is the zone's weight the runbook wants in force
	// (percent of a full zone's weight; 0: the shift fully in force), step its
	// index in Policy.Ramp, stepAt when the data plane carried it (zero
	// while it is on its way).
	weight int
	step   int
	stepAt time.Time

	tasks  []*task
	events []Event
}

// New returns an idle runbook.
func New(p Policy) *Runbook {
	if p.RetryMin <= 0 {
		p.RetryMin = time.Second
	}
	if p.RetryMax < p.RetryMin {
		p.RetryMax = max(10*time.Second, p.RetryMin)
	}
	if p.StepHold <= 0 {
		p.StepHold = max(p.RecoveryHold/3, time.Second)
	}
	return &Runbook{p: p, phase: Idle, extra: make(map[string]bool)}
}

// Phase is the current phase and the zone it concerns ("" when idle).
func (r *Runbook) Phase() (Phase, string) { return r.phase, r.zone }

// Weight is the current zone's weight the runbook wants in force: percent of
// a full zone's weight in the regional traffic while its shift stands (0:
// none; weights are relative, as in HAProxy and Envoy). The
// data plane reconciles to it (level-triggered, like the shift itself).
func (r *Runbook) Weight() int { return r.weight }

// Excluded reports whether the current zone's exclusion is in force.
func (r *Runbook) Excluded() bool { return r.excluded }

// Events returns the history so far.
func (r *Runbook) Events() []Event { return r.events }

// Pending lists the actions not yet done (in flight or waiting to retry).
func (r *Runbook) Pending() []actuator.Action {
	out := make([]actuator.Action, len(r.tasks))
	for i, t := range r.tasks {
		out[i] = t.action
	}
	return out
}

func (r *Runbook) record(now time.Time, k EventKind, zone, detail string) {
	r.events = append(r.events, Event{At: now, Kind: k, Zone: zone, Detail: detail,
		Relapse: r.relapse && zone == r.zone && (k == Decided || k == ShiftStarted)})
}

func (r *Runbook) want(kind actuator.Kind, zone string) {
	for _, t := range r.tasks {
		if t.action.Kind == kind && t.action.Zone == zone {
			return
		}
	}
	r.tasks = append(r.tasks, &task{action: actuator.Action{Kind: kind, Resource: r.p.Resource, Zone: zone,
		ID: fmt.Sprintf("%s/%d/%s/%s", r.p.Resource, r.episode, kind, zone)}})
}

// setWeight makes w the zone's wanted weight and asks the data plane for it.
func (r *Runbook) setWeight(w int) {
	r.weight, r.stepAt = w, time.Time{}
	id := r.weightID(w)
	for _, t := range r.tasks {
		if t.action.Kind == actuator.SetWeight && t.action.Zone == r.zone {
			if t.inFlight {
				t.stale = t.action.Weight != w
				return
			}
			t.action.Weight, t.action.ID = w, id
			return
		}
	}
	r.tasks = append(r.tasks, &task{action: actuator.Action{Kind: actuator.SetWeight, Resource: r.p.Resource, Zone: r.zone, Weight: w, ID: id}})
}

// weightID names a SetWeight action (Action.ID): the episode and the weight.
func (r *Runbook) weightID(w int) string {
	return fmt.Sprintf("%s/%d/%s/%s/%d", r.p.Resource, r.episode, actuator.SetWeight, r.zone, w)
}

// giveBack starts giving the zone its traffic back: the ramp's first step,
// or the end of the shift when there is no ramp.
func (r *Runbook) giveBack() {
	if len(r.p.Ramp) > 0 && r.p.Ramp[0] < 100 {
		r.phase, r.step = Ramping, 0
		r.setWeight(r.p.Ramp[0])
		return
	}
	r.phase = Ending
	r.want(actuator.EndShift, r.zone)
}

// ramp holds, advances or aborts the current step.
func (r *Runbook) ramp(now time.Time, in Input) {
	if in.Isolated == r.zone || in.Impacted[r.zone] {
		why := "impact"
		if in.Isolated == r.zone {
			why = "isolated impact"
		}
		r.events = append(r.events, Event{At: now, Kind: RampAborted, Zone: r.zone,
			Detail: fmt.Sprintf("%s while returning at %d %%: the shift is fully in force again, the same episode goes on; detector: %s", why, r.weight, in.Why)})
		r.phase, r.shiftedAt, r.healthySince = Shifted, now, time.Time{}
		r.excludeTried = false // the control plane follows again, as after a new shift
		r.setWeight(0)
		return
	}
	if r.stepAt.IsZero() || r.healthySince.IsZero() {
		return // the step is on its way, or the zone is not shown recovered now: hold
	}
	if now.Sub(later(r.stepAt, r.healthySince)) < r.p.StepHold {
		return
	}
	r.step++
	if r.step >= len(r.p.Ramp) || r.p.Ramp[r.step] >= 100 {
		r.phase = Ending
		r.want(actuator.EndShift, r.zone)
		return
	}
	r.setWeight(r.p.Ramp[r.step])
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (r *Runbook) has(kind actuator.Kind, zone string) bool {
	for _, t := range r.tasks {
		if t.action.Kind == kind && t.action.Zone == zone {
			return true
		}
	}
	return false
}

// Step advances the runbook to now and returns the actions to start now.
// Each returned action must be answered with Done.
func (r *Runbook) Step(now time.Time, in Input) []actuator.Action {
	switch r.phase {
	case Idle:
		if in.Isolated != "" {
			r.phase, r.zone = Shifting, in.Isolated
			r.episode++
			r.excluded, r.excludeTried = false, false
			r.healthySince = time.Time{}
			r.relapse = in.Relapse
			why := in.Why
			if in.Relapse {
				why = "relapse, the same episode continues: " + why
			}
			r.record(now, Decided, in.Isolated, why)
			r.want(actuator.ShiftAway, in.Isolated)
		}
	case Shifted, Restoring, Ramping:
		r.trackHealth(now, in)
		if r.phase == Ramping {
			r.ramp(now, in)
		}
		if r.phase == Shifted && !r.p.NoControlPlane && !r.excludeTried && now.Sub(r.shiftedAt) >= r.p.ControlPlaneAfter && r.healthySince.IsZero() {
			r.excludeTried = true
			r.want(actuator.ExcludeZone, r.zone)
		}
		if r.phase == Shifted && !r.healthySince.IsZero() && now.Sub(r.healthySince) >= r.p.RecoveryHold {
			r.phase = Restoring
			r.record(now, Recovered, r.zone, "")
		}
		if r.phase == Restoring {
			switch {
			case r.has(actuator.ExcludeZone, r.zone):
				// An exclusion still pending (control plane down) is no longer
				// needed, unless it is on the wire: then wait for its answer.
				if !r.dropIdle(actuator.ExcludeZone, r.zone) {
					break
				}
				r.excludeTried = false
				fallthrough
			case !r.excluded:
				r.giveBack()
			default:
				r.want(actuator.IncludeZone, r.zone)
			}
		}
	}
	return r.due(now)
}

// trackHealth keeps healthySince; in Restoring, relapse before the capacity is
// back returns to Shifted.
func (r *Runbook) trackHealth(now time.Time, in Input) {
	if in.Healthy[r.zone] {
		if r.healthySince.IsZero() {
			r.healthySince = now
			if s, ok := in.Since[r.zone]; ok && s.Before(now) && s.After(r.shiftedAt) {
				r.healthySince = s
			}
		}
		return
	}
	r.healthySince = time.Time{}
	// An inclusion already on the wire is answered first; otherwise start over.
	if r.phase == Restoring && r.dropIdle(actuator.IncludeZone, r.zone) {
		r.phase = Shifted
	}
}

// dropIdle removes a task that is not in flight; it reports whether no such task remains.
func (r *Runbook) dropIdle(kind actuator.Kind, zone string) bool {
	for i, t := range r.tasks {
		if t.action.Kind == kind && t.action.Zone == zone {
			if t.inFlight {
				return false
			}
			r.tasks = append(r.tasks[:i], r.tasks[i+1:]...)
			return true
		}
	}
	return true
}

func (r *Runbook) due(now time.Time) []actuator.Action {
	var out []actuator.Action
	for _, t := range r.tasks {
		if !t.inFlight && !now.Before(t.nextTry) {
			t.inFlight = true
			t.attempts++
			out = append(out, t.action)
		}
	}
	return out
}

// Done reports the result of an action returned by Step.
func (r *Runbook) Done(now time.Time, a actuator.Action, err error) {
	var t *task
	idx := -1
	for i, x := range r.tasks {
		// Matched by kind and zone (there is one task per pair): an answer
		// need not carry the ID back.
		if x.action.Kind == a.Kind && x.action.Zone == a.Zone && x.inFlight {
			t, idx = x, i
			break
		}
	}
	if t == nil {
		return
	}
	t.inFlight = false
	if err != nil {
		if t.stale {
			t.action.Weight, t.action.ID, t.stale = r.weight, r.weightID(r.weight), false // retry with the weight wanted now
		}
		back := r.p.RetryMin << min(t.attempts-1, 20)
		if back > r.p.RetryMax || back <= 0 {
			back = r.p.RetryMax
		}
		t.nextTry = now.Add(back)
		r.events = append(r.events, Event{At: now, Kind: Failed, Zone: a.Zone, Action: a.Kind,
			Detail: fmt.Sprintf("attempt %d: %v; retry in %s", t.attempts, err, back)})
		if a.Kind == actuator.ExcludeZone {
			// A failed exclusion may have launched part of the replacement
			// capacity: make sure it is removed once the shift ends.
			r.extra[a.Zone] = true
		}
		return
	}
	r.tasks = append(r.tasks[:idx], r.tasks[idx+1:]...)
	switch a.Kind {
	case actuator.ShiftAway:
		r.phase, r.shiftedAt = Shifted, now
		r.record(now, ShiftStarted, a.Zone, "")
	case actuator.ExcludeZone:
		r.excluded = true
		r.extra[a.Zone] = true
		r.record(now, Excluded, a.Zone, "")
	case actuator.IncludeZone:
		r.excluded = false
		if r.phase == Idle || a.Zone != r.zone {
			// Capacity brought back after an abandoned episode.
			r.record(now, Included, a.Zone, "")
			return
		}
		r.record(now, Included, a.Zone, "")
		if r.phase == Restoring && a.Zone == r.zone && r.healthySince.IsZero() {
			// The zone relapsed while the inclusion was on the wire: hold the
			// shift and wait for a new full recovery hold.
			r.phase = Shifted
		} else if r.phase == Restoring && a.Zone == r.zone {
			r.giveBack()
		}
	case actuator.SetWeight:
		if a.Zone != r.zone || r.phase == Idle {
			return
		}
		if t.stale || a.Weight != r.weight {
			r.setWeight(r.weight) // the weight changed while this one was on the wire
			return
		}
		r.stepAt = now
		detail := fmt.Sprintf("returning: %d %%", a.Weight)
		if a.Weight == 0 {
			detail = "returning: 0 % (the shift fully in force again)"
		}
		r.record(now, RampStep, a.Zone, detail)
		r.events[len(r.events)-1].Weight = a.Weight
	case actuator.EndShift:
		r.record(now, ShiftEnded, a.Zone, "")
		r.weight, r.step, r.stepAt = 0, 0, time.Time{}
		if r.extra[a.Zone] {
			r.want(actuator.RemoveExtra, a.Zone)
		}
		r.phase, r.zone = Idle, ""
	case actuator.RemoveExtra:
		delete(r.extra, a.Zone)
		r.record(now, ExtraRemoved, a.Zone, "")
	}
}
