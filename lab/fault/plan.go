// Package fault turns a scenario's fault list into what is in force at each
// moment, target by target. Real mode applies it to toxiproxy links and
// instance middleware; sim mode applies it to its workload model. Both read
// the same plan, so the two modes inject the same faults.
package fault

import (
	"slices"
	"time"

	"github.com/grayzone/grayzone/lab/scenario"
)

// Plan is a scenario's faults on a timeline.
type Plan struct {
	sc *scenario.Scenario
}

// NewPlan returns the plan of a scenario.
func NewPlan(sc *scenario.Scenario) Plan { return Plan{sc: sc} }

// Changes lists every offset at which the set of active faults changes, in
// order, starting at 0.
func (p Plan) Changes() []time.Duration {
	out := []time.Duration{0}
	for _, f := range p.sc.Faults {
		out = append(out, f.At, f.End(p.sc.Duration))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Active lists the faults in force at offset t.
func (p Plan) Active(t time.Duration) []scenario.Fault {
	var out []scenario.Fault
	for _, f := range p.sc.Faults {
		if f.ActiveAt(t, p.sc.Duration) {
			out = append(out, f)
		}
	}
	return out
}

// Link lists the database-link faults acting on the instance at offset t.
// Link faults target instances through their zone's link; an instance
// target acts on that instance's calls only.
func (p Plan) Link(t time.Duration, zone, instance string) []scenario.Fault {
	var out []scenario.Fault
	for _, f := range p.Active(t) {
		if f.Kind.OnDBLink() && f.Hits(zone, instance) {
			out = append(out, f)
		}
	}
	return out
}

// Instance returns the instance-level faults at offset t: the summed
// http_error probability (capped at 1) and the summed slow delay and jitter.
func (p Plan) Instance(t time.Duration, zone, instance string) (errPct float64, slow, jitter time.Duration) {
	keep := 1.0
	for _, f := range p.Active(t) {
		if !f.Hits(zone, instance) {
			continue
		}
		switch f.Kind {
		case scenario.HTTPError:
			keep *= 1 - f.Percent/100
		case scenario.Slow:
			slow += f.Latency
			jitter += f.Jitter
		}
	}
	return 100 * (1 - keep), slow, jitter
}

// ControlPlaneDown reports whether a control_plane_outage is in force at t.
func (p Plan) ControlPlaneDown(t time.Duration) bool {
	for _, f := range p.Active(t) {
		if f.Kind == scenario.ControlPlaneOutage {
			return true
		}
	}
	return false
}

// TelemetryLost reports whether a telemetry_loss fault keeps the instance's
// server-side observations from reaching grayzone at offset t.
func (p Plan) TelemetryLost(t time.Duration, zone, instance string) bool {
	for _, f := range p.Active(t) {
		if f.Kind == scenario.TelemetryLoss && f.Hits(zone, instance) {
			return true
		}
	}
	return false
}

// CanaryFails reports whether a canary_failure fault cuts grayzone's zonal
// canary calls to zone at offset t.
func (p Plan) CanaryFails(t time.Duration, zone string) bool {
	for _, f := range p.Active(t) {
		if f.Kind == scenario.CanaryFailure && (f.Target.Region || f.Target.Zone == zone) {
			return true
		}
	}
	return false
}

// Effects is what the faults in force do to one target over one span of
// the plan (between two Changes).
type Effects struct {
	ErrPct        float64 // http_error: probability in percent that a request fails at once
	Slow, Jitter  time.Duration
	Link          []scenario.Fault // database-link faults, in scenario order
	TelemetryLost bool
}

// Cursor walks a plan forward in time and caches each target's Effects for
// the span in force, so a simulator asking per request pays a map lookup,
// not a scan of the fault list. Time must not go backwards.
type Cursor struct {
	plan    Plan
	changes []time.Duration
	next    int // index in changes of the next change after the span in force
	span    time.Duration
	effects map[string]*Effects
	canary  map[string]bool
}

// Cursor returns a cursor at offset 0.
func (p Plan) Cursor() *Cursor {
	c := &Cursor{plan: p, changes: p.Changes(), effects: map[string]*Effects{}, canary: map[string]bool{}}
	c.advance(0)
	return c
}

// advance moves the cursor to the span holding t, dropping the cache when
// the span changes.
func (c *Cursor) advance(t time.Duration) {
	moved := false
	for c.next < len(c.changes) && c.changes[c.next] <= t {
		c.span = c.changes[c.next]
		c.next++
		moved = true
	}
	if moved {
		clear(c.effects)
		clear(c.canary)
	}
}

// Span moves the cursor to offset t and returns the number of the span in
// force there (from 1, growing with t): what Target returns for a target
// stays true while Span returns the same number, so a caller asking at
// every request can keep it rather than look it up by id each time.
func (c *Cursor) Span(t time.Duration) int {
	c.advance(t)
	return c.next
}

// Target returns the effects at offset t on the instance id in zone. The
// result is shared: do not modify it.
func (c *Cursor) Target(t time.Duration, zone, id string) *Effects {
	c.advance(t)
	if e := c.effects[id]; e != nil {
		return e
	}
	e := &Effects{Link: c.plan.Link(c.span, zone, id), TelemetryLost: c.plan.TelemetryLost(c.span, zone, id)}
	e.ErrPct, e.Slow, e.Jitter = c.plan.Instance(c.span, zone, id)
	c.effects[id] = e
	return e
}

// CanaryFails is Plan.CanaryFails, cached for the span.
func (c *Cursor) CanaryFails(t time.Duration, zone string) bool {
	c.advance(t)
	v, ok := c.canary[zone]
	if !ok {
		v = c.plan.CanaryFails(c.span, zone)
		c.canary[zone] = v
	}
	return v
}

// ControlPlaneDown is Plan.ControlPlaneDown (not cached: it is asked rarely).
func (c *Cursor) ControlPlaneDown(t time.Duration) bool { return c.plan.ControlPlaneDown(t) }
