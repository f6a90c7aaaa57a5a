// Package autoshift joins detection to action: it feeds aggregates to the
// detection engine, hands the engine's assessment to the runbook at every
// tick, and says which of the runbook's actions to carry out. Like etcd's
// raft it is a deterministic core: Tick returns a Ready (the assessment, the
// actions to start, the runbook state to save first, the audit events), the
// caller saves, applies and answers each action with Ack. It starts no
// goroutine, reads no clock and calls nothing that does I/O; its lock is
// never held across a call out of the package, so an observation never waits
// on a database or an actuator. The lab's real mode, its sim mode and
// grayzone serve all run this one controller through one driver
// (server/resource); only the clock and the executor differ.
package autoshift

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Detection is one rise of a zone's isolated-impact alarm.
type Detection struct {
	Alarm string
	Zone  string
	At    time.Time
	Why   string
}

// AuditEvent is one thing the controller did or decided, for the audit log.
type AuditEvent struct {
	At     time.Time
	Kind   string // decision, vetoed, action, action_failed, fail_static
	Zone   string
	Action string
	ID     string // the action's ID (Action.ID), for action and action_failed
	Msg    string
}

// Guard may veto starting a new shift of zone (dry run, approval pending,
// minimum interval, another shift, capacity). It is called with the
// controller's lock held and must do no I/O: it reads what its owner keeps
// in memory.
type Guard func(now time.Time, zone, why string) error

// Options configure a Controller.
type Options struct {
	Engine  *detect.Engine
	Runbook *runbook.Runbook
	// Mitigate off means detect and record but never act (the lab's --baseline run).
	Mitigate bool
	// Guard, when set, is asked before a new shift starts. A veto is
	// reported in the Ready's audit once per rise of the zone's alarm.
	Guard Guard
	Log   *slog.Logger
}

// Ready is what one Tick asks of its caller, in order: record Audit; when
// Actions is not empty, save State durably first (write-ahead: a crash
// after an action started cannot lose the decision that started it), then
// carry out each action and answer it with Ack, quoting Epoch. When the save
// fails, the actions are not started but answered as failed, to be retried:
// nothing is done that the durable state does not know of, and a deposed
// leader, whose fenced write fails, stops acting.
type Ready struct {
	Assessment detect.Assessment
	Actions    []actuator.Action
	State      runbook.State
	// Version orders States: a higher one includes everything a lower one
	// does, so a saver may skip a State older than one already saved.
	Version uint64
	// Epoch names the runbook the actions belong to (see SetRunbook).
	Epoch uint64
	Audit []AuditEvent
}

// Controller is safe for concurrent use: Observe and Ack may be called from
// any goroutine, Tick from one loop.
type Controller struct {
	mu         sync.Mutex
	o          Options
	last       detect.Assessment
	detections []Detection
	// episodes: a zone's rises of the alarm belong to one incident until it
	// has been quiet for EpisodeGap and the runbook is done with it.
	openEpisode map[string]bool
	quietSince  map[string]time.Time
	// disarmed zones had their shift end while their alarm was still up: a
	// new shift needs the alarm to clear and rise again (edge, not level).
	disarmed map[string]bool
	vetoed   map[string]bool // zones whose current rise was vetoed (reported once)
	seen     int             // runbook events already scanned
	epoch    uint64          // bumped by SetRunbook
	version  uint64          // bumped by every change to the runbook's state
	// failStatic lists the periods the engine's view was in doubt.
	failStatic []FailStaticPeriod
	// audit collects events between the calls that hand them out.
	audit []AuditEvent
	// input holds the maps of the runbook's input, reused tick after tick.
	input struct {
		healthy, impacted map[string]bool
		since             map[string]time.Time
	}
	// pub is what the last change left, for readers that must not wait
	// for a Tick (see View), and view the View made of it, nil until one
	// is asked for; both guarded by pubMu, never held across anything but
	// their own reads and writes.
	pubMu sync.Mutex
	pub   View
	view  *View
}

// View is the controller as its last change left it: the latest
// assessment and the runbook's phase, state and unfinished actions. It is
// published at the end of every change (Tick, Assess, Ack, Abandon,
// SetRunbook), under the lock, and read without it, so a reader such as
// the status API or /metrics never waits for a Tick in progress (the
// engine's assessment runs under the lock) and sees each change whole. A
// View is never modified once returned.
type View struct {
	Assessment detect.Assessment
	Phase      runbook.Phase
	Zone       string // the zone the phase concerns
	State      runbook.State
	Version    uint64 // as RunbookState's
	Pending    []actuator.Action
}

// New returns a controller.
func New(o Options) *Controller {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	c := &Controller{o: o, openEpisode: map[string]bool{}, quietSince: map[string]time.Time{}, disarmed: map[string]bool{}, vetoed: map[string]bool{}}
	c.publish()
	return c
}

