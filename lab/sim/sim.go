// Package sim is the lab's simulated workload: request arrivals, per-instance
// latency and each fault kind's documented effect, on a virtual clock with a
// seeded random source. Routing goes through the real front door Table,
// capacity through the real instance group, and decisions through the real
// controller, so sim mode differs from real mode only in what answers a request.
//
// It is built to be cheap, because day-long corpora run it for millions of
// requests: four event streams merged by comparing their next times (no
// heap), each instance's state found once per request (by target pointer)
// holding its fault effects for the span of the fault plan in force
// (fault.Cursor) and its server-side counters (Config.Server), operations
// resolved once, no math.Exp where the customer's verdict does not need it,
// routing turns kept by the world (frontdoor.Cursor), and, when the caller
// takes aggregates, server-side observations summed per engine bucket and
// series instead of handed over one by one.
package sim

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/lab/fault"
	"github.com/grayzone/grayzone/lab/instancegroup"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/telemetry/canary"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Model constants: what a healthy request costs, and the timeouts that shape
// how faults surface. They match real mode's app and clients.
const (
	DBTimeout       = 2 * time.Second // the app's database call timeout
	CustomerTimeout = 5 * time.Second // a customer gives up after this
	HealthInterval  = time.Second
	HealthTimeout   = 500 * time.Millisecond
)

// Config wires a World to the shared components.
type Config struct {
	Scenario *scenario.Scenario
	Table    *frontdoor.Table
	Start    time.Time
	// Observe receives server-side and canary observations (possibly
	// stamped a little in the future: the engine buckets by completion time).
	Observe func(observation.Observation)
	// ObserveAggregates, when set, receives the server-side observations
	// instead of Observe, summed per series (instance and operation) and
	// per TickEvery bucket of their completion time, each aggregate stamped
	// at its bucket's last nanosecond; it is called before each Tick with
	// every aggregate collected since the last one, in a deterministic
	// order. The engine counts them exactly as it would count the single
	// observations (slow counted with the operation's threshold). The slice
	// and its histograms are reused after the call returns: do not keep them.
	ObserveAggregates func([]record.Aggregate)
	// Server, when set (and ObserveAggregates is not), receives the
	// server-side observations instead of Observe: those of each instance's
	// operation through the counter it returns for them, asked once (at the
	// first such request), so a request builds no Observation and the
	// counter need not find its series by name.
	Server func(zone, instance string, op *operation.Operation) ServerCounter
	// Tick is called every TickEvery of virtual time (the controller's loop).
	Tick      func(now time.Time)
	TickEvery time.Duration
	// Customer is called once per customer request with what the customer
	// saw: whether it failed (a 5xx, no target, or no answer within
	// CustomerTimeout) and whether it was slow (it took longer than its
	// operation's threshold, counting at most CustomerTimeout).
	Customer func(failed, slow bool)
}

// ServerCounter counts one instance's operation's server-side
// observations (Config.Server): each request's, stamped with its completion.
type ServerCounter interface {
	Observe(at time.Time, outcome observation.Outcome, latency time.Duration)
}

// World is the simulated workload. It is also the instance group's Launcher:
// launching an instance registers it with the front door.
type World struct {
	cfg  Config
	plan *fault.Cursor
	rng  *rand.Rand
	off  time.Duration // virtual time since Start
	mix  []mixOp
	ops  []operation.Operation // every operation, for the canaries
	agg  aggregator
	// probeRound counts canary rounds: every canary.ProbeSteps-th is full.
	probeRound int
	// targets is the health checks' list, reused from round to round.
	targets []frontdoor.TargetStatus
	// insts is what the world keeps per instance, by id; byTarget indexes
	// it by the targets of snap, the routing snapshot the world last read
	// (a snapshot's targets are its own copies): one lookup per request, by
	// pointer, where ids of one length cost a string comparison per entry.
	insts    map[string]*inst
	byTarget map[*frontdoor.Target]*inst
	snap     *frontdoor.Snapshot
	// cur is the world's place in the table's round robins: the world
	// makes every pick on its table, from one goroutine, so it keeps its
	// own (frontdoor.Cursor) rather than the atomic counters a proxy's
	// concurrent requests share; the picks are the same.
	cur frontdoor.Cursor
}

// mixOp is one operation of the customer mix, resolved once.
type mixOp struct {
	op    int // in ops
	share float64
}

