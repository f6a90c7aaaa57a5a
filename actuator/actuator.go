// Package actuator is the one seam between grayzone's decisions and the
// systems that carry them out: the embedded front door, HAProxy, Envoy, AWS
// ARC and Auto Scaling, Kubernetes. The runbook emits Actions; each data or
// control plane implements Apply for the kinds it owns.
package actuator

import (
	"context"
	"errors"
	"fmt"
)

// Kind is what an action does.
type Kind string

const (
	// Data plane.
	ShiftAway Kind = "shift_away" // stop sending the zone customer traffic
	EndShift  Kind = "end_shift"  // send it customer traffic again
	// SetWeight gives a shifted zone back part of its customer traffic,
	// the shift staying in force (a gradual return): a weight of
	// Action.Weight percent of a full zone's; 0 is the shift fully in force
	// again. Only a data plane that is a Weigher can carry it.
	SetWeight Kind = "set_weight"
	// Control plane.
	ExcludeZone Kind = "exclude_zone" // no new capacity in the zone; replacement capacity elsewhere
	IncludeZone Kind = "include_zone" // the zone may take capacity again
	RemoveExtra Kind = "remove_extra" // remove the replacement capacity launched by ExcludeZone
)

// DataPlane reports whether the kind acts on the data plane.
func (k Kind) DataPlane() bool { return k == ShiftAway || k == EndShift || k == SetWeight }

// Action is one change to make to a resource in a zone.
type Action struct {
	Kind     Kind
	Resource string
	Zone     string
	// ID names the intent, the same across retries and restarts (the
	// runbook's episode, kind and zone): a control plane may use it as an
	// idempotency token, so an action re-run after a crash takes effect once.
	ID string
	// Weight is SetWeight's percent (0-100) of a full zone's weight.
	Weight int
}

func (a Action) String() string {
	if a.Kind == SetWeight {
		return fmt.Sprintf("%s %s/%s %d%%", a.Kind, a.Resource, a.Zone, a.Weight)
	}
	return fmt.Sprintf("%s %s/%s", a.Kind, a.Resource, a.Zone)
}

// ErrUnsupported is returned by an actuator asked for a kind it does not own.
var ErrUnsupported = errors.New("action not supported by this actuator")

// Actuator carries out actions. Apply must be idempotent: the runbook retries
// after failures and after restarts, so applying an action twice is normal.
type Actuator interface {
	Apply(ctx context.Context, a Action) error
}

// Weigher is the optional capability of a data plane that can send a
// shifted zone part of its traffic: the embedded front door (a weighted turn
// over zones), HAProxy (server weights) and xDS (locality weights). ARC and
// Kubernetes EndpointSlices cannot: for them a shift is all or nothing, and
// the runbook ends it in one step.
type Weigher interface {
	// SetWeight gives the shifted zone a weight of percent (0-100) of a
	// full zone's in the regional traffic while its shift stays in force
	// (relative, as HAProxy's server weights and Envoy's locality weights:
	// with k zones it gets percent/(percent+100(k−1)) of the requests); 0
	// is the shift fully in force. Ending the shift resets it. Idempotent.
	SetWeight(ctx context.Context, zone string, percent int) error
}

// CheckWeight is the one validation of a weight in percent.
func CheckWeight(percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("weight %d%%: want 0 to 100", percent)
	}
	return nil
}

// Func adapts a function to an Actuator.
type Func func(ctx context.Context, a Action) error

func (f Func) Apply(ctx context.Context, a Action) error { return f(ctx, a) }

// Planes routes data-plane kinds to one actuator and control-plane kinds to another.
type Planes struct {
	Data, Control Actuator
}

func (p Planes) Apply(ctx context.Context, a Action) error {
	act := p.Control
	if a.Kind.DataPlane() {
		act = p.Data
	}
	if act == nil {
		return fmt.Errorf("%s: no actuator configured for this plane: %w", a, ErrUnsupported)
	}
	return act.Apply(ctx, a)
}
