package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	"github.com/grayzone/grayzone/actuator"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the
// slices grayzone owns; the EndpointSlice controller leaves them alone.
const ManagedBy = "grayzone.io"

// SlicesOptions configure a Slices front door.
type SlicesOptions struct {
	Client    Client
	Namespace string
	// Source is the Service with a selector whose EndpointSlices (kept by
	// Kubernetes' EndpointSlice controller) list every ready endpoint.
	Source string
	// Service is the selector-less Service clients use; grayzone writes its
	// EndpointSlices: Source's, without the shifted zone's endpoints.
	Service string
	// Leading, when set, says whether this replica may write: a follower
	// keeps its informer warm but leaves the slices to the leader. nil:
	// always.
	Leading func() bool
	Log     *slog.Logger
}

// Slices is a zonal-shift front door for Services without a mesh: kube-proxy
// (or any EndpointSlice consumer) stops sending new connections to a
// shifted zone because its endpoints are no longer listed. It mirrors the
// source's slices as they change (informer), so scaling keeps working during
// a shift. If grayzone stops, the slices stay as last written: the last
// decision stays in force.
type Slices struct {
	o      SlicesOptions
	lister discoverylisters.EndpointSliceNamespaceLister
	synced cache.InformerSynced
	inf    cache.SharedIndexInformer
	kick   chan struct{}

	syncing sync.Mutex
	mu      sync.Mutex
	shifted string // zone left out; "" none
	leading bool   // as last seen by SetShifted
}

// NewSlices builds the front door; Start runs it.
func NewSlices(o SlicesOptions) *Slices {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Slices{o: o, kick: make(chan struct{}, 1)}
	s.inf = newInformer[*discoveryv1.EndpointSliceList](o.Client.DiscoveryV1().EndpointSlices(o.Namespace), &discoveryv1.EndpointSlice{}, 0, o.Client,
		func(lo *metav1.ListOptions) {
			lo.LabelSelector = discoveryv1.LabelServiceName + " in (" + o.Source + "," + o.Service + ")"
		})
	s.lister = discoverylisters.NewEndpointSliceLister(s.inf.GetIndexer()).EndpointSlices(o.Namespace)
	s.synced = s.inf.HasSynced
	_, _ = s.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.trigger() },
		UpdateFunc: func(any, any) { s.trigger() },
		DeleteFunc: func(any) { s.trigger() },
	})
	return s
}

func (s *Slices) trigger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Start runs the informer and the loop that keeps the slices in line with
// the source and the shift; failed writes are retried with backoff.
func (s *Slices) Start(ctx context.Context) {
	go s.inf.RunWithContext(ctx)
	go func() {
		backoff := time.Second
		for {
			var retry <-chan time.Time
			if err := s.sync(ctx); err != nil && ctx.Err() == nil {
				s.o.Log.Warn("endpointslices: sync failed; will retry", "service", s.o.Namespace+"/"+s.o.Service, "in", backoff, "err", err)
				retry = time.After(backoff)
				backoff = min(2*backoff, 30*time.Second)
			} else {
				backoff = time.Second
			}
			select {
			case <-ctx.Done():
				return
			case <-s.kick:
			case <-retry:
			}
		}
	}()
}

// Run is Start, returning when ctx is done (serve's external data planes
// run this way).
func (s *Slices) Run(ctx context.Context) {
	s.Start(ctx)
	<-ctx.Done()
}

// SetShifted sets the zone to leave out (away) or to list again, and
// returns at once: the loop writes it, and retries until the API server
// takes it. serve calls it for every zone on every tick while it leads; a
// replica that has just come to lead has the slices written at once.
func (s *Slices) SetShifted(_ context.Context, zone string, away bool) error {
	lead := s.o.Leading == nil || s.o.Leading()
	s.mu.Lock()
	prev := s.shifted
	if away {
		s.shifted = zone
	} else if s.shifted == zone {
		s.shifted = ""
	}
	kick := s.shifted != prev || lead && !s.leading
	s.leading = lead
	s.mu.Unlock()
	if kick {
		s.trigger()
	}
	return nil
}

// Sync writes the slices now, as the shift stands, and returns once the
// API server has them: serve's data plane returns only then, so that the
// control plane never acts before the traffic has moved.
func (s *Slices) Sync(ctx context.Context) error { return s.sync(ctx) }

