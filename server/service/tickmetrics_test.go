package service

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// tickGather reads the tick metrics: the lag, the passes and their total.
func tickGather(t *testing.T, m *tickMetrics) (lag float64, passes uint64, sum float64, within256ms uint64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "grayzone_tick_lag_seconds":
			lag = mf.GetMetric()[0].GetGauge().GetValue()
		case "grayzone_tick_seconds":
			h := mf.GetMetric()[0].GetHistogram()
			passes, sum = h.GetSampleCount(), h.GetSampleSum()
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() == 0.256 {
					within256ms = b.GetCumulativeCount()
				}
			}
		default:
			t.Errorf("unexpected metric %s", mf.GetName())
		}
	}
	return lag, passes, sum, within256ms
}

// Each pass is counted with its duration, and the lag is how late the last
// pass started after its tick, never negative.
func TestTickMetrics(t *testing.T) {
	m := newTickMetrics()
	due := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m.observe(due, due.Add(40*time.Millisecond), 3*time.Millisecond)
	m.observe(due.Add(tickEvery), due.Add(tickEvery+300*time.Millisecond), 600*time.Millisecond)
	lag, passes, sum, fast := tickGather(t, m)
	if lag != 0.3 || passes != 2 || sum < 0.6029 || sum > 0.6031 || fast != 1 {
		t.Errorf("lag %g, %d passes, %gs in all, %d within 256ms; want 0.3, 2, 0.603, 1", lag, passes, sum, fast)
	}
	m.observe(due, due.Add(-time.Second), 0) // a clock read before its tick
	if lag, _, _, _ := tickGather(t, m); lag != 0 {
		t.Errorf("lag %g, want 0", lag)
	}
}
