package frontdoor

import (
	"errors"
	"sync"
	"testing"

	"github.com/grayzone/grayzone/actuator"
)

// A zone returning from a shift at w % weighs w against 100 for each full
// zone: w/(w+200) of the regional requests with three zones, the other two
// the rest evenly. The turn order is exact over each cycle, so the bound is
// tight and the test cannot flake: within 2 picks of the share over any
// count of picks, from any starting point of the turn counter.
func TestWeightGivesAShiftedZoneItsFractionOfRegionalTraffic(t *testing.T) {
	tb := newTable3(t, 2, DefaultHealthPolicy)
	if err := tb.SetShifted("az1", true); err != nil {
		t.Fatal(err)
	}
	if got := byZone(countRegional(t, tb, 300)); got["az1"] != 0 {
		t.Fatalf("shifted at weight 0: az1 got %d picks, want 0", got["az1"])
	}
	for _, w := range []int{5, 25, 50, 100} {
		if err := tb.SetWeight("az1", w); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{60, 997, 6000} {
			got := byZone(countRegional(t, tb, n))
			want := float64(n) * float64(w) / float64(w+200)
			if d := float64(got["az1"]) - want; d > 2 || d < -2 {
				t.Errorf("weight %d %%, %d picks: az1 got %d, want %.1f ± 2", w, n, got["az1"], want)
			}
			rest := (float64(n) - want) / 2
			for _, z := range []string{"az2", "az3"} {
				if d := float64(got[z]) - rest; d > 2 || d < -2 {
					t.Errorf("weight %d %%, %d picks: %s got %d, want %.1f ± 2", w, n, z, got[z], rest)
				}
			}
		}
	}
	// Spread, not bursts: at 5 % (one turn in 41), never two az1 picks less
	// than 40 apart.
	if err := tb.SetWeight("az1", 5); err != nil {
		t.Fatal(err)
	}
	s, last := tb.Snapshot(), -1000
	for i := range 1200 {
		if s.PickRegional().Zone == "az1" {
			if i-last < 40 {
				t.Fatalf("az1 picked at %d and %d: bursts", last, i)
			}
			last = i
		}
	}
	// Ending the shift resets the weight: the next shift starts at 0.
	if err := tb.SetShifted("az1", false); err != nil {
		t.Fatal(err)
	}
	if tb.Weight("az1") != 0 {
		t.Errorf("weight %d after the shift ended, want 0", tb.Weight("az1"))
	}
	assertCounts(t, "after the shift", byZone(countRegional(t, tb, 300)), map[string]int{"az1": 100, "az2": 100, "az3": 100})
}

// Concurrent picks on one snapshot share the turn counter: the fractions
// hold however the goroutines interleave.
func TestWeightHoldsUnderConcurrentPicks(t *testing.T) {
	tb := newTable3(t, 1, DefaultHealthPolicy)
	_ = tb.SetShifted("az2", true)
	_ = tb.SetWeight("az2", 25)
	s := tb.Snapshot()
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]int{}
			for range 2400 {
				local[s.PickRegional().Zone]++
			}
			mu.Lock()
			for z, n := range local {
				got[z] += n
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	// 9600 picks are 1066 whole cycles of 9 (4, 1, 4) and 6 picks more.
	if got["az2"] < 1066 || got["az2"] > 1067 || got["az1"]+got["az2"]+got["az3"] != 9600 {
		t.Errorf("concurrent, az2 at 25 %%: %v, want az2 1066 or 1067 of 9600", got)
	}
}

func TestWeightErrorsAndFence(t *testing.T) {
	tb := newTable3(t, 1, DefaultHealthPolicy)
	if err := tb.SetWeight("az9", 5); err == nil {
		t.Error("unknown zone: no error")
	}
	if err := tb.SetWeight("az1", 101); err == nil {
		t.Error("weight 101: no error")
	}
	if err := tb.SetShiftedFenced("az1", true, 5); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetWeightFenced("az1", 25, 4); !errors.Is(err, ErrStaleFence) {
		t.Errorf("weight from a deposed leader: %v, want ErrStaleFence", err)
	}
	if err := tb.SetWeightFenced("az1", 25, 5); err != nil || tb.Weight("az1") != 25 {
		t.Errorf("fenced weight: %v, weight %d", err, tb.Weight("az1"))
	}
	var w actuator.Weigher = Actuator{Table: tb}
	_ = w
}
