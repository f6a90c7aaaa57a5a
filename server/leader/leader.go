// Package leader elects one replica of grayzone serve, through the database
// they share, to decide and act; the others follow.
//
// The election is a lease: one row naming the holder, the address of its API,
// an expiry on the database's clock, and an epoch that grows by one at every
// acquisition (store.Lease). The epoch is the fencing token: the leader's
// store writes commit only while it is current (store.DB.SetFence) and its
// actuations carry it (actuator.WithFence), so a deposed leader's late write
// or order fails instead of taking effect.
//
// Timing, for a configured lease L (the failover bound):
//
//   - the lease row's time to live is TTL = L·7/10; followers try to take it
//     every L/10, so one leads within L·8/10 (plus a database round trip and
//     the service's tick) after the leader last renewed: within L of its death;
//   - the leader renews every TTL/3;
//   - the leader stops acting TTL·2/3 after it sent its last successful
//     renewal, measured on its own monotonic clock, whether or not the
//     database answers: cut off from the database, it steps down a third of
//     a TTL before anyone else can take the lease.
//
// Elector is the deterministic core (told the time, no I/O); Runner drives it
// against the store on a clock.
package leader

import (
	"time"

	"github.com/grayzone/grayzone/server/store"
)

// DefaultLease is the failover bound when none is configured.
const DefaultLease = 10 * time.Second

// Timing is derived from the lease.
type Timing struct {
	Lease    time.Duration // failover bound
	TTL      time.Duration // the lease row's time to live
	Poll     time.Duration // a follower's attempts
	Renew    time.Duration // the leader's renewals
	StepDown time.Duration // after the last successful renewal was sent
}

// TimingFor derives the timing from the lease (DefaultLease when <= 0).
func TimingFor(lease time.Duration) Timing {
	if lease <= 0 {
		lease = DefaultLease
	}
	ttl := lease * 7 / 10
	return Timing{Lease: lease, TTL: ttl, Poll: lease / 10, Renew: ttl / 3, StepDown: ttl * 2 / 3}
}

// Attempt is what the elector asks the runner to do.
type Attempt int

const (
	None    Attempt = iota
	Acquire         // try to take the lease
	Renew           // extend our lease of Epoch
)

// Elector is one replica's view of the election. Not safe for concurrent use.
type Elector struct {
	t       Timing
	leading bool
	epoch   uint64
	// validUntil is when a leader stops acting unless a renewal succeeds
	// first: the send time of the last successful one plus StepDown.
	validUntil time.Time
	nextTry    time.Time
	inFlight   bool
	known      store.Lease // the last lease seen (the leader, for followers)
}

// NewElector returns a follower that tries at once.
func NewElector(t Timing) *Elector { return &Elector{t: t} }

// Timing returns the elector's timing.
func (e *Elector) Timing() Timing { return e.t }

// Next returns the attempt to start at now (None when none is due or one is
// in flight). Each attempt returned must be answered with Result.
func (e *Elector) Next(now time.Time) Attempt {
	if e.inFlight || now.Before(e.nextTry) {
		return None
	}
	e.inFlight = true
	if e.leading && now.Before(e.validUntil) {
		return Renew
	}
	// A leader past its step-down point does not renew: it starts over, and
	// its acquisition (same holder) gets a new epoch.
	e.leading = false
	return Acquire
}

// Result reports the outcome of the attempt started (sent) at sent and
// answered at now. For Acquire, l is the lease as it stands and ok whether
// we hold it; for Renew, ok whether it was extended.
func (e *Elector) Result(sent, now time.Time, a Attempt, l store.Lease, ok bool, err error) {
	e.inFlight = false
	switch {
	case err != nil:
		// The database did not answer: keep what we have (a leader keeps
		// acting until validUntil) and try again soon.
		e.nextTry = now.Add(e.t.Poll)
	case a == Acquire && ok:
		e.leading, e.epoch, e.known = true, l.Epoch, l
		e.validUntil = sent.Add(e.t.StepDown)
		e.nextTry = sent.Add(e.t.Renew)
	case a == Acquire:
		e.leading, e.known = false, l
		e.nextTry = now.Add(e.t.Poll)
	case a == Renew && ok && !now.Before(e.validUntil):
		// Answered after we stepped down: what we started under this epoch
		// has been cancelled, so do not revive it; take the lease again
		// (it is ours) under a new epoch.
		e.leading = false
		e.nextTry = now
	case a == Renew && ok:
		e.validUntil = sent.Add(e.t.StepDown)
		e.nextTry = sent.Add(e.t.Renew)
	default: // renewal refused: the lease is no longer ours
		e.leading = false
		e.nextTry = now
	}
}

// Leading returns our epoch and whether we lead at now: we hold the lease and
// have renewed it recently enough.
func (e *Elector) Leading(now time.Time) (uint64, bool) {
	if e.leading && now.Before(e.validUntil) {
		return e.epoch, true
	}
	return 0, false
}

// Known is the last lease seen: ours when leading, else the leader's (its
// Address is where followers send clients); zero before the first answer.
func (e *Elector) Known() store.Lease { return e.known }
