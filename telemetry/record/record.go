// Package record is the request path's side of grayzone's input: it counts
// each request's outcome and latency per (source, zone, instance, operation)
// series, lock-free and without allocating, and hands the counts to the
// engine side once per tick as deltas.
//
// A series is resolved once (Recorder.Series, e.g. when a route or target is
// created) and then observed on every request:
//
//	s := rec.Series(observation.Server, "az-a", "i-1", "orders")
//	...
//	s.Observe(observation.FromStatus(code), time.Since(start))
//
// Observe is one atomic add (and reads of two flags it sets only when they
// are clear, about once per drain): each (outcome, latency bucket) pair has
// its own counter, so the request, fault, error and latency counts of a
// delta are all sums of those counters, read by Drain. The latency bucket
// that holds the series' slow threshold is split in two counters (at or
// below / above the threshold), so the slow count is exact, not rounded to
// a bucket edge.
//
// Drain swaps the counters that moved (the flags say which) to zero with
// atomic swaps: an increment lands in exactly one drain, never in none or
// two. Series are padded so that Observe on different series from
// different cores never writes the same cache line.
package record

import (
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
)

// Latency histogram: log-linear buckets, 8 per power of two of nanoseconds,
// from 2^10 ns (1.024 µs) to 2^34 ns (17.2 s), NumBuckets in all.
//
// For a latency of v ns with 2^e ≤ v < 2^(e+1) (e = bits.Len64(v)-1), the
// bucket is (e-10)·8 + s, where s = the three bits of v right after its top
// bit, i.e. bucket (e-10)·8+s holds [2^e·(1+s/8), 2^e·(1+(s+1)/8)). Every
// bucket is 1/8 of its octave wide: 12.5 % of its lower bound at the start of
// an octave, 6.7 % at its end, so reporting a bucket's midpoint (BucketMid) is
// within 6.25 % of any value in it. Values below 1.024 µs go to bucket 0
// too (reported as its midpoint, 1.088 µs), values at or above 2^34 ns to
// the last bucket (reported as its lower bound, 16.1 s). The mapping is fixed, so
// histograms from any series, process or tick merge by adding counts.
const (
	minExp       = 10
	maxExp       = 34
	subBits      = 3
	subBuckets   = 1 << subBits
	NumBuckets   = (maxExp - minExp) * subBuckets // 192
	numOutcomes  = 3
	slotsPerOut  = NumBuckets + 1 // the extra slot: the threshold bucket's slow part
	cacheLinePad = 128            // two lines: the adjacent-line prefetcher pairs them
	flagBlock    = 64             // moved flags allocated together (a line's worth)
	touchedWords = (slotsPerOut + 63) / 64
)

// BucketOf returns the histogram bucket of a latency.
func BucketOf(d time.Duration) int {
	// Clamp into [2^minExp, 2^maxExp): below lands in bucket 0, above in the
	// last; negative latencies in bucket 0 too.
	v := uint64(min(max(d, 1<<minExp), 1<<maxExp-1))
	e := bits.Len64(v) - 1
	return (e-minExp)<<subBits | int(v>>(e-subBits))&(subBuckets-1)
}

// BucketLower is the smallest latency in bucket i (0 for bucket 0).
func BucketLower(i int) time.Duration {
	if i <= 0 {
		return 0
	}
	e := uint(i>>subBits) + minExp
	s := uint64(i & (subBuckets - 1))
	return time.Duration((uint64(1) << e) + s<<(e-subBits))
}

// BucketUpper is the smallest latency above bucket i (the largest Duration for the last one).
func BucketUpper(i int) time.Duration {
	if i >= NumBuckets-1 {
		return time.Duration(1<<63 - 1)
	}
	return BucketLower(i + 1)
}

// BucketMid is the value reported for bucket i: its midpoint (the lower
// bound of the last, open-ended bucket).
func BucketMid(i int) time.Duration {
	if i >= NumBuckets-1 {
		return BucketLower(i)
	}
	lo, hi := BucketLower(i), BucketUpper(i)
	if i == 0 {
		lo = 1 << minExp // as if it held only its own eighth of an octave
	}
	return lo + (hi-lo)/2
}

// Histogram is a latency histogram on the fixed mapping above.
type Histogram [NumBuckets]uint64

// Count is the number of latencies in the histogram.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	return n
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o {
		h[i] += c
	}
}

// Quantile returns the midpoint of the bucket holding the q-quantile
// (0 ≤ q ≤ 1), or 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n-1)) + 1 // 1-based rank of the sample
	var seen uint64
	for i, c := range h {
		seen += c
		if seen >= rank {
			return BucketMid(i)
		}
	}
	return BucketMid(NumBuckets - 1)
}

// SeriesKey names a series.
type SeriesKey struct {
	Source    observation.Source
	Zone      string
	Instance  string
	Operation string
}

// Snapshot is what a series counted since the previous drain.
type Snapshot struct {
	Requests uint64
	Faults   uint64
	Errors   uint64
	Slow     uint64 // latency strictly above the series' threshold
	Latency  Histogram
}

