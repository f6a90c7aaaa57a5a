package arc

import (
	"context"
	"fmt"
	"time"

	"github.com/grayzone/grayzone/actuator"
)

// Actuator applies the runbook's data-plane actions (shift_away, end_shift)
// as ARC zonal shifts of one resource, for callers that keep no shift book
// of their own (the lab). Its shifts carry Owner in their comment; it never
// changes or cancels a shift without that mark. grayzone serve uses the
// Mirror instead, which also records the shifts in grayzone's store.
type Actuator struct {
	Client    *Client
	Owner     string        // marks this actuator's shifts (e.g. "lab")
	ExpiresIn time.Duration // default 72h
	Comment   string        // default "autoshift: isolated zonal impact"
}

// Apply implements actuator.Actuator. It is idempotent: it reads ARC's
// active shifts first, so a repeated shift_away finds its shift in force and
// a repeated end_shift finds nothing to cancel.
func (a Actuator) Apply(ctx context.Context, act actuator.Action) error {
	if !act.Kind.DataPlane() {
		return fmt.Errorf("arc: %s: %w", act, actuator.ErrUnsupported)
	}
	list, err := a.Client.List(ctx)
	if err != nil {
		return fmt.Errorf("arc: %s: %w", act, err)
	}
	switch act.Kind {
	case actuator.ShiftAway:
		for _, s := range list {
			if s.Status != "ACTIVE" {
				continue
			}
			if Owner(s.Comment) == a.Owner && s.AwayFrom == act.Zone {
				return nil // already in force
			}
			if s.Type == "ZONAL_SHIFT" {
				return fmt.Errorf("arc: %s: zonal shift %s away from %s, not started by grayzone, is active: grayzone leaves it alone", act, s.ID, s.AwayFrom)
			}
		}
		exp, comment := a.ExpiresIn, a.Comment
		if exp == 0 {
			exp = MaxExpiresIn
		}
		if comment == "" {
			comment = "autoshift: isolated zonal impact"
		}
		if _, err := a.Client.Start(ctx, act.Zone, exp, Comment(a.Owner, comment)); err != nil {
			return fmt.Errorf("arc: %s: %w", act, err)
		}
		return nil
	default: // EndShift
		for _, s := range list {
			if s.Status == "ACTIVE" && Owner(s.Comment) == a.Owner && s.AwayFrom == act.Zone {
				if err := a.Client.Cancel(ctx, s.ID); err != nil {
					return fmt.Errorf("arc: %s: %w", act, err)
				}
			}
		}
		return nil
	}
}
