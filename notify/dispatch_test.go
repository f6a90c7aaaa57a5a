package notify

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/notify/event"
)

// memOutbox is an Outbox in memory.
type memOutbox struct {
	mu      sync.Mutex
	items   []Item
	done    map[int64]string // seq: delivered, gave_up
	retries []time.Time      // each Retry's next
}

func (m *memOutbox) add(ep string, at time.Time, ids ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		m.items = append(m.items, Item{Seq: int64(len(m.items) + 1), Endpoint: ep, Event: event.Event{ID: id}, Created: at, NextAt: at})
	}
}

func (m *memOutbox) Pending(_ context.Context, ep string, limit int) ([]Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Item
	for _, it := range m.items {
		if it.Endpoint == ep && m.done[it.Seq] == "" && len(out) < limit {
			out = append(out, it)
		}
	}
	return out, nil
}

func (m *memOutbox) mark(seq int64, how string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done[seq] = how
}

func (m *memOutbox) Delivered(_ context.Context, seq int64, _ time.Time) error {
	m.mark(seq, "delivered")
	return nil
}

func (m *memOutbox) GiveUp(_ context.Context, seq int64, _ time.Time, _ string) error {
	m.mark(seq, "gave_up")
	return nil
}

func (m *memOutbox) Retry(_ context.Context, seq int64, attempts int, next time.Time, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[seq-1].Attempts, m.items[seq-1].NextAt = attempts, next
	m.retries = append(m.retries, next)
	return nil
}

// recorder is a Notifier that fails while down.
type recorder struct {
	mu   sync.Mutex
	got  []string
	down atomic.Bool
	perm string // this event ID is refused for good
}

func (r *recorder) Notify(_ context.Context, e event.Event) error {
	if e.ID == r.perm {
		return Permanent(errors.New("refused"))
	}
	if r.down.Load() {
		return errors.New("down")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, e.ID)
	return nil
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func waitUntil(t *testing.T, clk *clock.Fake, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 5000 {
			t.Fatalf("not reached: %s", what)
		}
		clk.Advance(10 * time.Millisecond)
		time.Sleep(time.Millisecond)
	}
}

// In order, at least once, with exponential back-off while the endpoint is
// down, nothing while following, and a permanent refusal given up.
func TestDispatcher(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	ob := &memOutbox{done: map[int64]string{}}
	rec := &recorder{perm: "e4"}
	var leading atomic.Bool
	d := New(Options{Outbox: ob, Endpoints: []Endpoint{{Name: "hook", Notifier: rec}}, Clock: clk, Poll: time.Second,
		Retry: Retry{Initial: time.Second, Max: 4 * time.Second, GiveUpAfter: time.Hour}, Leading: leading.Load})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()

	ob.add("hook", t0, "e1", "e2")
	d.Wake()
	for range 50 { // a follower sends nothing
		clk.Advance(100 * time.Millisecond)
		time.Sleep(time.Millisecond)
	}
	if len(rec.ids()) != 0 {
		t.Fatalf("a follower sent %v", rec.ids())
	}
	leading.Store(true)
	waitUntil(t, clk, "e1, e2 delivered", func() bool { return len(rec.ids()) == 2 })

	rec.down.Store(true)
	ob.add("hook", clk.Now(), "e3", "e4", "e5")
	d.Wake()
	waitUntil(t, clk, "four retries", func() bool { ob.mu.Lock(); defer ob.mu.Unlock(); return len(ob.retries) >= 4 })
	ob.mu.Lock()
	var gaps []time.Duration
	for i := 1; i < 4; i++ {
		gaps = append(gaps, ob.retries[i].Sub(ob.retries[i-1]))
	}
	ob.mu.Unlock()
	// 1s, 2s, 4s, 4s (capped) after each failure: the gaps between the
	// retry times grow 2s, 4s, 4s (the timer may fire up to a step late).
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 4 * time.Second} {
		if gaps[i] < want || gaps[i] > want+100*time.Millisecond {
			t.Fatalf("back-off gaps %v, want about 2s, 4s, 4s", gaps)
		}
	}
	if len(rec.ids()) != 2 {
		t.Fatalf("sent while down: %v", rec.ids())
	}
	rec.down.Store(false)
	waitUntil(t, clk, "e3, e5 delivered", func() bool { return len(rec.ids()) == 4 })
	if got := rec.ids(); got[0] != "e1" || got[1] != "e2" || got[2] != "e3" || got[3] != "e5" {
		t.Fatalf("order %v", got)
	}
	if ob.done[4] != "gave_up" {
		t.Fatalf("e4: %q", ob.done[4])
	}
	st := d.Stats()[0]
	if st.Delivered != 4 || st.GaveUp != 1 || st.Failures < 5 {
		t.Fatalf("stats %+v", st)
	}
	cancel()
	<-done
}

func TestBackoff(t *testing.T) {
	r := Retry{Initial: time.Second, Max: 5 * time.Minute}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 100: 5 * time.Minute} {
		if got := r.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
}
