package instancegroup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/grayzone/grayzone/actuator"
)

var zones = []string{"az1", "az2", "az3"}

// fakeLauncher records calls and fails the ones it is told to.
type fakeLauncher struct {
	mu         sync.Mutex
	calls      []string       // "launch az2-3", "terminate az2-3", with " FAIL" when it failed
	failOnce   map[string]int // "launch az3-3" -> failures left
	failAlways func(op string, in Instance) bool
}

var errCapacity = errors.New("insufficient capacity")

func (l *fakeLauncher) do(op string, in Instance) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	call := op + " " + in.ID
	fail := l.failAlways != nil && l.failAlways(op, in)
	if l.failOnce[call] > 0 {
		l.failOnce[call]--
		fail = true
	}
	if fail {
		l.calls = append(l.calls, call+" FAIL")
		return errCapacity
	}
	l.calls = append(l.calls, call)
	return nil
}

func (l *fakeLauncher) Launch(_ context.Context, in Instance) error {
	if !in.Extra || in.ForZone == "" || in.ForZone == in.Zone {
		return fmt.Errorf("launch of %+v: not replacement capacity", in)
	}
	return l.do("launch", in)
}

func (l *fakeLauncher) Terminate(_ context.Context, in Instance) error { return l.do("terminate", in) }

func (l *fakeLauncher) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.calls
	l.calls = nil
	return out
}

// initial builds the starting instances: counts per zone, ids <zone>-<n> from 1.
func initial(counts map[string]int) []Instance {
	var out []Instance
	for _, z := range zones {
		for n := 1; n <= counts[z]; n++ {
			out = append(out, Instance{ID: fmt.Sprintf("%s-%d", z, n), Zone: z})
		}
	}
	return out
}

func newGroup(counts map[string]int) (*Group, *fakeLauncher, *atomic.Bool) {
	l := &fakeLauncher{failOnce: map[string]int{}}
	up := new(atomic.Bool)
	up.Store(true)
	return New(zones, initial(counts), l, up.Load), l, up
}

func ids(ins []Instance, keep func(Instance) bool) []string {
	var out []string
	for _, in := range ins {
		if keep(in) {
			out = append(out, in.ID)
		}
	}
	return out
}

func extrasFor(g *Group, zone string) []string {
	return ids(g.Instances(), func(in Instance) bool { return in.Extra && in.ForZone == zone })
}

