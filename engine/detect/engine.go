// Package detect is grayzone's detection engine. It is a deterministic state
// machine in the manner of etcd's raft: it is fed time-stamped observations
// (Observe) and told the time (Tick), and returns what it concludes
// (Assessment). It starts no goroutines, reads no clock and does no I/O, so
// the lab, sim mode and grayzone serve drive the very same logic, and the
// same input always yields the same output.
package detect

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/grayzone/grayzone/engine/alarm"
	"github.com/grayzone/grayzone/engine/outlier"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Profile names a detection profile.
const (
	ProfileDefault    = "default"
	ProfileCloudWatch = "cloudwatch"
)

// Profiles lists the profile names.
var Profiles = []string{ProfileDefault, ProfileCloudWatch}

// Config configures an Engine.
type Config struct {
	Profile string   // default or cloudwatch
	Zones   []string // the zones, in display order
	// Thresholds gives each operation's latency threshold; operations not
	// named use DefaultThreshold.
	Thresholds       map[string]time.Duration
	DefaultThreshold time.Duration
	Resolution       time.Duration
	// Resolution is the bucket width (default 250ms): observations are summed
	// per bucket and each closed bucket is one step of the detectors, so it
	// bounds how finely a decision is timed.
	// HealthWindow is how far back the zonal canaries must have seen the zone
	// healthy for it to count as healthy now (default 10s).
	HealthWindow time.Duration
	// MinInstances is how many of a zone's instances must contribute for the
	// impact to count as zonal rather than one bad instance (default 2).
	MinInstances int
	// FalseAlarmRate α sets the sequential tests' threshold h = ln(1/α)
	// (default 1e-6); see defaultProfile.
	FalseAlarmRate float64
	// FaultFloor and SlowFloor are the lowest baseline rates the tests assume
	// (defaults 0.001 and 0.01): a zone must look worse than this to be impacted.
	FaultFloor, SlowFloor float64
	// Outlier selects the default profile's outlier test. Empty: the zone's
	// bad rate must be 3× and 1 point above the other zones' pooled rate.
	// Otherwise one of the outlier package's methods (static, chi-squared,
	// z-score, iqr, mad) judges the zones' bad counts against their totals.
	Outlier outlier.Config
	// SilenceWindow is how long a source that was reporting must send
	// nothing from a zone for the zone to count as silent (default
	// HealthWindow). Silent in every zone at once: fail static.
	SilenceWindow time.Duration
	// IsolationErrorRate β is the onset test's error rate: the chance of
	// calling a zone's impact isolated while another zone shares its rate
	// (default 1e-2; see onset.go).
	IsolationErrorRate float64
	// RecoveryErrorRate is the recovery test's error rate: the chance, per
	// excursion of its statistic, of ending a shift while the zone still fails
	// at the rate tested against (default 1e-3; see recovery.go).
	RecoveryErrorRate float64
	// CanaryDoubtRate is the share of zonal canary calls that must fail in
	// every zone at once, over HealthWindow, to fail static (default 0.8).
	CanaryDoubtRate float64
}

func (c *Config) setDefaults() error {
	if c.Profile == "" {
		c.Profile = ProfileDefault
	}
	if !slices.Contains(Profiles, c.Profile) {
		return fmt.Errorf("detect: unknown profile %q (want one of %v)", c.Profile, Profiles)
	}
	if len(c.Zones) < 2 {
		return fmt.Errorf("detect: need at least 2 zones, got %d", len(c.Zones))
	}
	if c.DefaultThreshold <= 0 {
		c.DefaultThreshold = operation.DefaultThreshold
	}
	if c.Resolution <= 0 {
		c.Resolution = 250 * time.Millisecond
	}
	if time.Second%c.Resolution != 0 {
		return fmt.Errorf("detect: resolution %s must divide 1s", c.Resolution)
	}
	if c.HealthWindow <= 0 {
		c.HealthWindow = 10 * time.Second
	}
	if c.SilenceWindow <= 0 {
		c.SilenceWindow = c.HealthWindow
	}
	if c.CanaryDoubtRate <= 0 {
		c.CanaryDoubtRate = defaultCanaryDoubtRate
	}
	if c.CanaryDoubtRate > 1 {
		return fmt.Errorf("detect: canary doubt rate %g must be at most 1", c.CanaryDoubtRate)
	}
	if c.MinInstances <= 0 {
		c.MinInstances = 2
	}
	if c.FalseAlarmRate <= 0 {
		c.FalseAlarmRate = 1e-6
	}
	if c.FalseAlarmRate >= 1 {
		return fmt.Errorf("detect: false_alarm_rate %g must be below 1", c.FalseAlarmRate)
	}
	if c.IsolationErrorRate <= 0 {
		c.IsolationErrorRate = defaultIsolationErrorRate
	}
	if c.RecoveryErrorRate <= 0 {
		c.RecoveryErrorRate = defaultRecoveryErrorRate
	}
	if c.IsolationErrorRate >= 1 || c.RecoveryErrorRate >= 1 {
		return fmt.Errorf("detect: isolation_error_rate %g and recovery_error_rate %g must be below 1", c.IsolationErrorRate, c.RecoveryErrorRate)
	}
	if c.FaultFloor <= 0 {
		c.FaultFloor = 0.001
	}
	if c.SlowFloor <= 0 {
		c.SlowFloor = 0.01
	}
	if c.Outlier.Method != "" {
		if err := c.Outlier.Validate(); err != nil {
			return fmt.Errorf("detect: %w", err)
		}
	}
	return nil
}