// inst is what a request on an instance needs, looked up once per request.
type inst struct {
	// fx are the fault effects on the instance over the plan's span
	// numbered span (fault.Cursor.Span; 0: none yet).
	fx   *fault.Effects
	span int
	// server are Config.Server's counters, by operation (index in ops).
	server []ServerCounter
}

// New returns a world for the scenario.
func New(cfg Config) *World {
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = time.Second
	}
	seed := uint64(cfg.Scenario.Seed)
	w := &World{
		cfg:      cfg,
		plan:     fault.NewPlan(cfg.Scenario).Cursor(),
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ops:      operation.Catalog,
		agg:      aggregator{index: map[aggKey]int{}},
		insts:    map[string]*inst{},
		byTarget: map[*frontdoor.Target]*inst{},
	}
	for _, m := range cfg.Scenario.Load.Mix {
		// The scenario's parser checked the name: it is the catalog's.
		i := slices.IndexFunc(w.ops, func(op operation.Operation) bool { return op.Name == m.Operation })
		w.mix = append(w.mix, mixOp{op: i, share: m.Share})
	}
	return w
}

// Launch implements instancegroup.Launcher.
func (w *World) Launch(_ context.Context, in instancegroup.Instance) error {
	return w.cfg.Table.AddTarget(frontdoor.Target{ID: in.ID, Zone: in.Zone})
}

// Terminate implements instancegroup.Launcher.
func (w *World) Terminate(_ context.Context, in instancegroup.Instance) error {
	w.cfg.Table.RemoveTarget(in.ID)
	delete(w.insts, in.ID)
	return nil
}

// SetTickEvery sets the controller's tick interval (before Run).
func (w *World) SetTickEvery(d time.Duration) { w.cfg.TickEvery = d }

// Now is the virtual time.
func (w *World) Now() time.Time { return w.cfg.Start.Add(w.off) }

// Offset is the virtual time since the start.
func (w *World) Offset() time.Duration { return w.off }

// The event streams, in the order they run when due at the same instant.
const (
	evArrival = iota
	evCanary
	evHealth
	evTick
	numEvents
)

// Run simulates the scenario until its end or until ctx is cancelled, and
// returns the virtual time reached. Events due exactly at the end still run.
func (w *World) Run(ctx context.Context) time.Duration {
	sc := w.cfg.Scenario
	end := sc.Duration
	var next [numEvents]time.Duration
	next[evArrival] = w.interArrival(0)
	next[evCanary] = 0
	next[evHealth] = HealthInterval
	next[evTick] = w.cfg.TickEvery
	for n := 1; ; n++ {
		k := evArrival
		for i := evArrival + 1; i < numEvents; i++ {
			if next[i] < next[k] {
				k = i
			}
		}
		if next[k] > end {
			break
		}
		if n%4096 == 0 && ctx.Err() != nil {
			break
		}
		w.off = next[k]
		switch k {
		case evArrival:
			w.customer()
			next[k] = w.off + w.interArrival(w.off)
		case evCanary:
			w.canaries(w.probeRound%canary.ProbeSteps(sc.Canary.Interval) == 0)
			w.probeRound++
			next[k] = w.off + canary.ProbeInterval(sc.Canary.Interval)
		case evHealth:
			w.healthChecks()
			next[k] = w.off + HealthInterval
		case evTick:
			w.flush()
			w.cfg.Tick(w.Now())
			next[k] = w.off + w.cfg.TickEvery
		}
	}
	w.flush()
	if w.off < end && ctx.Err() == nil {
		w.off = end
	}
	return w.off
}

// interArrival draws a Poisson gap at the rate in force.
func (w *World) interArrival(t time.Duration) time.Duration {
	rps := w.cfg.Scenario.Load.RPSAt(t)
	if rps <= 0 {
		return time.Second // no traffic now: look again in a second
	}
	return time.Duration(w.rng.ExpFloat64() / rps * float64(time.Second))
}

// pickOp draws a customer request's operation: its index in ops.
func (w *World) pickOp() int {
	u := w.rng.Float64()
	for i := range w.mix {
		if u < w.mix[i].share {
			return w.mix[i].op
		}
		u -= w.mix[i].share
	}
	return w.mix[len(w.mix)-1].op
}

