// Package autoshift joins detection to action: it feeds observations to the
// detection engine, hands the engine's assessment to the runbook at every
// tick, and carries out the runbook's actions through an actuator. The lab's
// real mode, its sim mode and grayzone serve all run this one controller; only
// the clock and the executor differ.
package autoshift

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/telemetry/observation"
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
	Kind   string // decision, vetoed, action, action_failed
	Zone   string
	Action string
	ID     string // the action's ID (Action.ID), for action and action_failed
	Msg    string
}

// Executor runs actions. Sync runs them inline (sim mode, tests: exact and
// deterministic); Async runs each in its own goroutine so a hanging control
// plane never holds up the data plane.
type Executor int

const (
	Sync Executor = iota
	Async
)

// Options configure a Controller.
type Options struct {
	Engine   *detect.Engine
	Runbook  *runbook.Runbook
	Actuator actuator.Actuator
	// Mitigate off means detect and record but never act (the lab's --baseline run).
	Mitigate bool
	Executor Executor
	// ActionTimeout bounds one asynchronous action (default 30s).
	ActionTimeout time.Duration
	// Clock stamps the completion of asynchronous actions (default real).
	Clock clock.Clock
	// Guard, when set, may veto starting a new shift of zone (dry run,
	// approval pending, minimum interval, another shift, capacity). A veto
	// is reported to Audit once per rise of the zone's alarm.
	Guard func(now time.Time, zone, why string) error
	// Audit, when set, receives every decision, veto and action outcome.
	Audit func(e AuditEvent)
	// Persist, when set, saves the runbook's state before its new actions
	// start (write-ahead: a crash after an action started cannot lose the
	// decision that started it) and after each asynchronous answer. When it
	// fails, the new actions are not started but answered as failed, to be
	// retried: nothing is done that the durable state does not know of, and
	// a deposed leader, whose fenced write fails, stops acting.
	Persist func(ctx context.Context, st runbook.State) error
	Log     *slog.Logger
}

// Controller is safe for concurrent use: Observe may be called from any
// goroutine; Tick from one loop.
type Controller struct {
	mu         sync.Mutex
	o          Options
	last       detect.Assessment
	detections []Detection
	isolated   string
	// episodes: a zone's rises of the alarm belong to one incident until it
	// has been quiet for EpisodeGap and the runbook is done with it.
	openEpisode map[string]bool
	quietSince  map[string]time.Time
	// disarmed zones had their shift end while their alarm was still up: a
	// new shift needs the alarm to clear and rise again (edge, not level).
	disarmed map[string]bool
	vetoed   map[string]bool // zones whose current rise was vetoed (reported once)
	seen     int             // runbook events already scanned
	inflight sync.WaitGroup
	// failStatic lists the periods the engine's view was in doubt.
	failStatic []FailStaticPeriod
}

