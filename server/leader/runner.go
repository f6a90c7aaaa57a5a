package leader

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/server/store"
)

// Store is the lease as the database keeps it (store.DB implements it).
type Store interface {
	AcquireLease(ctx context.Context, holder, address string, ttl time.Duration) (store.Lease, bool, error)
	RenewLease(ctx context.Context, holder string, epoch uint64, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, holder string, epoch uint64) error
}

// Runner runs an Elector against a Store. Safe for concurrent use.
type Runner struct {
	store   Store
	holder  string
	address string
	clock   clock.Clock
	log     *slog.Logger

	mu sync.Mutex
	e  *Elector
}

// NewRunner returns a runner for the replica named holder, whose API is at
// address. A replica restarted under the same name takes its lease back at
// once (with a new epoch); two live replicas must have different names.
func NewRunner(s Store, holder, address string, t Timing, c clock.Clock, log *slog.Logger) *Runner {
	if c == nil {
		c = clock.Real{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Runner{store: s, holder: holder, address: address, clock: c, log: log, e: NewElector(t)}
}

// Holder is this replica's name in the lease.
func (r *Runner) Holder() string { return r.holder }

// Leading returns our epoch and whether we lead now. It reads the clock, not
// the database: a renewal hanging on a lost database cannot keep a leader
// acting past its step-down point.
func (r *Runner) Leading() (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.e.Leading(r.clock.Now())
}

// Known is the last lease seen (see Elector.Known).
func (r *Runner) Known() store.Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.e.Known()
}

// Step makes the attempt due now, if any, and waits for its answer (at most
// a TTL/3). The service's loop calls it; Run calls it on its own ticker.
func (r *Runner) Step(ctx context.Context) {
	r.mu.Lock()
	sent := r.clock.Now()
	a := r.e.Next(sent)
	epoch := r.e.epoch
	t := r.e.Timing()
	r.mu.Unlock()
	if a == None {
		return
	}
	actx, cancel := context.WithTimeout(ctx, t.Renew)
	defer cancel()
	var l store.Lease
	var ok bool
	var err error
	if a == Acquire {
		l, ok, err = r.store.AcquireLease(actx, r.holder, r.address, t.TTL)
	} else {
		ok, err = r.store.RenewLease(actx, r.holder, epoch, t.TTL)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, before := r.e.Leading(r.clock.Now())
	r.e.Result(sent, r.clock.Now(), a, l, ok, err)
	ep, after := r.e.Leading(r.clock.Now())
	switch {
	case err != nil:
		r.log.Warn("leader lease: database did not answer", "attempt", a, "err", err)
	case !before && after:
		r.log.Info("leading", "holder", r.holder, "epoch", ep)
	case before && !after:
		r.log.Warn("no longer leading: the lease was lost", "holder", r.holder)
	}
}

// Run steps until ctx is done, then releases the lease if held, so that a
// follower takes over at once after a clean shutdown.
func (r *Runner) Run(ctx context.Context) {
	tick, stop := r.clock.NewTicker(r.e.Timing().Poll)
	defer stop()
	r.Step(ctx)
	for {
		select {
		case <-ctx.Done():
			if epoch, ok := r.Leading(); ok {
				rctx, cancel := context.WithTimeout(context.Background(), time.Second)
				if err := r.store.ReleaseLease(rctx, r.holder, epoch); err != nil {
					r.log.Warn("leader lease not released", "err", err)
				}
				cancel()
				r.mu.Lock()
				r.e.leading = false
				r.mu.Unlock()
			}
			return
		case <-tick:
			r.Step(ctx)
		}
	}
}

func (a Attempt) String() string {
	switch a {
	case Acquire:
		return "acquire"
	case Renew:
		return "renew"
	}
	return "none"
}
