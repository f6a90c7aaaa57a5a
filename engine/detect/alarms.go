package detect

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"strings"
)

// Alarms are an assessment's alarms, ordered by name (stable). Like the
// rest of an assessment they never change once returned, however long the
// assessment is kept, and they are cheap to keep and to share: tick after
// tick most alarms are the same, and of those that change, usually only
// the numbers of the reason do (a zone's outlier alarm counts the requests
// of its window, which move every tick a request arrives). So consecutive
// assessments share one full set of alarms, and each has its own copy of
// only the reasons' numbers that differ from that set's. (A new slice of
// every alarm per tick, for a few numbers, was three quarters of the bytes
// a simulated hour allocated.) The zero value has no alarm.
type Alarms struct {
	all  []AlarmStatus // a full set: shared, never written once handed out
	diff []alarmDiff   // the places whose reason's numbers are not all's, ascending
}

// alarmDiff is a place of Alarms whose reason's numbers differ from the
// full set's.
type alarmDiff struct {
	i   int
	num [6]float64
}

// Len is the number of alarms.
func (as Alarms) Len() int { return len(as.all) }

// At returns the i-th alarm (0 <= i < Len).
func (as Alarms) At(i int) AlarmStatus {
	s := as.all[i]
	if k, ok := slices.BinarySearchFunc(as.diff, i, func(d alarmDiff, i int) int { return cmp.Compare(d.i, i) }); ok {
		s.Reason.num = as.diff[k].num
	}
	return s
}

// All yields the alarms with their places, in order.
func (as Alarms) All() iter.Seq2[int, AlarmStatus] {
	return func(yield func(int, AlarmStatus) bool) {
		k := 0
		for i, s := range as.all {
			if k < len(as.diff) && as.diff[k].i == i {
				s.Reason.num = as.diff[k].num
				k++
			}
			if !yield(i, s) {
				return
			}
		}
	}
}

// Slice returns the alarms in a new slice, the caller's.
func (as Alarms) Slice() []AlarmStatus {
	out := make([]AlarmStatus, len(as.all))
	for i, s := range as.All() {
		out[i] = s
	}
	return out
}

// String lists the alarms as fmt prints a slice of them (logs, tests).
func (as Alarms) String() string { return fmt.Sprint(as.Slice()) }

// assessing is an assessment being built: the detectors append their
// alarms to alarms (the engine's scratch, reused), in any order, and may
// change them until the engine turns them into the assessment's Alarms.
type assessing struct {
	Assessment
	alarms []AlarmStatus
}

// alarmsOf returns the Alarms of as, the alarms the detectors appended,
// ordered by name (stable). They are the last assessment's when the same,
// they share its full set when only reasons' numbers differ from it, else
// they are a new full set; nothing is written into what was returned.
func (e *Engine) alarmsOf(as []AlarmStatus) Alarms {
	perm := e.alarmPerm(as) // place i of the ordered alarms is as[perm[i]]
	last := e.alarms
	same := len(last.all) == len(as)
	diff := e.diffBuf[:0]
	for i := 0; same && i < len(as); i++ {
		x, y := &last.all[i], &as[perm[i]]
		same = x.Name == y.Name && x.State == y.State && x.Reason.equalText(&y.Reason)
		if same && x.Reason.num != y.Reason.num {
			diff = append(diff, alarmDiff{i: i, num: y.Reason.num})
		}
	}
	e.diffBuf = diff
	switch {
	case !same:
		all := make([]AlarmStatus, len(as))
		for i, j := range perm {
			all[i] = as[j]
		}
		return Alarms{all: all}
	case slices.Equal(diff, last.diff):
		return last
	case len(diff) == 0:
		return Alarms{all: last.all}
	}
	d := e.diffChunk.take(len(diff))
	copy(d, diff)
	return Alarms{all: last.all, diff: d}
}

// alarmPerm returns the permutation that orders as by name (stable). A
// detector appends the same alarms in the same order tick after tick, so
// the order found once is reused while the names are the same (sorting
// every tick was a twentieth of a simulated day).
func (e *Engine) alarmPerm(as []AlarmStatus) []int {
	o := &e.alarmOrder
	same := len(as) == len(o.names)
	for i := 0; same && i < len(as); i++ {
		same = as[i].Name == o.names[i]
	}
	if !same {
		o.names = o.names[:0]
		o.perm = o.perm[:0]
		for i, al := range as {
			o.names = append(o.names, al.Name)
			o.perm = append(o.perm, i)
		}
		slices.SortStableFunc(o.perm, func(x, y int) int { return strings.Compare(as[x].Name, as[y].Name) })
	}
	return o.perm
}