// New returns a controller.
func New(o Options) *Controller {
	if o.ActionTimeout <= 0 {
		o.ActionTimeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	return &Controller{o: o, openEpisode: map[string]bool{}, quietSince: map[string]time.Time{}, disarmed: map[string]bool{}, vetoed: map[string]bool{}}
}

// Observe feeds one observation to the engine.
func (c *Controller) Observe(obs observation.Observation) {
	c.mu.Lock()
	c.o.Engine.Observe(obs)
	c.mu.Unlock()
}

// ObserveSnapshots feeds a recorder's drained deltas to the engine, as of now.
func (c *Controller) ObserveSnapshots(now time.Time, rec *record.Recorder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec.Drain(func(k record.SeriesKey, d record.Snapshot) { c.o.Engine.ObserveSnapshot(now, k, d) })
}

// ObserveAggregates feeds per-series interval aggregates (the telemetry
// sources' and the batch API's aggregated form) to the engine.
func (c *Controller) ObserveAggregates(aggs []record.Aggregate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range aggs {
		c.o.Engine.ObserveAggregate(aggs[i])
	}
}

// Tick runs one step at now: collect finished actions, assess, step the
// runbook, start its actions. It returns the assessment.
func (c *Controller) Tick(ctx context.Context, now time.Time) detect.Assessment {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.o.Engine.Tick(now)
	c.last = a
	c.trackFailStatic(now, a.FailStatic)
	c.trackEpisodes(now, a)
	c.isolated = a.Isolated
	if !c.o.Mitigate {
		return a
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
				c.audit(AuditEvent{At: now, Kind: "vetoed", Zone: iso, Msg: fmt.Sprintf("shift of %s not started: %v; detector: %s", iso, err, a.Why)})
			}
			iso = ""
		}
	}
	if phase, z := c.o.Runbook.Phase(); z != "" && phase != runbook.Shifting && !a.Zone(z).UnderTest {
		c.o.Engine.Watch(z) // a resumed shift: its recovery is a test too
	}
	acts := c.o.Runbook.Step(now, runbook.Input{Isolated: iso, Healthy: holdHealth(a), Since: a.RecoveredSince(), Why: a.Why, Relapse: a.Zone(iso).Relapsing})
	defer c.scanEvents()
	if len(acts) > 0 && c.o.Persist != nil {
		if err := c.o.Persist(ctx, c.o.Runbook.State()); err != nil {
			c.o.Log.Warn("runbook state not saved; its actions wait", "err", err)
			for _, act := range acts {
				c.o.Runbook.Done(now, act, fmt.Errorf("not started: save runbook state: %w", err))
			}
			return a
		}
	}
	for _, act := range acts {
		c.o.Log.Info("runbook action", "action", act.String())
		if c.o.Executor == Sync {
			err := c.o.Actuator.Apply(ctx, act)
			c.logResult(act, err)
			c.o.Runbook.Done(now, act, err)
			c.scanEvents()
			continue
		}
		c.inflight.Add(1)
		rb := c.o.Runbook
		go func(act actuator.Action) {
			defer c.inflight.Done()
			actx, cancel := context.WithTimeout(ctx, c.o.ActionTimeout)
			err := c.o.Actuator.Apply(actx, act)
			cancel()
			c.logResult(act, err)
			// Acknowledged the moment it returns, not at the next tick.
			c.mu.Lock()
			if c.o.Runbook != rb {
				// The runbook was replaced (SetRunbook) meanwhile: the answer
				// belongs to a leadership that is over.
				c.mu.Unlock()
				return
			}
			c.o.Runbook.Done(c.o.Clock.Now(), act, err)
			c.scanEvents()
			if c.o.Persist != nil {
				// Saved at once, not at the next tick: the narrower the window
				// between an action's effect and its record, the fewer re-runs
				// after a crash.
				if perr := c.o.Persist(ctx, c.o.Runbook.State()); perr != nil {
					c.o.Log.Warn("runbook state not saved after an action", "action", act.String(), "err", perr)
				}
			}
			c.mu.Unlock()
		}(act)
	}
	return a
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
				c.audit(AuditEvent{At: now, Kind: "decision", Zone: z.Zone, Msg: "isolated impact: " + a.Why})
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

func (c *Controller) logResult(act actuator.Action, err error) {
	at := c.o.Clock.Now()
	if err != nil {
		c.o.Log.Warn("action failed; will retry", "action", act.String(), "err", err)
		c.audit(AuditEvent{At: at, Kind: "action_failed", Zone: act.Zone, Action: string(act.Kind), ID: act.ID, Msg: fmt.Sprintf("%s failed, will retry: %v", act, err)})
		return
	}
	c.audit(AuditEvent{At: at, Kind: "action", Zone: act.Zone, Action: string(act.Kind), ID: act.ID, Msg: act.String() + " done"})
}

func (c *Controller) audit(e AuditEvent) {
	if c.o.Audit != nil {
		c.o.Audit(e)
	}
}

// scanEvents disarms a zone whose shift just ended.
func (c *Controller) scanEvents() {
	evs := c.o.Runbook.Events()
	for _, ev := range evs[c.seen:] {
		if ev.Kind == runbook.ShiftEnded {
			c.disarmed[ev.Zone] = true
		}
	}
	c.seen = len(evs)
}

// Abandon tells the runbook its shift ended outside it (cancelled by an
// operator, or expired); the zone is not shifted again until its alarm
// clears and rises anew.
func (c *Controller) Abandon(now time.Time, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, z := c.o.Runbook.Phase(); z != "" {
		c.disarmed[z] = true
		c.o.Runbook.Abandon(now, why)
		c.scanEvents()
		c.audit(AuditEvent{At: now, Kind: "decision", Zone: z, Msg: "runbook episode abandoned: " + why})
	}
}

// Mitigating reports whether the controller acts (false: detect and record only).
func (c *Controller) Mitigating() bool { return c.o.Mitigate }

// RunbookState returns the runbook's durable state.
func (c *Controller) RunbookState() runbook.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.o.Runbook.State()
}

// Pending lists the runbook's unfinished actions.
func (c *Controller) Pending() []actuator.Action {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.o.Runbook.Pending()
}

// Wait blocks until every asynchronous action has returned.
func (c *Controller) Wait() { c.inflight.Wait() }

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
	c.isolated = c.last.Isolated
	return c.last
}

// SetRunbook replaces the runbook with one restored from shared state: a
// replica that becomes leader resumes what the last leader left, and a
// follower shows it. Answers of actions started on the old runbook are ignored
// by the new one.
func (c *Controller) SetRunbook(rb *runbook.Runbook) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.o.Runbook = rb
	c.seen = len(rb.Events())
}
