package detect

import (
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/grayzone/grayzone/telemetry/record"
)

// Counts are one series' request counts over some span.
type Counts struct {
	N      int64 // every request
	Faults int64 // 5xx, broken connection, timeout
	Errors int64 // 4xx: not held against availability
	Slow   int64 // latency above the operation's threshold
}

func (c *Counts) add(o Counts) {
	c.N += o.N
	c.Faults += o.Faults
	c.Errors += o.Errors
	c.Slow += o.Slow
}

func (c *Counts) sub(o Counts) {
	c.N -= o.N
	c.Faults -= o.Faults
	c.Errors -= o.Errors
	c.Slow -= o.Slow
}

// Dim is what is counted as bad: faults (availability) or slow requests (latency).
type Dim int

const (
	DimFault Dim = iota
	DimLatency
)

func (d Dim) String() string {
	if d == DimLatency {
		return "latency"
	}
	return "availability"
}

var dims = [...]Dim{DimFault, DimLatency}

// Trials returns the number of requests that count for the dimension and how many were bad.
func (c Counts) Trials(d Dim) (n, bad int64) {
	if d == DimLatency {
		return c.N, c.Slow
	}
	return c.N - c.Errors, c.Faults
}

// Rate is bad/n for the dimension, 0 with no data.
func (c Counts) Rate(d Dim) float64 {
	n, bad := c.Trials(d)
	if n <= 0 {
		return 0
	}
	return float64(bad) / float64(n)
}

// Availability is the share of non-4xx requests that did not fault, 1 with no data.
func (c Counts) Availability() float64 { return 1 - c.Rate(DimFault) }

// ring keeps the last len(slots) buckets of Counts and their running total.
type ring struct {
	slots []Counts
	total Counts
	pos   int
	// all is every bucket's sum since the ring began, sums[i] what all was
	// right after slots[i] was pushed: last(k) is a difference of two
	// sums, not a loop over k buckets (the onset test asks for spans of up
	// to minutes of buckets for every pair of zones at every tick, a tenth
	// of a simulated day). The counts are integers: the difference is exact.
	all  Counts
	sums []Counts
}

func newRing(n int) *ring { return &ring{slots: make([]Counts, n), sums: make([]Counts, n)} }

// push adds the newest bucket, dropping the oldest.
func (r *ring) push(c Counts) {
	r.total.sub(r.slots[r.pos])
	r.slots[r.pos] = c
	r.total.add(c)
	r.all.add(c)
	r.sums[r.pos] = r.all
	r.pos = (r.pos + 1) % len(r.slots)
}

// newSketch returns a latency sketch (milliseconds) with 1% relative accuracy
// and bounded memory.
func newSketch() *ddsketch.DDSketch {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(0.01, 1024)
	if err != nil {
		panic(err) // constant arguments: cannot fail
	}
	return s
}

// bucketKeys are the sketch index of each record bucket's midpoint: every
// sketch of the engine shares newSketch's mapping, so the logarithm that
// places a value is taken once per bucket, not once per bucket of every
// aggregate (it was half of ingesting a histogram). -1: not indexable
// (zero), left to AddWithCount.
var bucketKeys = sync.OnceValue(func() *[record.NumBuckets]int {
	var keys [record.NumBuckets]int
	s := newSketch()
	for i := range keys {
		v := float64(record.BucketMid(i)) / float64(time.Millisecond)
		keys[i] = -1
		if v > s.MinIndexableValue() && v <= s.MaxIndexableValue() {
			keys[i] = s.Index(v)
		}
	}
	return &keys // a pointer: OnceValue would copy an array at every call
})

// addBucket adds n latencies of record bucket i to a sketch of newSketch's.
func addBucket(s *ddsketch.DDSketch, i int, n uint64) {
	if i >= 0 && i < record.NumBuckets {
		if k := bucketKeys()[i]; k >= 0 {
			s.GetPositiveValueStore().AddWithCount(k, float64(n))
			return
		}
	}
	_ = s.AddWithCount(float64(record.BucketMid(i))/float64(time.Millisecond), float64(n))
}

// quantile returns the sketch's q-quantile in milliseconds, or -1 when empty.
func quantile(s *ddsketch.DDSketch, q float64) float64 {
	if s == nil || s.IsEmpty() {
		return -1
	}
	v, err := s.GetValueAtQuantile(q)
	if err != nil {
		return -1
	}
	return v
}

// last sums the newest k buckets (at most the whole ring).
func (r *ring) last(k int) Counts {
	n := len(r.slots)
	switch {
	case k <= 0:
		return Counts{}
	case k >= n:
		return r.total
	}
	// The sum before the newest k buckets is the one right after the
	// bucket pushed k+1 ago (zero, never written, when fewer were pushed).
	c := r.all
	c.sub(r.sums[(r.pos-k-1+n)%n])
	return c
}
