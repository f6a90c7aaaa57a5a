package middleware

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grayzone/grayzone/telemetry/record"
)

// Metric names and labels of Metrics: the shape grayzone's default
// Prometheus queries expect (telemetry/prometheus).
const (
	RequestsMetric = "http_requests_total"
	DurationMetric = "http_request_duration_seconds"
)

// Buckets are the le bounds of DurationMetric, in seconds.
var Buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

var (
	descRequests = prometheus.NewDesc(RequestsMetric, "Requests served, by zone, instance, route and status class (2xx, 4xx, 5xx; 5xx includes no answer).",
		[]string{"zone", "instance", "route", "code"}, nil)
	descDuration = prometheus.NewDesc(DurationMetric, "Request latency, by zone, instance and route.",
		[]string{"zone", "instance", "route"}, nil)
)

// total is one series' counts since the start.
type total struct {
	success, errors, faults uint64
	sum                     float64 // seconds, from bucket midpoints
	le                      []uint64
}

func (t *total) add(d *record.Snapshot) {
	t.faults += d.Faults
	t.errors += d.Errors
	t.success += d.Requests - d.Faults - d.Errors
	if t.le == nil {
		t.le = make([]uint64, len(Buckets))
	}
	for i, c := range d.Latency {
		if c == 0 {
			continue
		}
		v := record.BucketMid(i).Seconds()
		t.sum += v * float64(c)
		for j, b := range Buckets {
			if v <= b {
				t.le[j] += c
			}
		}
	}
}

// Metrics serves the counts in Prometheus' text format. Each scrape first
// collects what the request path counted, so it is never an interval behind.
func (m *Middleware) Metrics() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister((*collector)(m))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

type collector Middleware

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descRequests
	ch <- descDuration
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := (*Middleware)(c)
	m.shipMu.Lock()
	m.collect()
	m.shipMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, t := range m.totals {
		for _, v := range []struct {
			code string
			n    uint64
		}{{"2xx", t.success}, {"4xx", t.errors}, {"5xx", t.faults}} {
			ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(v.n), k.Zone, k.Instance, k.Operation, v.code)
		}
		bk := make(map[float64]uint64, len(Buckets))
		for j, b := range Buckets {
			bk[b] = t.le[j]
		}
		ch <- prometheus.MustNewConstHistogram(descDuration, t.success+t.errors+t.faults, t.sum, bk, k.Zone, k.Instance, k.Operation)
	}
}

// Collector is the counts as a prometheus.Collector, to register in a
// registry of one's own beside other collectors.
func (m *Middleware) Collector() prometheus.Collector { return (*collector)(m) }
