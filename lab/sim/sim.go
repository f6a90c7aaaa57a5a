// Package sim is the lab's simulated workload: request arrivals, per-instance
// latency and each fault kind's documented effect, on a virtual clock with a
// seeded random source. Routing goes through the real front door Table,
// capacity through the real instance group, and decisions through the real
// controller, so sim mode differs from real mode only in what answers a request.
package sim

import (
	"container/heap"
	"context"
	"math"
	"math/rand/v2"
	"time"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/lab/fault"
	"github.com/grayzone/grayzone/lab/instancegroup"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/telemetry/canary"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
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
	// Tick is called every TickEvery of virtual time (the controller's loop).
	Tick      func(now time.Time)
	TickEvery time.Duration
	// Customer is called once per customer request with what the customer saw.
	Customer func(start time.Time, op string, latency time.Duration, failed bool)
}

// World is the simulated workload. It is also the instance group's Launcher:
// launching an instance registers it with the front door.
type World struct {
	cfg  Config
	plan fault.Plan
	rng  *rand.Rand
	q    eventQueue
	seq  uint64
	now  time.Time
	mix  []scenario.OperationShare
	// probeRound counts canary rounds: every canary.ProbeSteps-th is full.
	probeRound int
}

// New returns a world for the scenario.
func New(cfg Config) *World {
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = time.Second
	}
	seed := uint64(cfg.Scenario.Seed)
	return &World{
		cfg:  cfg,
		plan: fault.NewPlan(cfg.Scenario),
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:  cfg.Start,
		mix:  cfg.Scenario.Load.Mix,
	}
}

// Launch implements instancegroup.Launcher.
func (w *World) Launch(_ context.Context, in instancegroup.Instance) error {
	return w.cfg.Table.AddTarget(frontdoor.Target{ID: in.ID, Zone: in.Zone})
}

// Terminate implements instancegroup.Launcher.
func (w *World) Terminate(_ context.Context, in instancegroup.Instance) error {
	w.cfg.Table.RemoveTarget(in.ID)
	return nil
}

// SetTickEvery sets the controller's tick interval (before Run).
func (w *World) SetTickEvery(d time.Duration) { w.cfg.TickEvery = d }

// Now is the virtual time.
func (w *World) Now() time.Time { return w.now }

// Offset is the virtual time since the start.
func (w *World) Offset() time.Duration { return w.now.Sub(w.cfg.Start) }

type eventKind int

const (
	evArrival eventKind = iota
	evCanary
	evHealth
	evTick
)

