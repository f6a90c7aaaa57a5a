package runbook

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/grayzone/grayzone/actuator"
)

// State is a runbook's durable state: what a restarted service needs to
// resume a half-done step instead of repeating or forgetting it. History
// (Events) is not part of it; the service keeps its own audit log.
type State struct {
	Phase        Phase     `json:"phase"`
	Zone         string    `json:"zone,omitempty"`
	ShiftedAt    time.Time `json:"shifted_at"`
	HealthySince time.Time `json:"healthy_since"`
	Excluded     bool      `json:"excluded"`
	ExcludeTried bool      `json:"exclude_tried"`
	Extra        []string  `json:"extra,omitempty"` // zones whose replacement capacity is still up
	Episode      uint64    `json:"episode,omitempty"`
	Relapse      bool      `json:"relapse,omitempty"` // the shift continues the zone's previous episode
	// The ramp (Policy.Ramp): the weight wanted in force (percent of the
	// full zone's weight; 0: the shift fully in force), its step, and when
	// the data plane carried it.
	Weight int         `json:"weight,omitempty"`
	Step   int         `json:"step,omitempty"`
	StepAt time.Time   `json:"step_at,omitzero"`
	Tasks  []TaskState `json:"tasks,omitempty"`
}

// TaskState is an action not yet done.
type TaskState struct {
	Action   actuator.Action `json:"action"`
	NextTry  time.Time       `json:"next_try"`
	Attempts int             `json:"attempts"`
}

// State returns the durable state.
func (r *Runbook) State() State {
	s := State{Phase: r.phase, Zone: r.zone, ShiftedAt: r.shiftedAt, HealthySince: r.healthySince,
		Excluded: r.excluded, ExcludeTried: r.excludeTried, Episode: r.episode, Relapse: r.relapse,
		Weight: r.weight, Step: r.step, StepAt: r.stepAt}
	for z := range r.extra {
		s.Extra = append(s.Extra, z)
	}
	slices.Sort(s.Extra) // stable bytes: the service saves the state only when it changed
	for _, t := range r.tasks {
		s.Tasks = append(s.Tasks, TaskState{Action: t.action, NextTry: t.nextTry, Attempts: t.attempts})
	}
	return s
}

// Marshal encodes the durable state.
func (r *Runbook) Marshal() ([]byte, error) { return json.Marshal(r.State()) }

// Restore returns a runbook in the given state. An action that was on the
// wire when the state was saved is due again at once: actuators are
// idempotent, so re-applying is safe, and it is the only way to know it happened.
func Restore(p Policy, s State) (*Runbook, error) {
	switch s.Phase {
	case Idle, Shifting, Shifted, Restoring, Ramping, Ending:
	default:
		return nil, fmt.Errorf("runbook: restore: unknown phase %q", s.Phase)
	}
	r := New(p)
	r.phase, r.zone, r.shiftedAt, r.healthySince = s.Phase, s.Zone, s.ShiftedAt, s.HealthySince
	r.excluded, r.excludeTried, r.episode, r.relapse = s.Excluded, s.ExcludeTried, s.Episode, s.Relapse
	r.weight, r.step, r.stepAt = s.Weight, s.Step, s.StepAt
	for _, z := range s.Extra {
		r.extra[z] = true
	}
	for _, t := range s.Tasks {
		r.tasks = append(r.tasks, &task{action: t.Action, nextTry: t.NextTry, attempts: t.Attempts})
	}
	if r.phase == Ramping && (r.step >= len(p.Ramp) || p.Ramp[r.step] != r.weight) {
		// The ramp was reconfigured across the restart: give the traffic
		// back in one step rather than guess a step of the new ramp.
		r.phase = Ending
		r.dropIdle(actuator.SetWeight, r.zone)
		r.want(actuator.EndShift, r.zone)
	}
	return r, nil
}

// Unmarshal decodes a state saved by Marshal and restores it.
func Unmarshal(p Policy, data []byte) (*Runbook, error) {
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("runbook: restore: %w", err)
	}
	return Restore(p, s)
}

// Abandon ends the current episode because its shift ended outside the
// runbook (an operator cancelled it, or it expired): capacity is brought
// back (include the zone, remove the extra capacity), and no data-plane
// action is taken.
func (r *Runbook) Abandon(now time.Time, why string) {
	if r.phase == Idle {
		return
	}
	zone := r.zone
	r.dropIdle(actuator.ShiftAway, zone)
	r.dropIdle(actuator.EndShift, zone)
	r.dropIdle(actuator.ExcludeZone, zone)
	r.dropIdle(actuator.SetWeight, zone)
	r.weight, r.step, r.stepAt = 0, 0, time.Time{}
	if r.excluded || r.has(actuator.ExcludeZone, zone) {
		r.want(actuator.IncludeZone, zone)
	}
	if r.extra[zone] {
		r.want(actuator.RemoveExtra, zone)
	}
	r.record(now, ShiftEnded, zone, why)
	r.phase, r.zone = Idle, ""
}