// zsKey identifies a zone-level series.
type zsKey struct {
	zone string
	src  observation.Source
}

type opKey struct {
	zone string
	op   string
	src  observation.Source
}

type instOpKey struct {
	opKey
	instance string
}

type opAgg struct {
	Counts
	lat *ddsketch.DDSketch
}

// bucket sums the observations of one resolution step.
//
// Zones and instances are indexes, not names: the counts of every
// aggregate went through maps keyed by strings (hashing the zone and
// instance names twice per aggregate was most of ingesting one).
type bucket struct {
	idx  int64
	zone [][2]Counts // by zone index (cfg.Zones) and source
	// inst is the server-side counts by instance index (Engine.insts),
	// of the instances listed in insts (every count has N > 0).
	inst  []Counts
	insts []instRef
	// op and instOp are kept for the cloudwatch profile only, the one
	// detector that reads counts and latency per operation.
	op       map[opKey]*opAgg
	instOp   map[instOpKey]*Counts // server-side, per instance and operation
	regional Counts                // canary calls through the regional endpoint
	// The maps' values, reused when the bucket is (Engine.recycle): a
	// fresh allocation per key and bucket, four buckets a simulated
	// second, was most of the engine's garbage.
	counts slab[Counts]
	ops    slab[opAgg]
}

// instRef is an instance with counts in a bucket.
type instRef struct {
	i    int32 // its index (Engine.insts)
	zi   int32 // its zone's index in cfg.Zones
	name string
}

// chunk hands out new slices from a larger allocation, for an assessment's
// zones and its alarms' diff (Alarms), new at most every tick (a busy
// resource's change every tick): one allocation per few ticks instead of
// one per tick. Each slice is its own part of the chunk (its capacity ends
// where the next begins) and is written only before it is handed out, so an
// assessment's slices still never change once returned. A slice kept keeps
// its chunk alive: chunks are of chunkValues values (zones: under 4 KB,
// diffs: under 2 KB), so that an idle resource of serve's holds little.
// (A full set of alarms, a few kilobytes, is allocated one at a time for
// the same reason.)
type chunk[T any] struct{ buf []T }

const chunkValues = 32

// take returns a new zeroed slice of n values.
func (c *chunk[T]) take(n int) []T {
	if len(c.buf) < n {
		c.buf = make([]T, n*max(1, chunkValues/n))
	}
	s := c.buf[:n:n]
	c.buf = c.buf[n:]
	return s
}

// slab hands out pointers to zeroed values that stay valid until reset.
type slab[T any] struct {
	blocks [][]T
	n      int // values handed out
}

const slabBlock = 32

func (s *slab[T]) get() *T {
	b, i := s.n/slabBlock, s.n%slabBlock
	if b == len(s.blocks) {
		s.blocks = append(s.blocks, make([]T, slabBlock))
	}
	s.n++
	return &s.blocks[b][i]
}

// reset zeroes the values handed out and takes them back.
func (s *slab[T]) reset() {
	for b := 0; b*slabBlock < s.n; b++ {
		clear(s.blocks[b][:min(slabBlock, s.n-b*slabBlock)])
	}
	s.n = 0
}

func newBucket(idx int64, zones int) *bucket {
	return &bucket{idx: idx, zone: make([][2]Counts, zones), op: map[opKey]*opAgg{}, instOp: map[instOpKey]*Counts{}}
}

