package service

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grayzone/grayzone/server/api"
)

// tickMetrics tell whether the engine keeps up: how long each pass of the
// tick loop (every resource's engine and controller, on tickEach's workers:
// from the pass's start until its last resource is done) takes, and how late the
// last pass started after its tick fell due. A loop that takes longer than
// tickEvery falls behind: its ticker drops ticks and the lag grows.
type tickMetrics struct {
	seconds prometheus.Histogram
	lag     prometheus.Gauge

	// The last passes, for the status API: the histogram is cumulative
	// since start, while an operator asks whether the engine keeps up now.
	mu      sync.Mutex
	recent  [tickWindow]time.Duration
	n       int // passes recorded (recent holds the last min(n, tickWindow))
	lastLag time.Duration
}

// tickWindow is how many passes the status's p99 is over: a minute of ticks.
const tickWindow = int(time.Minute / tickEvery)

// Thresholds past which the status says the engine falls behind: a pass
// longer than its period, or a pass starting more than a second late (four
// ticks: the detectors' one-second buckets start to be judged late).
const (
	behindTick = tickEvery
	behindLag  = time.Second
)

func newTickMetrics() *tickMetrics {
	return &tickMetrics{
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "grayzone_tick_seconds",
			Help: "Duration of one whole pass of serve's tick loop over every resource it leads, ticked on --tick-workers workers (it runs every 250ms; longer passes fall behind).",
			// 1ms to 5s, with bounds at the loop's period (250ms) and at
			// the 100ms a fleet's p99 is held to (benchmark/fleet.go).
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "grayzone_tick_lag_seconds",
			Help: "How late the last pass of the tick loop started after its tick fell due.",
		}),
	}
}

// observe records one pass that fell due at due, started at start (on the
// service's clock, so a fake clock reads no lag) and took took (wall time:
// the work is real).
func (m *tickMetrics) observe(due, start time.Time, took time.Duration) {
	lag := max(0, start.Sub(due))
	m.lag.Set(lag.Seconds())
	m.seconds.Observe(took.Seconds())
	m.mu.Lock()
	m.recent[m.n%tickWindow] = took
	m.n++
	m.lastLag = lag
	m.mu.Unlock()
}

// status is the engine's part of GET /v1/status: the last minute's passes.
func (m *tickMetrics) status() api.EngineStatus {
	m.mu.Lock()
	passes := min(m.n, tickWindow)
	ds := slices.Clone(m.recent[:passes])
	lag := m.lastLag
	m.mu.Unlock()
	st := api.EngineStatus{TickEveryMs: ms(tickEvery), Passes: passes, LagS: lag.Seconds()}
	if passes == 0 {
		return st
	}
	slices.Sort(ds)
	p99 := ds[min(passes-1, passes*99/100)]
	st.TickP99Ms, st.TickMaxMs = ms(p99), ms(ds[passes-1])
	switch {
	case lag > behindLag:
		st.Behind = true
		st.Why = "the last tick started " + lag.Round(time.Millisecond).String() + " late (more than " + behindLag.String() + "): detection and actions run late"
	case p99 > behindTick:
		st.Behind = true
		st.Why = "tick p99 " + p99.Round(time.Millisecond).String() + " is longer than the loop's period " + tickEvery.String() + ": ticks are dropped"
	}
	return st
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (m *tickMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.seconds.Describe(ch)
	m.lag.Describe(ch)
}

func (m *tickMetrics) Collect(ch chan<- prometheus.Metric) {
	m.seconds.Collect(ch)
	m.lag.Collect(ch)
}