// Apply implements actuator.Actuator for shift_away and end_shift: it sets
// the shift and writes the slices before returning.
func (s *Slices) Apply(ctx context.Context, a actuator.Action) error {
	switch a.Kind {
	case actuator.ShiftAway, actuator.EndShift:
		_ = s.SetShifted(ctx, a.Zone, a.Kind == actuator.ShiftAway)
	default:
		return fmt.Errorf("kubernetes endpointslices: %s: %w", a, actuator.ErrUnsupported)
	}
	return s.sync(ctx)
}

// sync makes the owned slices the source's, without the shifted zone.
// Apply and the loop both call it; one at a time.
func (s *Slices) sync(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), s.synced) {
		return fmt.Errorf("kubernetes endpointslices: cache not synced: %w", ctx.Err())
	}
	if s.o.Leading != nil && !s.o.Leading() {
		return nil // the leader writes
	}
	s.syncing.Lock()
	defer s.syncing.Unlock()
	s.mu.Lock()
	shifted := s.shifted
	s.mu.Unlock()
	src, err := s.lister.List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: s.o.Source}))
	if err != nil {
		return err
	}
	owned, err := s.lister.List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: s.o.Service, discoveryv1.LabelManagedBy: ManagedBy}))
	if err != nil {
		return err
	}
	want := map[string]*discoveryv1.EndpointSlice{}
	for _, sl := range src {
		m := s.mirror(sl, shifted)
		want[m.Name] = m
	}
	client := s.o.Client.DiscoveryV1().EndpointSlices(s.o.Namespace)
	var errs []error
	have := map[string]*discoveryv1.EndpointSlice{}
	for _, sl := range owned {
		have[sl.Name] = sl
		if _, ok := want[sl.Name]; !ok {
			if err := client.Delete(ctx, sl.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		m := want[name]
		cur, ok := have[name]
		stale := ok && !sameSlice(cur, m)
		if !ok {
			_, err := client.Create(ctx, m, metav1.CreateOptions{FieldManager: "grayzone"})
			switch {
			case apierrors.IsAlreadyExists(err):
				// The cache lags a create of our own (the loop's, a moment
				// ago): the slice is there, maybe as the shift stood then.
				stale = true
			case err != nil:
				errs = append(errs, err)
			}
		}
		if stale {
			// The cache may lag our own last write: update from a fresh read.
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				fresh, err := client.Get(ctx, name, metav1.GetOptions{})
				if err != nil || sameSlice(fresh, m) {
					return err
				}
				up := fresh.DeepCopy()
				up.Labels, up.AddressType, up.Endpoints, up.Ports = m.Labels, m.AddressType, m.Endpoints, m.Ports
				_, err = client.Update(ctx, up, metav1.UpdateOptions{FieldManager: "grayzone"})
				return err
			})
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kubernetes endpointslices %s/%s: %w", s.o.Namespace, s.o.Service, err)
	}
	return nil
}

// mirror is the owned copy of a source slice, without the shifted zone's
// endpoints. It leaves them out even if none would remain: refusing a shift
// that empties a service is the shift guard's job (min_capacity), not the
// front door's.
func (s *Slices) mirror(src *discoveryv1.EndpointSlice, shifted string) *discoveryv1.EndpointSlice {
	out := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      s.o.Service + "-" + src.Name,
			Namespace: s.o.Namespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: s.o.Service,
				discoveryv1.LabelManagedBy:   ManagedBy,
			},
		},
		AddressType: src.AddressType,
		Ports:       src.Ports,
		Endpoints:   []discoveryv1.Endpoint{},
	}
	for _, ep := range src.Endpoints {
		if shifted != "" && ep.Zone != nil && *ep.Zone == shifted {
			continue
		}
		out.Endpoints = append(out.Endpoints, ep)
	}
	return out
}

func sameSlice(a, b *discoveryv1.EndpointSlice) bool {
	return maps.Equal(a.Labels, b.Labels) && a.AddressType == b.AddressType &&
		equality.Semantic.DeepEqual(a.Endpoints, b.Endpoints) && equality.Semantic.DeepEqual(a.Ports, b.Ports)
}