// Series is one series' counters; obtain it from Recorder.Series.
type Series struct {
	_ [cacheLinePad]byte
	// Read-only after Recorder.Series made it.
	key       SeriesKey
	threshold time.Duration
	threshB   int // BucketOf(threshold)
	// touched has a bit per counter slot (bucket; the last, NumBuckets,
	// the threshold bucket's slow part) set by Observe (after its add,
	// when not already set) and swapped to zero by drain before it reads
	// the slots it names: a drain reads the counters that moved, not all
	// 579 (a series sees a request or two per bucket and tick in the lab's
	// simulated hours; scanning every counter of every series was a third
	// of a simulated hour's CPU). It shares the line Observe reads
	// threshB from, and is written at most once per slot and drain.
	touched [touchedWords]atomic.Uint64
	_       [cacheLinePad]byte
	counts  [numOutcomes][slotsPerOut]atomic.Uint64
	_       [cacheLinePad]byte
	// moved is set by Observe (after its add) and cleared by drain (before
	// its scan), so a drain skips a quiet series without reading its
	// 579 counters: at a fleet's size (thousands of series drained four
	// times a second) the scans were most of the tick loop's work. The
	// flags of a recorder's series lie side by side (Recorder.flags), so a
	// drain reads a line or two, not a line per series; written once per
	// drain at most, they stay shared between the cores.
	moved *atomic.Bool
}

// Key is the series' name.
func (s *Series) Key() SeriesKey { return s.key }

// Observe counts one request. It is safe for concurrent use, lock-free (one
// atomic add, and reads of the slot's touched bit and the series' moved
// flag, each set here at most once per drain) and does not allocate. (The flag put it past the inliner's budget: a call
// of a few nanoseconds per proxied request, against a scan of every quiet
// series at every drain.) Outcomes beyond Fault count as faults; negative
// latencies as zero.
func (s *Series) Observe(outcome observation.Outcome, latency time.Duration) {
	i := BucketOf(latency)
	if i == s.threshB && latency > s.threshold {
		i = NumBuckets
	}
	s.counts[min(outcome, observation.Fault)][i].Add(1)
	if w, bit := &s.touched[i>>6], uint64(1)<<(i&63); w.Load()&bit == 0 { // a read, nearly always
		w.Or(bit)
	}
	if m := s.moved; !m.Load() { // a read, nearly always: set once per drain
		m.Store(true)
	}
}

// take swaps the series' counters to zero into a: its request, fault,
// error and slow counts are added to a's, its non-zero latency buckets
// appended to buf in ascending order (the threshold bucket's slow part
// counted in the threshold bucket). It returns buf. Only the slots named
// in touched are read, bucket by bucket across the outcomes, so the sparse
// histogram comes out of one short scan.
//
// Nothing is lost or counted twice: an Observe whose Load of its touched
// bit saw it set ran its add before this swap of the word, so before the
// slot's swap; one that saw it clear sets it after its add, so either
// this drain reads the slot after the add, or the bit stays for the next
// drain (which may find the slot already taken: a zero, skipped).
func (s *Series) take(a *Aggregate, buf []Bucket) []Bucket {
	// An add after this Store either sets moved again (its Load follows
	// its add, and sees false) or is seen by this scan.
	s.moved.Store(false)
	var mask [touchedWords]uint64
	for w := range s.touched {
		if s.touched[w].Load() != 0 { // a plain load: swap only what moved
			mask[w] = s.touched[w].Swap(0)
		}
	}
	// The slow part is reported in the threshold bucket: read it there.
	if mask[NumBuckets>>6]&(1<<(NumBuckets&63)) != 0 {
		mask[s.threshB>>6] |= 1 << (s.threshB & 63)
	}
	for w, m := range mask {
		for m != 0 {
			i := w<<6 | bits.TrailingZeros64(m)
			m &= m - 1
			if i >= NumBuckets {
				break
			}
			n := s.swap(a, i)
			if i == s.threshB {
				slow := s.swap(a, NumBuckets)
				a.Slow += slow
				n += slow
			} else if i > s.threshB {
				a.Slow += n
			}
			if n > 0 {
				buf = append(buf, Bucket{Index: i, Count: n})
			}
		}
	}
	return buf
}

// swap moves slot i's counters of every outcome into a's counts and
// returns their sum. A plain load first: swap only what moved.
func (s *Series) swap(a *Aggregate, i int) uint64 {
	var n uint64
	if c := &s.counts[observation.Success][i]; c.Load() != 0 {
		v := c.Swap(0) // an add after this lands in the next drain
		n += v
	}
	if c := &s.counts[observation.Error][i]; c.Load() != 0 {
		v := c.Swap(0)
		a.Errors += v
		n += v
	}
	if c := &s.counts[observation.Fault][i]; c.Load() != 0 {
		v := c.Swap(0)
		a.Faults += v
		n += v
	}
	a.Requests += n
	return n
}

// Options configure a Recorder.
type Options struct {
	// DefaultThreshold is the slow threshold of operations not in
	// Thresholds (default 100 ms, the workshop's).
	DefaultThreshold time.Duration
	// Thresholds per operation name.
	Thresholds map[string]time.Duration
}

