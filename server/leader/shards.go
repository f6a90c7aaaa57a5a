package leader

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/server/store"
)

// Shards is one replica's part in sharing the resources (replica.sharded):
// every resource has its own lease in the store (store.ResourceLease), with
// its own epoch, and every replica leads a fair share of them. The store is
// the arbiter: a lease is taken only when it is free or expired, by one
// conditional statement, exactly as the leader lease is.
//
// The timing is the leader lease's (Timing), per resource: a held resource
// stops being led StepDown after the renewal that last included it was sent,
// on this replica's own clock, a third of a TTL before its lease can lapse
// for anyone else.
//
// The fair share is ceil(resources / live replicas), the live replicas being
// those whose heartbeat (store.DB.Heartbeat, same TTL) has not lapsed. A
// replica with fewer takes free or expired leases up to its share; one with
// more (a replica joined) stops leading its extras at once and releases
// them in the store at its next step, so that whoever takes them next never
// acts beside it.
//
// Shards is the deterministic core (told the time, no I/O); ShardRunner
// drives it against the store. Not safe for concurrent use.
type Shards struct {
	t         Timing
	holder    string
	resources []string // sorted
	offset    int      // where this replica starts looking for free resources
	held      map[string]heldLease
	releasing map[string]uint64 // no longer led; to release in the store
	known     map[string]store.ResourceLease
	members   int
	nextRenew time.Time
}

type heldLease struct {
	epoch      uint64
	validUntil time.Time
}

// NewShards returns the part of holder (name#nonce) in sharing resources.
func NewShards(t Timing, holder string, resources []string) *Shards {
	rs := append([]string(nil), resources...)
	sort.Strings(rs)
	h := fnv.New32a()
	_, _ = h.Write([]byte(holder))
	off := 0
	if len(rs) > 0 {
		off = int(h.Sum32() % uint32(len(rs)))
	}
	return &Shards{t: t, holder: holder, resources: rs, offset: off, held: map[string]heldLease{},
		releasing: map[string]uint64{}, known: map[string]store.ResourceLease{}, members: 1}
}

// Timing returns the timing.
func (s *Shards) Timing() Timing { return s.t }

// FairShare is how many resources each live replica should lead.
func (s *Shards) FairShare() int {
	m := max(s.members, 1)
	return (len(s.resources) + m - 1) / m
}

// RenewDue reports whether the held leases are due for renewal at now.
func (s *Shards) RenewDue(now time.Time) bool {
	return len(s.held) > 0 && !now.Before(s.nextRenew)
}

// Renewed reports the renewal sent at sent and answered at now: got is
// every lease of ours the store extended (resource -> epoch). A lease
// missing from it, or under another epoch, is lost; one answered after its
// step-down point is not revived (what ran under it was cancelled). On err
// nothing changes: each held lease is led until its step-down point.
func (s *Shards) Renewed(sent, now time.Time, got map[string]uint64, err error) {
	if err != nil {
		s.nextRenew = now.Add(s.t.Poll)
		return
	}
	s.nextRenew = sent.Add(s.t.Renew)
	for r, h := range s.held {
		if e, ok := got[r]; !ok || e != h.epoch || !now.Before(h.validUntil) {
			delete(s.held, r)
			continue
		}
		h.validUntil = sent.Add(s.t.StepDown)
		s.held[r] = h
	}
}

// Observe records what the store says now: the number of live replicas
// (this one included) and every resource's lease.
func (s *Shards) Observe(members int, leases []store.ResourceLease) {
	s.members = max(members, 1)
	s.known = make(map[string]store.ResourceLease, len(leases))
	for _, l := range leases {
		s.known[l.Resource] = l
	}
}

