package service

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// tickGather reads the tick metrics: the lag, the passes and their total.
func tickGather(t *testing.T, m *tickMetrics) (lag float64, passes uint64, sum float64, within250ms uint64) {
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
				if b.GetUpperBound() == 0.25 {
					within250ms = b.GetCumulativeCount()
				}
			}
		default:
			t.Errorf("unexpected metric %s", mf.GetName())
		}
	}
	return lag, passes, sum, within250ms
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
		t.Errorf("lag %g, %d passes, %gs in all, %d within 250ms; want 0.3, 2, 0.603, 1", lag, passes, sum, fast)
	}
	m.observe(due, due.Add(-time.Second), 0) // a clock read before its tick
	if lag, _, _, _ := tickGather(t, m); lag != 0 {
		t.Errorf("lag %g, want 0", lag)
	}
}

// The status's engine figures are over the last minute of passes: a slow
// pass a minute ago no longer counts, and the loop is said to fall behind
// when its p99 exceeds the period or the last pass started over a second late.
func TestTickStatus(t *testing.T) {
	m := newTickMetrics()
	if st := m.status(); st.Passes != 0 || st.Behind || st.TickEveryMs != 250 {
		t.Errorf("before any pass: %+v", st)
	}
	due := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range tickWindow {
		took := 2 * time.Millisecond
		if i < tickWindow/50 { // 2 % of the window slow: above the p99
			took = 400 * time.Millisecond
		}
		m.observe(due, due, took)
	}
	st := m.status()
	if st.Passes != tickWindow || !st.Behind || st.TickP99Ms != 400 || st.TickMaxMs != 400 || st.LagS != 0 || !strings.Contains(st.Why, "tick p99 400ms is longer than the loop's period 250ms") {
		t.Errorf("2 %% of passes at 400ms: %+v", st)
	}
	// A minute of fast passes later the slow ones are out of the window.
	for range tickWindow {
		m.observe(due, due.Add(10*time.Millisecond), 3*time.Millisecond)
	}
	st = m.status()
	if st.Behind || st.TickP99Ms != 3 || st.TickMaxMs != 3 || st.LagS != 0.01 {
		t.Errorf("a minute of 3ms passes: %+v", st)
	}
	m.observe(due, due.Add(1500*time.Millisecond), 3*time.Millisecond)
	if st := m.status(); !st.Behind || st.LagS != 1.5 || !strings.Contains(st.Why, "1.5s late") {
		t.Errorf("1.5 s late: %+v", st)
	}
}
