package frontdoor

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

var zones3 = []string{"az1", "az2", "az3"}

// newTable3 returns a table over az1..az3 with perZone targets each, named
// <zone>-<n> from 1, and the given health policy.
func newTable3(t *testing.T, perZone int, p HealthPolicy) *Table {
	t.Helper()
	tb := NewTable(zones3, p)
	for _, z := range zones3 {
		for n := 1; n <= perZone; n++ {
			if err := tb.AddTarget(Target{ID: fmt.Sprintf("%s-%d", z, n), Zone: z}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tb
}

// countRegional makes n regional picks, each on a fresh snapshot, and counts them by target id.
func countRegional(t *testing.T, tb *Table, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		tg := tb.Snapshot().PickRegional()
		if tg == nil {
			t.Fatal("PickRegional: nil")
		}
		got[tg.ID]++
	}
	return got
}

func countZonal(t *testing.T, tb *Table, zone string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		tg := tb.Snapshot().PickZonal(zone)
		if tg == nil {
			t.Fatalf("PickZonal(%s): nil", zone)
		}
		if tg.Zone != zone {
			t.Fatalf("PickZonal(%s) picked %s in %s", zone, tg.ID, tg.Zone)
		}
		got[tg.ID]++
	}
	return got
}

func byZone(counts map[string]int) map[string]int {
	out := map[string]int{}
	for id, n := range counts {
		out[id[:strings.LastIndexByte(id, '-')]] += n
	}
	return out
}

func assertCounts(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s got %d picks, want %d (all: %v)", what, k, got[k], v, got)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && v != 0 {
			t.Errorf("%s: %s got %d picks, want none (all: %v)", what, k, v, got)
		}
	}
}

func TestRegionalRoundRobinIsEvenAcrossZonesAndTargets(t *testing.T) {
	tb := newTable3(t, 2, DefaultHealthPolicy)
	got := countRegional(t, tb, 600)
	want := map[string]int{}
	for _, z := range zones3 {
		want[z+"-1"], want[z+"-2"] = 100, 100
	}
	assertCounts(t, "regional", got, want)

	// On one snapshot too: strict rotation over zones, then targets.
	s := tb.Snapshot()
	var seq []string
	for range 6 {
		seq = append(seq, s.PickRegional().Zone)
	}
	for i := 3; i < 6; i++ {
		if seq[i] != seq[i-3] {
			t.Errorf("zone rotation %v is not periodic over 3 zones", seq)
		}
	}
	if s := slices.Sorted(slices.Values(seq[:3])); !slices.Equal(s, zones3) {
		t.Errorf("first 3 regional picks %v, want each zone once", seq[:3])
	}
}

func TestRegionalSpreadsByZoneNotByTarget(t *testing.T) {
	// Cross-zone load balancing off: a zone with fewer targets still gets its
	// share of the zones, and its targets carry more each.
	tb := NewTable([]string{"az1", "az2"}, DefaultHealthPolicy)
	for _, tg := range []Target{{ID: "az1-1", Zone: "az1"}, {ID: "az2-1", Zone: "az2"}, {ID: "az2-2", Zone: "az2"}} {
		if err := tb.AddTarget(tg); err != nil {
			t.Fatal(err)
		}
	}
	got := countRegional(t, tb, 400)
	assertCounts(t, "regional", got, map[string]int{"az1-1": 200, "az2-1": 100, "az2-2": 100})
}

func TestZonalRoundRobin(t *testing.T) {
	tb := newTable3(t, 3, DefaultHealthPolicy)
	got := countZonal(t, tb, "az2", 300)
	assertCounts(t, "zonal az2", got, map[string]int{"az2-1": 100, "az2-2": 100, "az2-3": 100})
	if tg := tb.Snapshot().PickZonal("nowhere"); tg != nil {
		t.Errorf("PickZonal(unknown zone) = %v, want nil", tg)
	}
}