// View returns the controller as its last change left it, without waiting
// for the lock: never nil, never modified (the caller must not modify it).
// A View is made when asked for, once per change: the state is published
// at every tick, four a second, and read by a status request or a scrape
// now and then (a new View per tick was a tenth of the bytes a simulated
// hour allocated).
func (c *Controller) View() *View {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	if c.view == nil {
		v := c.pub
		c.view = &v
	}
	return c.view
}

// publish makes the current state the View's; mu held (or c not yet
// shared). What it copies is never written afterwards: the assessment's
// slices are immutable, and the runbook's state and pending actions new.
func (c *Controller) publish() {
	phase, zone := c.o.Runbook.Phase()
	st, pending := c.o.Runbook.State(), c.o.Runbook.Pending()
	c.pubMu.Lock()
	c.pub = View{Assessment: c.last, Phase: phase, Zone: zone, State: st, Version: c.version, Pending: pending}
	c.view = nil
	c.pubMu.Unlock()
}

// ObserveAggregates feeds per-series interval aggregates to the engine: the
// controller's one input, the form every observation takes once it has
// passed the ingest gate (server/resource.Intake).
func (c *Controller) ObserveAggregates(aggs []record.Aggregate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range aggs {
		c.o.Engine.ObserveAggregate(aggs[i])
	}
}

// Tick runs one step at now: assess, step the runbook, and return what the
// caller must do.
func (c *Controller) Tick(now time.Time) Ready {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.o.Engine.Tick(now)
	c.last = a
	c.trackFailStatic(now, a.FailStatic)
	c.trackEpisodes(now, a)
	rd := Ready{Assessment: a, Epoch: c.epoch}
	defer c.publish()
	if !c.o.Mitigate {
		rd.Audit = c.takeAudit()
		return rd
	}
	for _, z := range a.Zones {
		if !z.Isolated {
			delete(c.disarmed, z.Zone)
			delete(c.vetoed, z.Zone)
		}
	}
	iso := a.Isolated // always "" while failing static
	if c.disarmed[iso] {
		iso = ""
	}
	if phase, _ := c.o.Runbook.Phase(); iso != "" && phase == runbook.Idle && c.o.Guard != nil {
		if err := c.o.Guard(now, iso, a.Why); err != nil {
			if !c.vetoed[iso] {
				c.vetoed[iso] = true
				c.emit(AuditEvent{At: now, Kind: "vetoed", Zone: iso, Msg: fmt.Sprintf("shift of %s not started: %v; detector: %s", iso, err, a.Why)})
			}
			iso = ""
		}
	}
	if phase, z := c.o.Runbook.Phase(); z != "" && phase != runbook.Shifting && !a.Zone(z).UnderTest {
		c.o.Engine.Watch(z) // a resumed shift: its recovery is a test too
	}
	// The runbook reads its input's maps during Step only: they are the
	// controller's, refilled every tick (three maps a tick were a third of
	// an idle resource's allocations in serve).
	in := &c.input
	in.healthy = holdHealth(a, clearMap(&in.healthy))
	in.since = a.RecoveredSinceInto(clearMap(&in.since))
	in.impacted = impacted(a, clearMap(&in.impacted))
	rd.Actions = c.o.Runbook.Step(now, runbook.Input{Isolated: iso, Healthy: in.healthy, Since: in.since, Impacted: in.impacted,
		Why: a.Why, Relapse: a.Zone(iso).Relapsing})
	c.scanEvents()
	c.version++ // Step may change the state even when it starts nothing
	rd.State, rd.Version = c.o.Runbook.State(), c.version
	for _, act := range rd.Actions {
		c.o.Log.Info("runbook action", "action", act.String())
	}
	rd.Audit = c.takeAudit()
	return rd
}

// Ack answers one action of the Ready of epoch, at now (err nil: done). It
// returns the audit events the answer made. An answer for a runbook since
// replaced (SetRunbook) belongs to a leadership that is over: it is dropped.
func (c *Controller) Ack(now time.Time, epoch uint64, act actuator.Action, err error) []AuditEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return nil
	}
	if err != nil {
		c.o.Log.Warn("action failed; will retry", "action", act.String(), "err", err)
		c.emit(AuditEvent{At: now, Kind: "action_failed", Zone: act.Zone, Action: string(act.Kind), ID: act.ID, Msg: fmt.Sprintf("%s failed, will retry: %v", act, err)})
	} else {
		c.emit(AuditEvent{At: now, Kind: "action", Zone: act.Zone, Action: string(act.Kind), ID: act.ID, Msg: act.String() + " done"})
	}
	c.o.Runbook.Done(now, act, err)
	c.version++
	c.scanEvents()
	c.publish()
	return c.takeAudit()
}

// EpisodeGap is how long a zone's alarm must stay quiet before a new rise
// counts as a new detection.
const EpisodeGap = time.Minute

