// Package kubelease elects one leader among grayzone serve replicas on a
// coordination.k8s.io Lease. Only the leader decides and acts; the others
// run warm (configuration loaded, state restored, informers synced, API up)
// and one takes over once the leader's lease is not renewed for
// LeaseDuration.
//
// It follows client-go's leaderelection protocol on a Lease (the same
// record fields, expiry judged by when a follower last saw the record
// change rather than by the holder's clock, writes guarded by the Lease's
// resourceVersion, release on a clean stop), so a grayzone replica and a
// client-go elector agree on one Lease. It does not import that package:
// client-go's leaderelection imports the whole clientset and its informers,
// every API group's, which grayzone otherwise does without.
//
// A leader that loses its lease (partitioned from the API server past
// RenewDeadline) stops: Run returns ErrLost and serve exits, so that the
// process that comes back starts from a clean slate rather than acting on
// a lease it no longer holds.
package kubelease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/grayzone/grayzone/internal/clock"
)

// Defaults are client-go's core clients' values.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// jitter spreads the followers' attempts: each waits RetryPeriod times
// 1 to 1+jitter, as client-go's electors do.
const jitter = 1.2

// ErrLost is returned by Run when this replica led and lost the lease.
var ErrLost = errors.New("leader election: lost the lease")

// Client gives the Lease API; actuator/kubernetes.Client and client-go's
// Clientset have it.
type Client interface {
	CoordinationV1() coordinationv1client.CoordinationV1Interface
}

// Options configure an Elector.
type Options struct {
	Client          Client
	Namespace, Name string // the Lease
	// Identity names this replica in the Lease (the pod's name).
	Identity                                  string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Log                                       *slog.Logger
	Clock                                     clock.Clock // default clock.Real
}

// Elector runs the election and says whether this replica leads.
type Elector struct {
	o      Options
	leases coordinationv1client.LeaseInterface

	// Run's goroutine alone reads and writes these.
	lease      *coordinationv1.Lease // as last read or written: its resourceVersion guards the next write
	observedAt time.Time             // when lease's spec was last seen to change
	reported   string                // the holder last logged

	leading atomic.Bool
	epoch   atomic.Uint64 // while leading: the Lease's leaseTransitions + 1
}

// New checks the options and builds the elector.
func New(o Options) (*Elector, error) {
	if o.LeaseDuration == 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	switch {
	case o.Identity == "":
		return nil, errors.New("leader election: no identity (set POD_NAME)")
	case o.Name == "" || o.Namespace == "":
		return nil, fmt.Errorf("leader election: the Lease needs a namespace and a name (got %q/%q)", o.Namespace, o.Name)
	case o.LeaseDuration < time.Second:
		return nil, fmt.Errorf("leader election: lease duration %s is under the Lease's resolution of 1s", o.LeaseDuration)
	case o.RenewDeadline >= o.LeaseDuration:
		return nil, fmt.Errorf("leader election: renew deadline %s must be shorter than the lease duration %s", o.RenewDeadline, o.LeaseDuration)
	case o.RetryPeriod <= 0 || o.RetryPeriod >= o.RenewDeadline:
		return nil, fmt.Errorf("leader election: retry period %s must be positive and shorter than the renew deadline %s", o.RetryPeriod, o.RenewDeadline)
	}
	return &Elector{o: o, leases: o.Client.CoordinationV1().Leases(o.Namespace)}, nil
}

// Leading reports whether this replica holds the lease now.
func (e *Elector) Leading() bool { return e.leading.Load() }

// Epoch is the epoch of the lease this replica holds, 0 while it does not:
// the Lease's leaseTransitions + 1 when it was acquired. Every change of
// holder adds one to leaseTransitions (here and in client-go's electors) and
// renewals keep it, so a later holder's epoch is greater than every earlier
// holder's: it fences the leader's orders to a shared data plane (HAProxy's
// epoch record) against a replica that still acts on a lease it lost.
func (e *Elector) Epoch() uint64 { return e.epoch.Load() }

// Run campaigns, then renews, until ctx ends (nil; a lease held is
// released, so that another replica takes over at once rather than after
// LeaseDuration) or the lease is lost (ErrLost).
func (e *Elector) Run(ctx context.Context) error {
	if !e.acquire(ctx) {
		return nil
	}
	e.epoch.Store(uint64(transitions(e.lease)) + 1)
	e.leading.Store(true)
	e.o.Log.Info("leader election: leading", "lease", e.o.Namespace+"/"+e.o.Name, "identity", e.o.Identity, "epoch", e.Epoch())
	held := e.renew(ctx)
	e.leading.Store(false)
	e.epoch.Store(0)
	if !held {
		e.o.Log.Error("leader election: lost the lease; stopping", "lease", e.o.Namespace+"/"+e.o.Name)
		return ErrLost
	}
	e.release()
	return nil
}

// acquire tries every RetryPeriod (with jitter) until it holds the lease
// (true) or ctx ends (false).
func (e *Elector) acquire(ctx context.Context) bool {
	for {
		if e.tryAcquireOrRenew(ctx) {
			return true
		}
		wait := time.Duration(float64(e.o.RetryPeriod) * (1 + jitter*rand.Float64()))
		select {
		case <-ctx.Done():
			return false
		case <-e.o.Clock.After(wait):
		}
	}
}