// Plan returns, at now, the resources to try to take (free or expired
// leases, up to the fair share) and the leases to release in the store
// (given up at the previous Plan). Extras beyond the fair share stop being
// led at once (Held no longer has them) and are released at the next Plan.
func (s *Shards) Plan(now time.Time) (acquire []string, release map[string]uint64) {
	s.dropLapsed(now)
	release, s.releasing = s.releasing, map[string]uint64{}
	fair := s.FairShare()
	if extra := len(s.held) - fair; extra > 0 {
		// The ones this replica reached last are the ones it gives up.
		order := s.rotation()
		for i := len(order) - 1; i >= 0 && extra > 0; i-- {
			if h, ok := s.held[order[i]]; ok {
				s.releasing[order[i]] = h.epoch
				delete(s.held, order[i])
				extra--
			}
		}
		return nil, release
	}
	want := fair - len(s.held)
	for _, r := range s.rotation() {
		if want <= 0 {
			break
		}
		if _, ok := s.held[r]; ok {
			continue
		}
		if _, ok := release[r]; ok {
			continue
		}
		if l, ok := s.known[r]; ok && l.Live && l.Holder != s.holder {
			continue
		}
		acquire = append(acquire, r)
		want--
	}
	return acquire, release
}

// rotation is the resources from this replica's offset on, so that replicas
// starting together reach for different resources first.
func (s *Shards) rotation() []string {
	return append(append([]string(nil), s.resources[s.offset:]...), s.resources[:s.offset]...)
}

// Acquired reports the attempt to take l.Resource, sent at sent and answered
// at now: ok when this replica holds it (l is then its lease), else l is the
// lease as it stands.
func (s *Shards) Acquired(sent, now time.Time, l store.ResourceLease, ok bool) {
	s.known[l.Resource] = l
	if !ok {
		return
	}
	h := heldLease{epoch: l.Epoch, validUntil: sent.Add(s.t.StepDown)}
	if !now.Before(h.validUntil) {
		// Too late to act under: give it back.
		s.releasing[l.Resource] = l.Epoch
		return
	}
	s.held[l.Resource] = h
	if len(s.held) == 1 {
		s.nextRenew = sent.Add(s.t.Renew)
	}
}

func (s *Shards) dropLapsed(now time.Time) {
	for r, h := range s.held {
		if !now.Before(h.validUntil) {
			delete(s.held, r)
		}
	}
}

// Held returns the resources this replica leads at now, with their epochs.
func (s *Shards) Held(now time.Time) map[string]uint64 {
	out := make(map[string]uint64, len(s.held))
	for r, h := range s.held {
		if now.Before(h.validUntil) {
			out[r] = h.epoch
		}
	}
	return out
}

// Leads returns resource's epoch and whether this replica leads it at now.
func (s *Shards) Leads(resource string, now time.Time) (uint64, bool) {
	h, ok := s.held[resource]
	if !ok || !now.Before(h.validUntil) {
		return 0, false
	}
	return h.epoch, true
}

// Known returns resource's lease as last seen (zero before any).
func (s *Shards) Known(resource string) store.ResourceLease { return s.known[resource] }

// Members is the number of live replicas last seen.
func (s *Shards) Members() int { return s.members }

// Abandon stops leading everything and returns what to release (shutdown).
func (s *Shards) Abandon() map[string]uint64 {
	out := s.releasing
	for r, h := range s.held {
		out[r] = h.epoch
	}
	s.held, s.releasing = map[string]heldLease{}, map[string]uint64{}
	return out
}

// ShardStore is what sharing needs of the store (store.DB implements it).
type ShardStore interface {
	Heartbeat(ctx context.Context, holder, address string, ttl time.Duration) ([]store.Member, error)
	LeaveMembership(ctx context.Context, holder string) error
	ResourceLeases(ctx context.Context) ([]store.ResourceLease, error)
	AcquireResourceLease(ctx context.Context, resource, holder, address string, ttl time.Duration) (store.ResourceLease, bool, error)
	RenewResourceLeases(ctx context.Context, holder string, ttl time.Duration) (map[string]uint64, error)
	ReleaseResourceLease(ctx context.Context, resource, holder string, epoch uint64) error
}

// ShardRunner drives Shards against the store every Poll. Safe for
// concurrent use.
type ShardRunner struct {
	store   ShardStore
	holder  string
	address string
	clock   clock.Clock
	log     *slog.Logger

	mu sync.Mutex
	s  *Shards
}

// NewShardRunner returns the runner of holder (Runner.Holder: name#nonce),
// whose API is at address, sharing resources.
func NewShardRunner(st ShardStore, holder, address string, resources []string, t Timing, c clock.Clock, log *slog.Logger) *ShardRunner {
	if c == nil {
		c = clock.Real{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &ShardRunner{store: st, holder: holder, address: address, clock: c, log: log, s: NewShards(t, holder, resources)}
}

// Leads returns resource's epoch and whether this replica leads it now (on
// the clock: a renewal hanging on a lost database cannot extend it).
func (r *ShardRunner) Leads(resource string) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s.Leads(resource, r.clock.Now())
}

// Held returns the resources this replica leads now, with their epochs.
func (r *ShardRunner) Held() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s.Held(r.clock.Now())
}

