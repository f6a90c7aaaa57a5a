package kubelease

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"

	"github.com/grayzone/grayzone/internal/clock"
)

// leaseStore is one Lease kept the way the API server keeps it: every write
// bumps the resourceVersion, and an update carrying a stale one is a
// conflict. (The election against a real API server, with real processes,
// is process_test.go; this drives the protocol step by step on a fake
// clock.)
type leaseStore struct {
	coordinationv1client.LeaseInterface // only Get, Create and Update are used
	mu                                  sync.Mutex
	lease                               *coordinationv1.Lease
	rv                                  int
}

var gr = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

func (s *leaseStore) Get(_ context.Context, name string, _ metav1.GetOptions) (*coordinationv1.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease == nil {
		return nil, apierrors.NewNotFound(gr, name)
	}
	return s.lease.DeepCopy(), nil
}

func (s *leaseStore) Create(_ context.Context, l *coordinationv1.Lease, _ metav1.CreateOptions) (*coordinationv1.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease != nil {
		return nil, apierrors.NewAlreadyExists(gr, l.Name)
	}
	return s.put(l), nil
}

func (s *leaseStore) Update(_ context.Context, l *coordinationv1.Lease, _ metav1.UpdateOptions) (*coordinationv1.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease == nil {
		return nil, apierrors.NewNotFound(gr, l.Name)
	}
	if l.ResourceVersion != s.lease.ResourceVersion {
		return nil, apierrors.NewConflict(gr, l.Name, nil)
	}
	return s.put(l), nil
}

func (s *leaseStore) put(l *coordinationv1.Lease) *coordinationv1.Lease {
	s.rv++
	s.lease = l.DeepCopy()
	s.lease.ResourceVersion = strconv.Itoa(s.rv)
	return s.lease.DeepCopy()
}

func (s *leaseStore) spec() coordinationv1.LeaseSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lease.Spec
}

type fakeClient struct{ leases *leaseStore }

func (c fakeClient) CoordinationV1() coordinationv1client.CoordinationV1Interface { return c }
func (c fakeClient) Leases(string) coordinationv1client.LeaseInterface            { return c.leases }
func (c fakeClient) RESTClient() rest.Interface                                   { return nil }

