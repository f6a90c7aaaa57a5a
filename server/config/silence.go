package config

import "time"

// Fail static on silence: the engine doubts its own view when a source that
// was reporting has sent nothing from any zone for the silence window. The
// window must be longer than any gap a healthy source leaves, or a late
// round reads as grayzone being blind (issue 24: with canaries every 10 s
// and a 10 s window, serve failed static for a tick whenever a round ran
// late, 21 times in minutes at 200 resources).
const (
	// MinSilenceWindow is the shortest silence window, the engine's health
	// window: no source reports sooner than that matters.
	MinSilenceWindow = 10 * time.Second
	// silenceRounds is how many of the slowest source's intervals must pass
	// without a word. A healthy source's gap is one interval plus how late
	// its next report is: a canary's observation is stamped when its call
	// ends (up to the 5 s canary timeout later), the engine sees it at the
	// next 250 ms tick, and on a busy host the round itself can start late
	// (CPU starvation, GC, thousands of goroutines waking together). Two
	// intervals tolerate one such late or lost round; three tolerate a round
	// lost and the next one late, and still report real silence within
	// three rounds.
	silenceRounds = 3
)

// SilenceWindow is the resource's silence window: max(MinSilenceWindow,
// 3 × the slowest periodic source's interval), over its canaries and its
// polled telemetry sources (prometheus, emf). Sources without an interval
// (front-door records, OTLP and batches pushed by callers) report as
// traffic comes and set no bound.
func (r *Resource) SilenceWindow() time.Duration {
	var slowest time.Duration
	for _, c := range r.Canaries {
		slowest = max(slowest, c.Interval)
	}
	for _, s := range r.Telemetry.Sources {
		slowest = max(slowest, s.Interval)
	}
	return max(MinSilenceWindow, silenceRounds*slowest)
}
