package detect

import (
	"sort"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/store"

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

// ring keeps the sum of the last n buckets (total), and of any newest k
// of them (last). Only the buckets with data take room: a mark per such
// bucket, with every bucket's sum since the ring began (all) right after it,
// so that last(k) is a difference of two sums, not a loop over k buckets (the
// onset test asks for spans of up to minutes of buckets for every pair of
// zones at every tick, a tenth of a simulated day), and pushing an empty
// bucket touches no mark. A ring of 10 minutes of 250 ms buckets per zone
// and source, kept whole, was most of an idle resource's memory in serve
// (about 1 MB each), and writing two of its slots per bucket, cold in the
// cache, a third of the detector's tick. The counts are integers: the
// differences are exact.
type ring struct {
	// What an empty bucket's push reads and writes comes first: at a
	// thousand resources no ring stays in the cache from one bucket to the
	// next, and pushing empty buckets is most of what an idle one does.
	seq    int64 // buckets pushed
	n      int64 // the window, in buckets
	oldest int64 // the oldest mark's seq (size > 0)
	// marks is circular: the buckets with data among the newest n, oldest
	// (at head) first.
	marks      []mark
	head, size int
	total      Counts // the newest n buckets
	all        Counts // every bucket pushed
	base       Counts // all as of the newest bucket with data that left the window
}

// mark is a bucket with data: its number (seq) and the ring's all right
// after it was pushed.
type mark struct {
	seq int64
	all Counts
}

func newRing(n int) *ring { return &ring{n: int64(n)} }

// push adds the newest bucket, dropping the oldest.
func (r *ring) push(c Counts) {
	r.seq++
	empty := c == (Counts{})
	if empty && (r.size == 0 || r.oldest > r.seq-r.n) {
		return // nothing in, nothing out
	}
	if !empty {
		r.all.add(c)
		r.append(mark{seq: r.seq, all: r.all})
	}
	for r.size > 0 && r.oldest <= r.seq-r.n {
		r.base = r.marks[r.head].all
		r.head++
		if r.head == len(r.marks) {
			r.head = 0
		}
		r.size--
		r.oldest = r.marks[r.head].seq
	}
	r.total = r.all
	r.total.sub(r.base)
}

// append adds m after the newest mark, growing the marks up to the window.
func (r *ring) append(m mark) {
	if r.size == len(r.marks) {
		grown := make([]mark, min(max(4, 2*len(r.marks)), int(r.n)+1))
		for i := range r.size {
			grown[i] = r.marks[(r.head+i)%len(r.marks)]
		}
		r.marks, r.head = grown, 0
	}
	r.marks[(r.head+r.size)%len(r.marks)] = m
	if r.size == 0 {
		r.oldest = m.seq
	}
	r.size++
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
	addKeyed(s, s.GetPositiveValueStore(), bucketKeys(), i, n)
}

// addBuckets adds a histogram's buckets to a sketch of newSketch's, looking
// up the keys and the store once, not per bucket (an aggregate has a few
// dozen buckets).
func addBuckets(s *ddsketch.DDSketch, bs []record.Bucket) {
	st, keys := s.GetPositiveValueStore(), bucketKeys()
	for _, b := range bs {
		addKeyed(s, st, keys, b.Index, b.Count)
	}
}

// addHist adds counts by record bucket (h[j] is bucket lo+j's) to a sketch
// of newSketch's. The highest and the lowest bucket go first, so that the
// store takes its range in one or two steps, not once per new bucket
// (re-centring its bins each time); the bins are the same either way.
func addHist(s *ddsketch.DDSketch, h []uint64, lo int) {
	first, last := -1, -1
	for j, n := range h {
		if n > 0 {
			if first < 0 {
				first = j
			}
			last = j
		}
	}
	if first < 0 {
		return
	}
	st, keys := s.GetPositiveValueStore(), bucketKeys()
	addKeyed(s, st, keys, lo+last, h[last])
	if first == last {
		return
	}
	addKeyed(s, st, keys, lo+first, h[first])
	for j := first + 1; j < last; j++ {
		if h[j] > 0 {
			addKeyed(s, st, keys, lo+j, h[j])
		}
	}
}

// addKeyed is addBucket given s's positive store st and bucketKeys.
func addKeyed(s *ddsketch.DDSketch, st store.Store, keys *[record.NumBuckets]int, i int, n uint64) {
	if i >= 0 && i < record.NumBuckets {
		if k := keys[i]; k >= 0 {
			st.AddWithCount(k, float64(n))
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
	switch {
	case k <= 0:
		return Counts{}
	case int64(k) >= r.n:
		return r.total
	}
	// The sum before the newest k buckets is all right after bucket
	// seq-k: at the newest mark up to it, else base (zero when no mark
	// ever left: fewer than k+1 buckets pushed, or none with data).
	before := r.seq - int64(k)
	i := sort.Search(r.size, func(i int) bool { return r.marks[(r.head+i)%len(r.marks)].seq > before })
	c := r.all
	if i > 0 {
		c.sub(r.marks[(r.head+i-1)%len(r.marks)].all)
	} else {
		c.sub(r.base)
	}
	return c
}