func (w *World) customer() {
	oi := w.pickOp()
	op := &w.ops[oi]
	t := w.snapshot().PickRegionalWith(&w.cur)
	if t == nil {
		w.cfg.Customer(true, op.Threshold < 0)
		return
	}
	status, lat := w.serve(t, oi)
	// The front door's way back. The customer's latency only counts
	// against CustomerTimeout and the threshold, so when the largest value
	// the draw can give (z <= 10: under backBound) cannot reach either,
	// the verdict is known without math.Exp (the draw is taken all the
	// same: the random stream stays the one of every other run).
	z := w.rng.NormFloat64()
	if hi := lat + backBound; z <= 10 && hi < CustomerTimeout && hi <= op.Threshold {
		w.cfg.Customer(status >= 500, false)
		return
	}
	lat += scaled(backMedian, backSigma, z)
	w.cfg.Customer(status >= 500 || lat >= CustomerTimeout, min(lat, CustomerTimeout) > op.Threshold)
}

// The front door's way back: a lognormal latency, under backBound for every
// draw z <= 10 (300 µs·e² is 2.22 ms).
const (
	backMedian = 300 * time.Microsecond
	backSigma  = 0.2
	backBound  = 2300 * time.Microsecond
)

// serve models one request on target t: it records the server-side
// observation and returns the latency the instance saw (the caller adds
// the front door's way back, backMedian).
func (w *World) serve(t *frontdoor.Target, oi int) (status int, latency time.Duration) {
	op := &w.ops[oi]
	status = 200
	in := w.byTarget[t]
	if in == nil {
		in = w.instOf(t.ID)
		w.byTarget[t] = in
	}
	if n := w.plan.Span(w.off); in.span != n {
		in.fx, in.span = w.plan.Target(w.off, t.Zone, t.ID), n
	}
	fx := in.fx
	// A healthy request: app work, plus one database round trip for ride and pay.
	lat := w.lognormal(2*time.Millisecond, 0.3)
	lat += w.jittered(fx.Slow, fx.Jitter)
	if fx.ErrPct > 0 && w.rng.Float64()*100 < fx.ErrPct {
		status = 500
	} else if op.UsesDB {
		dbLat, ok := w.dbCall(fx.Link)
		lat += dbLat
		if !ok {
			status = 500
		}
	}
	if !fx.TelemetryLost {
		w.observeServer(t, in, oi, status, lat)
	}
	return status, lat
}

// snapshot returns the table's routing snapshot, dropping the index of the
// last one's targets when it is new.
func (w *World) snapshot() *frontdoor.Snapshot {
	s := w.cfg.Table.Snapshot()
	if s != w.snap {
		w.snap = s
		clear(w.byTarget)
	}
	return s
}

// instOf returns the instance's state, made at its first request.
func (w *World) instOf(id string) *inst {
	in := w.insts[id]
	if in == nil {
		in = &inst{server: make([]ServerCounter, len(w.ops))}
		w.insts[id] = in
	}
	return in
}

func (w *World) observeServer(t *frontdoor.Target, in *inst, oi int, status int, lat time.Duration) {
	op := &w.ops[oi]
	if w.cfg.ObserveAggregates != nil {
		w.agg.add(w.cfg.Start.Add(w.off+lat), w.cfg.TickEvery, t, op, observation.FromStatus(status), lat)
		return
	}
	if w.cfg.Server != nil {
		c := in.server[oi]
		if c == nil {
			c = w.cfg.Server(t.Zone, t.ID, op)
			in.server[oi] = c
		}
		c.Observe(w.cfg.Start.Add(w.off+lat), observation.FromStatus(status), lat)
		return
	}
	w.cfg.Observe(observation.Observation{
		At: w.Now().Add(lat), Source: observation.Server, Zone: t.Zone, Instance: t.ID,
		Operation: op.Name, Outcome: observation.FromStatus(status), Latency: lat,
	})
}

// flush hands the aggregates collected so far to ObserveAggregates.
func (w *World) flush() {
	if w.cfg.ObserveAggregates == nil || len(w.agg.out) == 0 {
		return
	}
	w.cfg.ObserveAggregates(w.agg.out)
	w.agg.reset()
}

// dbCall models one database statement through the instance's zone link.
func (w *World) dbCall(link []scenario.Fault) (time.Duration, bool) {
	lat := w.lognormal(3*time.Millisecond, 0.4)
	for i := range link {
		f := &link[i]
		switch f.Kind {
		case scenario.Latency:
			lat += w.jittered(f.Latency, f.Jitter)
		case scenario.Blackhole:
			return DBTimeout, false
		case scenario.PacketLoss:
			if w.rng.Float64()*100 < f.Percent {
				return DBTimeout, false
			}
		case scenario.Reset:
			if w.rng.Float64()*100 < f.Percent {
				return lat / 2, false
			}
		}
	}
	if lat >= DBTimeout {
		return DBTimeout, false
	}
	return lat, true
}