// renew renews every RetryPeriod. It returns false when a renewal has not
// succeeded within RenewDeadline (shorter than LeaseDuration, so this
// replica stops acting before a follower may take over), true when ctx
// ends with the lease still held.
func (e *Elector) renew(ctx context.Context) bool {
	for {
		select {
		case <-ctx.Done():
			return true
		case <-e.o.Clock.After(e.o.RetryPeriod):
		}
		deadline := e.o.Clock.Now().Add(e.o.RenewDeadline)
		for {
			// The request itself is bounded too: an API server that hangs
			// must not keep a replica that cannot renew acting.
			rctx, cancel := context.WithTimeout(ctx, e.o.RenewDeadline)
			ok := e.tryAcquireOrRenew(rctx)
			cancel()
			if ok {
				break
			}
			if ctx.Err() != nil {
				return true // stopping: release what is still ours
			}
			left := deadline.Sub(e.o.Clock.Now())
			if left <= 0 {
				return false
			}
			select {
			case <-ctx.Done():
				return true
			case <-e.o.Clock.After(min(e.o.RetryPeriod, left)):
			}
		}
	}
}

// tryAcquireOrRenew makes one attempt to take or renew the lease.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) bool {
	now := e.o.Clock.Now()
	secs := int32((e.o.LeaseDuration + time.Second - 1) / time.Second)
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       &e.o.Identity,
		LeaseDurationSeconds: &secs,
		AcquireTime:          &metav1.MicroTime{Time: now},
		RenewTime:            &metav1.MicroTime{Time: now},
		LeaseTransitions:     new(int32),
	}

	// Fast path: while this replica holds a valid lease, write over its own
	// last copy; a conflict (someone else wrote) falls through to a read.
	if e.isHolder() && e.valid(now) {
		l := e.lease.DeepCopy()
		spec.AcquireTime, spec.LeaseTransitions = l.Spec.AcquireTime, l.Spec.LeaseTransitions
		l.Spec = spec
		u, err := e.leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: "grayzone"})
		if err == nil {
			e.observe(u, now)
			return true
		}
		e.o.Log.Debug("leader election: renewal from the cached lease failed; reading it", "err", err)
	}

	cur, err := e.leases.Get(ctx, e.o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: e.o.Name, Namespace: e.o.Namespace}, Spec: spec}
		c, err := e.leases.Create(ctx, l, metav1.CreateOptions{FieldManager: "grayzone"})
		if err != nil {
			e.o.Log.Warn("leader election: create the Lease", "lease", e.o.Namespace+"/"+e.o.Name, "err", err)
			return false
		}
		e.observe(c, now)
		return true
	}
	if err != nil {
		e.o.Log.Warn("leader election: read the Lease", "lease", e.o.Namespace+"/"+e.o.Name, "err", err)
		return false
	}
	e.observe(cur, now)
	if h := holder(cur); h != "" && h != e.o.Identity && e.valid(now) {
		return false // held by another, and renewed within its duration as seen from here
	}
	if holder(cur) == e.o.Identity {
		spec.AcquireTime, spec.LeaseTransitions = cur.Spec.AcquireTime, cur.Spec.LeaseTransitions
	} else {
		*spec.LeaseTransitions = transitions(cur) + 1
	}
	l := cur.DeepCopy()
	l.Spec = spec
	u, err := e.leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: "grayzone"})
	if err != nil {
		// A conflict means another replica wrote first: it won this round.
		e.o.Log.Debug("leader election: update the Lease", "lease", e.o.Namespace+"/"+e.o.Name, "err", err)
		return false
	}
	e.observe(u, now)
	return true
}

// release gives the lease up on a clean stop: no holder, and a duration of
// one second, so that a follower takes it on its next attempt.
func (e *Elector) release() {
	ctx, cancel := context.WithTimeout(context.Background(), e.o.RenewDeadline)
	defer cancel()
	for ctx.Err() == nil {
		cur, err := e.leases.Get(ctx, e.o.Name, metav1.GetOptions{})
		if err != nil || holder(cur) != e.o.Identity {
			return // gone, unreadable, or no longer ours
		}
		now := e.o.Clock.Now()
		l := cur.DeepCopy()
		one := int32(1)
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = new(string), &one
		l.Spec.AcquireTime, l.Spec.RenewTime = &metav1.MicroTime{Time: now}, &metav1.MicroTime{Time: now}
		_, err = e.leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: "grayzone"})
		if !apierrors.IsConflict(err) {
			if err != nil {
				e.o.Log.Warn("leader election: release the Lease", "lease", e.o.Namespace+"/"+e.o.Name, "err", err)
			}
			return
		}
	}
}

// observe records the lease as read or written at now. Expiry counts from
// when the spec last changed as seen here, not from the holder's
// renewTime, so that clocks that disagree cannot shorten a lease.
func (e *Elector) observe(l *coordinationv1.Lease, now time.Time) {
	if e.lease == nil || !equality.Semantic.DeepEqual(e.lease.Spec, l.Spec) {
		e.observedAt = now
	}
	e.lease = l
	if h := holder(l); h != e.reported {
		e.reported = h
		if h != "" && h != e.o.Identity {
			e.o.Log.Info("leader election: following", "leader", h, "lease", e.o.Namespace+"/"+e.o.Name)
		}
	}
}

// valid reports whether the lease last observed is within its duration.
func (e *Elector) valid(now time.Time) bool {
	if e.lease == nil || e.lease.Spec.LeaseDurationSeconds == nil {
		return false
	}
	return e.observedAt.Add(time.Duration(*e.lease.Spec.LeaseDurationSeconds) * time.Second).After(now)
}

func (e *Elector) isHolder() bool { return e.lease != nil && holder(e.lease) == e.o.Identity }

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func transitions(l *coordinationv1.Lease) int32 {
	if l.Spec.LeaseTransitions == nil {
		return 0
	}
	return *l.Spec.LeaseTransitions
}
