package record

import (
	"time"

	"github.com/grayzone/grayzone/telemetry/observation"
)

// SlowFromLatency in Aggregate.Slow asks the receiver to count the slow
// requests from the latency buckets with its own threshold for the
// operation (see Aggregate.FillSlow). Sources whose histograms do not split at
// the threshold (OTLP, Prometheus, EMF) use it; the middleware, which does,
// sends its exact count.
const SlowFromLatency = ^uint64(0)

// Bucket is one non-empty bucket of an Aggregate's latency histogram, on
// the fixed mapping of BucketOf.
type Bucket struct {
	Index int
	Count uint64
}

// Aggregate is what one series counted over one interval: the one form in
// which every source (the front door's recorder, the middleware, the batch
// API's aggregated records, OTLP, Prometheus, EMF) hands traffic to the
// engine. It costs the engine one record per series and interval, however
// many requests it stands for.
type Aggregate struct {
	At       time.Time // the end of the interval
	Key      SeriesKey
	Requests uint64
	Faults   uint64
	Errors   uint64
	Slow     uint64   // latency above the operation's threshold, or SlowFromLatency
	Latency  []Bucket // ascending Index, non-zero counts; sums to at most Requests
	// Regional marks canary calls made through the regional endpoint: they
	// tell the engine of impact in every zone, not of the zone that answered.
	Regional bool
}

// Count adds n requests with the outcome.
func (a *Aggregate) Count(o observation.Outcome, n uint64) {
	a.Requests += n
	switch o {
	case observation.Fault:
		a.Faults += n
	case observation.Error:
		a.Errors += n
	}
}

// Aggregate returns the snapshot as an aggregate at at, with a sparse histogram.
func (d *Snapshot) Aggregate(at time.Time, key SeriesKey) Aggregate {
	a := Aggregate{At: at, Key: key, Requests: d.Requests, Faults: d.Faults, Errors: d.Errors, Slow: d.Slow}
	nz := 0
	for _, c := range d.Latency {
		if c > 0 {
			nz++
		}
	}
	if nz == 0 {
		return a
	}
	// Sized once: growing it bucket by bucket was most of a front-door drain's allocations.
	a.Latency = make([]Bucket, 0, nz)
	for i, c := range d.Latency {
		if c > 0 {
			a.Latency = append(a.Latency, Bucket{Index: i, Count: c})
		}
	}
	return a
}

// FillSlow sets Slow from the histogram when it is SlowFromLatency: a
// bucket counts as slow when its reported value (BucketMid) is above the
// threshold, so the count is exact except inside the one bucket that holds
// the threshold (within 6.25 % of it).
func (a *Aggregate) FillSlow(threshold time.Duration) {
	if a.Slow != SlowFromLatency {
		return
	}
	a.Slow = 0
	for _, b := range a.Latency {
		if BucketMid(b.Index) > threshold {
			a.Slow += b.Count
		}
	}
	a.Slow = min(a.Slow, a.Requests)
}

// AddLatency adds n latencies of about d to the sparse histogram, keeping it
// sorted and merged.
func (a *Aggregate) AddLatency(d time.Duration, n uint64) {
	if n == 0 {
		return
	}
	a.addBucket(BucketOf(d), n)
}

func (a *Aggregate) addBucket(i int, n uint64) {
	if l := len(a.Latency); l == 0 || a.Latency[l-1].Index < i {
		a.Latency = append(a.Latency, Bucket{Index: i, Count: n}) // in order: the common case
		return
	}
	lo, hi := 0, len(a.Latency)
	for lo < hi {
		m := (lo + hi) / 2
		if a.Latency[m].Index < i {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(a.Latency) && a.Latency[lo].Index == i {
		a.Latency[lo].Count += n
		return
	}
	a.Latency = append(a.Latency, Bucket{})
	copy(a.Latency[lo+1:], a.Latency[lo:])
	a.Latency[lo] = Bucket{Index: i, Count: n}
}

// HistogramBuckets appends to dst the bucket, on BucketOf's mapping, in
// which each bucket of an explicit-bounds histogram (OTLP's and
// Prometheus' shape) is reported: len(bounds)+1 of them, for the latencies
// in (bounds[i-1], bounds[i]] and the last in (bounds[n-1], +inf). Each is
// reported at its midpoint (the first from 0; the open-ended last at 1.5×
// its lower bound), so the engine's quantiles are as fine as the sender's
// buckets allow. The places never decrease.
func HistogramBuckets(dst []int, bounds []time.Duration) []int {
	var lo time.Duration
	for i := 0; i <= len(bounds); i++ {
		var v time.Duration
		switch {
		case i < len(bounds):
			v = lo + (bounds[i]-lo)/2
			lo = bounds[i]
		case len(bounds) > 0:
			v = lo + lo/2
		}
		dst = append(dst, BucketOf(v))
	}
	return dst
}

// AddBuckets adds counts[i] latencies to bucket places[i] (as
// HistogramBuckets gives them; counts past the last place go to it).
func (a *Aggregate) AddBuckets(places []int, counts []uint64) {
	for i, n := range counts {
		if n > 0 {
			a.addBucket(places[min(i, len(places)-1)], n)
		}
	}
}

// AddHistogram adds an explicit-bounds histogram: counts[i] latencies in
// HistogramBuckets' bucket i.
func (a *Aggregate) AddHistogram(bounds []time.Duration, counts []uint64) {
	var buf [32]int
	a.AddBuckets(HistogramBuckets(buf[:0], bounds), counts)
}

// Single is one observation as an aggregate of one request: the batch API
// and the engine treat single observations and aggregates alike. Its slow
// count is left to the receiver (SlowFromLatency), which knows the
// operation's threshold.
func Single(o observation.Observation) Aggregate {
	a := Aggregate{At: o.At, Key: SeriesKey{Source: o.Source, Zone: o.Zone, Instance: o.Instance, Operation: o.Operation},
		Slow: SlowFromLatency, Regional: o.Regional}
	a.Count(o.Outcome, 1)
	a.AddLatency(o.Latency, 1)
	return a
}