// canaries runs one round: every endpoint when full, else only the zonal
// endpoints of shifted zones (probed harder, as telemetry/canary does).
func (w *World) canaries(full bool) {
	sc := w.cfg.Scenario
	snap := w.snapshot()
	for _, z := range sc.Topology.Zones {
		if !full && !w.cfg.Table.Shifted(z) {
			continue
		}
		for i := range w.ops {
			w.canaryCall(snap.PickZonalWith(&w.cur, z), z, i, false)
		}
	}
	if !full {
		return
	}
	for i := range w.ops {
		w.canaryCall(snap.PickRegionalWith(&w.cur), "", i, true)
	}
}

func (w *World) canaryCall(t *frontdoor.Target, zone string, oi int, regional bool) {
	op := &w.ops[oi]
	o := observation.Observation{Source: observation.Canary, Zone: zone, Operation: op.Name, Regional: regional}
	now := w.Now()
	// A canary_failure cuts grayzone's own path to the zone: the call fails
	// at once (connection refused) without reaching any instance.
	if t == nil || (!regional && w.plan.CanaryFails(w.off, zone)) {
		o.At, o.Outcome, o.Latency = now, observation.Fault, 0
		if !regional {
			w.cfg.Observe(o)
		}
		return
	}
	status, lat := w.serve(t, oi)
	lat += w.lognormal(backMedian, backSigma) // the front door's way back
	if lat > CustomerTimeout {
		lat, status = CustomerTimeout, 0
	}
	o.Zone, o.Instance = t.Zone, t.ID
	o.At, o.Outcome, o.Latency = now.Add(lat), observation.FromStatus(status), lat
	w.cfg.Observe(o)
}

// healthChecks models the front door's shallow /health probe of each target:
// it never touches the database, so only instance faults can fail it.
func (w *World) healthChecks() {
	w.targets = w.cfg.Table.AppendTargets(w.targets[:0])
	for _, ts := range w.targets {
		fx := w.plan.Target(w.off, ts.Zone, ts.ID)
		ok := true
		if fx.ErrPct > 0 && w.rng.Float64()*100 < fx.ErrPct {
			ok = false
		}
		if fx.Slow > 0 && w.jittered(fx.Slow, fx.Jitter) > HealthTimeout {
			ok = false
		}
		w.cfg.Table.ReportHealth(ts.ID, ok)
	}
}

func (w *World) lognormal(median time.Duration, sigma float64) time.Duration {
	return scaled(median, sigma, w.rng.NormFloat64())
}

// scaled is the lognormal latency of the standard normal draw z.
func scaled(median time.Duration, sigma, z float64) time.Duration {
	return time.Duration(float64(median) * math.Exp(sigma*z))
}

func (w *World) jittered(d, jitter time.Duration) time.Duration {
	if d == 0 {
		return 0
	}
	if jitter > 0 {
		d += time.Duration((2*w.rng.Float64() - 1) * float64(jitter))
	}
	return max(d, 0)
}

// aggregator sums server-side observations per engine bucket and series.
type aggregator struct {
	index map[aggKey]int // into out
	out   []record.Aggregate
	spare [][]record.Bucket // histograms of earlier flushes, for reuse
}

type aggKey struct {
	bucket   int64
	instance string
	op       string
}

// add counts one request completed at done into its bucket's aggregate.
func (a *aggregator) add(done time.Time, every time.Duration, t *frontdoor.Target, op *operation.Operation, o observation.Outcome, lat time.Duration) {
	b := done.UnixNano() / int64(every)
	k := aggKey{b, t.ID, op.Name}
	i, ok := a.index[k]
	if !ok {
		i = len(a.out)
		a.index[k] = i
		var hist []record.Bucket
		if n := len(a.spare); n > 0 {
			hist, a.spare = a.spare[n-1][:0], a.spare[:n-1]
		}
		a.out = append(a.out, record.Aggregate{
			At:      time.Unix(0, (b+1)*int64(every)-1).UTC(),
			Key:     record.SeriesKey{Source: observation.Server, Zone: t.Zone, Instance: t.ID, Operation: op.Name},
			Latency: hist,
		})
	}
	g := &a.out[i]
	g.Count(o, 1)
	if lat > op.Threshold {
		g.Slow++
	}
	g.AddLatency(lat, 1)
}

func (a *aggregator) reset() {
	for i := range a.out {
		a.spare = append(a.spare, a.out[i].Latency)
		a.out[i] = record.Aggregate{}
	}
	a.out = a.out[:0]
	clear(a.index)
}
