package resource

import (
	"context"
	"fmt"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/engine/shift"
)

// ShiftPlane is the runbook's data plane in grayzone serve and in the lab:
// shifting a zone away is an automatic zonal shift in the shift model
// (engine/shift: one active shift per resource, expiry, fenced saves), which
// Reconcile then applies to the front door. Apply is idempotent: a shift
// already in force is not started twice, an ended one not ended twice.
type ShiftPlane struct {
	Resource  string
	Shifts    *shift.Manager
	ExpiresIn time.Duration
	Now       func() time.Time
	// Why is the detector's explanation of the decision, kept with the shift.
	Why func() string
	// Reconcile makes the front door match the active shift.
	Reconcile func(ctx context.Context, now time.Time)
	// The hooks of a front door that is not grayzone's own, and serve's
	// audit log; each may be nil.
	//
	// Started follows a new automatic shift (audit, the guard's minimum
	// interval); Ended follows the end of one.
	Started func(ctx context.Context, now time.Time, sh shift.Shift, why string)
	Ended   func(ctx context.Context, now time.Time, sh shift.Shift)
	// Carried fails until the data plane carries shift id (pushed to ARC,
	// synced to HAProxy or xDS): the runbook retries the step until then.
	// With id "", it asks whether the data plane is in step at all.
	Carried func(ctx context.Context, id string) error
}

// Apply implements actuator.Actuator for ShiftAway, EndShift and SetWeight.
func (p *ShiftPlane) Apply(ctx context.Context, a actuator.Action) error {
	now := p.Now()
	switch a.Kind {
	case actuator.ShiftAway:
		if act, ok := p.Shifts.Active(p.Resource); ok && act.AwayFrom == a.Zone && act.Origin == shift.Auto {
			return p.carried(ctx, act.ID) // already in force: Apply is idempotent
		}
		why := ""
		if p.Why != nil {
			why = p.Why()
		}
		sh, err := p.Shifts.Start(now, shift.StartRequest{Resource: p.Resource, AwayFrom: a.Zone, ExpiresIn: p.ExpiresIn,
			Comment: "autoshift: isolated zonal impact", StartedBy: "autoshift", Reason: why, Origin: shift.Auto})
		if err != nil {
			return err
		}
		if p.Started != nil {
			p.Started(ctx, now, sh, why)
		}
		p.Reconcile(ctx, now)
		return p.carried(ctx, sh.ID) // the shift stands; the runbook retries this step until the data plane carries it
	case actuator.EndShift:
		act, ok := p.Shifts.Active(p.Resource)
		if !ok || act.AwayFrom != a.Zone || act.Origin != shift.Auto {
			return p.carried(ctx, "") // already ended (a retry: the data plane may not carry it yet)
		}
		sh, err := p.Shifts.Cancel(now, act.ID, "autoshift: zone recovered")
		if err != nil {
			return err
		}
		p.Reconcile(ctx, now)
		if p.Ended != nil {
			p.Ended(ctx, now, sh)
		}
		return p.carried(ctx, "")
	case actuator.SetWeight:
		// The weight itself is the runbook's (State.Weight, saved before this
		// action started): Reconcile gives it to the front door, as it does
		// the shift, so a restart or a replica finds it the same way.
		act, ok := p.Shifts.Active(p.Resource)
		if !ok || act.AwayFrom != a.Zone || act.Origin != shift.Auto {
			return fmt.Errorf("%s: no automatic shift away from %s is in force", a, a.Zone)
		}
		p.Reconcile(ctx, now)
		return p.carried(ctx, act.ID)
	}
	return fmt.Errorf("%s: %w", a, actuator.ErrUnsupported)
}

// Weight is the weight the front door gives the zone of the active shift
// (percent of a full zone's weight): the runbook's while it gives that zone its
// traffic back (Policy.Ramp), for an automatic shift only; otherwise 0, the
// shift fully in force.
func Weight(active shift.Shift, ok bool, st runbook.State) int {
	if !ok || active.Origin != shift.Auto || st.Zone != active.AwayFrom {
		return 0
	}
	return st.Weight
}

func (p *ShiftPlane) carried(ctx context.Context, id string) error {
	if p.Carried == nil {
		return nil
	}
	return p.Carried(ctx, id)
}
