// Package runbook is grayzone's mitigation state machine: data plane first,
// control plane second, and the reverse on the way back.
//
//  1. isolated impact in a zone is detected: shift traffic away from it;
//  2. after ControlPlaneAfter: exclude the zone from the instance group;
//  3. once the zone has looked healthy for RecoveryHold: include it again,
//     then end the shift, then remove the extra capacity.
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
	Ending    Phase = "ending"    // capacity back: ending the shift
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
	Failed       EventKind = "failed"    // an action failed; it will be retried
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
}

type task struct {
	action   actuator.Action
	inFlight bool
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
	return &Runbook{p: p, phase: Idle, extra: make(map[string]bool)}
}

// Phase is the current phase and the zone it concerns ("" when idle).
func (r *Runbook) Phase() (Phase, string) { return r.phase, r.zone }

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
	case Shifted, Restoring:
		r.trackHealth(now, in)
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
				r.phase = Ending
				r.want(actuator.EndShift, r.zone)
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
			r.phase = Ending
			r.want(actuator.EndShift, a.Zone)
		}
	case actuator.EndShift:
		r.record(now, ShiftEnded, a.Zone, "")
		if r.extra[a.Zone] {
			r.want(actuator.RemoveExtra, a.Zone)
		}
		r.phase, r.zone = Idle, ""
	case actuator.RemoveExtra:
		delete(r.extra, a.Zone)
		r.record(now, ExtraRemoved, a.Zone, "")
	}
}
