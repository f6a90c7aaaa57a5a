package record

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/observation"
)

func TestBucketMappingMonotoneAndWithinRelativeError(t *testing.T) {
	// Every bucket boundary, and the values just around it.
	for i := 1; i < NumBuckets; i++ {
		lo := BucketLower(i)
		if got := BucketOf(lo); got != i {
			t.Fatalf("BucketOf(lower(%d)=%v) = %d", i, lo, got)
		}
		if got := BucketOf(lo - 1); got != i-1 {
			t.Fatalf("BucketOf(lower(%d)-1) = %d, want %d", i, got, i-1)
		}
		if i < NumBuckets-1 {
			hi := BucketUpper(i)
			if w := float64(hi-lo) / float64(lo); w > 0.125+1e-12 || w < 0.0666 {
				t.Fatalf("bucket %d [%v,%v): relative width %.4f, want 6.7%%..12.5%%", i, lo, hi, w)
			}
		}
	}
	if BucketLower(1) != 1152 || BucketLower(NumBuckets-1) != time.Duration(15)<<30 {
		t.Fatalf("range: bucket 1 starts at %v, the last at %v", BucketLower(1), BucketLower(NumBuckets-1))
	}
	// Monotone and within 6.25 % of the bucket midpoint, over random values
	// spread log-uniformly across the range and beyond.
	rng := rand.New(rand.NewPCG(1, 2))
	prev, prevB := time.Duration(-1), -1
	vals := make([]time.Duration, 0, 200000)
	for range 200000 {
		vals = append(vals, time.Duration(math.Exp2(rng.Float64()*40)))
	}
	vals = append(vals, -5, 0, 1, 1023, 1024, 1<<34-1, 1<<34, 1<<62)
	slices.Sort(vals)
	for _, v := range vals {
		b := BucketOf(v)
		if b < 0 || b >= NumBuckets {
			t.Fatalf("BucketOf(%v) = %d out of range", v, b)
		}
		if v > prev && b < prevB {
			t.Fatalf("not monotone: BucketOf(%v)=%d < BucketOf(%v)=%d", v, b, prev, prevB)
		}
		prev, prevB = v, b
		if v >= 1<<minExp && v < 1<<maxExp {
			if v < BucketLower(b) || v >= BucketUpper(b) {
				t.Fatalf("%v not in its bucket %d [%v,%v)", v, b, BucketLower(b), BucketUpper(b))
			}
			if e := abs(float64(BucketMid(b)-v)) / float64(v); e > 0.0625 {
				t.Fatalf("%v: midpoint %v off by %.3f%%", v, BucketMid(b), e*100)
			}
		}
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestObserveCountsAndSlowIsExact(t *testing.T) {
	r := New(Options{DefaultThreshold: 100 * time.Millisecond, Thresholds: map[string]time.Duration{"fast": 10 * time.Millisecond}})
	s := r.Series(observation.Server, "az-a", "i-1", "orders")
	if r.Series(observation.Server, "az-a", "i-1", "orders") != s {
		t.Fatal("same key resolved to two series")
	}
	f := r.Series(observation.Server, "az-a", "i-1", "fast")
	// Around the threshold, which lies inside a bucket: only > counts as slow.
	s.Observe(observation.Success, 100*time.Millisecond)
	s.Observe(observation.Success, 100*time.Millisecond+1)
	s.Observe(observation.Fault, 99*time.Millisecond)
	s.Observe(observation.Error, 2*time.Second)
	s.Observe(observation.Outcome(9), time.Millisecond) // unknown: a fault
	f.Observe(observation.Success, 11*time.Millisecond)
	got := map[SeriesKey]Snapshot{}
	r.Drain(func(k SeriesKey, d Snapshot) { got[k] = d })
	d := got[s.Key()]
	if d.Requests != 5 || d.Faults != 2 || d.Errors != 1 || d.Slow != 2 || d.Latency.Count() != 5 {
		t.Errorf("orders: %+v", struct{ R, F, E, S, H uint64 }{d.Requests, d.Faults, d.Errors, d.Slow, d.Latency.Count()})
	}
	if d.Latency[BucketOf(100*time.Millisecond)] != 3 {
		t.Errorf("threshold bucket holds %d, want 3 (the split slot folded back)", d.Latency[BucketOf(100*time.Millisecond)])
	}
	if fd := got[f.Key()]; fd.Requests != 1 || fd.Slow != 1 {
		t.Errorf("fast: %+v", fd)
	}
	// Drained: the next drain reports nothing.
	n := 0
	r.Drain(func(SeriesKey, Snapshot) { n++ })
	if n != 0 {
		t.Errorf("second drain reported %d series", n)
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 {
		t.Fatal("empty histogram")
	}
	for i := 1; i <= 1000; i++ {
		h[BucketOf(time.Duration(i+1)*time.Microsecond)]++
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 501 * time.Microsecond}, {0.99, 991 * time.Microsecond}, {0, 2 * time.Microsecond}} {
		got := h.Quantile(c.q)
		if e := abs(float64(got-c.want)) / float64(c.want); e > 0.07 {
			t.Errorf("q%.2f = %v, want ≈%v", c.q, got, c.want)
		}
	}
	var m Histogram
	m.Merge(&h)
	m.Merge(&h)
	if m.Count() != 2000 || m.Quantile(0.5) != h.Quantile(0.5) {
		t.Errorf("merge: count %d, median %v", m.Count(), m.Quantile(0.5))
	}
}

// TestConcurrentObserveAndDrainLoseNothing runs writers on shared and
// disjoint series while a drainer drains continuously; the drained totals
// must equal what was observed, per series and per outcome.
func TestConcurrentObserveAndDrainLoseNothing(t *testing.T) {
	r := New(Options{DefaultThreshold: 50 * time.Microsecond})
	shared := r.Series(observation.Server, "az-a", "i-1", "op")
	const writers, per = 8, 20000
	var total [writers]Snapshot
	var wg sync.WaitGroup
	var stop atomic.Bool
	drained := map[SeriesKey]*Snapshot{}
	add := func(k SeriesKey, d Snapshot) {
		a := drained[k]
		if a == nil {
			a = &Snapshot{}
			drained[k] = a
		}
		a.Requests += d.Requests
		a.Faults += d.Faults
		a.Errors += d.Errors
		a.Slow += d.Slow
		a.Latency.Merge(&d.Latency)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			r.Drain(add)
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := r.Series(observation.Canary, "az-b", "i-2", string(rune('a'+w)))
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range per {
				s := shared
				if i%2 == 1 {
					s = own
				}
				o := observation.Outcome(rng.IntN(3))
				lat := time.Duration(rng.IntN(200)) * time.Microsecond
				s.Observe(o, lat)
				if s == shared {
					total[w].Requests++
					switch o {
					case observation.Fault:
						total[w].Faults++
					case observation.Error:
						total[w].Errors++
					}
					if lat > 50*time.Microsecond {
						total[w].Slow++
					}
				}
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	<-done
	r.Drain(add)
	var want Snapshot
	for _, tw := range total {
		want.Requests += tw.Requests
		want.Faults += tw.Faults
		want.Errors += tw.Errors
		want.Slow += tw.Slow
	}
	got := drained[shared.Key()]
	if got == nil || got.Requests != want.Requests || got.Faults != want.Faults || got.Errors != want.Errors || got.Slow != want.Slow || got.Latency.Count() != want.Requests {
		t.Fatalf("shared series: drained %+v, observed R%d F%d E%d S%d", got, want.Requests, want.Faults, want.Errors, want.Slow)
	}
	for w := range writers {
		k := SeriesKey{observation.Canary, "az-b", "i-2", string(rune('a' + w))}
		if g := drained[k]; g == nil || g.Requests != per/2 {
			t.Errorf("series %v: drained %v requests, want %d", k, g, per/2)
		}
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	s := New(Options{}).Series(observation.Server, "z", "i", "op")
	if n := testing.AllocsPerRun(1000, func() { s.Observe(observation.Success, time.Millisecond) }); n != 0 {
		t.Errorf("Observe allocates %v times", n)
	}
}

// TestDrainAggregatesIsTheSparseSnapshot: the aggregate form holds exactly
// the snapshot's counts, its buckets ascending (the threshold bucket's slow
// part folded into it, also when only the slow part moved), over drains
// that each see a different set of touched buckets, and the buckets of all
// series share the one buffer.
func TestDrainAggregatesIsTheSparseSnapshot(t *testing.T) {
	r := New(Options{DefaultThreshold: 100 * time.Millisecond})
	s := r.Series(observation.Server, "az-a", "i-1", "orders")
	q := r.Series(observation.Canary, "az-b", "i-2", "orders")
	rounds := [][]time.Duration{
		{3 * time.Millisecond, 100*time.Millisecond + 1, 20 * time.Second, 0, 3 * time.Millisecond},
		{100*time.Millisecond + 2}, // the slow part alone
		{100 * time.Millisecond, 99 * time.Millisecond, time.Microsecond},
	}
	at := time.Unix(100, 0)
	var d Drained
	for ri, lats := range rounds {
		var want Snapshot
		for i, l := range lats {
			o := observation.Outcome(i % 3)
			s.Observe(o, l)
			want.Requests++
			switch o {
			case observation.Fault:
				want.Faults++
			case observation.Error:
				want.Errors++
			}
			if l > 100*time.Millisecond {
				want.Slow++
			}
			want.Latency[BucketOf(l)]++
		}
		q.Observe(observation.Success, time.Second)
		r.DrainAggregates(at, &d)
		got := d.Aggregates
		if len(got) != 2 || !reflect.DeepEqual(d.IDs, []int{0, 1}) {
			t.Fatalf("round %d: %d aggregates of series %v, want 2 of series [0 1]", ri, len(got), d.IDs)
		}
		if w := want.Aggregate(at, s.Key()); !reflect.DeepEqual(got[0], w) {
			t.Errorf("round %d: got %+v, want %+v", ri, got[0], w)
		}
		if got[1].Key != q.Key() || got[1].Requests != 1 || got[1].Slow != 1 || len(got[1].Latency) != 1 || got[1].Latency[0].Index != BucketOf(time.Second) {
			t.Errorf("round %d: second series %+v", ri, got[1])
		}
	}
	r.DrainAggregates(at, &d)
	if len(d.Aggregates) != 0 || len(d.IDs) != 0 {
		t.Errorf("a drain after the last reported series %v", d.IDs)
	}
}

// TestDrainAggregatesNumbersSeries: of many series, those that counted
// drain in the order they were made, each under its number (the ingest
// gate's memo relies on it), and only once.
func TestDrainAggregatesNumbersSeries(t *testing.T) {
	r := New(Options{})
	var ss []*Series
	for i := range 200 {
		ss = append(ss, r.Series(observation.Server, "az-a", "i-"+strconv.Itoa(i), "orders"))
	}
	var want []int
	for i := 199; i >= 0; i -= 3 {
		ss[i].Observe(observation.Success, time.Millisecond)
		want = append([]int{i}, want...)
	}
	var d Drained
	r.DrainAggregates(time.Unix(1, 0), &d)
	if !reflect.DeepEqual(d.IDs, want) {
		t.Fatalf("series drained %v, want %v", d.IDs, want)
	}
	for j, a := range d.Aggregates {
		if a.Key != ss[want[j]].Key() || a.Requests != 1 {
			t.Errorf("aggregate %d: %+v, want one request of %v", j, a, ss[want[j]].Key())
		}
	}
	if r.DrainAggregates(time.Unix(2, 0), &d); len(d.Aggregates) != 0 {
		t.Errorf("a second drain reported series %v", d.IDs)
	}
}
