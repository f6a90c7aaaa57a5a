package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func agg(zone, inst, op string, n uint64) record.Aggregate {
	a := record.Aggregate{At: t0, Key: record.SeriesKey{Zone: zone, Instance: inst, Operation: op}, Requests: n, Slow: record.SlowFromLatency}
	a.AddLatency(50*time.Millisecond, n-1)
	a.AddLatency(500*time.Millisecond, 1)
	return a
}

func drainAll(g *Gate) []record.Aggregate {
	var out []record.Aggregate
	g.Drain(t0, 0, func(b []record.Aggregate) { out = append(out, b...) })
	return out
}

func TestOfferFillsSlowAndCounts(t *testing.T) {
	g := New("web", []string{"az1", "az2"}, Limits{})
	if err := g.Offer("otlp", []record.Aggregate{agg("az1", "i-1", "get", 10), agg("az2", "i-2", "get", 5)}, t0); err != nil {
		t.Fatal(err)
	}
	got := drainAll(g)
	if len(got) != 2 || got[0].Slow != 1 || got[1].Slow != 1 {
		t.Fatalf("drained %+v, want 2 aggregates with 1 slow each", got)
	}
	st := g.Stats()
	if len(st) != 1 || st[0].Accepted != 2 || st[0].Requests != 15 || !st[0].Newest.Equal(t0) {
		t.Fatalf("stats %+v", st)
	}
	if g.Pending() != 0 {
		t.Fatalf("pending %d after drain", g.Pending())
	}
}

func TestBatchRejectedWholeAndStateUntouched(t *testing.T) {
	g := New("web", []string{"az1", "az2"}, Limits{MaxInstances: 2, MaxOperations: 2})
	err := g.Offer("emf", []record.Aggregate{agg("az1", "i-1", "get", 3), agg("az9", "i-2", "get", 3)}, t0)
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `[1].zone: "az9" is not a zone of web`) {
		t.Fatalf("err = %v", err)
	}
	if g.Pending() != 0 {
		t.Fatal("half a batch was queued")
	}
	if i, o := g.Cardinality(); i != 0 || o != 0 {
		t.Fatalf("a rejected batch registered %d instances, %d operations", i, o)
	}
	if err := g.Offer("emf", []record.Aggregate{agg("az1", "i-1", "get", 3), agg("az2", "i-2", "put", 3)}, t0); err != nil {
		t.Fatal(err)
	}
	err = g.Offer("emf", []record.Aggregate{agg("az1", "i-3", "get", 3)}, t0)
	if !errors.Is(err, ErrCapped) || !strings.Contains(err.Error(), `"i-3" would be instance 3 from source emf of web, over its cap of 2 (telemetry.max_instances)`) {
		t.Fatalf("err = %v", err)
	}
	err = g.Offer("emf", []record.Aggregate{agg("az1", "i-1", "del", 3)}, t0)
	if !errors.Is(err, ErrCapped) || !strings.Contains(err.Error(), "telemetry.max_operations") {
		t.Fatalf("err = %v", err)
	}
	st := g.Stats()[0]
	if st.Rejected[ReasonZone] != 1 || st.Rejected[ReasonInstances] != 1 || st.Rejected[ReasonOps] != 1 || st.Accepted != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Known series keep flowing past the caps.
	if err := g.Offer("emf", []record.Aggregate{agg("az1", "i-1", "put", 3)}, t0); err != nil {
		t.Fatal(err)
	}
	// Silent instances give their place back after Forget.
	later := t0.Add(DefaultForget + 2*time.Minute)
	g.Drain(later, 0, func([]record.Aggregate) {})
	if err := g.Offer("emf", []record.Aggregate{agg("az1", "i-3", "get", 3)}, later); err != nil {
		t.Fatalf("after forget: %v", err)
	}
}