// Engine is the detection engine. Not safe for concurrent use: one goroutine
// (or the simulator's loop) owns it.
type Engine struct {
	cfg   Config
	open  map[int64]*bucket
	last  int64 // index of the last closed bucket
	begun bool
	det   detector

	health  []*ring // zonal canary counts by zone index, HealthWindow long
	display []*ring // server-side counts by zone index for the last 10 s
	// Latency for display, by zone index and source (server-side; the
	// zonal canaries' view): one sketch per second, the last 10 s, and
	// the p99 over them recomputed once a second.
	lat     [][2]latRing
	latSec  int64
	skipped int64 // observations for zones the engine does not know
	// spare holds cleared latency sketches for reuse: the cloudwatch
	// profile's per operation and bucket, the pending seconds', the ring
	// slots they replace (perf only: allocating one per operation and
	// bucket was a tenth of a simulated day).
	spare        []*ddsketch.DDSketch
	spareBuckets []*bucket
	// pend is the latency of the seconds not yet ended, freePend the
	// entries to reuse (see pendingSecond).
	pend, freePend []*pendingSecond
	// The last assessment's zones and alarms as returned, and the scratch
	// the next one is built in: an assessment whose zones (alarms) equal
	// the last one's shares them, so an idle engine allocates nothing for
	// them (a slice of every alarm per tick was two thirds of the bytes a
	// pass over 1,000 of serve's resources allocated). Nothing writes into
	// an assessment's slices once returned.
	zones, zoneBuf []ZoneStatus
	alarms         Alarms
	alarmBuf       []AlarmStatus
	assessBuf      assessing
	// zoneChunk hands out the returned zones, diffChunk the alarms' diffs
	// (see Alarms), diffBuf the scratch a diff is found in.
	zoneChunk chunk[ZoneStatus]
	diffChunk chunk[alarmDiff]
	diffBuf   []alarmDiff
	// alarmOrder is alarmsOf's memory: the names in the order the detector
	// appended them last, and the sorting permutation.
	alarmOrder struct {
		names []string
		perm  []int
	}

	// Fail static: the last bucket with data per zone and source, whether
	// each source ever reported, and since when the view is in doubt.
	lastSeen [][2]seenAt // by zone index and source
	// insts are the instances seen, as indexes (see bucket).
	insts      instances
	began      [2]bool // by source
	doubtSince time.Time
}

// detector is one profile's decision logic over closed buckets.
type detector interface {
	step(b *bucket)
	assess(a *assessing)
	// forget drops what the detector keeps of instance i (an index of
	// Engine.insts), gone for good; the index may be reused.
	forget(i int32)
}