func TestShiftRemovesZoneFromRegionalOnly(t *testing.T) {
	tb := newTable3(t, 2, DefaultHealthPolicy)
	if err := tb.SetShifted("az1", true); err != nil {
		t.Fatal(err)
	}
	if !tb.Shifted("az1") || tb.Shifted("az2") {
		t.Fatalf("Shifted: az1=%v az2=%v, want true false", tb.Shifted("az1"), tb.Shifted("az2"))
	}
	if got := tb.Snapshot().RegionalZones(); !slices.Equal(got, []string{"az2", "az3"}) {
		t.Errorf("RegionalZones = %v, want [az2 az3]", got)
	}
	got := byZone(countRegional(t, tb, 400))
	assertCounts(t, "regional while az1 shifted", got, map[string]int{"az2": 200, "az3": 200})

	// The zonal endpoint still sends to the shifted zone's own targets.
	assertCounts(t, "zonal az1 while shifted", countZonal(t, tb, "az1", 10), map[string]int{"az1-1": 5, "az1-2": 5})

	// Shifting twice is harmless; unshift restores.
	if err := tb.SetShifted("az1", true); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetShifted("az1", false); err != nil {
		t.Fatal(err)
	}
	if tb.Shifted("az1") {
		t.Error("az1 still shifted after SetShifted(false)")
	}
	if got := tb.Snapshot().RegionalZones(); !slices.Equal(got, zones3) {
		t.Errorf("RegionalZones after unshift = %v, want %v", got, zones3)
	}
	got = byZone(countRegional(t, tb, 300))
	assertCounts(t, "regional after unshift", got, map[string]int{"az1": 100, "az2": 100, "az3": 100})

	if err := tb.SetShifted("nowhere", true); err == nil {
		t.Error("SetShifted(unknown zone): no error")
	}
}

func TestEveryZoneShiftedFallsBackToAll(t *testing.T) {
	tb := newTable3(t, 1, DefaultHealthPolicy)
	for _, z := range zones3 {
		if err := tb.SetShifted(z, true); err != nil {
			t.Fatal(err)
		}
	}
	if got := tb.Snapshot().RegionalZones(); !slices.Equal(got, zones3) {
		t.Errorf("RegionalZones with every zone shifted = %v, want %v", got, zones3)
	}
	assertCounts(t, "regional, all shifted", countRegional(t, tb, 30), map[string]int{"az1-1": 10, "az2-1": 10, "az3-1": 10})
}

func TestEmptyZoneIsNotInRegional(t *testing.T) {
	tb := NewTable(zones3, DefaultHealthPolicy)
	if tg := tb.Snapshot().PickRegional(); tg != nil {
		t.Fatalf("PickRegional on an empty table = %v, want nil", tg)
	}
	if tg := tb.Snapshot().PickZonal("az1"); tg != nil {
		t.Fatalf("PickZonal on an empty zone = %v, want nil", tg)
	}
	if err := tb.AddTarget(Target{ID: "az2-1", Zone: "az2"}); err != nil {
		t.Fatal(err)
	}
	if got := tb.Snapshot().RegionalZones(); !slices.Equal(got, []string{"az2"}) {
		t.Errorf("RegionalZones = %v, want [az2]", got)
	}
	// The only zone with targets is shifted: the fallback still serves from it.
	if err := tb.SetShifted("az2", true); err != nil {
		t.Fatal(err)
	}
	if tg := tb.Snapshot().PickRegional(); tg == nil || tg.ID != "az2-1" {
		t.Errorf("PickRegional with the only populated zone shifted = %v, want az2-1", tg)
	}
}

func healthOf(t *testing.T, tb *Table, id string) bool {
	t.Helper()
	for _, ts := range tb.Targets() {
		if ts.ID == id {
			return ts.Healthy
		}
	}
	t.Fatalf("target %s not in table", id)
	return false
}

// report feeds a pattern of results ("F" fail, "P" pass) for id and returns
// the positions (1-based) at which ReportHealth said the state changed.
func report(tb *Table, id, pattern string) []int {
	var changed []int
	for i, c := range pattern {
		if tb.ReportHealth(id, c == 'P') {
			changed = append(changed, i+1)
		}
	}
	return changed
}

