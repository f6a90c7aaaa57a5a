package service

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/clock"
)

// Every pass ticks every resource exactly once, on several workers at once,
// and ends only when all are done. Under -race this runs real resources'
// ticks side by side: what they share must be safe for it.
func TestTickEveryResourceOncePerPass(t *testing.T) {
	s := fleetService(t, 7)
	s.tickWorkers = 3
	var mu sync.Mutex
	ticked := map[string]int{}
	var running, most atomic.Int32
	s.tickOne = func(r *resource, ctx context.Context, now time.Time) {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		(*resource).tick(r, ctx, now)
		running.Add(-1)
		mu.Lock()
		ticked[r.cfg.Name]++
		mu.Unlock()
	}
	fc := s.clock.(*clock.Fake)
	const passes = 5
	for p := 1; p <= passes; p++ {
		fc.Advance(tickEvery)
		s.tick(context.Background(), fc.Now())
		if n := running.Load(); n != 0 {
			t.Fatalf("pass %d returned with %d resources still ticking", p, n)
		}
		mu.Lock()
		for _, r := range s.resources {
			if ticked[r.cfg.Name] != p {
				t.Errorf("after pass %d: %s ticked %d times, want %d", p, r.cfg.Name, ticked[r.cfg.Name], p)
			}
		}
		if len(ticked) != len(s.resources) {
			t.Errorf("after pass %d: ticked %v, want the %d resources", p, ticked, len(s.resources))
		}
		mu.Unlock()
	}
	if m := most.Load(); m > 3 {
		t.Errorf("%d resources ticked at once, want at most the 3 workers", m)
	}
}

// A resource whose tick hangs holds one worker: the others' ticks go on
// without it, and the pass ends once it is done.
func TestTickSlowResourceDoesNotStopOthers(t *testing.T) {
	s := fleetService(t, 5)
	s.tickWorkers = 2
	slow := s.resources[0] // taken first: with one worker it would hold up every other
	release := make(chan struct{})
	var others atomic.Int32
	var slowDone atomic.Bool
	s.tickOne = func(r *resource, ctx context.Context, now time.Time) {
		if r == slow {
			select {
			case <-release: // every other resource ticked while this one hung
			case <-time.After(time.Minute): // only when the others wait for it
				t.Error("the other resources did not tick while the slow one hung")
			}
			(*resource).tick(r, ctx, now)
			slowDone.Store(true)
			return
		}
		(*resource).tick(r, ctx, now)
		if others.Add(1) == int32(len(s.resources)-1) {
			close(release)
		}
	}
	fc := s.clock.(*clock.Fake)
	fc.Advance(tickEvery)
	s.tick(context.Background(), fc.Now())
	if !slowDone.Load() || others.Load() != int32(len(s.resources)-1) {
		t.Errorf("the pass ended with the slow resource done %v and %d of %d others ticked", slowDone.Load(), others.Load(), len(s.resources)-1)
	}
}

// One worker ticks the resources one after the other, in order.
func TestTickOneWorkerInOrder(t *testing.T) {
	s := fleetService(t, 4)
	s.tickWorkers = 1
	var order []string
	s.tickOne = func(r *resource, ctx context.Context, now time.Time) {
		order = append(order, r.cfg.Name)
		(*resource).tick(r, ctx, now)
	}
	fc := s.clock.(*clock.Fake)
	fc.Advance(tickEvery)
	s.tick(context.Background(), fc.Now())
	if got := fmt.Sprint(order); got != "[web-0 web-1 web-2 web-3]" {
		t.Errorf("ticked %s, want web-0 to web-3 in order", got)
	}
}

// persist writes a state when it changed and only then: an unchanged value
// is not written again (here the store's copy was overwritten behind its
// back, and stays so), a changed one is.
func TestPersistWritesOnlyChanges(t *testing.T) {
	s := fleetService(t, 1)
	r := s.resources[0]
	ctx := context.Background()
	key := stateKey("autoshift", r.cfg.Name)
	read := func() string {
		t.Helper()
		data, ok, err := s.db.GetState(ctx, key)
		if err != nil || !ok {
			t.Fatalf("state %s: %v, found %v", key, err, ok)
		}
		return string(data)
	}
	at := s.clock.Now()
	r.mu.Lock()
	r.lastAuto = at
	r.mu.Unlock()
	r.persist(ctx)
	want, _ := json.Marshal(at)
	if got := read(); got != string(want) {
		t.Fatalf("saved %s, want %s", got, want)
	}
	if err := s.db.PutState(ctx, key, []byte(`"elsewhere"`)); err != nil {
		t.Fatal(err)
	}
	r.persist(ctx)
	if got := read(); got != `"elsewhere"` {
		t.Errorf("an unchanged state was written again: %s", got)
	}
	later := at.Add(time.Minute)
	r.mu.Lock()
	r.lastAuto = later
	r.mu.Unlock()
	r.persist(ctx)
	want, _ = json.Marshal(later)
	if got := read(); got != string(want) {
		t.Errorf("a changed state: saved %s, want %s", got, want)
	}
}

// A periodic job's phase is fixed by its names, within its period, and
// differs between resources: a fleet's health checks and canary rounds fall
// over the period, not together.
func TestPhaseSpreadsJobsOverThePeriod(t *testing.T) {
	const period = 5 * time.Second
	if phase(period, "web-1", "health") != phase(period, "web-1", "health") {
		t.Fatal("a job's phase changed between calls")
	}
	if got := phase(0, "web-1"); got != 0 {
		t.Errorf("phase of a zero period: %v", got)
	}
	seen := map[time.Duration]bool{}
	var buckets [5]int // one per second of the period
	for i := range 1000 {
		p := phase(period, fmt.Sprintf("web-%d", i), "health")
		if p < 0 || p >= period {
			t.Fatalf("phase %v outside [0, %v)", p, period)
		}
		seen[p] = true
		buckets[p/time.Second]++
	}
	if len(seen) < 990 {
		t.Errorf("only %d distinct phases of 1000 resources", len(seen))
	}
	for s, n := range buckets {
		if n < 150 || n > 250 { // 200 expected in each second
			t.Errorf("%d of 1000 phases in second %d of the period", n, s)
		}
	}
}
