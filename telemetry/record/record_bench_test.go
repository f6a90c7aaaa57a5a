package record

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grayzone/grayzone/telemetry/observation"
)

// The benchmarks record one observation per iteration. "Parallel" runs use
// RunParallel with a series of their own per goroutine (disjoint series), the
// front door's case: each target and operation has its own series.
//
//	go test -run '^$' -bench . -benchmem ./record/

// latencies cycles through a spread of latencies so that the histogram
// bucket varies as it does in use.
var latencies = func() (l [64]time.Duration) {
	for i := range l {
		l[i] = time.Duration(20_000 + i*3_137) // 20 µs .. 220 µs
	}
	return l
}()

func BenchmarkRecordObserve(b *testing.B) {
	s := New(Options{}).Series(observation.Server, "az-a", "i-1", "orders")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Observe(observation.Success, latencies[i&63])
		i++
	}
}

func BenchmarkRecordObserveParallel(b *testing.B) {
	r := New(Options{})
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		s := r.Series(observation.Server, "az-a", "i-"+strconv.FormatInt(n.Add(1), 10), "orders")
		i := 0
		for pb.Next() {
			s.Observe(observation.Success, latencies[i&63])
			i++
		}
	})
}

// BenchmarkRecordObserveWithDrain observes while another goroutine drains
// every 250 ms, the engine's resolution.
func BenchmarkRecordObserveWithDrain(b *testing.B) {
	r := New(Options{})
	s := r.Series(observation.Server, "az-a", "i-1", "orders")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				r.Drain(func(SeriesKey, Snapshot) {})
			}
		}
	}()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Observe(observation.Success, latencies[i&63])
		i++
	}
	b.StopTimer()
	close(stop)
	<-done
}

func newPromHistogram() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "grayzone_request_seconds",
		Help:    "Request latency.",
		Buckets: prometheus.ExponentialBuckets(0.000_02, 1.25, 40),
	}, []string{"source", "zone", "instance", "operation", "outcome"})
}

// BenchmarkPrometheusWithLabelValues resolves the labels on every
// observation, the usual way client_golang is used.
func BenchmarkPrometheusWithLabelValues(b *testing.B) {
	h := newPromHistogram()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.WithLabelValues("server", "az-a", "i-1", "orders", "success").Observe(latencies[i&63].Seconds())
		i++
	}
}

func BenchmarkPrometheusWithLabelValuesParallel(b *testing.B) {
	h := newPromHistogram()
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		inst := "i-" + strconv.FormatInt(n.Add(1), 10)
		i := 0
		for pb.Next() {
			h.WithLabelValues("server", "az-a", inst, "orders", "success").Observe(latencies[i&63].Seconds())
			i++
		}
	})
}

// BenchmarkPrometheusObserver uses a pre-resolved Observer, as Series is.
func BenchmarkPrometheusObserver(b *testing.B) {
	o := newPromHistogram().WithLabelValues("server", "az-a", "i-1", "orders", "success")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		o.Observe(latencies[i&63].Seconds())
		i++
	}
}

func BenchmarkPrometheusObserverParallel(b *testing.B) {
	h := newPromHistogram()
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		o := h.WithLabelValues("server", "az-a", "i-"+strconv.FormatInt(n.Add(1), 10), "orders", "success")
		i := 0
		for pb.Next() {
			o.Observe(latencies[i&63].Seconds())
			i++
		}
	})
}

var floorCounter atomic.Uint64

// BenchmarkAtomicAddFloor is one bare atomic add: the floor of any lock-free
// counter on this machine.
func BenchmarkAtomicAddFloor(b *testing.B) {
	for b.Loop() {
		floorCounter.Add(1)
	}
}

// BenchmarkRecordDrain is the engine side: one drain of 100 series that
// each counted since the last one.
func BenchmarkRecordDrain(b *testing.B) { benchDrain(b, 100, 100) }

// BenchmarkRecordDrainQuiet is a fleet's usual drain: of 1,000 series one
// counted since the last drain (a quiet series is skipped unread).
func BenchmarkRecordDrainQuiet(b *testing.B) { benchDrain(b, 1000, 1) }

// BenchmarkRecordDrainAggregates is BenchmarkRecordDrain in the form the
// resource's intake drains the front door's recorder.
func BenchmarkRecordDrainAggregates(b *testing.B) {
	r := New(Options{})
	var ss []*Series
	for i := range 100 {
		ss = append(ss, r.Series(observation.Server, "az-a", "i-"+strconv.Itoa(i), "orders"))
	}
	var d Drained
	at := time.Unix(0, 0)
	b.ReportAllocs()
	for b.Loop() {
		for j, s := range ss {
			s.Observe(observation.Success, latencies[j&63])
		}
		r.DrainAggregates(at, &d)
	}
}

// benchDrain drains n series of which busy counted since the last drain.
func benchDrain(b *testing.B, n, busy int) {
	r := New(Options{})
	var ss []*Series
	for i := range n {
		ss = append(ss, r.Series(observation.Server, "az-a", "i-"+strconv.Itoa(i), "orders"))
	}
	b.ReportAllocs()
	for k := 0; b.Loop(); k++ {
		for j := range busy {
			ss[(k*busy+j)%n].Observe(observation.Success, latencies[j&63])
		}
		r.Drain(func(SeriesKey, Snapshot) {})
	}
}