type event struct {
	at   time.Time
	seq  uint64
	kind eventKind
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (w *World) schedule(at time.Time, k eventKind) {
	w.seq++
	heap.Push(&w.q, event{at: at, seq: w.seq, kind: k})
}

// Run simulates the scenario until its end or until ctx is cancelled, and
// returns the virtual time reached.
func (w *World) Run(ctx context.Context) time.Duration {
	sc := w.cfg.Scenario
	end := w.cfg.Start.Add(sc.Duration)
	w.schedule(w.cfg.Start.Add(w.interArrival(0)), evArrival)
	w.schedule(w.cfg.Start, evCanary)
	w.schedule(w.cfg.Start.Add(HealthInterval), evHealth)
	w.schedule(w.cfg.Start.Add(w.cfg.TickEvery), evTick)
	n := 0
	for w.q.Len() > 0 {
		ev := heap.Pop(&w.q).(event)
		if ev.at.After(end) {
			break
		}
		if n++; n%4096 == 0 && ctx.Err() != nil {
			break
		}
		w.now = ev.at
		switch ev.kind {
		case evArrival:
			w.customer()
			w.schedule(w.now.Add(w.interArrival(w.Offset())), evArrival)
		case evCanary:
			w.canaries(w.probeRound%canary.ProbeSteps(sc.Canary.Interval) == 0)
			w.probeRound++
			w.schedule(w.now.Add(canary.ProbeInterval(sc.Canary.Interval)), evCanary)
		case evHealth:
			w.healthChecks()
			w.schedule(w.now.Add(HealthInterval), evHealth)
		case evTick:
			w.cfg.Tick(w.now)
			w.schedule(w.now.Add(w.cfg.TickEvery), evTick)
		}
	}
	if w.now.Before(end) && ctx.Err() == nil {
		w.now = end
	}
	return w.Offset()
}

// interArrival draws a Poisson gap at the rate in force.
func (w *World) interArrival(t time.Duration) time.Duration {
	rps := w.cfg.Scenario.Load.RPSAt(t)
	return time.Duration(w.rng.ExpFloat64() / rps * float64(time.Second))
}

func (w *World) pickOp() string {
	u := w.rng.Float64()
	for _, m := range w.mix {
		if u < m.Share {
			return m.Operation
		}
		u -= m.Share
	}
	return w.mix[len(w.mix)-1].Operation
}

func (w *World) customer() {
	op := w.pickOp()
	t := w.cfg.Table.Snapshot().PickRegional()
	if t == nil {
		w.cfg.Customer(w.now, op, 0, true)
		return
	}
	status, lat := w.serve(t, op)
	w.cfg.Customer(w.now, op, min(lat, CustomerTimeout), status >= 500 || lat >= CustomerTimeout)
}

// serve models one request on target t: it records the server-side
// observation and returns what the caller sees.
func (w *World) serve(t *frontdoor.Target, opName string) (status int, latency time.Duration) {
	off := w.Offset()
	op, _ := operation.Lookup(opName)
	status = 200
	// A healthy request: app work, plus one database round trip for ride and pay.
	lat := w.lognormal(2*time.Millisecond, 0.3)
	errPct, slow, jitter := w.plan.Instance(off, t.Zone, t.ID)
	lat += w.jittered(slow, jitter)
	if errPct > 0 && w.rng.Float64()*100 < errPct {
		status = 500
	} else if op.UsesDB {
		dbLat, ok := w.dbCall(off, t)
		lat += dbLat
		if !ok {
			status = 500
		}
	}
	if !w.plan.TelemetryLost(off, t.Zone, t.ID) {
		w.cfg.Observe(observation.Observation{
			At: w.now.Add(lat), Source: observation.Server, Zone: t.Zone, Instance: t.ID,
			Operation: opName, Outcome: observation.FromStatus(status), Latency: lat,
		})
	}
	// The front door adds a little on the way back.
	return status, lat + w.lognormal(300*time.Microsecond, 0.2)
}

// dbCall models one database statement through the instance's zone link.
func (w *World) dbCall(off time.Duration, t *frontdoor.Target) (time.Duration, bool) {
	lat := w.lognormal(3*time.Millisecond, 0.4)
	for _, f := range w.plan.Link(off, t.Zone, t.ID) {
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
	snap := w.cfg.Table.Snapshot()
	for _, z := range sc.Topology.Zones {
		if !full && !w.cfg.Table.Shifted(z) {
			continue
		}
		for _, op := range operation.Names() {
			w.canaryCall(snap.PickZonal(z), z, op, false)
		}
	}
	if !full {
		return
	}
	for _, op := range operation.Names() {
		w.canaryCall(snap.PickRegional(), "", op, true)
	}
}

func (w *World) canaryCall(t *frontdoor.Target, zone, op string, regional bool) {
	o := observation.Observation{Source: observation.Canary, Zone: zone, Operation: op, Regional: regional}
	// A canary_failure cuts grayzone's own path to the zone: the call fails
	// at once (connection refused) without reaching any instance.
	if t == nil || (!regional && w.plan.CanaryFails(w.Offset(), zone)) {
		o.At, o.Outcome, o.Latency = w.now, observation.Fault, 0
		if !regional {
			w.cfg.Observe(o)
		}
		return
	}
	status, lat := w.serve(t, op)
	if lat > CustomerTimeout {
		lat, status = CustomerTimeout, 0
	}
	o.Zone, o.Instance = t.Zone, t.ID
	o.At, o.Outcome, o.Latency = w.now.Add(lat), observation.FromStatus(status), lat
	w.cfg.Observe(o)
}

// healthChecks models the front door's shallow /health probe of each target:
// it never touches the database, so only instance faults can fail it.
func (w *World) healthChecks() {
	off := w.Offset()
	for _, ts := range w.cfg.Table.Targets() {
		errPct, slow, jitter := w.plan.Instance(off, ts.Zone, ts.ID)
		ok := true
		if errPct > 0 && w.rng.Float64()*100 < errPct {
			ok = false
		}
		if slow > 0 && w.jittered(slow, jitter) > HealthTimeout {
			ok = false
		}
		w.cfg.Table.ReportHealth(ts.ID, ok)
	}
}

func (w *World) lognormal(median time.Duration, sigma float64) time.Duration {
	return time.Duration(float64(median) * math.Exp(sigma*w.rng.NormFloat64()))
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
