package leader

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/server/store"
)

// memLeases is the store's resource leases and membership in memory, on the
// test's clock: the same conditional take as the SQL (free, expired or
// already the holder's; the next epoch).
type memLeases struct {
	mu      sync.Mutex
	clock   *clock.Fake
	leases  map[string]*memLease
	members map[string]time.Time
	down    map[string]bool // holders cut off from the database
}

type memLease struct {
	holder, address string
	epoch           uint64
	expires         time.Time
}

func newMemLeases(c *clock.Fake) *memLeases {
	return &memLeases{clock: c, leases: map[string]*memLease{}, members: map[string]time.Time{}, down: map[string]bool{}}
}

var errCutOff = fmt.Errorf("dial tcp: i/o timeout")

func (m *memLeases) Heartbeat(_ context.Context, holder, address string, ttl time.Duration) ([]store.Member, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down[holder] {
		return nil, errCutOff
	}
	now := m.clock.Now()
	m.members[holder] = now.Add(ttl)
	var out []store.Member
	for h, exp := range m.members {
		if exp.After(now) {
			out = append(out, store.Member{Holder: h})
		}
	}
	return out, nil
}

func (m *memLeases) LeaveMembership(_ context.Context, holder string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.members, holder)
	return nil
}

func (m *memLeases) ResourceLeases(context.Context) ([]store.ResourceLease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.ResourceLease
	for r, l := range m.leases {
		out = append(out, store.ResourceLease{Resource: r, Holder: l.holder, Address: l.address, Epoch: l.epoch, Live: l.expires.After(m.clock.Now())})
	}
	return out, nil
}

func (m *memLeases) AcquireResourceLease(_ context.Context, res, holder, address string, ttl time.Duration) (store.ResourceLease, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down[holder] {
		return store.ResourceLease{}, false, errCutOff
	}
	now := m.clock.Now()
	l := m.leases[res]
	if l == nil {
		l = &memLease{}
		m.leases[res] = l
	} else if l.holder != holder && l.expires.After(now) {
		return store.ResourceLease{Resource: res, Holder: l.holder, Address: l.address, Epoch: l.epoch, Live: true}, false, nil
	}
	l.holder, l.address, l.epoch, l.expires = holder, address, l.epoch+1, now.Add(ttl)
	return store.ResourceLease{Resource: res, Holder: holder, Address: address, Epoch: l.epoch, Live: true}, true, nil
}

func (m *memLeases) RenewResourceLeases(_ context.Context, holder string, ttl time.Duration) (map[string]uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down[holder] {
		return nil, errCutOff
	}
	now := m.clock.Now()
	out := map[string]uint64{}
	for r, l := range m.leases {
		if l.holder == holder && l.expires.After(now) {
			l.expires = now.Add(ttl)
			out[r] = l.epoch
		}
	}
	return out, nil
}

func (m *memLeases) ReleaseResourceLease(_ context.Context, res, holder string, epoch uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.leases[res]; l != nil && l.holder == holder && l.epoch == epoch {
		l.expires = time.Unix(0, 0)
	}
	return nil
}

// fleet is replicas sharing n resources on one memLeases, stepped every Poll
// on the fake clock.
type fleet struct {
	t        *testing.T
	clock    *clock.Fake
	store    *memLeases
	tm       Timing
	runners  map[string]*ShardRunner
	stopped  map[string]bool
	resource []string
}

func newFleet(t *testing.T, n int, names ...string) *fleet {
	c := clock.NewFake(t0)
	f := &fleet{t: t, clock: c, store: newMemLeases(c), tm: TimingFor(3 * time.Second), runners: map[string]*ShardRunner{}, stopped: map[string]bool{}}
	for i := range n {
		f.resource = append(f.resource, fmt.Sprintf("svc-%03d", i))
	}
	for _, name := range names {
		f.join(name)
	}
	return f
}

func (f *fleet) join(name string) {
	f.runners[name] = NewShardRunner(f.store, name+"#1", name+":8080", f.resource, f.tm, f.clock, slog.New(slog.DiscardHandler))
}