func TestHealthThresholds(t *testing.T) {
	for _, tc := range []struct {
		name        string
		policy      HealthPolicy
		pattern     string
		wantChanged []int
		wantHealthy bool
	}{
		{"default: 2 failures take it out", HealthPolicy{}, "FF", []int{2}, false},
		{"one failure is not enough", HealthPolicy{}, "F", nil, true},
		{"passes while healthy change nothing", HealthPolicy{}, "PPPP", nil, true},
		{"out, then 2 passes bring it back", HealthPolicy{}, "FFPP", []int{2, 4}, true},
		{"out, one pass is not enough", HealthPolicy{}, "FFP", []int{2}, false},
		{"alternating never flaps", HealthPolicy{}, "FPFPFPFPFP", nil, true},
		{"alternating while out never flaps", HealthPolicy{}, "FFPFPFPFPF", []int{2}, false},
		{"a pass resets the failure streak", HealthPolicy{UnhealthyThreshold: 3}, "FFPFFPFF", nil, true},
		{"3 failures, 5 passes", HealthPolicy{HealthyThreshold: 5, UnhealthyThreshold: 3}, "FFFPPPPFPPPPP", []int{3, 13}, true},
		{"threshold 1 follows every result", HealthPolicy{HealthyThreshold: 1, UnhealthyThreshold: 1}, "FPFP", []int{1, 2, 3, 4}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := NewTable([]string{"az1"}, tc.policy)
			for _, id := range []string{"az1-1", "az1-2"} {
				if err := tb.AddTarget(Target{ID: id, Zone: "az1"}); err != nil {
					t.Fatal(err)
				}
			}
			if got := report(tb, "az1-1", tc.pattern); !slices.Equal(got, tc.wantChanged) {
				t.Errorf("changed at %v, want %v", got, tc.wantChanged)
			}
			if got := healthOf(t, tb, "az1-1"); got != tc.wantHealthy {
				t.Errorf("healthy = %v, want %v", got, tc.wantHealthy)
			}
			if !healthOf(t, tb, "az1-2") {
				t.Error("the other target's health changed")
			}
			// Routing follows health: an unhealthy target gets no picks while another is healthy.
			want := map[string]int{"az1-2": 10}
			if tc.wantHealthy {
				want = map[string]int{"az1-1": 5, "az1-2": 5}
			}
			assertCounts(t, "zonal", countZonal(t, tb, "az1", 10), want)
			assertCounts(t, "regional", countRegional(t, tb, 10), want)
		})
	}
}

func TestReportHealthUnknownTarget(t *testing.T) {
	tb := newTable3(t, 1, DefaultHealthPolicy)
	before := tb.Snapshot()
	for range 5 {
		if tb.ReportHealth("nobody", false) {
			t.Fatal("ReportHealth(unknown) reported a change")
		}
	}
	if tb.Snapshot() != before {
		t.Error("ReportHealth(unknown) published a new snapshot")
	}
}

func TestNoSnapshotWithoutRoutingChange(t *testing.T) {
	tb := newTable3(t, 2, DefaultHealthPolicy)
	s := tb.Snapshot()
	tb.ReportHealth("az1-1", false) // streak 1 of 2: routing unchanged
	tb.ReportHealth("az1-2", true)  // agrees with state
	if err := tb.SetShifted("az2", false); err != nil {
		t.Fatal(err)
	}
	if tb.Snapshot() != s {
		t.Error("a new snapshot was published though routing did not change")
	}
}

func TestFailOpenWhenEveryTargetOfAZoneIsUnhealthy(t *testing.T) {
	tb := newTable3(t, 2, DefaultHealthPolicy)
	report(tb, "az1-1", "FF")
	assertCounts(t, "zonal az1, one unhealthy", countZonal(t, tb, "az1", 10), map[string]int{"az1-2": 10})
	report(tb, "az1-2", "FF")
	if healthOf(t, tb, "az1-1") || healthOf(t, tb, "az1-2") {
		t.Fatal("targets not marked unhealthy")
	}
	// Every target of az1 is unhealthy: its endpoint routes to all of them.
	assertCounts(t, "zonal az1, all unhealthy", countZonal(t, tb, "az1", 10), map[string]int{"az1-1": 5, "az1-2": 5})
	// One comes back: only it gets traffic again.
	report(tb, "az1-2", "PP")
	assertCounts(t, "zonal az1, one back", countZonal(t, tb, "az1", 10), map[string]int{"az1-2": 10})
}

