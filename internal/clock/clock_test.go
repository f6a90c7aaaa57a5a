package clock

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// recv returns what c holds right now, without waiting.
func recv(c <-chan time.Time) (time.Time, bool) {
	select {
	case t := <-c:
		return t, true
	default:
		return time.Time{}, false
	}
}

func TestFakeAdvanceMovesNow(t *testing.T) {
	f := NewFake(t0)
	if !f.Now().Equal(t0) {
		t.Fatalf("Now = %v", f.Now())
	}
	f.Advance(1500 * time.Millisecond)
	if want := t0.Add(1500 * time.Millisecond); !f.Now().Equal(want) {
		t.Fatalf("Now = %v, want %v", f.Now(), want)
	}
}

func TestFakeAfterFiresOnceAtItsTime(t *testing.T) {
	f := NewFake(t0)
	c := f.After(2 * time.Second)
	f.Advance(time.Second)
	if _, ok := recv(c); ok {
		t.Fatal("After(2s) fired after 1s")
	}
	f.Advance(5 * time.Second)
	at, ok := recv(c)
	if !ok || !at.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("After(2s) = %v, %v; want the due time, not the end of the advance", at, ok)
	}
	f.Advance(10 * time.Second)
	if _, ok := recv(c); ok {
		t.Fatal("After fired twice")
	}
}

func TestFakeTickerTicksAndDropsWhenUnread(t *testing.T) {
	f := NewFake(t0)
	c, stop := f.NewTicker(time.Second)
	f.Advance(time.Second)
	if at, ok := recv(c); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("first tick %v, %v", at, ok)
	}
	// Three ticks fall due with nobody reading: like time.Ticker, the
	// channel holds one and the rest are dropped.
	f.Advance(3 * time.Second)
	if at, ok := recv(c); !ok || !at.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("buffered tick %v, %v; want the first one due (2s)", at, ok)
	}
	if _, ok := recv(c); ok {
		t.Fatal("more than one tick buffered")
	}
	stop()
	f.Advance(5 * time.Second)
	if _, ok := recv(c); ok {
		t.Fatal("tick after stop")
	}
}

// Timers and tickers fire in time order during one Advance, with Now at
// each one's due time, so a reader sees a consistent clock.
func TestFakeFiresEachAtItsDueTime(t *testing.T) {
	f := NewFake(t0)
	late := f.After(3 * time.Second)
	early := f.After(time.Second)
	tick, stop := f.NewTicker(2 * time.Second)
	defer stop()
	f.Advance(3 * time.Second)
	for name, tc := range map[string]struct {
		c    <-chan time.Time
		want time.Duration
	}{"early": {early, time.Second}, "tick": {tick, 2 * time.Second}, "late": {late, 3 * time.Second}} {
		if at, ok := recv(tc.c); !ok || !at.Equal(t0.Add(tc.want)) {
			t.Errorf("%s fired %v, %v; want at %s", name, at, ok, tc.want)
		}
	}
}

func TestFakeIsSafeForConcurrentUse(t *testing.T) {
	f := NewFake(t0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			f.Now()
			f.After(time.Millisecond)
		}
	}()
	for range 1000 {
		f.Advance(time.Millisecond)
	}
	<-done
	if want := t0.Add(time.Second); !f.Now().Equal(want) {
		t.Errorf("Now = %v, want %v", f.Now(), want)
	}
}

func TestRealClock(t *testing.T) {
	var c Clock = Real{}
	before := time.Now()
	if now := c.Now(); now.Before(before) || now.Sub(before) > time.Minute {
		t.Fatalf("Real.Now = %v, wall clock %v", now, before)
	}
	tick, stop := c.NewTicker(time.Millisecond)
	<-tick
	stop()
	<-c.After(time.Millisecond)
}
