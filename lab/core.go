// Package lab reproduces the workshop's zonal gray failure end to end, in
// real mode (real servers, database, proxies and clocks on loopback) or sim
// mode (the sim package's model on a virtual clock). Both modes run grayzone
// serve's own resource assembly (server/resource: the front door and its
// recorder, the ingest gate, the controller, the shift model); the lab adds
// only what production brings itself: the clock, the instance group, the
// faults and the workload.
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
	"github.com/grayzone/grayzone/lab/instancegroup"
	labreport "github.com/grayzone/grayzone/lab/report"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/lab/telemetrypath"
	"github.com/grayzone/grayzone/report"
	"github.com/grayzone/grayzone/server/resource"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/operation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Resource is the name of the lab's one front door.
const Resource = "lab"

// core is what both modes share.
type core struct {
	sc *scenario.Scenario
	// asm is grayzone serve's resource assembly (server/resource); the
	// fields below it are its parts, under the lab's short names.
	asm   *resource.Assembly
	table *frontdoor.Table
	ctrl  *autoshift.Controller
	drv   *resource.Driver // carries out what ctrl decides, as in grayzone serve
	// in is serve's way in: the front door's recorder (rec), the canaries
	// and the telemetry paths offer to the ingest gate; in feeds ctrl.
	in   *resource.Intake
	rec  *record.Recorder
	gate *ingest.Gate
	// group is the instance group, the lab's control plane (launch).
	group *instancegroup.Group
	start time.Time
	every time.Duration // the controller's tick: the engine's resolution

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

// newCore assembles the scenario's resource with serve's assembly
// (server/resource): the front door with its recorder, the gate, the
// controller, the shift model as the data plane, in memory. The lab brings
// what production brings itself: its clock (now; inline applies actions in
// the tick, as sim mode's virtual time needs) and, once launch has run, its
// instance group as the control plane.
func newCore(sc *scenario.Scenario, profile string, mitigate, inline bool, now func() time.Time, start time.Time, log *slog.Logger) (*core, error) {
	c := &core{sc: sc, start: start}
	n := 0
	asm, err := resource.New(resource.Config{
		Name:   Resource,
		Zones:  sc.Topology.Zones,
		Health: frontdoor.DefaultHealthPolicy,
		Record: true,
		Detect: EngineConfig(sc, profile),
		Policy: runbook.Policy{ControlPlaneAfter: sc.Policy.ControlPlaneAfter, RecoveryHold: sc.Policy.RecoveryHold,
			Ramp: sc.Policy.Ramp, StepHold: sc.Policy.StepHold},
		// The instance group is launched after the table exists (the
		// instances register with it), so the control plane finds it late.
		Control: actuator.Func(func(ctx context.Context, a actuator.Action) error {
			return instancegroup.Actuator{Group: c.group}.Apply(ctx, a)
		}),
		Mitigate: mitigate,
		ShiftIDs: func() string { n++; return fmt.Sprintf("lab-%d", n) }, // IDs the same from run to run
		Inline:   inline,
		Now:      now,
		Log:      log,
	})
	if err != nil {
		return nil, err
	}
	c.asm, c.table, c.ctrl, c.drv, c.in, c.rec, c.gate, c.every = asm, asm.Table, asm.Ctrl, asm.Driver, asm.Intake, asm.Recorder, asm.Gate, asm.Detect.Resolution
	return c, nil
}

// launch launches the scenario's initial instances through launcher and
// forms the instance group from them; cpAvailable says whether the control
// plane answers (the control_plane_outage fault).
func (c *core) launch(ctx context.Context, launcher instancegroup.Launcher, cpAvailable func() bool) error {
	var initial []instancegroup.Instance
	for _, z := range c.sc.Topology.Zones {
		for _, id := range c.sc.Topology.InstanceIDs(z) {
			in := instancegroup.Instance{ID: id, Zone: z}
			if err := launcher.Launch(ctx, in); err != nil {
				return fmt.Errorf("lab: launch %s: %w", id, err)
			}
			initial = append(initial, in)
		}
	}
	c.group = instancegroup.New(c.sc.Topology.Zones, initial, launcher, cpAvailable)
	return nil
}

// tick runs the controller and records a timeline point each whole second.
func (c *core) tick(ctx context.Context, now time.Time) detect.Assessment {
	a := c.asm.Tick(ctx, now)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = a
	if now.Sub(c.start)%time.Second >= c.every {
		return a
	}
	phase, zone := c.ctrl.Phase()
	p := report.PointOf(now.Sub(c.start).Truncate(time.Second).Seconds(), string(phase), zone, a, c.group.ExcludedZones())
	c.timeline = append(c.timeline, p)
	return a
}

// run assembles the labreport.Run at the end.
func (c *core) run(mode, profile string, elapsed time.Duration, req report.Requests, db string) labreport.Run {
	c.mu.Lock()
	defer c.mu.Unlock()
	return labreport.Run{
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

// servePath says which of grayzone serve's code a run goes through: serve's
// resource assembly (server/resource.New) always, from the signal the run's
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
	return fmt.Sprintf("serve's assembly (resource.New): %s → gate → controller → %s", in, out)
}
