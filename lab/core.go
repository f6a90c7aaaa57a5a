// Package lab reproduces the workshop's zonal gray failure end to end, in
// real mode (real servers, database, proxies and clocks on loopback) or sim
// mode (the sim package's model on a virtual clock). Both modes assemble the
// same core: the front door table, the instance group, the detection engine,
// the runbook and the controller joining them.
package lab

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/lab/instancegroup"
	"github.com/grayzone/grayzone/lab/report"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/lab/telemetrypath"
	"github.com/grayzone/grayzone/server/resource"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/operation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Resource is the name of the lab's one front door.
const Resource = "lab"

// core is what both modes share.
type core struct {
	sc    *scenario.Scenario
	table *frontdoor.Table
	group *instancegroup.Group
	ctrl  *autoshift.Controller
	drv   *resource.Driver // carries out what ctrl decides, as in grayzone serve
	// in is serve's way in: the front door's recorder (rec), the canaries
	// and the telemetry paths offer to the ingest gate; in feeds ctrl.
	in  *resource.Intake
	rec *record.Recorder
	// shifts is serve's shift model, the embedded front door's data plane.
	shifts *shift.Manager
	// planes carry out the runbook's actions: the shift model and
	// the instance group, or (--frontdoor arc --control-plane autoscaling)
	// the AWS stand-in through the AWS SDK. Set before the first tick.
	planes actuator.Actuator
	start  time.Time
	every  time.Duration // the controller's tick: the engine's resolution

	// path names the way the run's numbers went, for the report.
	path string

	mu       sync.Mutex // guards what the dashboard reads while the run goes on
	timeline []report.Point
	last     detect.Assessment
}

// EngineConfig is the detection engine configuration for a scenario.
func EngineConfig(sc *scenario.Scenario, profile string) detect.Config {
	return detect.Config{
		Profile:      profile,
		Zones:        sc.Topology.Zones,
		Thresholds:   operation.Thresholds(),
		HealthWindow: max(10*time.Second, 2*sc.Canary.Interval),
	}
}

// newGate is the ingest gate of a scenario's resource, as serve builds one
// with the default limits.
func newGate(sc *scenario.Scenario) *ingest.Gate {
	return ingest.New(Resource, sc.Topology.Zones, ingest.Limits{Thresholds: operation.Thresholds()})
}

// newTable is the front door table of a scenario.
func newTable(sc *scenario.Scenario) *frontdoor.Table {
	return frontdoor.NewTable(sc.Topology.Zones, frontdoor.DefaultHealthPolicy)
}

// newCore launches the scenario's initial instances through launcher and
// assembles the shared components.
func newCore(ctx context.Context, sc *scenario.Scenario, profile string, mitigate bool, table *frontdoor.Table, gate *ingest.Gate,
	launcher instancegroup.Launcher, cpAvailable func() bool, inline bool, now func() time.Time, start time.Time, log *slog.Logger) (*core, error) {
	c := &core{sc: sc, table: table, start: start, rec: record.New(record.Options{Thresholds: operation.Thresholds()})}
	c.in = &resource.Intake{Gate: gate, FrontDoor: c.rec, PerTick: ingest.DefaultDrainPerTick}
	var initial []instancegroup.Instance
	for _, z := range sc.Topology.Zones {
		for _, id := range sc.Topology.InstanceIDs(z) {
			in := instancegroup.Instance{ID: id, Zone: z}
			if err := launcher.Launch(ctx, in); err != nil {
				return nil, fmt.Errorf("lab: launch %s: %w", id, err)
			}
			initial = append(initial, in)
		}
	}
	c.group = instancegroup.New(sc.Topology.Zones, initial, launcher, cpAvailable)
	eng, err := detect.New(EngineConfig(sc, profile))
	if err != nil {
		return nil, err
	}
	c.every = eng.Config().Resolution
	n := 0
	c.shifts, err = shift.NewManager([]shift.Resource{{Name: Resource, Zones: sc.Topology.Zones}}, &memShifts{},
		func() string { n++; return fmt.Sprintf("lab-%d", n) }) // IDs the same from run to run
	if err != nil {
		return nil, err
	}
	c.planes = actuator.Planes{Data: &resource.ShiftPlane{Resource: Resource, Shifts: c.shifts, ExpiresIn: shift.MaxExpiresIn, Now: now,
		Why: func() string { return c.ctrl.Last().Why }, Reconcile: c.reconcile}, Control: instancegroup.Actuator{Group: c.group}}
	c.ctrl = autoshift.New(autoshift.Options{
		Engine: eng,
		Runbook: runbook.New(runbook.Policy{
			Resource:          Resource,
			ControlPlaneAfter: sc.Policy.ControlPlaneAfter,
			RecoveryHold:      sc.Policy.RecoveryHold,
			Ramp:              sc.Policy.Ramp,
			StepHold:          sc.Policy.StepHold,
		}),
		Mitigate: mitigate,
		Log:      log,
	})
	c.drv = &resource.Driver{
		Ctrl:     c.ctrl,
		Actuator: actuator.Func(func(ctx context.Context, a actuator.Action) error { return c.planes.Apply(ctx, a) }),
		Inline:   inline,
		Now:      now,
		Log:      log,
	}
	return c, nil
}

