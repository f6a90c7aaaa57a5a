package detect

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestAlarmsAreAStableSortByName: the permutation found once gives what a
// stable sort by name gives, on the tick that finds it and on later ticks
// with the same names, and again after the names change. A tick with the
// same alarms as the last gets the last Alarms; one whose reasons differ
// only in their numbers shares the last full set; any other change makes a
// new one. Every Alarms returned stays what it was when returned.
func TestAlarmsAreAStableSortByName(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var e Engine
	type kept struct {
		as   Alarms
		want []AlarmStatus
	}
	var all []kept
	for round := range 6 {
		n := 1 + rng.IntN(30)
		if round%2 == 1 {
			n = 25 // the same length as the round before: its names differ, then the next round's too
		}
		names := make([]string, n)
		for i := range names {
			names[i] = "alarm-" + strconv.Itoa(rng.IntN(12)) // duplicates: stability matters
		}
		for tick := range 6 {
			// Ticks 0, 3: new texts; 1, 2, 4: numbers of some reasons change; 5: as 4.
			build := func() []AlarmStatus {
				as := make([]AlarmStatus, n)
				for i := range as {
					num := [6]float64{float64(i)}
					if tick >= 1 && tick != 3 && i%3 == 0 {
						num[1] = float64(min(tick, 4))
					}
					as[i] = AlarmStatus{Name: names[i], Reason: Reason{form: reasonOutlier, num: num, text: strconv.Itoa(tick / 3)}}
				}
				return as
			}
			as := build()
			want := slices.Clone(as)
			slices.SortStableFunc(want, func(x, y AlarmStatus) int { return strings.Compare(x.Name, y.Name) })
			last := e.alarms
			got := e.alarmsOf(as)
			e.alarms = got
			all = append(all, kept{got, want})
			shared := len(last.all) > 0 && &got.all[0] == &last.all[0]
			switch {
			case tick == 0 || tick == 3:
				if shared {
					t.Fatalf("round %d tick %d: the last full set, for new texts", round, tick)
				}
			case tick == 5:
				if !shared || !slices.Equal(got.diff, last.diff) || (len(got.diff) > 0 && &got.diff[0] != &last.diff[0]) {
					t.Fatalf("round %d tick %d: the same alarms again: not the last Alarms", round, tick)
				}
			default:
				if !shared {
					t.Fatalf("round %d tick %d: only numbers changed: a new full set", round, tick)
				}
			}
			for i := range want {
				if at := got.At(i); at.Name != want[i].Name || at.Reason.String() != want[i].Reason.String() {
					t.Fatalf("round %d tick %d: place %d is %s %q, want %s %q", round, tick, i, at.Name, at.Reason.String(), want[i].Name, want[i].Reason.String())
				}
			}
			if again := e.alarmsOf(build()); &again.all[0] != &got.all[0] || len(again.diff) != len(got.diff) || (len(got.diff) > 0 && &again.diff[0] != &got.diff[0]) {
				t.Fatalf("round %d tick %d: the same alarms again: new Alarms, want the last ones", round, tick)
			}
		}
	}
	for k, a := range all {
		if got := a.as.Slice(); fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", a.want) || a.as.Len() != len(a.want) {
			t.Fatalf("Alarms %d changed after it was returned:\n%+v\nwant\n%+v", k, got, a.want)
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
			copies = append(copies, [2]string{fmt.Sprintf("%+v", a.Zones), fmt.Sprintf("%+v", a.Alarms.Slice())})
		}
		for i, a := range as {
			if got := [2]string{fmt.Sprintf("%+v", a.Zones), fmt.Sprintf("%+v", a.Alarms.Slice())}; got != copies[i] {
				t.Fatalf("%s: assessment %d changed after it was returned", profile, i)
			}
		}
	}
}

// BenchmarkAlarmsOf is one tick's alarms made into Alarms: 25 alarms, the
// numbers of every fourth one's reason new (a busy resource's outlier
// alarms); no allocation but a share of a diff chunk.
func BenchmarkAlarmsOf(b *testing.B) {
	var e Engine
	as := make([]AlarmStatus, 25)
	for i := range as {
		as[i] = AlarmStatus{Name: "alarm-" + strconv.Itoa(len(as)-i), State: "OK", Reason: Reason{form: reasonOutlier, num: [6]float64{float64(i)}}}
	}
	e.alarms = e.alarmsOf(as)
	n := 0.0
	for b.Loop() {
		n++
		for i := 0; i < len(as); i += 4 {
			as[i].Reason.num[1] = n
		}
		e.alarms = e.alarmsOf(as)
	}
}