func (c *Controller) trackEpisodes(now time.Time, a detect.Assessment) {
	_, handling := c.o.Runbook.Phase()
	for _, z := range a.Zones {
		switch {
		case z.Zone == a.Isolated:
			delete(c.quietSince, z.Zone)
			if !c.openEpisode[z.Zone] {
				c.openEpisode[z.Zone] = true
				c.detections = append(c.detections, Detection{Alarm: detect.IsolatedAlarmName(z.Zone), Zone: z.Zone, At: now, Why: a.Why})
				c.o.Log.Info("isolated zonal impact detected", "zone", z.Zone, "why", a.Why)
				c.emit(AuditEvent{At: now, Kind: "decision", Zone: z.Zone, Msg: "isolated impact: " + a.Why})
			}
		case c.openEpisode[z.Zone]:
			if _, ok := c.quietSince[z.Zone]; !ok {
				c.quietSince[z.Zone] = now
			}
			if now.Sub(c.quietSince[z.Zone]) >= EpisodeGap && (handling != z.Zone || !c.o.Mitigate) {
				delete(c.openEpisode, z.Zone)
				delete(c.quietSince, z.Zone)
			}
		}
	}
}

// emit queues an audit event for the caller; mu held.
func (c *Controller) emit(e AuditEvent) { c.audit = append(c.audit, e) }

// takeAudit hands the queued audit events out; mu held.
func (c *Controller) takeAudit() []AuditEvent {
	out := c.audit
	c.audit = nil
	return out
}

// clearMap empties *m for reuse, making it when nil.
func clearMap[V any](m *map[string]V) map[string]V {
	if *m == nil {
		*m = map[string]V{}
	}
	clear(*m)
	return *m
}

// impacted fills m with the zones the detector shows impacted (none while
// failing static).
func impacted(a detect.Assessment, m map[string]bool) map[string]bool {
	if a.FailStatic.Active {
		return m
	}
	for _, z := range a.Zones {
		if z.Impacted {
			m[z.Zone] = true
		}
	}
	return m
}

// scanEvents disarms a zone whose shift just ended, and hands an aborted
// ramp to the engine as a relapse (its recovery test starts over, backed off).
func (c *Controller) scanEvents() {
	evs := c.o.Runbook.Events()
	for _, ev := range evs[c.seen:] {
		switch ev.Kind {
		case runbook.ShiftEnded:
			c.disarmed[ev.Zone] = true
		case runbook.RampAborted:
			c.o.Engine.Regressed(ev.Zone)
			c.emit(AuditEvent{At: ev.At, Kind: "decision", Zone: ev.Zone, Msg: "ramp aborted: " + ev.Detail})
		case runbook.RampStep:
			c.emit(AuditEvent{At: ev.At, Kind: "decision", Zone: ev.Zone, Msg: ev.Detail})
		}
	}
	c.seen = len(evs)
}

// Abandon tells the runbook its shift ended outside it (cancelled by an
// operator, expired, refused); the zone is not shifted again until its alarm
// clears and rises anew. It returns the audit events it made.
func (c *Controller) Abandon(now time.Time, why string) []AuditEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, z := c.o.Runbook.Phase(); z != "" {
		c.disarmed[z] = true
		c.o.Runbook.Abandon(now, why)
		c.version++
		c.scanEvents()
		c.emit(AuditEvent{At: now, Kind: "decision", Zone: z, Msg: "runbook episode abandoned: " + why})
		c.publish()
	}
	return c.takeAudit()
}

// Mitigating reports whether the controller acts (false: detect and record only).
func (c *Controller) Mitigating() bool { return c.o.Mitigate }

// RunbookState returns the runbook's durable state and its version (see Ready.Version).
func (c *Controller) RunbookState() (runbook.State, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.o.Runbook.State(), c.version
}

// Pending lists the runbook's unfinished actions.
func (c *Controller) Pending() []actuator.Action {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.o.Runbook.Pending()
}

// Last is the latest assessment.
func (c *Controller) Last() detect.Assessment {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Detections lists every rise of an isolated-impact alarm so far.
func (c *Controller) Detections() []Detection {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Detection(nil), c.detections...)
}

// Events is the runbook's history.
func (c *Controller) Events() []runbook.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]runbook.Event(nil), c.o.Runbook.Events()...)
}

// Phase is the runbook's phase and zone.
func (c *Controller) Phase() (runbook.Phase, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.o.Runbook.Phase()
}

// Assess runs the engine alone at now: a follower replica keeps detecting
// (its reads stay live) but decides and acts on nothing.
func (c *Controller) Assess(now time.Time) detect.Assessment {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = c.o.Engine.Tick(now)
	c.publish()
	return c.last
}

// SetRunbook replaces the runbook with one restored from shared state: a
// replica that becomes leader resumes what the last leader left, and a
// follower shows it. Answers to actions started on the old runbook (an
// earlier Epoch) are dropped.
func (c *Controller) SetRunbook(rb *runbook.Runbook) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.o.Runbook = rb
	c.seen = len(rb.Events())
	c.epoch++
	c.version++
	c.publish()
}
