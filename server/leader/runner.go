package leader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
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
	name    string // the configured replica name
	holder  string // name#nonce: this process's identity in the lease
	address string
	clock   clock.Clock
	log     *slog.Logger

	mu     sync.Mutex
	e      *Elector
	warned string // the same-named holder last warned about
}

// NewRunner returns a runner for the replica named name, whose API is at
// address. The lease names the holder name#nonce, with a nonce drawn per
// process: two live replicas configured with the same name are two holders,
// so the second follows (and says why in its log) instead of taking the
// lease from the first. A replica restarted under the same name is a new
// holder too: it takes the lease over when the old one's expires (at once
// after a clean shutdown, which releases it).
func NewRunner(s Store, name, address string, t Timing, c clock.Clock, log *slog.Logger) *Runner {
	if c == nil {
		c = clock.Real{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Runner{store: s, name: name, holder: name + HolderSep + nonce(), address: address, clock: c, log: log, e: NewElector(t)}
}

// HolderSep separates a replica's name from its process nonce in the lease.
const HolderSep = "#"

// NameOf is the replica name part of a lease holder.
func NameOf(holder string) string {
	name, _, _ := strings.Cut(holder, HolderSep)
	return name
}

// nonce is 64 random bits, hex.
func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Holder is this process's identity in the lease: name#nonce.
func (r *Runner) Holder() string { return r.holder }

// Name is this replica's configured name.
func (r *Runner) Name() string { return r.name }

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
	case a == Acquire && !ok && l.Holder != r.holder && NameOf(l.Holder) == r.name && l.Holder != r.warned:
		r.warned = l.Holder
		r.log.Warn("replica: another live process holds the lease under this replica's name; following it. "+
			"Give each replica its own replica.name (or, after a restart, this one takes over when the old lease expires)",
			"name", r.name, "holder", l.Holder, "us", r.holder)
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
