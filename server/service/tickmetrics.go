package service

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// tickMetrics tell whether the engine keeps up: how long each pass of the
// tick loop (every resource's engine and controller) takes, and how late the
// last pass started after its tick fell due. A loop that takes longer than
// tickEvery falls behind: its ticker drops ticks and the lag grows.
type tickMetrics struct {
	seconds prometheus.Histogram
	lag     prometheus.Gauge
}

func newTickMetrics() *tickMetrics {
	return &tickMetrics{
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "grayzone_tick_seconds",
			Help: "Duration of one pass of serve's tick loop over every resource (it runs every 250ms; longer passes fall behind).",
			// 1ms to about 4s: the loop's budget is 250ms.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 13),
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
	m.lag.Set(max(0, start.Sub(due)).Seconds())
	m.seconds.Observe(took.Seconds())
}

func (m *tickMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.seconds.Describe(ch)
	m.lag.Describe(ch)
}

func (m *tickMetrics) Collect(ch chan<- prometheus.Metric) {
	m.seconds.Collect(ch)
	m.lag.Collect(ch)
}
