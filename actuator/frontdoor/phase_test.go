package frontdoor

import (
	"context"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/clock"
)

// phaseClock signals each timer and ticker made.
type phaseClock struct {
	*clock.Fake
	made chan string
}

func (c phaseClock) After(d time.Duration) <-chan time.Time {
	ch := c.Fake.After(d)
	c.made <- "after"
	return ch
}

func (c phaseClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	ch, stop := c.Fake.NewTicker(d)
	c.made <- "ticker"
	return ch, stop
}

// With Phase, a checker checks first Phase after it starts, then every
// Interval after that: not at Run's start, nor an Interval after it.
func TestHealthCheckerPhase(t *testing.T) {
	f := startFleet(t, []string{"az1"}, 2, DefaultHealthPolicy)
	const interval, phase = time.Second, 300 * time.Millisecond
	clk := phaseClock{clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), make(chan string, 4)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&HealthChecker{Table: f.table, Interval: interval, Phase: phase, Timeout: time.Minute, Clock: clk, Log: quiet}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	hits := func(k int64) func() bool {
		return func() bool {
			for _, b := range f.backends {
				if b.healthHits.Load() < k {
					return false
				}
			}
			return true
		}
	}
	if got := <-clk.made; got != "after" {
		t.Fatalf("the checker made a %s first, want the phase's timer", got)
	}
	clk.Advance(phase - time.Millisecond)
	for _, b := range f.backends {
		if n := b.healthHits.Load(); n != 0 {
			t.Fatalf("%d checks before the phase", n)
		}
	}
	clk.Advance(time.Millisecond) // the phase: the first checks
	if got := <-clk.made; got != "ticker" {
		t.Fatalf("made a %s after the phase, want the ticker", got)
	}
	waitFor(t, "the first checks at the phase", hits(1))
	clk.Advance(interval) // the ticker's first tick: the second checks
	waitFor(t, "the second checks an interval later", hits(2))
}
