package notify

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grayzone/grayzone/internal/clock"
)

// Options configure a Dispatcher.
type Options struct {
	Outbox    Outbox
	Endpoints []Endpoint
	Retry     Retry
	Clock     clock.Clock
	Log       *slog.Logger
	// Leading says whether this replica may send (nil: always). A follower
	// sends nothing; its outbox reads and marks would be fenced anyway.
	Leading func() bool
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// Poll is how often an idle endpoint looks at the outbox without being
	// woken (default 2s): items written by another replica, leadership changes.
	Poll time.Duration
}

// Dispatcher drains the outbox, one goroutine per endpoint.
type Dispatcher struct {
	o     Options
	wakes []chan struct{}
	stats []*counters
}

type counters struct {
	delivered, attempts, failures, gaveUp atomic.Int64
	lastErr                               atomic.Value // string
}

// Stat is one endpoint's delivery counts since this process started.
type Stat struct {
	Endpoint  string `json:"endpoint"`
	Kind      string `json:"kind"`
	Delivered int64  `json:"delivered"`
	Failures  int64  `json:"failures"` // failed attempts (each retried or given up)
	GaveUp    int64  `json:"gave_up"`
	LastError string `json:"last_error,omitempty"`
}

// New builds a Dispatcher; Run starts it.
func New(o Options) *Dispatcher {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Retry == (Retry{}) {
		o.Retry = DefaultRetry
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	d := &Dispatcher{o: o}
	for range o.Endpoints {
		d.wakes = append(d.wakes, make(chan struct{}, 1))
		d.stats = append(d.stats, &counters{})
	}
	return d
}

// Wake tells every endpoint's sender that new items may be waiting. It
// never blocks.
func (d *Dispatcher) Wake() {
	for _, w := range d.wakes {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Stats returns each endpoint's counts.
func (d *Dispatcher) Stats() []Stat {
	out := make([]Stat, len(d.o.Endpoints))
	for i, ep := range d.o.Endpoints {
		c := d.stats[i]
		le, _ := c.lastErr.Load().(string)
		out[i] = Stat{Endpoint: ep.Name, Kind: ep.Kind, Delivered: c.delivered.Load(), Failures: c.failures.Load(), GaveUp: c.gaveUp.Load(), LastError: le}
	}
	return out
}

// Run sends until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range d.o.Endpoints {
		wg.Add(1)
		go func() { defer wg.Done(); d.run(ctx, i) }()
		if r, ok := d.o.Endpoints[i].Notifier.(Resender); ok {
			wg.Add(1)
			go func() { defer wg.Done(); d.resend(ctx, i, r) }()
		}
	}
	wg.Wait()
}

func (d *Dispatcher) leading() bool { return d.o.Leading == nil || d.o.Leading() }

func (d *Dispatcher) run(ctx context.Context, i int) {
	for ctx.Err() == nil {
		wait := d.o.Poll
		if d.leading() {
			if next, ok := d.drain(ctx, i); ok {
				wait = max(0, min(wait, next.Sub(d.o.Clock.Now())))
			}
		}
		select {
		case <-ctx.Done():
		case <-d.wakes[i]:
		case <-d.o.Clock.After(wait):
		}
	}
}

// drain sends the endpoint's due items in order and stops at the first
// that fails (the next ones wait behind it: order is kept). It returns when
// the head item is due next, if one waits.
func (d *Dispatcher) drain(ctx context.Context, i int) (time.Time, bool) {
	ep, c := d.o.Endpoints[i], d.stats[i]
	log := d.o.Log.With("endpoint", ep.Name)
	for ctx.Err() == nil && d.leading() {
		items, err := d.o.Outbox.Pending(ctx, ep.Name, 64)
		if err != nil {
			log.Warn("notify: read outbox", "err", err)
			return time.Time{}, false
		}
		if len(items) == 0 {
			return time.Time{}, false
		}
		for _, it := range items {
			now := d.o.Clock.Now()
			if it.NextAt.After(now) {
				return it.NextAt, true
			}
			if !d.leading() {
				return time.Time{}, false
			}
			actx, cancel := context.WithTimeout(ctx, d.o.Timeout)
			err := ep.Notifier.Notify(actx, it.Event)
			cancel()
			c.attempts.Add(1)
			now = d.o.Clock.Now()
			if err == nil {
				if merr := d.o.Outbox.Delivered(ctx, it.Seq, now); merr != nil {
					// Sent but not marked: it is sent again (at least once).
					log.Warn("notify: mark delivered", "event", it.Event.ID, "err", merr)
					return time.Time{}, false
				}
				c.delivered.Add(1)
				continue
			}
			if ctx.Err() != nil {
				return time.Time{}, false
			}
			c.failures.Add(1)
			c.lastErr.Store(err.Error())
			attempts := it.Attempts + 1
			if IsPermanent(err) || now.Sub(it.Created) >= d.o.Retry.GiveUpAfter {
				log.Error("notify: giving up on an event", "event", it.Event.ID, "kind", it.Event.Kind, "attempts", attempts, "err", err)
				if merr := d.o.Outbox.GiveUp(ctx, it.Seq, now, err.Error()); merr != nil {
					log.Warn("notify: mark given up", "event", it.Event.ID, "err", merr)
					return time.Time{}, false
				}
				c.gaveUp.Add(1)
				continue
			}
			next := now.Add(d.o.Retry.Backoff(attempts))
			log.Warn("notify: delivery failed; will retry", "event", it.Event.ID, "kind", it.Event.Kind, "attempts", attempts, "retry_at", next, "err", err)
			if merr := d.o.Outbox.Retry(ctx, it.Seq, attempts, next, err.Error()); merr != nil {
				log.Warn("notify: mark retry", "event", it.Event.ID, "err", merr)
			}
			return next, true
		}
	}
	return time.Time{}, false
}

// resend repeats a Resender's state every interval while leading.
func (d *Dispatcher) resend(ctx context.Context, i int, r Resender) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.o.Clock.After(r.ResendInterval()):
		}
		if !d.leading() {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, d.o.Timeout)
		err := r.Resend(actx)
		cancel()
		if err != nil && ctx.Err() == nil {
			d.stats[i].lastErr.Store(err.Error())
			d.o.Log.Warn("notify: resend of active alerts failed; next in one interval", "endpoint", d.o.Endpoints[i].Name, "err", err)
		}
	}
}