func TestFullBufferDropsAndCounts(t *testing.T) {
	g := New("web", []string{"az1", "az2"}, Limits{MaxPending: 3})
	for i := range 2 {
		err := g.Offer("batch", []record.Aggregate{agg("az1", fmt.Sprint("i-", i), "get", 2), agg("az2", "i-9", "get", 2)}, t0)
		if i == 1 && !errors.Is(err, ErrFull) {
			t.Fatalf("second batch: err = %v, want ErrFull", err)
		}
	}
	if st := g.Stats()[0]; st.Dropped != 2 || st.Accepted != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Drain in steps of at most 1 per tick: nothing lost, oldest first.
	var got []record.Aggregate
	for range 3 {
		g.Drain(t0, 1, func(b []record.Aggregate) { got = append(got, b...) })
	}
	if len(got) != 2 || got[0].Key.Zone != "az1" || got[1].Key.Zone != "az2" {
		t.Fatalf("drained %+v", got)
	}
}

// Single observations take the one way in: an aggregate of one each
// (record.Single), offered and capped like any other.
func TestSingleObservationsAreOffered(t *testing.T) {
	g := New("web", []string{"az1", "az2"}, Limits{MaxInstances: 1})
	obs := []observation.Observation{{At: t0, Zone: "az1", Instance: "i-1", Operation: "get"}, {At: t0, Zone: "az1", Instance: "i-2", Operation: "get"}}
	aggs := []record.Aggregate{record.Single(obs[0]), record.Single(obs[1])}
	if err := g.Offer("batch", aggs, t0); !errors.Is(err, ErrCapped) {
		t.Fatalf("err = %v", err)
	}
	if err := g.Offer("batch", aggs[:1], t0); err != nil {
		t.Fatal(err)
	}
}

// Under overload (offers far above what each drain takes), the queue stays
// within MaxPending, every record is either drained once, in order, or
// counted as dropped, and partial drains interleaved with offers lose
// nothing.
func TestOverloadBoundedOrderedAndCounted(t *testing.T) {
	const maxPending, perDrain = 50, 7
	g := New("web", []string{"az1"}, Limits{MaxPending: maxPending})
	var got []record.Aggregate
	offered := 0
	for round := range 200 {
		batch := make([]record.Aggregate, 1+round%9)
		for i := range batch {
			batch[i] = agg("az1", "i-1", "get", uint64(offered+i+1))
		}
		err := g.Offer("otlp", batch, t0)
		if err != nil && !errors.Is(err, ErrFull) {
			t.Fatal(err)
		}
		offered += len(batch)
		if p := g.Pending(); p > maxPending {
			t.Fatalf("round %d: %d pending, over the bound of %d", round, p, maxPending)
		}
		if round%2 == 0 {
			g.Drain(t0, perDrain, func(b []record.Aggregate) {
				if len(b) > perDrain {
					t.Fatalf("drained %d, over the budget of %d", len(b), perDrain)
				}
				got = append(got, b...)
			})
		}
	}
	got = append(got, drainAll(g)...)
	st := g.Stats()[0]
	if int(st.Accepted) != len(got) || int(st.Accepted+st.Dropped) != offered || st.Dropped == 0 {
		t.Fatalf("accepted %d, dropped %d, drained %d, offered %d", st.Accepted, st.Dropped, len(got), offered)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Requests <= got[i-1].Requests {
			t.Fatalf("out of order at %d: %d after %d", i, got[i].Requests, got[i-1].Requests)
		}
	}
}

