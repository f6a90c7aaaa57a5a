package detect

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestSortAlarmsIsAStableSortByName: the permutation found once gives what
// a stable sort by name gives, on the tick that finds it and on later ticks
// with the same names (the reasons differ tick to tick), and again after the
// names change; a tick with the same alarms as the last gets the last slice.
func TestSortAlarmsIsAStableSortByName(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var e Engine
	for round := range 6 {
		n := 1 + rng.IntN(30)
		if round%2 == 1 {
			n = 25 // the same length as the round before: its names differ, then the next round's too
		}
		names := make([]string, n)
		for i := range names {
			names[i] = "alarm-" + strconv.Itoa(rng.IntN(12)) // duplicates: stability matters
		}
		for tick := range 3 {
			as := make([]AlarmStatus, n)
			for i := range as {
				as[i] = AlarmStatus{Name: names[i], Reason: Because(strconv.Itoa(100*tick + i))}
			}
			want := slices.Clone(as)
			slices.SortStableFunc(want, func(x, y AlarmStatus) int { return strings.Compare(x.Name, y.Name) })
			last := e.alarms
			as = e.sortAlarms(as)
			e.alarms = as
			if tick > 0 && &as[0] == &last[0] {
				t.Fatalf("round %d tick %d: the last tick's slice, for new reasons", round, tick)
			}
			for i := range as {
				if as[i].Name != want[i].Name || as[i].Reason.String() != want[i].Reason.String() {
					t.Fatalf("round %d tick %d: place %d is %s %q, want %s %q", round, tick, i, as[i].Name, as[i].Reason.String(), want[i].Name, want[i].Reason.String())
				}
			}
			again := make([]AlarmStatus, n)
			for i := range again {
				again[i] = AlarmStatus{Name: names[i], Reason: Because(strconv.Itoa(100*tick + i))}
			}
			if got := e.sortAlarms(again); &got[0] != &as[0] {
				t.Fatalf("round %d tick %d: the same alarms again: a new slice, want the last one", round, tick)
			}
		}
	}
}