// New returns an engine for cfg.
func New(cfg Config) (*Engine, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:  cfg,
		open: map[int64]*bucket{},

		lastSeen: make([][2]seenAt, len(cfg.Zones)),
	}
	hw := buckets(cfg.HealthWindow, cfg.Resolution)
	dw := buckets(displayWindow, cfg.Resolution)
	e.insts.byZone = make([][]int32, len(cfg.Zones))
	e.insts.byName = make([]map[string]int32, len(cfg.Zones))
	for range cfg.Zones {
		e.health = append(e.health, newRing(int(hw)))
		e.display = append(e.display, newRing(int(dw)))
		var l [2]latRing
		for src := range l {
			l[src] = latRing{slots: make([]*ddsketch.DDSketch, displayWindow/time.Second), sum: newWindowSum(), p99: -1}
			for i := range l[src].slots {
				l[src].slots[i] = newSketch()
			}
		}
		e.lat = append(e.lat, l)
	}
	var err error
	switch cfg.Profile {
	case ProfileCloudWatch:
		e.det, err = newCloudWatch(&e.cfg)
	default:
		e.det = newDefaultProfile(&e.cfg)
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

func (c *Config) threshold(op string) time.Duration {
	if t, ok := c.Thresholds[op]; ok {
		return t
	}
	return c.DefaultThreshold
}

func (e *Engine) index(t time.Time) int64 {
	return t.UnixNano() / int64(e.cfg.Resolution)
}

// Observe records one observation. Observations may arrive a little out of
// order; one for a bucket already closed counts in the oldest open one.
func (e *Engine) Observe(o observation.Observation) {
	c := Counts{N: 1}
	switch o.Outcome {
	case observation.Fault:
		c.Faults = 1
	case observation.Error:
		c.Errors = 1
	}
	if o.Latency > e.cfg.threshold(o.Operation) {
		c.Slow = 1
	}
	ms := float64(o.Latency) / float64(time.Millisecond)
	pl, op := e.add(o.At, o.Source, o.Zone, o.Instance, o.Operation, o.Regional, c)
	for _, sk := range [2]*ddsketch.DDSketch{e.pendingSketch(pl), op} {
		if sk != nil {
			_ = sk.Add(ms)
		}
	}
}

// ObserveSnapshot records what a pre-resolved series counted since its last
// drain (the record package's fast path), as of at. Its slow count uses the
// recorder's threshold for the operation, which should match the engine's.
func (e *Engine) ObserveSnapshot(at time.Time, k record.SeriesKey, d record.Snapshot) {
	if d.Requests == 0 {
		return
	}
	c := Counts{N: int64(d.Requests), Faults: int64(d.Faults), Errors: int64(d.Errors), Slow: int64(d.Slow)}
	pl, op := e.add(at, k.Source, k.Zone, k.Instance, k.Operation, false, c)
	if pl == nil {
		return
	}
	for i, n := range d.Latency {
		if n > 0 {
			if !pl.add(i, n) { // never: a Histogram has a slot per bucket
				addBucket(e.pendingSketch(pl), i, n)
			}
			if op != nil {
				addBucket(op, i, n)
			}
		}
	}
}

// ObserveAggregate records what one series counted over an interval ending
// at a.At, the form every telemetry source produces (record.Aggregate). Its
// slow count is resolved: a count left to the receiver
// (record.SlowFromLatency) is resolved in one place, the ingest gate every
// aggregate passes; one that reaches the engine unresolved (a caller that
// bypassed the gate) counts no request as slow.
func (e *Engine) ObserveAggregate(a record.Aggregate) {
	if a.Requests == 0 {
		return
	}
	slow := a.Slow
	if slow == record.SlowFromLatency {
		slow = 0
	}
	c := Counts{N: int64(a.Requests), Faults: int64(a.Faults), Errors: int64(a.Errors), Slow: int64(min(slow, a.Requests))}
	k := a.Key
	pl, op := e.add(a.At, k.Source, k.Zone, k.Instance, k.Operation, a.Regional, c)
	if pl == nil {
		return
	}
	for _, b := range a.Latency {
		if !pl.add(b.Index, b.Count) {
			addBucket(e.pendingSketch(pl), b.Index, b.Count)
		}
	}
	if op != nil {
		addBuckets(op, a.Latency)
	}
}

// add is the one ingestion path: counts into the bucket of at, by zone,
// instance and operation. It returns where the latencies go (nil: nowhere):
// the zone's and source's pending latency for the bucket's second (the
// display p99's), and the operation's sketch in the bucket when the
// detector reads it (the cloudwatch profile).
func (e *Engine) add(at time.Time, src observation.Source, zone, instance, op string, regional bool, c Counts) (*pendingLat, *ddsketch.DDSketch) {
	zi := slices.Index(e.cfg.Zones, zone) // a scan: a few zones, cheaper than a hash
	if zi < 0 {
		e.skipped++
		return nil, nil
	}
	idx := e.index(at)
	if e.begun && idx <= e.last {
		idx = e.last + 1
	}
	b := e.open[idx]
	if b == nil {
		b = e.newBucket(idx)
		e.open[idx] = b
	}
	if regional {
		b.regional.add(c)
		return nil, nil
	}
	b.zone[zi][src].add(c)
	if src == observation.Server && instance != "" {
		i := e.insts.index(zi, instance)
		if int(i) >= len(b.inst) {
			b.inst = append(b.inst, make([]Counts, int(i)+1-len(b.inst))...)
		}
		if b.inst[i].N == 0 {
			b.insts = append(b.insts, instRef{i: i, zi: int32(zi), name: e.insts.name[i]})
			e.insts.open[i]++
		}
		b.inst[i].add(c)
		// Only the cloudwatch profile counts contributors per operation; the
		// map is the engine's largest per-bucket cost, so skip it otherwise.
		if e.cfg.Profile == ProfileCloudWatch {
			counts(b.instOp, instOpKey{opKey{zone, op, src}, instance}, &b.counts).add(c)
		}
	}
	pl := e.pendingFor(e.second(idx), zi, src)
	// Only the cloudwatch profile reads counts and latency per operation.
	if e.cfg.Profile != ProfileCloudWatch {
		return pl, nil
	}
	ok := opKey{zone, op, src}
	a := b.op[ok]
	if a == nil {
		a = b.ops.get()
		a.lat = e.sketch()
		b.op[ok] = a
	}
	a.add(c)
	return pl, a.lat
}

// second is the second bucket idx falls in.
func (e *Engine) second(idx int64) int64 { return idx * int64(e.cfg.Resolution) / int64(time.Second) }

// pendingSecond is the latency of one second's buckets, by zone index and
// source, added as it arrives: it goes into the second's slot of the display
// rings when the second ends (installSecond). Merging every operation's
// sketch of every bucket into the ring slot at close, and clearing and
// re-growing those sketches, was most of closing a bucket; the slot's bins
// are the same sums.
type pendingSecond struct {
	sec int64
	lat [][2]pendingLat
}

// pendingLat is one zone's and source's latency in a pending second: counts
// by record bucket (what the telemetry sends, a histogram of
// record.NumBuckets), put into the slot's sketch once per bucket when the
// second ends instead of once per aggregate and bucket; and a sketch for
// latencies that are not record buckets (Observe's single values).
type pendingLat struct {
	used   bool
	lo, hi int // the buckets with counts are within [lo, hi) (hi 0: none)
	hist   *[record.NumBuckets]uint64
	sk     *ddsketch.DDSketch // nil: none
}

// add counts n latencies of record bucket i, false when i is no bucket.
func (p *pendingLat) add(i int, n uint64) bool {
	if i < 0 || i >= record.NumBuckets {
		return false
	}
	if p.hist == nil {
		p.hist = new([record.NumBuckets]uint64)
	}
	p.hist[i] += n
	if p.hi == 0 {
		p.lo, p.hi = i, i+1
	} else {
		p.lo, p.hi = min(p.lo, i), max(p.hi, i+1)
	}
	return true
}

// pendingSketch returns p's sketch, made when p has none (nil p: nil).
func (e *Engine) pendingSketch(p *pendingLat) *ddsketch.DDSketch {
	if p == nil {
		return nil
	}
	if p.sk == nil {
		p.sk = e.sketch()
	}
	return p.sk
}

// pendingFor returns the pending latency of zone zi and src for second sec.
func (e *Engine) pendingFor(sec int64, zi int, src observation.Source) *pendingLat {
	var p *pendingSecond
	for _, q := range e.pend { // one or two seconds are open at a time
		if q.sec == sec {
			p = q
			break
		}
	}
	if p == nil {
		if n := len(e.freePend); n > 0 {
			p = e.freePend[n-1]
			e.freePend = e.freePend[:n-1]
		} else {
			p = &pendingSecond{lat: make([][2]pendingLat, len(e.cfg.Zones))}
		}
		p.sec = sec
		e.pend = append(e.pend, p)
	}
	pl := &p.lat[zi][src]
	pl.used = true
	return pl
}

// installSecond puts the pending latency of second sec, which ended, into
// its slot of the display rings. The slot was emptied when the second
// began: a pending sketch takes its place (the empty one is kept for
// reuse), and the histogram is added to it.
func (e *Engine) installSecond(sec int64) {
	i := slices.IndexFunc(e.pend, func(p *pendingSecond) bool { return p.sec == sec })
	if i < 0 {
		return
	}
	p := e.pend[i]
	e.pend = slices.Delete(e.pend, i, i+1)
	for zi := range e.cfg.Zones {
		for src := range p.lat[zi] {
			pl := &p.lat[zi][src]
			if !pl.used {
				continue
			}
			l := &e.lat[zi][src]
			l.sum.stale = true
			n := int64(len(l.slots))
			if sk := pl.sk; sk != nil {
				if slot := l.slots[sec%n]; slot.IsEmpty() {
					l.slots[sec%n] = sk
					sk = slot
				} else {
					_ = slot.MergeWith(sk)
					sk.Clear()
				}
				e.spare = append(e.spare, sk)
			}
			if pl.hi > 0 {
				addHist(l.slots[sec%n], pl.hist[pl.lo:pl.hi], pl.lo)
				clear(pl.hist[pl.lo:pl.hi])
			}
			pl.used, pl.lo, pl.hi, pl.sk = false, 0, 0, nil
		}
	}
	e.freePend = append(e.freePend, p)
}

// Tick closes every bucket that ended at or before now, runs the detectors
// over them in order, and returns the assessment at now.
func (e *Engine) Tick(now time.Time) Assessment {
	cur := e.index(now) // the bucket now falls in is still open
	if !e.begun {
		first := cur
		for idx := range e.open {
			first = min(first, idx)
		}
		e.last, e.begun = first-1, true
	}
	for idx := e.last + 1; idx < cur; idx++ {
		b := e.open[idx]
		if b == nil {
			b = e.newBucket(idx)
		}
		delete(e.open, idx)
		e.close(b)
		e.last = idx
		e.recycle(b)
	}
	return e.assess(now)
}

func (e *Engine) close(b *bucket) {
	sec := e.second(b.idx)
	newSecond := sec != e.latSec
	if newSecond {
		e.installSecond(e.latSec)
		e.refreshP99()
		// Clear the slots of the seconds that passed (at most the whole ring).
		n := int64(displayWindow / time.Second)
		for s := max(e.latSec+1, sec-n+1); s <= sec; s++ {
			for zi := range e.lat {
				for src := range e.lat[zi] {
					l := &e.lat[zi][src]
					l.sum.clear(l.slots[s%n])
				}
			}
		}
		e.latSec = sec
	}
	for zi := range e.cfg.Zones {
		e.health[zi].push(b.zone[zi][observation.Canary])
		e.display[zi].push(b.zone[zi][observation.Server])
	}
	e.noteSeen(b)
	e.det.step(b)
	e.forgetInstances(b)
	for _, a := range b.op { // the detectors merged what they keep
		a.lat.Clear()
		e.spare = append(e.spare, a.lat)
	}
}

// forgetInstances notes the instances of closed bucket b as seen, and
// forgets the ones gone for good (none seen for ten times instanceActive),
// in the detector too, so that memory stays bounded however many instances
// come and go. An instance's index is reused only once no open bucket
// counts it.
func (e *Engine) forgetInstances(b *bucket) {
	t := &e.insts
	for _, r := range b.insts {
		t.lastSeen[r.i], t.followed[r.i] = b.idx, true
		t.open[r.i]--
	}
	gone := 10 * buckets(instanceActive, e.cfg.Resolution)
	for zi, l := range t.byZone {
		for k := 0; k < len(l); k++ {
			i := l[k]
			if !t.followed[i] || b.idx-t.lastSeen[i] <= gone {
				continue
			}
			e.det.forget(i)
			t.followed[i] = false
			if t.open[i] == 0 {
				l = t.remove(zi, k)
				k--
			}
		}
	}
}

// instances interns instance names as small indexes, per zone. A zone's
// few instances are found by a scan with == (short names: cheaper than
// hashing one); a zone with many, by a map.
type instances struct {
	// By index: the name ("" when free), the last closed bucket the
	// instance had counts in, whether the detector follows it (it was in
	// a closed bucket since it was last forgotten), and how many open
	// buckets count it.
	name     []string
	lastSeen []int64
	followed []bool
	open     []int32
	free     []int32 // indexes to reuse
	byZone   [][]int32
	byName   []map[string]int32 // by zone, the same as byZone; only when it is long
}

// instanceScan is how many instances of a zone a scan looks through before
// a map does.
const instanceScan = 16

// index returns instance's index in zone zi, interning it when new.
func (t *instances) index(zi int, instance string) int32 {
	if m := t.byName[zi]; m != nil {
		if i, ok := m[instance]; ok {
			return i
		}
	} else {
		for _, i := range t.byZone[zi] {
			if t.name[i] == instance {
				return i
			}
		}
	}
	// A copy: the name may view a buffer its source reuses (telemetry/batch).
	name := strings.Clone(instance)
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
		t.name[i], t.lastSeen[i], t.followed[i], t.open[i] = name, 0, false, 0
	} else {
		i = int32(len(t.name))
		t.name = append(t.name, name)
		t.lastSeen = append(t.lastSeen, 0)
		t.followed = append(t.followed, false)
		t.open = append(t.open, 0)
	}
	t.byZone[zi] = append(t.byZone[zi], i)
	if m := t.byName[zi]; m != nil {
		m[name] = i
	} else if len(t.byZone[zi]) > instanceScan {
		m = make(map[string]int32, len(t.byZone[zi]))
		for _, j := range t.byZone[zi] {
			m[t.name[j]] = j
		}
		t.byName[zi] = m
	}
	return i
}

