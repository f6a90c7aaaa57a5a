package frontdoor

import (
	"errors"
	"fmt"
)

// ErrStaleFence refuses an order given under an older fencing token than one
// the front door has already obeyed: it comes from a deposed leader.
var ErrStaleFence = errors.New("frontdoor: order from a deposed leader (stale fencing token)")

// SetShiftedFenced is SetShifted for an order given under a leadership epoch
// (server/leader): it is refused, and changes nothing, when the table has
// already obeyed an order with a higher token, so the orders of two leaders
// never interleave here.
func (t *Table) SetShiftedFenced(zone string, away bool, token uint64) error {
	return t.fenced(zone, token, func() error { return t.setShiftedLocked(zone, away) })
}

// SetWeightFenced is SetWeight for an order given under a leadership epoch,
// fenced like SetShiftedFenced.
func (t *Table) SetWeightFenced(zone string, percent int, token uint64) error {
	return t.fenced(zone, token, func() error { return t.setWeightLocked(zone, percent) })
}

// fenced runs set, with mu held, unless token is older than one obeyed.
func (t *Table) fenced(zone string, token uint64, set func() error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.knownZone(zone) {
		return fmt.Errorf("frontdoor: unknown zone %q", zone)
	}
	if token < t.fence {
		return fmt.Errorf("%w: token %d, already obeyed %d", ErrStaleFence, token, t.fence)
	}
	t.fence = token
	return set()
}

// Fence is the highest fencing token the table has obeyed (0: none).
func (t *Table) Fence() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fence
}
