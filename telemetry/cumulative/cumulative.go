// Package cumulative turns cumulative counters (OTLP's cumulative
// temporality, Prometheus counters) into per-interval deltas, series by
// series, and handles resets: a process restart starts its counters from
// zero again, and the first point after it is itself the delta.
package cumulative

import (
	"errors"
	"time"
)

// ErrTooMany means a new series would exceed Tracker.Max.
var ErrTooMany = errors.New("too many cumulative series")

// Tracker keeps each series' last values. Not safe for concurrent use.
type Tracker struct {
	// Max bounds the series kept (default 1,000,000); Forget drops a series
	// not seen for that long (default 10 minutes).
	Max    int
	Forget time.Duration
	// Since is when the tracker started: a series whose start time is at or
	// after it began while we were listening, so its first point counts
	// from zero; earlier or unknown start times only set a baseline.
	Since time.Time

	series    map[string]*state
	lastSweep time.Time
}

type state struct {
	start time.Time
	vals  []float64
	seen  time.Time
}

// Delta returns, in out (resized to len(vals)), how much the series named
// key grew since its previous point, and whether there is a delta at all
// (false for a series' first point when only a baseline). A series' first
// point counts from zero when fromZero (the caller knows the series began
// while it was watching, e.g. the first 5xx of a process it already
// follows) or when its start time is at or after Since. A start time
// other than the previous one, a different number of values, or any value
// lower than before is a reset: the values themselves are the delta.
func (t *Tracker) Delta(key string, start, at time.Time, vals []float64, out []float64, fromZero bool) ([]float64, bool, error) {
	if t.series == nil {
		t.series = map[string]*state{}
		if t.Max <= 0 {
			t.Max = 1_000_000
		}
		if t.Forget <= 0 {
			t.Forget = 10 * time.Minute
		}
	}
	out = append(out[:0], vals...)
	s := t.series[key]
	if s == nil {
		if len(t.series) >= t.Max {
			t.sweep(at)
			if len(t.series) >= t.Max {
				return out, false, ErrTooMany
			}
		}
		t.series[key] = &state{start: start, vals: append([]float64(nil), vals...), seen: at}
		fresh := fromZero || (!start.IsZero() && !t.Since.IsZero() && !start.Before(t.Since))
		return out, fresh, nil
	}
	reset := !start.Equal(s.start) || len(vals) != len(s.vals)
	for i := 0; !reset && i < len(vals); i++ {
		reset = vals[i] < s.vals[i]
	}
	if !reset {
		for i := range out {
			out[i] -= s.vals[i]
		}
	}
	s.start, s.vals, s.seen = start, append(s.vals[:0], vals...), at
	if at.Sub(t.lastSweep) > time.Minute {
		t.sweep(at)
	}
	return out, true, nil
}

func (t *Tracker) sweep(now time.Time) {
	t.lastSweep = now
	for k, s := range t.series {
		if now.Sub(s.seen) > t.Forget {
			delete(t.series, k)
		}
	}
}

// Len is the number of series tracked.
func (t *Tracker) Len() int { return len(t.series) }
