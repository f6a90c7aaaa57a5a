package detect

import (
	"fmt"
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

// An assessment's zones and alarms never change once returned, though the
// engine hands them out of shared allocations (chunk) and reuses its
// scratch: every assessment of a run with a fault, kept whole, is the same
// at the end as when it was returned.
func TestAssessmentsDoNotChangeOnceReturned(t *testing.T) {
	for _, profile := range Profiles {
		tr := newTraffic(t, profile)
		tr.bad = func(z string, inst, sec int) (bool, bool) {
			return z == "az2" && sec >= 30 && tr.rng.Float64() < 0.3, false
		}
		var as []Assessment
		var copies [][2]string
		for sec := 0; sec < 90; sec++ {
			a := tr.run(sec, sec+1)[0]
			as = append(as, a)
			copies = append(copies, [2]string{fmt.Sprintf("%+v", a.Zones), fmt.Sprintf("%+v", a.Alarms)})
		}
		for i, a := range as {
			if got := [2]string{fmt.Sprintf("%+v", a.Zones), fmt.Sprintf("%+v", a.Alarms)}; got != copies[i] {
				t.Fatalf("%s: assessment %d changed after it was returned", profile, i)
			}
		}
	}
}
