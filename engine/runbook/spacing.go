package runbook

import (
	"fmt"
	"time"
)

// Spacing is the rule that spaces automatic shifts: a new one waits
// minInterval after the last one started, so a detector that keeps deciding
// cannot move traffic back and forth. A zone shifted again because it relapsed
// (its shift ended on a recovery that proved premature: the detector's
// ZoneStatus.Relapsing) is not a new shift but the same episode continuing:
// spacing it would keep a failing zone in service for the rest of
// minInterval, so it is let through. Pure: serve's guard calls it.
func Spacing(now, lastStart time.Time, minInterval time.Duration, relapsing bool) error {
	if relapsing || lastStart.IsZero() || now.Sub(lastStart) >= minInterval {
		return nil
	}
	return fmt.Errorf("the last automatic shift started %s ago; min_interval is %s", now.Sub(lastStart).Round(time.Second), minInterval)
}