// remove forgets the k-th instance of zone zi and returns the zone's list.
func (t *instances) remove(zi, k int) []int32 {
	i := t.byZone[zi][k]
	if m := t.byName[zi]; m != nil {
		delete(m, t.name[i])
	}
	t.name[i] = ""
	t.free = append(t.free, i)
	t.byZone[zi] = slices.Delete(t.byZone[zi], k, k+1)
	return t.byZone[zi]
}

// counts returns m's counts for k, added from the slab when missing (one
// lookup when present).
func counts[K comparable](m map[K]*Counts, k K, from *slab[Counts]) *Counts {
	c := m[k]
	if c == nil {
		c = from.get()
		m[k] = c
	}
	return c
}

// newBucket returns an empty bucket for idx: a closed one, emptied, when
// there is one (perf only: a bucket's maps and slices, four buckets a
// simulated second).
func (e *Engine) newBucket(idx int64) *bucket {
	if n := len(e.spareBuckets); n > 0 {
		b := e.spareBuckets[n-1]
		e.spareBuckets = e.spareBuckets[:n-1]
		b.idx = idx
		return b
	}
	return newBucket(idx, len(e.cfg.Zones))
}

// maxSpareBuckets bounds the closed buckets kept for reuse: as many as are
// open at once, usually one or two (aggregates reach into the next bucket
// while the last one closes).
const maxSpareBuckets = 4