// reconcile makes the front door match the active shift, as serve's does.
func (c *core) reconcile(_ context.Context, _ time.Time) {
	want := ""
	act, ok := c.shifts.Active(Resource)
	if ok {
		want = act.AwayFrom
	}
	st, _ := c.ctrl.RunbookState()
	for _, z := range c.sc.Topology.Zones {
		if c.table.Shifted(z) != (z == want) {
			_ = c.table.SetShifted(z, z == want) // a zone of the table's own: cannot fail
		}
		if z == want {
			_ = c.table.SetWeight(z, resource.Weight(act, ok, st)) // the gradual return's step
		}
	}
}

// memShifts is the lab's shift store: a run's shifts live as long as the run.
type memShifts struct {
	mu     sync.Mutex
	shifts map[string]shift.Shift
}

func (m *memShifts) SaveShift(_ context.Context, s shift.Shift) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shifts == nil {
		m.shifts = map[string]shift.Shift{}
	}
	m.shifts[s.ID] = s
	return nil
}

func (m *memShifts) LoadShifts(context.Context) ([]shift.Shift, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]shift.Shift, 0, len(m.shifts))
	for _, s := range m.shifts {
		out = append(out, s)
	}
	return out, nil
}

// tick runs the controller and records a timeline point each whole second.
func (c *core) tick(ctx context.Context, now time.Time) detect.Assessment {
	c.in.Feed(now, c.ctrl)
	a := c.drv.Tick(ctx, now)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = a
	if now.Sub(c.start)%time.Second >= c.every {
		return a
	}
	phase, zone := c.ctrl.Phase()
	p := report.PointOf(now.Sub(c.start).Truncate(time.Second).Seconds(), string(phase), zone, a, c.group.Snapshot().Excluded)
	c.timeline = append(c.timeline, p)
	return a
}

// run assembles the report.Run at the end.
func (c *core) run(mode, profile string, elapsed time.Duration, req report.Requests, db string) report.Run {
	c.mu.Lock()
	defer c.mu.Unlock()
	return report.Run{
		Scenario:   c.sc,
		Mode:       mode,
		Detector:   profile,
		Start:      c.start,
		Elapsed:    elapsed,
		Requests:   req,
		Detections: c.ctrl.Detections(),
		Events:     c.ctrl.Events(),
		FailStatic: c.ctrl.FailStaticPeriods(),
		Timeline:   c.timeline,
		Database:   db,
		Path:       c.path,
	}
}

// slowFor reports whether a customer request took longer than its
// operation's latency threshold.
func slowFor(op string, lat time.Duration) bool {
	o, ok := operation.Lookup(op)
	return ok && lat > o.Threshold
}

// servePath says which of grayzone serve's code a run goes through: the
// resource assembly (server/resource) always, from the signal the run's
// options choose to the data plane they choose.
func servePath(o Options) string {
	in := "front door counters"
	switch {
	case o.Telemetry != telemetrypath.Direct:
		in = o.Telemetry + " source"
	case o.FrontDoor == FrontDoorHAProxy:
		in = "instances' reports"
	}
	out := "shift model"
	if o.FrontDoor == FrontDoorARC {
		out = "ARC (stand-in)"
	}
	return fmt.Sprintf("serve's server/resource: %s → gate → controller → %s", in, out)
}