// The queue's chunks are recycled: records drained in runs of any size,
// while more are offered, come out in order with their own buckets, across
// chunk boundaries and reused arenas, and concurrent offers and drains do
// not race (go test -race).
func TestChunkedQueueKeepsOrderAndBuckets(t *testing.T) {
	g := New("web", []string{"az1"}, Limits{MaxPending: 3 * chunkRecords, MaxInstances: 10, MaxOperations: 10})
	mk := func(i int) record.Aggregate {
		a := record.Aggregate{At: t0, Key: record.SeriesKey{Zone: "az1", Instance: "i-1", Operation: "get"}, Requests: uint64(i + 1)}
		for b := range i % 20 { // 0 to 19 buckets: some records fill an arena early
			a.Latency = append(a.Latency, record.Bucket{Index: b, Count: uint64(i)})
		}
		return a
	}
	check := func(a record.Aggregate, i int) {
		t.Helper()
		if a.Requests != uint64(i+1) || len(a.Latency) != i%20 {
			t.Fatalf("record %d came out as %+v", i, a)
		}
		for b, l := range a.Latency {
			if l.Index != b || l.Count != uint64(i) {
				t.Fatalf("record %d's buckets overwritten: %+v", i, a.Latency)
			}
		}
	}
	sent, got := 0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sent < 40_000 {
			batch := make([]record.Aggregate, 0, 700)
			for i := sent; i < sent+700; i++ {
				batch = append(batch, mk(i))
			}
			if err := g.Offer("otlp", batch, t0); errors.Is(err, ErrFull) {
				continue // the drainer is behind: offer the same records again
			} else if err != nil {
				t.Error(err)
				return
			}
			sent += 700
		}
	}()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		g.Drain(t0, 1+got%5000, func(b []record.Aggregate) {
			for _, a := range b {
				check(a, got)
				got++
			}
		})
	}
	g.Drain(t0, 0, func(b []record.Aggregate) {
		for _, a := range b {
			check(a, got)
			got++
		}
	})
	if got != sent || g.Pending() != 0 {
		t.Fatalf("drained %d of %d, %d pending", got, sent, g.Pending())
	}
}

// TestMadeUpRoutesDoNotCrowdOutConfigured: one source flooding the gate
// with made-up operations fills only its own cap; the operator's configured
// operations are always admitted, and another source keeps its own room.
func TestMadeUpRoutesDoNotCrowdOutConfigured(t *testing.T) {
	g := New("web", []string{"az1"}, Limits{MaxOperations: 5, Thresholds: map[string]time.Duration{"ride": time.Second}})
	var flood []record.Aggregate
	for i := range 100 {
		flood = append(flood, agg("az1", "i-1", fmt.Sprintf("/made-up/%d", i), 1))
	}
	if err := g.Offer("otlp", flood, t0); !errors.Is(err, ErrCapped) {
		t.Fatalf("100 made-up routes: %v, want ErrCapped", err)
	}
	if err := g.Offer("otlp", flood[:5], t0); err != nil {
		t.Fatalf("five made-up routes: %v", err)
	}
	if err := g.Offer("otlp", flood[5:6], t0); !errors.Is(err, ErrCapped) {
		t.Fatalf("a sixth: %v", err)
	}
	// The configured operation, from the flooding source and from another.
	if err := g.Offer("otlp", []record.Aggregate{agg("az1", "i-1", "ride", 1)}, t0); err != nil {
		t.Fatalf("configured operation from the flooded source: %v", err)
	}
	if err := g.Offer("batch", []record.Aggregate{agg("az1", "i-1", "ride", 1), agg("az1", "i-1", "/own", 1)}, t0); err != nil {
		t.Fatalf("the operator's batch: %v", err)
	}
	st := g.Stats()
	if st[1].Source != "otlp" || st[1].Rejected[ReasonOps] != 2 {
		t.Fatalf("stats: %+v", st)
	}
}

// A quiet gate holds a small chunk (a fleet has a gate per resource), a
// backlog gets chunks that grow with it up to chunkRecords, and a record
// with many buckets gets an arena that takes them.
func TestChunksSizedForBacklog(t *testing.T) {
	for _, tc := range []struct{ backlog, nb, want int }{
		{1, 0, minChunkRecords}, {1, 12, minChunkRecords}, {65, 0, 128}, {3000, 5, chunkRecords / 1}, {1 << 20, 0, chunkRecords},
		{1, 2000, 256}, {1, chunkBuckets + 1, minChunkRecords},
	} {
		if got := chunkSize(tc.backlog, tc.nb); got != tc.want {
			t.Errorf("chunkSize(%d, %d) = %d, want %d", tc.backlog, tc.nb, got, tc.want)
		}
	}
	g := New("web", []string{"az1"}, Limits{MaxPending: 1 << 20, MaxInstances: 10, MaxOperations: 10})
	one := record.Aggregate{At: t0, Key: record.SeriesKey{Zone: "az1", Instance: "i-1", Operation: "get"}, Requests: 1}
	if err := g.Offer("canary", []record.Aggregate{one}, t0); err != nil {
		t.Fatal(err)
	}
	if len(g.queue) != 1 || cap(g.queue[0].aggs) != minChunkRecords {
		t.Fatalf("a quiet gate's queue: %d chunks, the first of %d records", len(g.queue), cap(g.queue[0].aggs))
	}
	flood := make([]record.Aggregate, 20_000)
	for i := range flood {
		flood[i] = one
	}
	if err := g.Offer("otlp", flood, t0); err != nil {
		t.Fatal(err)
	}
	last := g.queue[len(g.queue)-1]
	if cap(last.aggs) != chunkRecords || len(g.queue) > 12 {
		t.Errorf("a flood's queue: %d chunks, the last of %d records; want them grown to %d", len(g.queue), cap(last.aggs), chunkRecords)
	}
	n := 0
	g.Drain(t0, 0, func(b []record.Aggregate) { n += len(b) })
	if n != 20_001 {
		t.Errorf("drained %d of 20001", n)
	}
}