// recycle empties a closed bucket for newBucket: nothing keeps a bucket's
// maps past its step.
func (e *Engine) recycle(b *bucket) {
	clear(b.zone)
	for _, r := range b.insts {
		b.inst[r.i] = Counts{}
	}
	b.insts = b.insts[:0]
	clear(b.op)
	clear(b.instOp)
	b.counts.reset()
	b.ops.reset() // their sketches went to e.spare in close
	b.regional = Counts{}
	if len(e.spareBuckets) < maxSpareBuckets {
		e.spareBuckets = append(e.spareBuckets, b)
	}
}

// sketch returns an empty latency sketch, a spare one when there is one.
func (e *Engine) sketch() *ddsketch.DDSketch {
	if n := len(e.spare); n > 0 {
		s := e.spare[n-1]
		e.spare = e.spare[:n-1]
		return s
	}
	return newSketch()
}

// refreshP99 recomputes each zone's display p99 over the last 10 s, as
// the second latSec ends.
func (e *Engine) refreshP99() {
	ended := int(e.latSec % int64(displayWindow/time.Second))
	for zi := range e.lat {
		for src := range e.lat[zi] {
			if l := &e.lat[zi][src]; l.sum.stale {
				l.p99 = l.sum.quantile(l.slots, ended, 0.99)
			}
		}
	}
}