// seriesList is a recorder's series and, side by side, their moved flags.
type seriesList struct {
	all   []*Series
	moved []*atomic.Bool // moved[i] is all[i].moved
}

// Recorder owns a set of series.
type Recorder struct {
	opts Options

	mu     sync.Mutex
	byKey  map[SeriesKey]*Series
	series atomic.Pointer[seriesList] // append-only, copied on write
	flags  []atomic.Bool              // the block the next series' moved flag is taken from

	drainMu sync.Mutex
	drained Drained // Drain's, reused under drainMu
}

// New returns an empty recorder.
func New(opts Options) *Recorder {
	if opts.DefaultThreshold <= 0 {
		opts.DefaultThreshold = operation.DefaultThreshold
	}
	r := &Recorder{opts: opts, byKey: make(map[SeriesKey]*Series)}
	r.series.Store(&seriesList{})
	return r
}

// Series returns the series for the key, creating it on first use; every
// call with the same key returns the same *Series. It takes a lock: resolve
// series once, not per request.
func (r *Recorder) Series(source observation.Source, zone, instance, operation string) *Series {
	k := SeriesKey{Source: source, Zone: zone, Instance: instance, Operation: operation}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.byKey[k]; s != nil {
		return s
	}
	th := r.opts.DefaultThreshold
	if t, ok := r.opts.Thresholds[operation]; ok && t > 0 {
		th = t
	}
	if len(r.flags) == 0 {
		r.flags = make([]atomic.Bool, flagBlock)
	}
	s := &Series{key: k, threshold: th, threshB: BucketOf(th), moved: &r.flags[0]}
	r.flags = r.flags[1:]
	r.byKey[k] = s
	old := r.series.Load()
	r.series.Store(&seriesList{all: append(slices.Clone(old.all), s), moved: append(slices.Clone(old.moved), s.moved)})
	return s
}

// Configured reports whether operation has a slow threshold of its own
// (Options.Thresholds): an operation the configuration names, not one a
// caller made up.
func (r *Recorder) Configured(operation string) bool {
	_, ok := r.opts.Thresholds[operation]
	return ok
}

// Len is the number of series resolved so far.
func (r *Recorder) Len() int { return len(r.series.Load().all) }

// Drain calls f with each series' counts since the previous Drain, for the
// series that counted anything, and resets them. Concurrent Observe calls
// are never lost: each lands in this drain or the next. Drains are
// serialised; f must not call Drain.
func (r *Recorder) Drain(f func(key SeriesKey, delta Snapshot)) {
	r.drainMu.Lock()
	defer r.drainMu.Unlock()
	r.drain(time.Time{}, &r.drained)
	for _, a := range r.drained.Aggregates {
		d := Snapshot{Requests: a.Requests, Faults: a.Faults, Errors: a.Errors, Slow: a.Slow}
		for _, b := range a.Latency {
			d.Latency[b.Index] = b.Count
		}
		f(a.Key, d)
	}
	r.drained.reset()
}

// Drained is what DrainAggregates hands over: kept by the caller and
// passed to the next drain, its memory is reused.
type Drained struct {
	// Aggregates are the series' counts, one aggregate per series that
	// counted anything, in the order the series were made. Their latency
	// buckets point into the Drained's own buffer: the next drain reuses it.
	Aggregates []Aggregate
	// IDs[i] is the number of Aggregates[i]'s series: the order in which
	// Series made it, so the same key always has the same number. The
	// ingest gate remembers what it admitted by these numbers
	// (Gate.OfferSeries) rather than looking each key's names up again.
	IDs     []int
	buckets []Bucket
}

// reset empties d for the next drain, dropping the key strings it holds.
func (d *Drained) reset() {
	clear(d.Aggregates)
	d.Aggregates, d.IDs, d.buckets = d.Aggregates[:0], d.IDs[:0], d.buckets[:0]
}

// DrainAggregates is Drain in the form the ingest gate takes: each
// series' counts as an aggregate at at, into d (emptied first), appended
// in place: no call per series, and one copy of each record.
func (r *Recorder) DrainAggregates(at time.Time, d *Drained) {
	r.drainMu.Lock()
	defer r.drainMu.Unlock()
	d.reset()
	r.drain(at, d)
}

func (r *Recorder) drain(at time.Time, d *Drained) {
	l := r.series.Load()
	aggs, buf := d.Aggregates, d.buckets
	for i, s := range l.all {
		// The flag first, from the list: a quiet series' own memory is
		// not touched at all (a plain Load: a quiet series costs one read,
		// not a locked swap).
		if !l.moved[i].Load() {
			continue
		}
		aggs = append(aggs, Aggregate{At: at, Key: s.key})
		a := &aggs[len(aggs)-1]
		b0 := len(buf)
		buf = s.take(a, buf)
		if a.Requests == 0 {
			aggs[len(aggs)-1] = Aggregate{}
			aggs = aggs[:len(aggs)-1]
			continue
		}
		if len(buf) > b0 {
			a.Latency = buf[b0:len(buf):len(buf)]
		}
		d.IDs = append(d.IDs, i)
	}
	d.Aggregates, d.buckets = aggs, buf
}
