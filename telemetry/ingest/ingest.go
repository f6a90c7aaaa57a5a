// Package ingest is the gate between grayzone's telemetry sources and a
// resource's engine: it checks each batch of aggregates (zones, cardinality
// caps), queues what it admits in a bounded buffer that the service drains
// at each engine tick, drops and counts what does not fit, and keeps each
// source's counts (accepted, rejected by reason, dropped, newest data) for
// /metrics and the dashboard.
//
// Batches are all or nothing: one bad record rejects its whole batch with a
// one-line reason and changes no state, so bad input never poisons what the
// engine sees. A full buffer never blocks a source: the batch is dropped and
// counted, and the engine keeps deciding on what it has.
package ingest

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/grayzone/grayzone/telemetry/operation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Errors a batch can fail with. Rejections wrap ErrRejected (the sender's
// input is wrong: HTTP 400); a source over its cardinality caps is ErrCapped
// (HTTP 429, gRPC ResourceExhausted, with the cap named); a full buffer is
// ErrFull (retry later: 503). Data outside the accepted time window wraps
// ErrOutOfWindow as well as ErrRejected, and is counted apart.
var (
	ErrRejected    = errors.New("rejected")
	ErrCapped      = errors.New("over a cap")
	ErrFull        = errors.New("ingest buffer full: batch dropped")
	ErrOutOfWindow = errors.New("outside the accepted time window")
)

// MaxFuture is the clock skew tolerated on a record's time, for every
// source alike (OTLP data points, EMF lines, the batch API): data further
// ahead is refused, as it would hold a place that never flushes.
const MaxFuture = 5 * time.Minute

// Reasons a batch is rejected, the label of the rejected counter.
const (
	ReasonInvalid   = "invalid"       // the source could not decode or validate it
	ReasonZone      = "unknown_zone"  // a zone the resource does not have
	ReasonInstances = "instance_cap"  // more instances than Limits.MaxInstances
	ReasonOps       = "operation_cap" // more operations than Limits.MaxOperations
	ReasonWindow    = "out_of_window" // a time too far in the future (MaxFuture)
	ReasonSeries    = "series_cap"    // a source's own aggregation cap (EMF's open series)
)

// Reasons lists every reason, for metrics.
var Reasons = []string{ReasonInvalid, ReasonZone, ReasonInstances, ReasonOps, ReasonWindow, ReasonSeries}

// Defaults of Limits.
const (
	DefaultMaxInstances  = 10_000
	DefaultMaxOperations = 100
	DefaultMaxPending    = 1_000_000
	// DefaultDrainPerTick is what grayzone serve hands a resource's engine
	// at one tick (250 ms): a million aggregates a second, and a bound on a
	// tick's work (about 0.2 µs an aggregate, BenchmarkObserveAggregate in
	// engine/detect: some 55 ms) when a flood has filled the buffer.
	DefaultDrainPerTick = 250_000
	DefaultForget       = 10 * time.Minute
)

// Limits bound what one resource takes in.
type Limits struct {
	// MaxInstances and MaxOperations cap the distinct instances and
	// operations each source has sent within Forget; a batch that would
	// exceed either is refused whole (ErrCapped). The caps are per source,
	// so one source's made-up names never crowd out another's, and the
	// operations named in Thresholds (the operator's configured ones) never
	// count against them.
	MaxInstances  int
	MaxOperations int
	// Forget is how long an instance or operation not heard from keeps its
	// place under the caps (instances come and go).
	Forget time.Duration
	// MaxPending bounds the aggregates queued for the engine; batches that
	// do not fit are dropped and counted.
	MaxPending int
	// Thresholds and DefaultThreshold resolve record.SlowFromLatency.
	Thresholds       map[string]time.Duration
	DefaultThreshold time.Duration
}

func (l *Limits) setDefaults() {
	if l.MaxInstances <= 0 {
		l.MaxInstances = DefaultMaxInstances
	}
	if l.MaxOperations <= 0 {
		l.MaxOperations = DefaultMaxOperations
	}
	if l.MaxPending <= 0 {
		l.MaxPending = DefaultMaxPending
	}
	if l.Forget <= 0 {
		l.Forget = DefaultForget
	}
	if l.DefaultThreshold <= 0 {
		l.DefaultThreshold = operation.DefaultThreshold
	}
}

// SourceStats is one source's counts.
type SourceStats struct {
	Source     string
	Accepted   uint64            // records admitted (aggregates or single observations)
	Requests   uint64            // requests those records stand for
	Rejected   map[string]uint64 // batches, by reason
	LastReject string            // the latest rejection's message
	Dropped    uint64            // records dropped because the buffer was full
	Newest     time.Time         // the latest data admitted (zero: none yet)
}

// Gate is one resource's gate. It is safe for concurrent use.
type Gate struct {
	resource string
	zones    []string
	lim      Limits

	drainMu    sync.Mutex // serialises Drain: its chunks are read outside mu
	mu         sync.Mutex
	books      map[string]*book // per source: names under the caps
	configured map[string]bool  // operations of Limits.Thresholds: always admitted
	queue      []*chunk         // oldest first; the last one takes what is offered
	head       int              // records of queue[0] already drained
	pending    int
	free       []*chunk // drained chunks, for reuse
	stats      map[string]*SourceStats
	lastSweep  time.Time
	// runs and done are Drain's lists, kept for the next Drain (drainMu):
	// a resource drains every tick.
	runs [][]record.Aggregate
	done []*chunk
	// byName is admit's list of the records it checked by name, for the
	// memo (OfferSeries), kept for the next batch.
	byName []int
}

// The queue is a list of fixed-size chunks, each with an arena that holds
// its records' latency buckets. Offer copies records and buckets in; Drain
// hands whole runs of records to the engine and recycles chunks once read.
// Nothing is ever moved or regrown: a flat queue of hundreds of thousands
// of records was copied each time it doubled and each time a tick drained
// part of it, and every batch's buckets were fresh memory for the garbage
// collector; those copies, page faults and collections were a third of all
// ingest CPU at fleet scale.
//
// A chunk is sized for the backlog it joins: minChunkRecords for the trickle
// of a quiet resource, up to chunkRecords under a flood. Every gate holds at
// least one chunk, and at chunkRecords (about 1.4 MiB) a serve of a
// thousand resources held more than a GiB of empty queues.
const (
	chunkRecords     = 4096
	minChunkRecords  = 64
	bucketsPerRecord = 12                              // an arena's room per record, on average
	chunkBuckets     = chunkRecords * bucketsPerRecord // the largest arena
	maxFree          = 32                              // drained chunks kept for reuse (at most about 40 MiB)
)

// book is one source's names under the caps, each with when it was last heard of.
type book struct {
	instances map[string]*heard
	ops       map[string]*heard
	// memo is what the source's numbered keys (OfferSeries) were admitted
	// as, by number; gen counts the sweeps that forgot a name of the book,
	// so an entry of an older generation may name a forgotten one.
	memo []memoEntry
	gen  uint64
	// heards is the block new names' heard entries are taken from: one
	// allocation per 64 names, not one per name (a flood of new names).
	heards []heard
}

// newHeard returns a new name's entry, heard of at now.
func (bk *book) newHeard(now time.Time) *heard {
	if len(bk.heards) == 0 {
		bk.heards = make([]heard, 64)
	}
	h := &bk.heards[0]
	bk.heards = bk.heards[1:]
	h.at = now
	return h
}

// heard is when a name was last heard of. The book's map and the memo
// share it: a memo entry refreshes it without a lookup by name.
type heard struct{ at time.Time }

// refresh notes that the name was heard at now, if it was last noted
// before stale (now less a second: the caps forget after minutes, and
// Before is cheaper than Sub). A nil heard (no instance, a configured
// operation: not under the caps) has nothing to note.
func (h *heard) refresh(now, stale time.Time) {
	if h != nil && h.at.Before(stale) {
		h.at = now
	}
}

// memoEntry is a numbered key (OfferSeries) the gate admitted: its zone is
// one of the resource's and, while its book's generation is still gen, its
// instance and operation are still under the caps, so offering the key
// again needs no lookup by name. instH and opH are the names' entries in
// the book (nil: no instance; a configured operation).
type memoEntry struct {
	zone, inst, op string
	instH, opH     *heard
	gen            uint64
	ok             bool
}

// maxMemo bounds the key numbers the gate remembers a source's keys by
// (a key numbered past it is checked by name every time).
const maxMemo = 1 << 18

// memoOf is the memo entry of a key numbered id, if it holds key.
func (bk *book) memoOf(id int, k *record.SeriesKey) *memoEntry {
	if uint(id) >= uint(len(bk.memo)) {
		return nil
	}
	if m := &bk.memo[id]; m.ok && m.gen == bk.gen && m.op == k.Operation && m.inst == k.Instance && m.zone == k.Zone {
		return m
	}
	return nil
}

// remember notes that the key numbered id was admitted with its names in
// the book (configured operations are not: they are always admitted).
func (g *Gate) remember(bk *book, id int, k *record.SeriesKey) {
	if id < 0 || id >= maxMemo {
		return
	}
	instH, opH := bk.instances[k.Instance], bk.ops[k.Operation]
	if (instH == nil && k.Instance != "") || (opH == nil && !g.configured[k.Operation]) {
		return // not admitted as it stands: check it by name
	}
	if id >= len(bk.memo) {
		bk.memo = append(bk.memo, make([]memoEntry, id+1-len(bk.memo))...)
	}
	bk.memo[id] = memoEntry{zone: k.Zone, inst: k.Instance, op: k.Operation, instH: instH, opH: opH, gen: bk.gen, ok: true}
}

type chunk struct {
	aggs    []record.Aggregate
	buckets []record.Bucket
}

func newChunk(records int) *chunk {
	return &chunk{aggs: make([]record.Aggregate, 0, records), buckets: make([]record.Bucket, 0, records*bucketsPerRecord)}
}

// room says whether the chunk takes a record with nb buckets.
func (c *chunk) room(nb int) bool {
	return len(c.aggs) < cap(c.aggs) && (nb > chunkBuckets || len(c.buckets)+nb <= cap(c.buckets))
}

// chunkSize is the records of a new chunk for a backlog of queued records
// (with the one to add) and a record of nb buckets: the backlog rounded up
// to a power of two, within [minChunkRecords, chunkRecords], and enough
// records' room for the record's buckets.
func chunkSize(backlog, nb int) int {
	size := minChunkRecords
	for size < backlog && size < chunkRecords {
		size *= 2
	}
	if nb <= chunkBuckets {
		for size*bucketsPerRecord < nb {
			size *= 2
		}
	}
	return min(size, chunkRecords)
}

// add copies *a into the chunk, its buckets into the arena (unless they
// could never fit one: those keep their own array), and returns the copy.
func (c *chunk) add(a *record.Aggregate) *record.Aggregate {
	c.aggs = append(c.aggs, *a)
	p := &c.aggs[len(c.aggs)-1]
	if nb := len(a.Latency); nb > 0 && nb <= chunkBuckets {
		b0 := len(c.buckets)
		c.buckets = append(c.buckets, a.Latency...)
		p.Latency = c.buckets[b0:len(c.buckets):len(c.buckets)]
	}
	return p
}

// New returns the gate of a resource with the given zones.
func New(resource string, zones []string, lim Limits) *Gate {
	lim.setDefaults()
	g := &Gate{resource: resource, zones: zones, lim: lim, books: map[string]*book{}, configured: map[string]bool{}, stats: map[string]*SourceStats{}}
	for op := range lim.Thresholds {
		g.configured[op] = true
	}
	return g
}

func (g *Gate) book(source string) *book {
	b := g.books[source]
	if b == nil {
		b = &book{instances: map[string]*heard{}, ops: map[string]*heard{}}
		g.books[source] = b
	}
	return b
}

func (g *Gate) source(name string) *SourceStats {
	s := g.stats[name]
	if s == nil {
		s = &SourceStats{Source: name, Rejected: map[string]uint64{}}
		g.stats[name] = s
	}
	return s
}

// Reject counts a batch the source itself found bad: it could not decode
// it (invalid), its time was out of the window (err wraps ErrOutOfWindow)
// or the source's own cap was full (err wraps ErrCapped).
func (g *Gate) Reject(source string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	reason := ReasonInvalid
	switch {
	case errors.Is(err, ErrOutOfWindow):
		reason = ReasonWindow
	case errors.Is(err, ErrCapped):
		reason = ReasonSeries
	}
	s := g.source(source)
	s.Rejected[reason]++
	s.LastReject = err.Error()
}

func (g *Gate) reject(source, reason, msg string) error {
	s := g.source(source)
	s.Rejected[reason]++
	s.LastReject = msg
	if reason == ReasonInstances || reason == ReasonOps {
		return fmt.Errorf("%s: %w", msg, ErrCapped)
	}
	return fmt.Errorf("%s: %w", msg, ErrRejected)
}

// admit checks zones and the source's caps for a batch's keys, then
// records the new instances and operations; on a problem nothing is
// recorded. ids, when not nil, number the keys (OfferSeries): a key its
// number's memo entry holds was admitted before and is still under the
// caps, so it needs no lookup by name.
func (g *Gate) admit(source string, aggs []record.Aggregate, ids []int, now time.Time) error {
	bk := g.book(source)
	var newInst, newOps map[string]bool // allocated only for a batch with new names
	// Sources send an instance's records together: the zone and instance of
	// the previous record, when known, need no second look.
	var prevZone, prevInst string
	prevKnown := false
	byName := g.byName[:0]
	// Kept for the next batch however admit returns (a closure: the grown
	// slice, not the one taken here).
	defer func() { g.byName = byName[:0] }()
	stale := now.Add(-time.Second)
	for i := range aggs {
		k := &aggs[i].Key
		if ids != nil {
			if m := bk.memoOf(ids[i], k); m != nil {
				m.instH.refresh(now, stale)
				m.opH.refresh(now, stale)
				continue
			}
			byName = append(byName, i)
		}
		z, inst, op := k.Zone, k.Instance, k.Operation
		to, knownOp := bk.ops[op]
		configured := !knownOp && g.configured[op]
		if knownOp && prevKnown && inst == prevInst && z == prevZone {
			to.refresh(now, stale)
			continue
		}
		ti, knownInst := bk.instances[inst]
		if (knownInst || inst == "") && (knownOp || configured) && slices.Contains(g.zones, z) {
			ti.refresh(now, stale)
			to.refresh(now, stale)
			prevZone, prevInst, prevKnown = z, inst, knownOp
			continue
		}
		prevKnown = false
		if newInst == nil {
			newInst, newOps = map[string]bool{}, map[string]bool{}
		}
		if !slices.Contains(g.zones, z) {
			return g.reject(source, ReasonZone, fmt.Sprintf("[%d].zone: %q is not a zone of %s (zones: %v)", i, z, g.resource, g.zones))
		}
		if _, ok := bk.instances[inst]; !ok && inst != "" && !newInst[inst] {
			if len(bk.instances)+len(newInst) >= g.lim.MaxInstances {
				return g.reject(source, ReasonInstances, fmt.Sprintf("[%d].instance: %q would be instance %d from source %s of %s, over its cap of %d (telemetry.max_instances)",
					i, inst, len(bk.instances)+len(newInst)+1, source, g.resource, g.lim.MaxInstances))
			}
			newInst[inst] = true
		}
		if _, ok := bk.ops[op]; !ok && !configured && !newOps[op] {
			if len(bk.ops)+len(newOps) >= g.lim.MaxOperations {
				return g.reject(source, ReasonOps, fmt.Sprintf("[%d].operation: %q would be operation %d from source %s of %s, over its cap of %d (telemetry.max_operations; configured operations do not count)",
					i, op, len(bk.ops)+len(newOps)+1, source, g.resource, g.lim.MaxOperations))
			}
			newOps[op] = true
		}
	}
	for inst := range newInst {
		bk.instances[inst] = bk.newHeard(now)
	}
	for op := range newOps {
		bk.ops[op] = bk.newHeard(now)
	}
	// The batch is in: what was checked by name is remembered by number.
	for _, i := range byName {
		g.remember(bk, ids[i], &aggs[i].Key)
	}
	return nil
}

// Offer admits a batch of aggregates from a source, received at now, into
// the buffer. It fails with an error wrapping ErrRejected (nothing taken)
// or ErrFull (dropped and counted).
func (g *Gate) Offer(source string, aggs []record.Aggregate, now time.Time) error {
	return g.offer(source, aggs, nil, now)
}

// OfferSeries is Offer for a source that offers the same keys tick after
// tick and numbers them: ids[i] is a small number of aggs[i]'s key (the
// front door's recorder: its series' numbers, record.Drained.IDs). The
// gate remembers each number's key once admitted, so offering it again
// costs no lookup of its zone, instance and operation by name (most of
// what the gate did per record) while those names stay under the caps;
// every check is as in Offer. A number whose key changed is checked by
// name and remembered anew; ids of another length than aggs are ignored.
func (g *Gate) OfferSeries(source string, aggs []record.Aggregate, ids []int, now time.Time) error {
	if len(ids) != len(aggs) {
		ids = nil
	}
	return g.offer(source, aggs, ids, now)
}

func (g *Gate) offer(source string, aggs []record.Aggregate, ids []int, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pending+len(aggs) > g.lim.MaxPending {
		s := g.source(source)
		s.Dropped += uint64(len(aggs))
		return ErrFull
	}
	if err := g.admit(source, aggs, ids, now); err != nil {
		return err
	}
	s := g.source(source)
	for i := range aggs {
		a := g.tail(len(aggs[i].Latency), g.pending+i+1).add(&aggs[i])
		if a.Slow == record.SlowFromLatency { // the threshold's lookup only when it is needed
			a.FillSlow(g.threshold(a.Key.Operation))
		}
		s.Requests += a.Requests
		if a.At.After(s.Newest) {
			s.Newest = a.At
		}
	}
	g.pending += len(aggs)
	s.Accepted += uint64(len(aggs))
	return nil
}

// tail returns the chunk that takes the next record, with nb buckets, in a
// queue of backlog records (with this one).
func (g *Gate) tail(nb, backlog int) *chunk {
	if n := len(g.queue); n > 0 && g.queue[n-1].room(nb) {
		return g.queue[n-1]
	}
	size := chunkSize(backlog, nb)
	var c *chunk
	for i := len(g.free) - 1; i >= 0; i-- {
		if f := g.free[i]; cap(f.aggs) >= size && f.room(nb) {
			c = f
			g.free = slices.Delete(g.free, i, i+1)
			break
		}
	}
	if c == nil {
		c = newChunk(size)
	}
	g.queue = append(g.queue, c)
	return c
}

func (g *Gate) threshold(op string) time.Duration {
	if t, ok := g.lim.Thresholds[op]; ok && t > 0 {
		return t
	}
	return g.lim.DefaultThreshold
}

// Drain hands at most max queued aggregates (all when max ≤ 0) to f, oldest
// first, in one or more calls (a run of records at a time), and forgets
// instances and operations silent for Limits.Forget. The service calls it
// at each tick; the limit keeps a flood from stretching a tick: what is
// left waits for the next one, and the buffer bound drops the excess at the
// door. f runs without the gate's lock, so sources keep offering while the
// engine reads. f must not keep the slice or the records' latency buckets:
// the gate reuses their memory once Drain returns.
func (g *Gate) Drain(now time.Time, max int, f func([]record.Aggregate)) {
	g.drainMu.Lock()
	defer g.drainMu.Unlock()
	g.mu.Lock()
	if max <= 0 || max > g.pending {
		max = g.pending
	}
	// The runs to hand over, taken under the lock. A chunk read to its end
	// leaves the queue now (it is no longer the tail, or it is full), so no
	// Offer writes to it while f reads; the last run may end inside a
	// chunk that stays, and Offer only appends past what f reads.
	runs, done := g.runs[:0], g.done[:0]
	for left := max; left > 0; {
		c := g.queue[len(done)]
		end := min(len(c.aggs), g.head+left)
		runs = append(runs, c.aggs[g.head:end])
		left -= end - g.head
		if end < len(c.aggs) || (len(g.queue)-len(done) == 1 && len(c.aggs) < cap(c.aggs)) {
			g.head = end // the chunk stays: more to drain, or still the tail
			break
		}
		done = append(done, c)
		g.head = 0
	}
	// The drained chunks leave the front of the queue; the rest move down
	// rather than the slice's start moving up, so the queue keeps its
	// capacity and Offer's append does not reallocate it every few ticks.
	n := copy(g.queue, g.queue[len(done):])
	clear(g.queue[n:])
	g.queue = g.queue[:n]
	g.pending -= max
	if now.Sub(g.lastSweep) >= time.Minute {
		g.lastSweep = now
		for _, bk := range g.books {
			n := len(bk.instances) + len(bk.ops)
			for k, h := range bk.instances {
				if now.Sub(h.at) > g.lim.Forget {
					delete(bk.instances, k)
				}
			}
			for k, h := range bk.ops {
				if now.Sub(h.at) > g.lim.Forget {
					delete(bk.ops, k)
				}
			}
			if len(bk.instances)+len(bk.ops) < n {
				bk.gen++ // the memo may name what was forgotten
			}
		}
	}
	g.mu.Unlock()
	for _, r := range runs {
		f(r)
	}
	clear(runs) // the records are the chunks': no reference kept here
	g.runs = runs[:0]
	if len(done) == 0 {
		return
	}
	for _, c := range done {
		clear(c.aggs) // drop the key strings it holds
		c.aggs, c.buckets = c.aggs[:0], c.buckets[:0]
	}
	g.mu.Lock()
	for _, c := range done {
		if len(g.free) < maxFree {
			g.free = append(g.free, c)
		}
	}
	g.mu.Unlock()
	clear(done)
	g.done = done[:0]
}

// Pending is the number of aggregates waiting for the engine.
func (g *Gate) Pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pending
}

// Cardinality is the number of instances and operations under the caps
// now, summed over the sources (each has its own caps).
func (g *Gate) Cardinality() (instances, operations int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, bk := range g.books {
		instances += len(bk.instances)
		operations += len(bk.ops)
	}
	return instances, operations
}

// Stats returns each source's counts, sorted by source name.
func (g *Gate) Stats() []SourceStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]SourceStats, 0, len(g.stats))
	for _, s := range g.stats {
		c := *s
		c.Rejected = make(map[string]uint64, len(s.Rejected))
		for k, v := range s.Rejected {
			c.Rejected[k] = v
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}