func elector(t *testing.T, store *leaseStore, clk clock.Clock, id string) *Elector {
	t.Helper()
	e, err := New(Options{Client: fakeClient{store}, Namespace: "ops", Name: "grayzone", Identity: id,
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestFollowerTakesOverOnlyAfterTheLeaseDurationAsItSawIt(t *testing.T) {
	ctx := context.Background()
	store := &leaseStore{}
	clk := clock.NewFake(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	a, b := elector(t, store, clk, "a"), elector(t, store, clk, "b")

	if !a.tryAcquireOrRenew(ctx) {
		t.Fatal("a could not create the lease")
	}
	if b.tryAcquireOrRenew(ctx) {
		t.Fatal("b took a lease a holds")
	}
	// a renews at +5s; b sees the change at +6s: the lease runs from there.
	clk.Advance(5 * time.Second)
	if !a.tryAcquireOrRenew(ctx) {
		t.Fatal("a could not renew")
	}
	clk.Advance(time.Second)
	if b.tryAcquireOrRenew(ctx) {
		t.Fatal("b took a renewed lease")
	}
	// a stops renewing (killed). b may take the lease 15s after it last saw
	// it change (+21s), not 15s after a's renewTime (+20s).
	clk.Advance(14 * time.Second) // +20s
	if b.tryAcquireOrRenew(ctx) {
		t.Fatal("b took the lease before its duration had passed since b last saw it change")
	}
	clk.Advance(time.Second + time.Millisecond) // +21s
	if !b.tryAcquireOrRenew(ctx) {
		t.Fatal("b did not take an expired lease")
	}
	s := store.spec()
	if *s.HolderIdentity != "b" || *s.LeaseTransitions != 1 || *s.LeaseDurationSeconds != 15 || !s.AcquireTime.Time.Equal(clk.Now()) {
		t.Errorf("lease after take-over: holder %s, transitions %d, duration %ds, acquired %s", *s.HolderIdentity, *s.LeaseTransitions, *s.LeaseDurationSeconds, s.AcquireTime)
	}
	// a comes back (its API calls were stuck): its cached copy is stale, it
	// reads b's lease and does not take it.
	if a.tryAcquireOrRenew(ctx) {
		t.Fatal("a took back the lease b holds")
	}
}

func TestRenewalKeepsAcquireTimeAndTransitions(t *testing.T) {
	ctx := context.Background()
	store := &leaseStore{}
	clk := clock.NewFake(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	a := elector(t, store, clk, "a")
	start := clk.Now()
	if !a.tryAcquireOrRenew(ctx) {
		t.Fatal("a could not create the lease")
	}
	for range 3 {
		clk.Advance(2 * time.Second)
		if !a.tryAcquireOrRenew(ctx) {
			t.Fatal("a could not renew")
		}
	}
	s := store.spec()
	if !s.AcquireTime.Time.Equal(start) || !s.RenewTime.Time.Equal(clk.Now()) || *s.LeaseTransitions != 0 {
		t.Errorf("after renewals: acquired %s (want %s), renewed %s (want %s), transitions %d (want 0)",
			s.AcquireTime, start, s.RenewTime, clk.Now(), *s.LeaseTransitions)
	}
}

// Two followers that both find the lease expired write with the same
// resourceVersion: one wins, the other gets a conflict and follows.
func TestOnlyOneOfTwoCandidatesTakesAnExpiredLease(t *testing.T) {
	ctx := context.Background()
	store := &leaseStore{}
	clk := clock.NewFake(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	old, b, c := elector(t, store, clk, "old"), elector(t, store, clk, "b"), elector(t, store, clk, "c")
	if !old.tryAcquireOrRenew(ctx) {
		t.Fatal("old could not create the lease")
	}
	if b.tryAcquireOrRenew(ctx) || c.tryAcquireOrRenew(ctx) {
		t.Fatal("a follower took a valid lease")
	}
	clk.Advance(16 * time.Second)
	// Both read the same expired lease; b writes first.
	staleForC, _ := store.Get(ctx, "grayzone", metav1.GetOptions{})
	if !b.tryAcquireOrRenew(ctx) {
		t.Fatal("b did not take the expired lease")
	}
	l := staleForC.DeepCopy()
	l.Spec.HolderIdentity = &c.o.Identity
	if _, err := c.leases.Update(ctx, l, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("a write from a stale read: %v, want a conflict", err)
	}
	if c.tryAcquireOrRenew(ctx) {
		t.Fatal("c took the lease b just took")
	}
	if h := *store.spec().HolderIdentity; h != "b" {
		t.Fatalf("holder %s, want b", h)
	}
}

// A clean stop releases the lease: no holder, a one-second duration; a
// follower takes it on its next attempt instead of after LeaseDuration.
func TestReleaseHandsOverAtOnce(t *testing.T) {
	ctx := context.Background()
	store := &leaseStore{}
	clk := clock.NewFake(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	a, b := elector(t, store, clk, "a"), elector(t, store, clk, "b")
	if !a.tryAcquireOrRenew(ctx) || b.tryAcquireOrRenew(ctx) {
		t.Fatal("a should lead and b follow")
	}
	a.release()
	s := store.spec()
	if *s.HolderIdentity != "" || *s.LeaseDurationSeconds != 1 || *s.LeaseTransitions != 0 {
		t.Fatalf("released lease: holder %q, duration %ds, transitions %d", *s.HolderIdentity, *s.LeaseDurationSeconds, *s.LeaseTransitions)
	}
	if !b.tryAcquireOrRenew(ctx) {
		t.Fatal("b did not take a released lease at once")
	}
	if s := store.spec(); *s.HolderIdentity != "b" || *s.LeaseTransitions != 1 {
		t.Errorf("after hand-over: holder %q, transitions %d", *s.HolderIdentity, *s.LeaseTransitions)
	}
	// A release by a replica that no longer holds the lease changes nothing.
	a.release()
	if h := *store.spec().HolderIdentity; h != "b" {
		t.Errorf("a's late release changed the holder to %q", h)
	}
}

// Run: a leader that cannot renew within RenewDeadline stops leading and
// Run returns ErrLost; a clean stop returns nil and releases the lease.
func TestRunLosesTheLeaseWhenRenewalsFail(t *testing.T) {
	store := &leaseStore{}
	clk := clock.NewFake(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	a := elector(t, store, clk, "a")
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	waitUntil(t, "a to lead", a.Leading)
	// Someone else writes the lease (an operator, or a replica that judged
	// it expired): every renewal now fails.
	store.mu.Lock()
	other := "intruder"
	store.lease.Spec.HolderIdentity = &other
	store.rv++
	store.lease.ResourceVersion = strconv.Itoa(store.rv)
	store.mu.Unlock()
	// Advance the fake clock until Run gives up (after RetryPeriod +
	// RenewDeadline of failed renewals).
	for deadline := time.Now().Add(30 * time.Second); ; {
		select {
		case err := <-done:
			if !errors.Is(err, ErrLost) {
				t.Fatalf("Run = %v, want ErrLost", err)
			}
			if a.Leading() {
				t.Error("still leading after Run returned")
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not give up a lease it cannot renew")
		}
		clk.Advance(500 * time.Millisecond)
		time.Sleep(time.Millisecond) // let Run's goroutine take its turn
	}
}

func TestRunReleasesOnCancel(t *testing.T) {
	store := &leaseStore{}
	a := elector(t, store, clock.Real{}, "a")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitUntil(t, "a to lead", a.Leading)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if s := store.spec(); *s.HolderIdentity != "" || *s.LeaseDurationSeconds != 1 {
		t.Errorf("lease after a clean stop: holder %q, duration %ds; want released", *s.HolderIdentity, *s.LeaseDurationSeconds)
	}
}

func TestNewRejectsInconsistentTimings(t *testing.T) {
	for _, o := range []Options{
		{Identity: "a", Namespace: "ops", Name: "gz", LeaseDuration: 10 * time.Second, RenewDeadline: 10 * time.Second},
		{Identity: "a", Namespace: "ops", Name: "gz", RenewDeadline: 2 * time.Second, RetryPeriod: 2 * time.Second},
		{Identity: "a", Namespace: "ops", Name: "gz", LeaseDuration: 500 * time.Millisecond, RenewDeadline: 400 * time.Millisecond, RetryPeriod: 100 * time.Millisecond},
		{Namespace: "ops", Name: "gz"},
		{Identity: "a", Name: "gz"},
	} {
		o.Client = fakeClient{&leaseStore{}}
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
	}
}

// TestEpochGrowsWithEveryHolder: the epoch a leader fences its orders with
// is the Lease's leaseTransitions + 1 when it took the lease, so the next
// holder's is greater; a replica that does not lead has none.
func TestEpochGrowsWithEveryHolder(t *testing.T) {
	store := &leaseStore{}
	clk := clock.NewFake(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	lead := func(e *Elector) (stop func()) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		for deadline := time.Now().Add(10 * time.Second); !e.Leading(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not take a free lease", e.o.Identity)
			}
		}
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b := elector(t, store, clk, "a"), elector(t, store, clk, "b")
	if a.Epoch() != 0 {
		t.Fatalf("epoch %d before leading", a.Epoch())
	}
	stop := lead(a)
	if a.Epoch() != 1 {
		t.Errorf("the Lease's first holder: epoch %d, want 1", a.Epoch())
	}
	stop() // released: b takes it at its first attempt
	if a.Epoch() != 0 {
		t.Errorf("after releasing: epoch %d, want 0", a.Epoch())
	}
	stop = lead(b)
	if b.Epoch() != 2 {
		t.Errorf("the next holder: epoch %d, want 2", b.Epoch())
	}
	stop()
	stop = lead(a) // a again: a change of holder, a greater epoch
	defer stop()
	if a.Epoch() != 3 {
		t.Errorf("a taking the lease back: epoch %d, want 3", a.Epoch())
	}
}