// Known returns resource's lease as last seen: its leader's address is
// where a mutation of it goes.
func (r *ShardRunner) Known(resource string) store.ResourceLease {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s.Known(resource)
}

// Members is the number of live replicas last seen.
func (r *ShardRunner) Members() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.s.Members()
}

// Step announces this replica, renews what it holds when due, reads every
// lease, releases what it gave up and takes free ones up to its share. Each
// call to the store is bounded by a third of a TTL.
func (r *ShardRunner) Step(ctx context.Context) {
	t := r.s.Timing()
	call := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, t.Renew) }
	cctx, cancel := call()
	members, err := r.store.Heartbeat(cctx, r.holder, r.address, t.TTL)
	cancel()
	if err != nil {
		r.log.Warn("shards: heartbeat: database did not answer", "err", err)
	}
	r.mu.Lock()
	due := r.s.RenewDue(r.clock.Now())
	r.mu.Unlock()
	if due {
		sent := r.clock.Now()
		cctx, cancel := call()
		got, err := r.store.RenewResourceLeases(cctx, r.holder, t.TTL)
		cancel()
		r.mu.Lock()
		before := len(r.s.Held(r.clock.Now()))
		r.s.Renewed(sent, r.clock.Now(), got, err)
		after := len(r.s.Held(r.clock.Now()))
		r.mu.Unlock()
		if err != nil {
			r.log.Warn("shards: renewal: database did not answer", "err", err)
		} else if after < before {
			r.log.Warn("shards: leases lost", "lost", before-after, "holder", r.holder)
		}
	}
	if err != nil {
		return // no membership: plan nothing on a stale view
	}
	cctx, cancel = call()
	leases, err := r.store.ResourceLeases(cctx)
	cancel()
	if err != nil {
		r.log.Warn("shards: read leases: database did not answer", "err", err)
		return
	}
	r.mu.Lock()
	r.s.Observe(len(members), leases)
	acquire, release := r.s.Plan(r.clock.Now())
	r.mu.Unlock()
	r.release(ctx, release)
	took := 0
	for _, res := range acquire {
		sent := r.clock.Now()
		cctx, cancel := call()
		l, ok, err := r.store.AcquireResourceLease(cctx, res, r.holder, r.address, t.TTL)
		cancel()
		if err != nil {
			r.log.Warn("shards: acquire: database did not answer", "resource", res, "err", err)
			break
		}
		r.mu.Lock()
		r.s.Acquired(sent, r.clock.Now(), l, ok)
		r.mu.Unlock()
		if ok {
			took++
		}
	}
	if took > 0 || len(release) > 0 {
		r.log.Info("shards: leading", "took", took, "released", len(release), "leads", len(r.Held()), "replicas", len(members))
	}
}

func (r *ShardRunner) release(ctx context.Context, leases map[string]uint64) {
	for res, epoch := range leases {
		cctx, cancel := context.WithTimeout(ctx, r.s.Timing().Renew)
		if err := r.store.ReleaseResourceLease(cctx, res, r.holder, epoch); err != nil {
			r.log.Warn("shards: lease not released", "resource", res, "err", err)
		}
		cancel()
	}
}

// Run steps every Poll until ctx is done, then stops leading, releases every
// lease it held and leaves the membership, so that the others take its
// resources at once after a clean shutdown.
func (r *ShardRunner) Run(ctx context.Context) {
	tick, stop := r.clock.NewTicker(r.s.Timing().Poll)
	defer stop()
	r.Step(ctx)
	for {
		select {
		case <-ctx.Done():
			r.mu.Lock()
			all := r.s.Abandon()
			r.mu.Unlock()
			bg, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r.release(bg, all)
			if err := r.store.LeaveMembership(bg, r.holder); err != nil {
				r.log.Warn("shards: membership not left", "err", err)
			}
			cancel()
			return
		case <-tick:
			r.Step(ctx)
		}
	}
}