func eq(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

var ctx = context.Background()

func TestExcludeLaunchesReplacementCapacityRoundRobin(t *testing.T) {
	g, l, _ := newGroup(map[string]int{"az1": 3, "az2": 2, "az3": 2})
	if err := g.Exclude(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "launcher calls", l.take(), []string{"launch az2-3", "launch az3-3", "launch az2-4"})
	if !g.Excluded("az1") || g.Excluded("az2") {
		t.Error("Excluded: want az1 only")
	}
	want := []Instance{
		{ID: "az1-1", Zone: "az1"}, {ID: "az1-2", Zone: "az1"}, {ID: "az1-3", Zone: "az1"},
		{ID: "az2-1", Zone: "az2"}, {ID: "az2-2", Zone: "az2"},
		{ID: "az3-1", Zone: "az3"}, {ID: "az3-2", Zone: "az3"},
		{ID: "az2-3", Zone: "az2", Extra: true, ForZone: "az1"},
		{ID: "az3-3", Zone: "az3", Extra: true, ForZone: "az1"},
		{ID: "az2-4", Zone: "az2", Extra: true, ForZone: "az1"},
	}
	if got := g.Instances(); !slices.Equal(got, want) {
		t.Errorf("Instances:\n got  %+v\n want %+v", got, want)
	}
	s := g.Snapshot()
	if !slices.Equal(s.Excluded, []string{"az1"}) || s.Extra != 3 ||
		s.PerZone["az1"] != 3 || s.PerZone["az2"] != 4 || s.PerZone["az3"] != 3 {
		t.Errorf("Snapshot = %+v", s)
	}
	if got, want := s.String(), "az1=3(excluded) az2=4 az3=3"; got != want {
		t.Errorf("Snapshot.String = %q, want %q", got, want)
	}

	// Again: nothing more to launch.
	if err := g.Exclude(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "launcher calls on a repeated Exclude", l.take(), nil)
	if got := g.Snapshot().Extra; got != 3 {
		t.Errorf("Extra = %d after a repeated Exclude, want 3", got)
	}
}

func TestExcludeEmptyZoneLaunchesNothing(t *testing.T) {
	g, l, _ := newGroup(map[string]int{"az2": 1, "az3": 1})
	if err := g.Exclude(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "launcher calls", l.take(), nil)
	if !g.Excluded("az1") {
		t.Error("az1 not excluded")
	}
}

func TestExcludeSkipsZonesAlreadyExcluded(t *testing.T) {
	g, l, _ := newGroup(map[string]int{"az1": 2, "az2": 2, "az3": 2})
	if err := g.Exclude(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "exclude az1", l.take(), []string{"launch az2-3", "launch az3-3"})
	// az2's own instances are az2-1 and az2-2; az2-3 is az1's replacement and does not count.
	if err := g.Exclude(ctx, "az2"); err != nil {
		t.Fatal(err)
	}
	eq(t, "exclude az2 (only az3 takes capacity)", l.take(), []string{"launch az3-4", "launch az3-5"})
	// No zone left to take capacity.
	if err := g.Exclude(ctx, "az3"); err == nil {
		t.Error("excluding the last included zone: no error")
	}
	if g.Excluded("az3") {
		t.Error("az3 marked excluded though its exclusion was refused")
	}
	eq(t, "refused exclude", l.take(), nil)
	if got := g.Snapshot().Excluded; !slices.Equal(got, []string{"az1", "az2"}) {
		t.Errorf("Excluded = %v", got)
	}
	if got := g.ExcludedZones(); !slices.Equal(got, []string{"az1", "az2"}) {
		t.Errorf("ExcludedZones = %v", got)
	}
}

func TestExcludeRetryAfterLaunchFailureLaunchesOnlyTheRest(t *testing.T) {
	g, l, _ := newGroup(map[string]int{"az1": 3, "az2": 2, "az3": 2})
	l.failOnce["launch az3-3"] = 1
	err := g.Exclude(ctx, "az1")
	if !errors.Is(err, errCapacity) || !strings.Contains(err.Error(), "az3-3") {
		t.Fatalf("Exclude = %v, want the launcher's error naming az3-3", err)
	}
	eq(t, "first attempt", l.take(), []string{"launch az2-3", "launch az3-3 FAIL"})
	eq(t, "recorded after the failure", extrasFor(g, "az1"), []string{"az2-3"})

	if err := g.Exclude(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "retry", l.take(), []string{"launch az3-3", "launch az2-4"})
	eq(t, "extras", extrasFor(g, "az1"), []string{"az2-3", "az3-3", "az2-4"})

	if err := g.Exclude(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "third call", l.take(), nil)
}

func TestControlPlaneUnavailableChangesNothing(t *testing.T) {
	g, l, up := newGroup(map[string]int{"az1": 2, "az2": 2, "az3": 2})
	up.Store(false)
	before := g.Instances()
	for name, op := range map[string]func(context.Context, string) error{"Exclude": g.Exclude, "Include": g.Include, "RemoveExtra": g.RemoveExtra} {
		if err := op(ctx, "az1"); !errors.Is(err, ErrControlPlaneUnavailable) {
			t.Errorf("%s while unavailable = %v, want ErrControlPlaneUnavailable", name, err)
		}
	}
	eq(t, "launcher calls while unavailable", l.take(), nil)
	if g.Excluded("az1") || !slices.Equal(g.Instances(), before) {
		t.Error("state changed while the control plane was unavailable")
	}

	// Up: exclude. Down again: the exclusion stays and so does the capacity.
	up.Store(true)
	if err := g.Exclude(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	l.take()
	up.Store(false)
	if err := g.Include(ctx, "az1"); !errors.Is(err, ErrControlPlaneUnavailable) {
		t.Errorf("Include while unavailable = %v", err)
	}
	if !g.Excluded("az1") {
		t.Error("az1 included while the control plane was unavailable")
	}
	if err := g.RemoveExtra(ctx, "az1"); !errors.Is(err, ErrControlPlaneUnavailable) {
		t.Errorf("RemoveExtra while unavailable = %v", err)
	}
	eq(t, "launcher calls while unavailable", l.take(), nil)
	if got := g.Snapshot().Extra; got != 2 {
		t.Errorf("Extra = %d, want 2", got)
	}
}

func TestNilAvailableMeansAlwaysUp(t *testing.T) {
	l := &fakeLauncher{}
	g := New(zones, initial(map[string]int{"az1": 1}), l, nil)
	if err := g.Exclude(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "launcher calls", l.take(), []string{"launch az2-1"})
}

func TestIncludeKeepsExtraCapacity(t *testing.T) {
	g, l, _ := newGroup(map[string]int{"az1": 2, "az2": 2, "az3": 2})
	if err := g.Include(ctx, "az1"); err != nil { // not excluded: harmless
		t.Fatal(err)
	}
	if err := g.Exclude(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	l.take()
	for range 2 {
		if err := g.Include(ctx, "az1"); err != nil {
			t.Fatal(err)
		}
	}
	if g.Excluded("az1") {
		t.Error("az1 still excluded after Include")
	}
	eq(t, "launcher calls on Include", l.take(), nil)
	eq(t, "extras after Include", extrasFor(g, "az1"), []string{"az2-3", "az3-3"})
}

func TestRemoveExtra(t *testing.T) {
	g, l, _ := newGroup(map[string]int{"az1": 2, "az2": 2, "az3": 2})
	for _, z := range []string{"az1", "az2"} {
		if err := g.Exclude(ctx, z); err != nil {
			t.Fatal(err)
		}
	}
	eq(t, "launches", l.take(), []string{"launch az2-3", "launch az3-3", "launch az3-4", "launch az3-5"})

	// Refused while the zone is excluded: its replacement capacity is carrying it.
	if err := g.RemoveExtra(ctx, "az1"); err == nil {
		t.Error("RemoveExtra while excluded: no error")
	}
	eq(t, "calls on a refused RemoveExtra", l.take(), nil)

	if err := g.Include(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	if err := g.RemoveExtra(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "terminations", l.take(), []string{"terminate az2-3", "terminate az3-3"})
	eq(t, "az1's extras", extrasFor(g, "az1"), nil)
	eq(t, "az2's extras are untouched", extrasFor(g, "az2"), []string{"az3-4", "az3-5"})
	eq(t, "instances", ids(g.Instances(), func(Instance) bool { return true }),
		[]string{"az1-1", "az1-2", "az2-1", "az2-2", "az3-1", "az3-2", "az3-4", "az3-5"})

	// Again: nothing left to do.
	if err := g.RemoveExtra(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "repeated RemoveExtra", l.take(), nil)

	// Numbering never reuses an id.
	if err := g.Exclude(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "second exclusion of az1", l.take(), []string{"launch az3-6", "launch az3-7"})
}

func TestRemoveExtraTerminateFailureThenRetry(t *testing.T) {
	g, l, _ := newGroup(map[string]int{"az1": 3, "az2": 1, "az3": 1})
	if err := g.Exclude(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	l.take()
	if err := g.Include(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	l.failOnce["terminate az3-2"] = 1
	err := g.RemoveExtra(ctx, "az1")
	if !errors.Is(err, errCapacity) || !strings.Contains(err.Error(), "az3-2") {
		t.Fatalf("RemoveExtra = %v, want the launcher's error naming az3-2", err)
	}
	// The first failure stops the round: nothing after it is attempted.
	eq(t, "first attempt", l.take(), []string{"terminate az2-2", "terminate az3-2 FAIL"})
	eq(t, "extras left", extrasFor(g, "az1"), []string{"az3-2", "az2-3"})
	if err := g.RemoveExtra(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "retry", l.take(), []string{"terminate az3-2", "terminate az2-3"})
	if got := g.Snapshot().Extra; got != 0 {
		t.Errorf("Extra = %d, want 0", got)
	}
}

func TestUnknownZone(t *testing.T) {
	g, l, up := newGroup(map[string]int{"az1": 1})
	up.Store(false) // the zone is checked first
	for name, op := range map[string]func(context.Context, string) error{"Exclude": g.Exclude, "Include": g.Include, "RemoveExtra": g.RemoveExtra} {
		err := op(ctx, "az9")
		if err == nil || errors.Is(err, ErrControlPlaneUnavailable) || !strings.Contains(err.Error(), "az9") {
			t.Errorf("%s(az9) = %v, want an unknown-zone error", name, err)
		}
	}
	eq(t, "launcher calls", l.take(), nil)
}

func TestNewCopiesAndNumbersAfterInitial(t *testing.T) {
	in := initial(map[string]int{"az1": 2, "az2": 3})
	l := &fakeLauncher{}
	g := New(zones, in, l, nil)
	in[0].ID = "mutated"
	got := g.Instances()
	got[1].ID = "mutated"
	eq(t, "instances", ids(g.Instances(), func(Instance) bool { return true }),
		[]string{"az1-1", "az1-2", "az2-1", "az2-2", "az2-3"})
	if err := g.Exclude(ctx, "az1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "launches continue each zone's numbering", l.take(), []string{"launch az2-4", "launch az3-1"})
	if s := g.Snapshot(); s.PerZone["az3"] != 1 || s.String() != "az1=2(excluded) az2=4 az3=1" {
		t.Errorf("Snapshot = %+v (%s)", s, s)
	}
}

func TestActuator(t *testing.T) {
	g, l, _ := newGroup(map[string]int{"az1": 1, "az2": 1, "az3": 1})
	a := Actuator{Group: g}
	act := func(k actuator.Kind) error {
		return a.Apply(ctx, actuator.Action{Kind: k, Resource: "app", Zone: "az1"})
	}
	if err := act(actuator.ExcludeZone); err != nil || !g.Excluded("az1") {
		t.Fatalf("ExcludeZone: %v, excluded=%v", err, g.Excluded("az1"))
	}
	if err := act(actuator.RemoveExtra); err == nil {
		t.Error("RemoveExtra while excluded: no error")
	}
	if err := act(actuator.IncludeZone); err != nil || g.Excluded("az1") {
		t.Fatalf("IncludeZone: %v, excluded=%v", err, g.Excluded("az1"))
	}
	if err := act(actuator.RemoveExtra); err != nil {
		t.Fatal(err)
	}
	eq(t, "calls", l.take(), []string{"launch az2-2", "terminate az2-2"})
	for _, k := range []actuator.Kind{actuator.ShiftAway, actuator.EndShift, "reboot"} {
		if err := act(k); !errors.Is(err, actuator.ErrUnsupported) {
			t.Errorf("Apply(%s) = %v, want ErrUnsupported", k, err)
		}
	}
	eq(t, "calls for unsupported kinds", l.take(), nil)
}

// TestConcurrentUse is for -race.
func TestConcurrentUse(t *testing.T) {
	g, _, _ := newGroup(map[string]int{"az1": 2, "az2": 2, "az3": 2})
	var wg sync.WaitGroup
	for _, z := range zones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				_ = g.Exclude(ctx, z)
				_ = g.Include(ctx, z)
				_ = g.RemoveExtra(ctx, z)
				_ = g.Snapshot().String()
				_ = g.Excluded(z)
			}
		}()
	}
	wg.Wait()
	if s := g.Snapshot(); s.Extra != 0 || len(s.Excluded) != 0 {
		t.Errorf("after every zone was included and its extras removed: %+v", s)
	}
}
