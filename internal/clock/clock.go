// Package clock is the one seam through which grayzone reads time. The engine
// and runbook never read a clock at all (they are told the time); the loops
// that drive them take a Clock so that tests and sim mode can run on virtual time.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and makes tickers. Real returns the wall clock.
type Clock interface {
	Now() time.Time
	// NewTicker returns a channel that receives the time every d until stop is called.
	NewTicker(d time.Duration) (c <-chan time.Time, stop func())
	// After returns a channel that receives the time once, after d.
	After(d time.Duration) <-chan time.Time
}

// Real is the wall clock.
type Real struct{}

func (Real) Now() time.Time { return time.Now() }

func (Real) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Fake is a manually advanced clock for tests. Tickers and timers fire, in
// order, during Advance.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*waiter
}

type waiter struct {
	at     time.Time
	every  time.Duration // 0: one shot
	c      chan time.Time
	closed bool
}

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *Fake) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &waiter{at: f.now.Add(d), every: d, c: make(chan time.Time, 1)}
	f.waiters = append(f.waiters, w)
	return w.c, func() {
		f.mu.Lock()
		w.closed = true
		f.mu.Unlock()
	}
}

func (f *Fake) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &waiter{at: f.now.Add(d), c: make(chan time.Time, 1)}
	f.waiters = append(f.waiters, w)
	return w.c
}

// Advance moves the clock forward by d, firing every ticker and timer that
// falls due on the way (a ticker whose reader is slow drops ticks, as time.Ticker does).
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.now.Add(d)
	for {
		var next *waiter
		for _, w := range f.waiters {
			if !w.closed && !w.at.After(end) && (next == nil || w.at.Before(next.at)) {
				next = w
			}
		}
		if next == nil {
			break
		}
		f.now = next.at
		select {
		case next.c <- next.at:
		default:
		}
		if next.every > 0 {
			next.at = next.at.Add(next.every)
		} else {
			next.closed = true
		}
	}
	f.now = end
	live := f.waiters[:0]
	for _, w := range f.waiters {
		if !w.closed {
			live = append(live, w)
		}
	}
	f.waiters = live
}
