package cumulative

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestDeltaAndResets(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := &Tracker{Since: t0}
	early := t0.Add(-time.Hour)
	steps := []struct {
		start time.Time
		vals  []float64
		want  []float64 // nil: no delta
	}{
		{early, []float64{10, 4}, nil},                                // began before us: baseline only
		{early, []float64{15, 4}, []float64{5, 0}},                    // growth
		{early, []float64{15, 4}, []float64{0, 0}},                    // nothing new
		{early, []float64{3, 1}, []float64{3, 1}},                     // decreased: a reset
		{t0.Add(time.Minute), []float64{7, 2}, []float64{7, 2}},       // new start time: a reset
		{t0.Add(time.Minute), []float64{9, 2, 1}, []float64{9, 2, 1}}, // new bucket layout
	}
	var out []float64
	for i, s := range steps {
		var ok bool
		var err error
		out, ok, err = tr.Delta("a", s.start, t0.Add(time.Duration(i)*time.Second), s.vals, out, false)
		if err != nil {
			t.Fatal(err)
		}
		if ok != (s.want != nil) || (ok && !reflect.DeepEqual(out, s.want)) {
			t.Errorf("step %d: got %v %v, want %v", i, out, ok, s.want)
		}
	}
	// A series that started after the tracker counts from zero.
	out, ok, _ := tr.Delta("b", t0.Add(time.Second), t0.Add(2*time.Second), []float64{4}, out, false)
	if !ok || out[0] != 4 {
		t.Errorf("fresh series: %v %v", out, ok)
	}
	// One the caller knows is new counts from zero whatever its start.
	out, ok, _ = tr.Delta("c", time.Time{}, t0.Add(2*time.Second), []float64{2}, out, true)
	if !ok || out[0] != 2 {
		t.Errorf("known-new series: %v %v", out, ok)
	}
}

func TestMaxAndForget(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := &Tracker{Max: 1, Forget: time.Minute}
	if _, _, err := tr.Delta("a", time.Time{}, t0, []float64{1}, nil, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.Delta("b", time.Time{}, t0, []float64{1}, nil, false); !errors.Is(err, ErrTooMany) {
		t.Fatalf("err = %v", err)
	}
	if _, _, err := tr.Delta("b", time.Time{}, t0.Add(2*time.Minute), []float64{1}, nil, false); err != nil {
		t.Fatalf("after a forgotten series: %v", err)
	}
	if tr.Len() != 1 {
		t.Errorf("len %d", tr.Len())
	}
}
