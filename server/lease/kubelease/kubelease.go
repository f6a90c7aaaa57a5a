// Package kubelease elects one leader among grayzone serve replicas with
// client-go's leaderelection on a coordination.k8s.io Lease. Only the leader
// decides and acts; the others run warm (configuration loaded, state
// restored, informers synced, API up) and one takes over once the leader's
// lease is not renewed for LeaseDuration.
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
	"sync/atomic"
	"time"

	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Defaults are client-go's core clients' values.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// ErrLost is returned by Run when this replica led and lost the lease.
var ErrLost = errors.New("leader election: lost the lease")

// Options configure an Elector.
type Options struct {
	Client          k8s.Interface
	Namespace, Name string // the Lease
	// Identity names this replica in the Lease (the pod's name).
	Identity                                  string
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	Log                                       *slog.Logger
}

// Elector runs the election and says whether this replica leads.
type Elector struct {
	o       Options
	le      *leaderelection.LeaderElector
	leading atomic.Bool
	led     atomic.Bool
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
	if o.Identity == "" {
		return nil, errors.New("leader election: no identity (set POD_NAME)")
	}
	e := &Elector{o: o}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, o.Namespace, o.Name, o.Client.CoreV1(), o.Client.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: o.Identity})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	e.le, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: o.Name,
		LeaseDuration: o.LeaseDuration, RenewDeadline: o.RenewDeadline, RetryPeriod: o.RetryPeriod,
		// Releasing on a clean stop hands over at once instead of after
		// LeaseDuration; serve cancels only after its loop has stopped acting.
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				e.led.Store(true)
				e.leading.Store(true)
				o.Log.Info("leader election: leading", "lease", o.Namespace+"/"+o.Name, "identity", o.Identity)
			},
			OnStoppedLeading: func() { e.leading.Store(false) },
			OnNewLeader: func(id string) {
				if id != o.Identity {
					o.Log.Info("leader election: following", "leader", id, "lease", o.Namespace+"/"+o.Name)
				}
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return e, nil
}

// Leading reports whether this replica holds the lease now.
func (e *Elector) Leading() bool { return e.leading.Load() }

// Run campaigns, then renews, until ctx ends (nil) or the lease is lost
// (ErrLost).
func (e *Elector) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		e.le.Run(ctx)
		if e.led.Load() && ctx.Err() == nil {
			e.o.Log.Error("leader election: lost the lease; stopping", "lease", e.o.Namespace+"/"+e.o.Name)
			return ErrLost
		}
	}
	return nil
}