// latRing is the display latency of one zone and source: a sketch per
// second over the last 10 s, their running sum (windowSum) and its p99.
type latRing struct {
	slots []*ddsketch.DDSketch
	sum   *windowSum
	p99   float64
}

// windowSum is the running sum of a ring of per-second latency sketches,
// whose quantile is a display p99: each second's sketch is added once,
// when the second ends, and taken out when its slot is cleared for reuse,
// instead of merging the whole ring again every second (7 % of a simulated
// day). The bins hold integer counts in float64, so the sums are exact and
// the sum's bins and count are the merge's (with zero bins around them,
// which no quantile reads), hence its quantiles. Where that is not shown
// (a sketch with zero or negative values, which have no bins; a range the
// store could collapse) the sum is merged afresh from the ring, as it was.
//
// A ring no value was merged into or cleared out of since the last quantile
// has the same quantile (stale false): the sum, or the merge afresh, is made
// from the same slots, so it is not made again (most seconds, for an idle
// resource's zone and source).
type windowSum struct {
	sk    *ddsketch.DDSketch
	exact bool                           // sk is the sum of the ring's slots but the one being filled
	sub   func(int, float64) (stop bool) // takes a bin out of sk; made once, not per call
	stale bool                           // the ring changed since the last quantile
}

func newWindowSum() *windowSum { return &windowSum{sk: newSketch(), exact: true, stale: true} }

// maxExactRange is the widest index range a running sum may cover: below
// newSketch's 1,024 bins, so its store never collapses (record buckets span
// about 825).
const maxExactRange = 1000

// quantile adds the slot whose second ended and returns the ring's
// q-quantile (-1 when empty).
func (w *windowSum) quantile(ring []*ddsketch.DDSketch, ended int, q float64) float64 {
	if w.exact && valuesInBins(ring[ended]) && indexSpan(w.sk, ring[ended]) <= maxExactRange {
		_ = w.sk.MergeWith(ring[ended])
	} else {
		w.sk.Clear()
		for _, sk := range ring {
			_ = w.sk.MergeWith(sk)
		}
		w.exact = valuesInBins(w.sk) && indexSpan(w.sk, nil) <= maxExactRange
	}
	w.stale = false
	return quantile(w.sk, q)
}

// clear takes a slot out of the sum and empties it for reuse.
func (w *windowSum) clear(slot *ddsketch.DDSketch) {
	if !slot.IsEmpty() {
		w.remove(slot)
		w.stale = true
	}
	slot.Clear()
}

// remove takes a slot about to be cleared out of the sum.
func (w *windowSum) remove(slot *ddsketch.DDSketch) {
	if !w.exact || slot.IsEmpty() {
		return
	}
	if !valuesInBins(slot) {
		w.exact = false
		return
	}
	if w.sub == nil {
		w.sub = func(i int, c float64) bool {
			w.sk.GetPositiveValueStore().AddWithCount(i, -c)
			return false
		}
	}
	slot.GetPositiveValueStore().ForEach(w.sub)
	if w.sk.GetPositiveValueStore().IsEmpty() {
		w.sk.Clear() // as a fresh merge target: an empty store is re-ranged from scratch
	}
}

// valuesInBins reports whether every value of s is in its positive store's bins.
func valuesInBins(s *ddsketch.DDSketch) bool {
	return s.GetZeroCount() == 0 && s.GetNegativeValueStore().IsEmpty()
}

// indexSpan is the number of indices the positive stores of a and b (nil:
// none) cover together, 0 when both are empty.
func indexSpan(a, b *ddsketch.DDSketch) int {
	lo, hi := math.MaxInt, math.MinInt
	for _, s := range [2]*ddsketch.DDSketch{a, b} {
		if s == nil {
			continue
		}
		st := s.GetPositiveValueStore()
		if v, err := st.MinIndex(); err == nil {
			lo = min(lo, v)
		}
		if v, err := st.MaxIndex(); err == nil {
			hi = max(hi, v)
		}
	}
	if lo > hi {
		return 0
	}
	return hi - lo + 1
}