// TestOfferSeriesChecksAsOffer: numbered keys (the front door's series)
// admitted once skip their lookups by name, yet every check still holds:
// a number whose key changed is checked anew, a name the sweep forgot
// counts against the cap again when it comes back, and offering by number
// keeps its names from being forgotten.
func TestOfferSeriesChecksAsOffer(t *testing.T) {
	g := New("web", []string{"az1", "az2"}, Limits{MaxInstances: 1, MaxOperations: 1, Forget: 10 * time.Minute,
		Thresholds: map[string]time.Duration{"conf": time.Second}})
	one := func(zone, inst, op string) []record.Aggregate { return []record.Aggregate{agg(zone, inst, op, 2)} }
	now := t0
	// Heard of every 30 s by number for 15 min: never forgotten.
	for range 30 {
		if err := g.OfferSeries(SourceOf, append(one("az1", "i-1", "get"), agg("az2", "", "conf", 1)), []int{0, 7}, now); err != nil {
			t.Fatal(err)
		}
		now = now.Add(30 * time.Second)
		g.Drain(now, 0, func([]record.Aggregate) {})
		if i, o := g.Cardinality(); i != 1 || o != 1 {
			t.Fatalf("%v: cardinality %d instances, %d operations, want 1, 1", now.Sub(t0), i, o)
		}
	}
	// Number 0's key changed: checked as Offer would.
	if err := g.OfferSeries(SourceOf, one("az9", "i-1", "get"), []int{0}, now); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `"az9" is not a zone`) {
		t.Fatalf("changed zone: err = %v", err)
	}
	if err := g.OfferSeries(SourceOf, one("az1", "i-2", "get"), []int{0}, now); !errors.Is(err, ErrCapped) {
		t.Fatalf("changed instance over the cap: err = %v", err)
	}
	// Number 0 (i-1) silent past Forget: forgotten; i-2 takes its place
	// under the cap, and i-1 by its old number is over it.
	now = now.Add(11 * time.Minute)
	g.Drain(now, 0, func([]record.Aggregate) {})
	if i, _ := g.Cardinality(); i != 0 {
		t.Fatalf("%d instances after Forget, want 0", i)
	}
	if err := g.OfferSeries(SourceOf, one("az1", "i-2", "get"), []int{1}, now); err != nil {
		t.Fatal(err)
	}
	if err := g.OfferSeries(SourceOf, one("az1", "i-1", "get"), []int{0}, now); !errors.Is(err, ErrCapped) {
		t.Fatalf("a forgotten instance back by its number over the cap: err = %v", err)
	}
	// Numbers of another length than the batch: checked by name only.
	if err := g.OfferSeries(SourceOf, one("az1", "i-1", "get"), []int{0, 1}, now); !errors.Is(err, ErrCapped) {
		t.Fatalf("mismatched numbers: err = %v", err)
	}
	st := g.Stats()
	if len(st) != 1 || st[0].Accepted != 61 || st[0].Rejected[ReasonZone] != 1 || st[0].Rejected[ReasonInstances] != 3 {
		t.Fatalf("stats %+v", st)
	}
}

// SourceOf is the tests' numbered source.
const SourceOf = "frontdoor"
