package detect

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// fleet is a synthetic fleet: instances spread over three zones, each serving
// ops operations, seen from both sources. One series is one (instance,
// operation, source).
type fleet struct {
	zones     []string
	instances [][]string // per zone
	ops       []string
}

func newFleet(instances, ops int) *fleet {
	f := &fleet{zones: zones3}
	f.instances = make([][]string, len(zones3))
	for i := range instances {
		z := i % len(zones3)
		f.instances[z] = append(f.instances[z], fmt.Sprintf("%s-%d", zones3[z], i/len(zones3)+1))
	}
	for i := range ops {
		f.ops = append(f.ops, fmt.Sprintf("op%02d", i))
	}
	return f
}

func (f *fleet) series() int { return len(f.zones) * len(f.instances[0]) * len(f.ops) * 2 }

// second feeds one observation per series at time at; zone bad fails every
// other instance's requests with probability 0.3 (by a fixed pattern).
func (f *fleet) second(e *Engine, at time.Time, bad string) {
	n := 0
	for zi, z := range f.zones {
		for _, inst := range f.instances[zi] {
			for _, op := range f.ops {
				for _, src := range []observation.Source{observation.Server, observation.Canary} {
					n++
					o := observation.Observation{At: at, Source: src, Zone: z, Instance: inst, Operation: op, Latency: 5 * time.Millisecond}
					if z == bad && n%10 < 3 {
						o.Outcome = observation.Fault
					}
					e.Observe(o)
				}
			}
		}
	}
}

// BenchmarkEngineScale reports, per fleet size, the engine's memory per
// series and the cost of one evaluation tick (closing a bucket that holds
// one observation of every series, and assessing).
func BenchmarkEngineScale(b *testing.B) {
	for _, size := range []struct{ instances, ops int }{{10, 50}, {100, 50}, {1000, 50}, {10000, 50}} {
		f := newFleet(size.instances, size.ops)
		b.Run(fmt.Sprintf("series=%d", f.series()), func(b *testing.B) {
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			e, err := New(Config{Zones: zones3})
			if err != nil {
				b.Fatal(err)
			}
			now := t0
			// Warm up: every series seen once, in a closed bucket.
			f.second(e, now, "")
			var peak runtime.MemStats
			runtime.ReadMemStats(&peak) // a full bucket, not yet closed
			now = now.Add(time.Second)
			e.Tick(now)
			var after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			perSeries := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(f.series())
			var observe time.Duration
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				start := time.Now()
				f.second(e, now, "")
				observe += time.Since(start)
				now = now.Add(time.Second)
				b.StartTimer()
				e.Tick(now)
			}
			b.ReportMetric(perSeries, "B/series")
			b.ReportMetric((float64(peak.HeapAlloc)-float64(before.HeapAlloc))/float64(f.series()), "peakB/series")
			b.ReportMetric(float64(observe.Nanoseconds())/float64(b.N)/float64(f.series()), "ns/observe")
			b.ReportMetric(float64(f.series()), "series")
		})
	}
}

// A large fleet reaches the same decision as a small one with the same zone
// pattern: the statistics are per zone and per instance, not per series.
func TestLargeFleetDecidesLikeSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds 600k observations")
	}
	decide := func(f *fleet) (string, int) {
		e, err := New(Config{Zones: zones3})
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		for s := 0; s < 40; s++ {
			bad := ""
			if s >= 20 {
				bad = "az2"
			}
			f.second(e, now, bad)
			now = now.Add(time.Second)
			if a := e.Tick(now); a.Isolated != "" {
				return a.Isolated, s
			}
		}
		return "", -1
	}
	zs, ss := decide(newFleet(6, 5))
	zl, sl := decide(newFleet(600, 50))
	// The same decision; the large fleet, with more evidence a second, no later.
	if zs != "az2" || zl != "az2" || ss < 20 || sl < 20 || sl > ss {
		t.Fatalf("small fleet decided %q at %d s, large fleet %q at %d s (fault from 20 s)", zs, ss, zl, sl)
	}
}

// BenchmarkObserveAggregate is the engine's cost per aggregate as ingestion
// feeds it: a 10,000 × 50 fleet's server histograms, five latency buckets
// each, one second after another. It is what bounds a tick's work
// (ingest.DefaultDrainPerTick aggregates at most).
func BenchmarkObserveAggregate(b *testing.B) {
	f := newFleet(10_000, 50)
	e, err := New(Config{Zones: zones3})
	if err != nil {
		b.Fatal(err)
	}
	var aggs []record.Aggregate
	for zi, z := range f.zones {
		for _, inst := range f.instances[zi] {
			for _, op := range f.ops {
				a := record.Aggregate{Key: record.SeriesKey{Source: observation.Server, Zone: z, Instance: inst, Operation: op},
					Requests: 20, Slow: record.SlowFromLatency}
				for i, ms := range []time.Duration{3, 8, 20, 40, 80} {
					a.AddLatency(ms*time.Millisecond, uint64(1+i))
				}
				aggs = append(aggs, a)
			}
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.ResetTimer()
	for i := range b.N {
		a := aggs[i%len(aggs)]
		a.At = t0.Add(time.Duration(i/len(aggs)) * time.Second)
		e.ObserveAggregate(a)
	}
}

// BenchmarkIdleTick is one tick of an engine shaped like one of serve's
// resources in a fleet (issue 24): 3 zones, 6 instances, about a customer
// request a second and a zonal canary call every few seconds, ticked every
// 250 ms. serve runs 4 of these a second per resource, so its fixed cost
// (closing a nearly empty bucket, a second once in four, and assessing
// nothing new) times a thousand resources is the tick loop's budget.
func BenchmarkIdleTick(b *testing.B) {
	for _, profile := range Profiles {
		b.Run(profile, func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			e, err := New(Config{Profile: profile, Zones: zones3})
			if err != nil {
				b.Fatal(err)
			}
			now := t0
			var insts [3][2]string
			for z := range insts {
				for i := range insts[z] {
					insts[z][i] = fmt.Sprintf("%s-%d", zones3[z], i+1)
				}
			}
			// The observations of one tick, part of its cost (timing them
			// apart would cost more than they do).
			feed := func(tick int) {
				if tick%4 == 0 {
					z := tick / 4 % 3
					e.Observe(observation.Observation{At: now, Source: observation.Server, Zone: zones3[z], Instance: insts[z][tick/12%2], Operation: "ride", Latency: 5 * time.Millisecond})
				}
				if tick%12 == 0 {
					e.Observe(observation.Observation{At: now, Source: observation.Canary, Zone: zones3[tick/12%3], Operation: "ride", Latency: 5 * time.Millisecond})
				}
			}
			// Warm up past every window (the onset test's span is 10 minutes).
			tick := 0
			for ; tick < 4*11*60; tick++ {
				feed(tick)
				now = now.Add(250 * time.Millisecond)
				e.Tick(now)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				feed(tick)
				tick++
				now = now.Add(250 * time.Millisecond)
				e.Tick(now)
			}
			// The engine's live heap in this steady state (what the GC
			// marks, a thousand times over, in a fleet's serve).
			b.ReportMetric(float64(after.HeapAlloc)-float64(before.HeapAlloc), "heapB/engine")
		})
	}
}