// ZoneStatus is one zone's state at a tick.
type ZoneStatus struct {
	Zone string
	// Availability and P99 (ms, -1 with no data) are server-side over the last 10 s.
	Availability float64
	P99          float64
	Requests     int64
	// CanaryAvailability (-1 with no data, over the health window) and
	// CanaryP99 (ms, -1 with no data, last 10 s) are the zonal canaries' view.
	CanaryAvailability float64
	CanaryP99          float64
	// Healthy: the zonal canaries saw no fault and no slow request over the
	// health window (and saw something).
	Healthy bool
	// Impacted, Outlier and Contributors are the detector's view of the zone.
	Impacted     bool
	Outlier      bool
	Contributors int
	Instances    int
	Isolated     bool
	// UnderTest: the zone was called isolated and its recovery test runs;
	// Recovered: that test passed (recovery.go), or, for a zone not under
	// test, Healthy. RecoveredSince is when the evidence that passed it began.
	UnderTest      bool
	Recovered      bool
	RecoveredSince time.Time
	// Relapsing: the zone passed its recovery test less than RelapseWindow
	// ago; an isolated call now is the same episode continuing (a premature
	// end), not a new one, and the next recovery needs more evidence.
	Relapsing bool
	// Silent: no server-side observations from the zone for the silence
	// window, while the source was reporting before.
	Silent bool
}

// AlarmStatus is one alarm's state, for display and explanation.
type AlarmStatus struct {
	Name   string
	State  alarm.State
	Reason Reason
}

// Assessment is the engine's conclusion at a tick.
type Assessment struct {
	At       time.Time
	Profile  string
	Zones    []ZoneStatus
	Isolated string // the zone with isolated impact, or ""
	Regional bool
	Alarms   Alarms
	// Why explains the decision (or its absence) in one paragraph.
	Why string
	// RegionalAvailability is the regional canaries' view over the health window.
	RegionalAvailability float64
	// FailStatic says whether, and why, the engine's own view is in doubt:
	// then Isolated is always "".
	FailStatic FailStatic
}

// Zone returns the status of a zone.
func (a Assessment) Zone(z string) ZoneStatus {
	for _, s := range a.Zones {
		if s.Zone == z {
			return s
		}
	}
	return ZoneStatus{Zone: z}
}

// Healthy returns the per-zone canary health as a map.
func (a Assessment) Healthy() map[string]bool {
	m := make(map[string]bool, len(a.Zones))
	for _, s := range a.Zones {
		m[s.Zone] = s.Healthy
	}
	return m
}

// RecoveredInto returns, per zone, whether it is shown recovered
// (ZoneStatus.Recovered), into m (a caller's, reused).
func (a Assessment) RecoveredInto(m map[string]bool) map[string]bool {
	for _, s := range a.Zones {
		m[s.Zone] = s.Recovered
	}
	return m
}

// RecoveredSinceInto returns, per zone shown recovered by its test, when
// the evidence began, into m (a caller's, reused).
func (a Assessment) RecoveredSinceInto(m map[string]time.Time) map[string]time.Time {
	for _, s := range a.Zones {
		if s.Recovered && !s.RecoveredSince.IsZero() {
			m[s.Zone] = s.RecoveredSince
		}
	}
	return m
}

func (e *Engine) assess(now time.Time) Assessment {
	// Built in the engine's scratch: the detector takes a pointer to it,
	// which would move a local to the heap at every tick.
	a := &e.assessBuf
	*a = assessing{Assessment: Assessment{At: now, Profile: e.cfg.Profile, Zones: e.zoneBuf[:0]}, alarms: e.alarmBuf[:0]}
	for zi, z := range e.cfg.Zones {
		h := e.health[zi].total
		d := e.display[zi].total
		p99 := e.lat[zi][observation.Server].p99
		a.Zones = append(a.Zones, ZoneStatus{
			Zone:               z,
			Availability:       d.Availability(),
			P99:                p99,
			Requests:           d.N,
			Healthy:            h.N > 0 && h.Faults == 0 && h.Slow == 0,
			Recovered:          h.N > 0 && h.Faults == 0 && h.Slow == 0, // the default profile's test may override
			CanaryAvailability: canaryAvail(h),
			CanaryP99:          e.lat[zi][observation.Canary].p99,
			Silent:             e.silent(zi, observation.Server),
		})
	}
	e.det.assess(a)
	a.failStatic(e.doubt(now))
	if r, ok := e.det.(interface{ doubted(*assessing) }); ok && a.FailStatic.Active {
		r.doubted(a)
	}
	e.zoneBuf, e.alarmBuf = a.Zones, a.alarms
	if !slices.Equal(e.zones, a.Zones) || e.zones == nil {
		e.zones = e.zoneChunk.take(len(a.Zones))
		copy(e.zones, a.Zones)
	}
	e.alarms = e.alarmsOf(a.alarms)
	a.Zones, a.Alarms = e.zones, e.alarms
	return a.Assessment
}

func canaryAvail(c Counts) float64 {
	if n, _ := c.Trials(DimFault); n == 0 {
		return -1
	}
	return c.Availability()
}

// displayWindow is the span of the availability and p99 shown per zone.
const displayWindow = 10 * time.Second

// IsolatedAlarmName is the name of the alarm that decides a zone's isolated impact.
func IsolatedAlarmName(zone string) string { return zone + "-isolated-impact" }