// run steps every live replica every Poll for d.
func (f *fleet) run(d time.Duration) {
	for end := f.clock.Now().Add(d); f.clock.Now().Before(end); {
		for name, r := range f.runners {
			if !f.stopped[name] {
				r.Step(context.Background())
			}
		}
		f.clock.Advance(f.tm.Poll)
	}
}

// check: every resource is led by exactly one replica, and each leads
// between lo and hi; returns the count per replica.
func (f *fleet) check(lo, hi int) map[string]int {
	f.t.Helper()
	leaders := map[string][]string{}
	count := map[string]int{}
	for name, r := range f.runners {
		if f.stopped[name] {
			continue
		}
		for res := range r.Held() {
			leaders[res] = append(leaders[res], name)
			count[name]++
		}
	}
	for _, res := range f.resource {
		if len(leaders[res]) != 1 {
			f.t.Fatalf("%s is led by %v, want exactly one replica (counts %v)", res, leaders[res], count)
		}
	}
	for name, n := range count {
		if n < lo || n > hi {
			f.t.Fatalf("%s leads %d, want %d..%d (counts %v)", name, n, lo, hi, count)
		}
	}
	return count
}

// Three replicas share 300 resources about evenly; a fourth joins and the
// others give it their extras; one dies (stops renewing) and the rest take
// its resources within the lease; never two leaders of one resource.
func TestShardsSplitEvenlyAndMoveWithinTheLease(t *testing.T) {
	f := newFleet(t, 300, "a", "b", "c")
	f.run(2 * f.tm.Lease)
	f.check(100, 100)

	f.join("d")
	f.run(2 * f.tm.Lease)
	f.check(75, 75)

	// d dies: it stops stepping. Its resources move within the lease.
	f.stopped["d"] = true
	before := f.runners["a"].Held()
	f.run(f.tm.Lease)
	f.check(100, 100)
	for res, e := range f.runners["a"].Held() {
		if old, ok := before[res]; ok && old != e {
			t.Fatalf("%s changed epoch %d -> %d while a kept it", res, old, e)
		}
	}
}

// A replica cut off from the database stops leading on its own clock before
// anyone else can take its leases; the others then take them, with higher
// epochs, and no resource ever has two leaders.
func TestShardsCutOffReplicaStepsDownBeforeOthersTakeOver(t *testing.T) {
	f := newFleet(t, 30, "a", "b", "c")
	f.run(2 * f.tm.Lease)
	f.check(10, 10)
	cHeld := f.runners["c"].Held()
	f.store.mu.Lock()
	f.store.down["c#1"] = true
	f.store.mu.Unlock()
	for end := f.clock.Now().Add(f.tm.Lease); f.clock.Now().Before(end); {
		for _, name := range []string{"a", "b", "c"} {
			f.runners[name].Step(context.Background())
		}
		// Never two leaders: a resource c still leads is not led by a or b.
		for res := range f.runners["c"].Held() {
			for _, o := range []string{"a", "b"} {
				if _, ok := f.runners[o].Leads(res); ok {
					t.Fatalf("%s led by c (cut off) and %s at once", res, o)
				}
			}
		}
		f.clock.Advance(f.tm.Poll / 4)
	}
	if n := len(f.runners["c"].Held()); n != 0 {
		t.Fatalf("c, cut off for a lease, still leads %d", n)
	}
	f.stopped["c"] = true
	f.check(15, 15)
	for res, old := range cHeld {
		for _, o := range []string{"a", "b"} {
			if e, ok := f.runners[o].Leads(res); ok && e <= old {
				t.Fatalf("%s taken by %s under epoch %d, not above c's %d", res, o, e, old)
			}
		}
	}
}

// One replica alone leads everything.
func TestShardsOneReplicaLeadsAll(t *testing.T) {
	f := newFleet(t, 7, "a")
	f.run(f.tm.Lease)
	f.check(7, 7)
}