func TestAddAndRemoveTarget(t *testing.T) {
	tb := NewTable([]string{"az1", "az2"}, DefaultHealthPolicy)
	if err := tb.AddTarget(Target{ID: "x-1", Zone: "az9"}); err == nil {
		t.Error("AddTarget to an unknown zone: no error")
	}
	if err := tb.AddTarget(Target{ID: "az1-1", Zone: "az1", Addr: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if err := tb.AddTarget(Target{ID: "az1-1", Zone: "az1"}); err == nil {
		t.Error("AddTarget duplicate: no error")
	}
	if err := tb.AddTarget(Target{ID: "az1-2", Zone: "az1"}); err != nil {
		t.Fatal(err)
	}
	if err := tb.AddTarget(Target{ID: "az2-1", Zone: "az2"}); err != nil {
		t.Fatal(err)
	}
	want := []TargetStatus{
		{Target{ID: "az1-1", Zone: "az1", Addr: "127.0.0.1:1"}, true},
		{Target{ID: "az1-2", Zone: "az1"}, true},
		{Target{ID: "az2-1", Zone: "az2"}, true},
	}
	if got := tb.Targets(); !slices.Equal(got, want) {
		t.Errorf("Targets = %v, want %v", got, want)
	}
	// AppendTargets appends to what the caller passes, in its storage when it fits.
	buf := make([]TargetStatus, 1, 8)
	if got := tb.AppendTargets(buf); !slices.Equal(got[1:], want) || &got[0] != &buf[0] {
		t.Errorf("AppendTargets = %v (own storage: %v), want one zero status then %v", got, &got[0] == &buf[0], want)
	}
	// A newly added target starts healthy even when its zone's others are not.
	report(tb, "az1-1", "FF")
	report(tb, "az1-2", "FF")
	if err := tb.AddTarget(Target{ID: "az1-3", Zone: "az1"}); err != nil {
		t.Fatal(err)
	}
	assertCounts(t, "zonal az1 after add", countZonal(t, tb, "az1", 6), map[string]int{"az1-3": 6})

	tb.RemoveTarget("az1-3")
	tb.RemoveTarget("nobody") // ignored
	if got := len(tb.Targets()); got != 3 {
		t.Errorf("%d targets after RemoveTarget, want 3", got)
	}
	assertCounts(t, "zonal az1 after remove (fail open again)", countZonal(t, tb, "az1", 6), map[string]int{"az1-1": 3, "az1-2": 3})

	tb.RemoveTarget("az2-1")
	if got := tb.Snapshot().RegionalZones(); !slices.Equal(got, []string{"az1"}) {
		t.Errorf("RegionalZones after emptying az2 = %v, want [az1]", got)
	}
	if tg := tb.Snapshot().PickZonal("az2"); tg != nil {
		t.Errorf("PickZonal(empty az2) = %v, want nil", tg)
	}
	// An id can be registered again once removed.
	if err := tb.AddTarget(Target{ID: "az2-1", Zone: "az2"}); err != nil {
		t.Errorf("re-adding a removed id: %v", err)
	}
}

func TestZonesIsACopy(t *testing.T) {
	in := []string{"az1", "az2"}
	tb := NewTable(in, DefaultHealthPolicy)
	in[0] = "mutated"
	z := tb.Zones()
	z[1] = "mutated"
	if got := tb.Zones(); !slices.Equal(got, []string{"az1", "az2"}) {
		t.Errorf("Zones = %v after mutating the caller's slices", got)
	}
}

func TestSnapshotIsImmutable(t *testing.T) {
	tb := newTable3(t, 2, DefaultHealthPolicy)
	before := tb.Snapshot()

	if err := tb.SetShifted("az1", true); err != nil {
		t.Fatal(err)
	}
	report(tb, "az2-1", "FF")
	tb.RemoveTarget("az3-2")
	if err := tb.AddTarget(Target{ID: "az3-9", Zone: "az3"}); err != nil {
		t.Fatal(err)
	}
	if tb.Snapshot() == before {
		t.Fatal("no new snapshot after changes")
	}

	// The old snapshot routes exactly as before every change.
	if got := before.RegionalZones(); !slices.Equal(got, zones3) {
		t.Errorf("old snapshot RegionalZones = %v, want %v", got, zones3)
	}
	got := map[string]int{}
	for range 600 {
		got[before.PickRegional().ID]++
	}
	want := map[string]int{}
	for _, z := range zones3 {
		want[z+"-1"], want[z+"-2"] = 100, 100
	}
	assertCounts(t, "old snapshot regional", got, want)

	// The new one reflects them all.
	now := tb.Snapshot()
	if got := now.RegionalZones(); !slices.Equal(got, []string{"az2", "az3"}) {
		t.Errorf("new snapshot RegionalZones = %v", got)
	}
	got = map[string]int{}
	for range 400 {
		got[now.PickRegional().ID]++
	}
	assertCounts(t, "new snapshot regional", got, map[string]int{"az2-2": 200, "az3-1": 100, "az3-9": 100})

	// Picked targets are copies: changing one does not reach the table.
	tg := now.PickZonal("az1")
	tg.Addr = "mutated"
	for _, ts := range tb.Targets() {
		if ts.Addr == "mutated" {
			t.Error("mutating a picked target changed the table")
		}
	}
}

// TestConcurrentPicksWhileChanging is for -race: readers pick on snapshots
// while a writer shifts zones and flips health. Each pick must agree with the
// snapshot it was taken from.
func TestConcurrentPicksWhileChanging(t *testing.T) {
	tb := newTable3(t, 2, HealthPolicy{HealthyThreshold: 1, UnhealthyThreshold: 1})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s := tb.Snapshot()
				allowed := s.RegionalZones()
				tg := s.PickRegional()
				if tg == nil || !slices.Contains(allowed, tg.Zone) {
					errs <- fmt.Errorf("reader %d: picked %v, regional zones %v", r, tg, allowed)
					return
				}
				z := zones3[i%len(zones3)]
				if tg := s.PickZonal(z); tg == nil || tg.Zone != z {
					errs <- fmt.Errorf("reader %d: zonal %s picked %v", r, z, tg)
					return
				}
			}
		}()
	}
	for i := range 2000 {
		z := zones3[i%len(zones3)]
		if err := tb.SetShifted(z, i%2 == 0); err != nil {
			t.Fatal(err)
		}
		tb.ReportHealth(fmt.Sprintf("%s-%d", z, 1+i%2), i%3 == 0)
		_ = tb.Targets()
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCursorPicksAsTheCounters: picks through a Cursor are the ones the
// table's counters give, in the same order, through targets going
// unhealthy and back, a zone emptied, shifted and returning at a weight.
func TestCursorPicksAsTheCounters(t *testing.T) {
	p := HealthPolicy{HealthyThreshold: 1, UnhealthyThreshold: 1}
	shared, own := newTable3(t, 3, p), newTable3(t, 3, p)
	var c Cursor
	both := func(f func(tb *Table)) { f(shared); f(own) }
	steps := []func(tb *Table){
		func(tb *Table) {},
		func(tb *Table) { tb.ReportHealth("az1-2", false) },
		func(tb *Table) { tb.ReportHealth("az2-1", false); tb.ReportHealth("az2-3", false) },
		func(tb *Table) { _ = tb.SetShifted("az3", true) },
		func(tb *Table) { _ = tb.SetWeight("az3", 25) },
		func(tb *Table) { tb.ReportHealth("az1-2", true); tb.RemoveTarget("az2-2") },
		func(tb *Table) { _ = tb.SetShifted("az3", false); tb.RemoveTarget("az2-1"); tb.RemoveTarget("az2-3") },
	}
	for i, step := range steps {
		both(step)
		for n := range 50 {
			a, b := shared.Snapshot().PickRegional(), own.Snapshot().PickRegionalWith(&c)
			if (a == nil) != (b == nil) || a != nil && a.ID != b.ID {
				t.Fatalf("step %d, regional pick %d: counters %v, cursor %v", i, n, a, b)
			}
			z := zones3[n%len(zones3)]
			a, b = shared.Snapshot().PickZonal(z), own.Snapshot().PickZonalWith(&c, z)
			if (a == nil) != (b == nil) || a != nil && a.ID != b.ID {
				t.Fatalf("step %d, zonal pick %d in %s: counters %v, cursor %v", i, n, z, a, b)
			}
		}
	}
	if got := own.Snapshot().PickZonalWith(&c, "nowhere"); got != nil {
		t.Errorf("PickZonalWith(unknown zone) = %v, want nil", got)
	}
}
