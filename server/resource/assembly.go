package resource

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Config is one resource as New assembles it. grayzone serve fills it from
// its configuration file and brings its database, guards, audit log and
// the planes it drives; the lab fills it from a scenario and brings only
// what production brings itself (its clock, its instance group as the
// control plane, an in-memory store).
type Config struct {
	Name  string
	Zones []string
	// Targets are the front door's instances; Health decides when one is
	// taken out of rotation.
	Targets []frontdoor.Target
	Health  frontdoor.HealthPolicy
	// MinCapacity is the shift model's floor: instances that must remain
	// outside a shifted zone (0: no check).
	MinCapacity int
	// Limits are the ingest gate's caps; its latency thresholds (the one
	// place slow is resolved) are Detect's.
	Limits ingest.Limits
	// Record: the front door is grayzone's own and counts its requests
	// (serve's default signal). Off: another front door carries the
	// traffic, and the recorder is nil.
	Record bool
	// PerTick bounds the aggregates fed to the controller at one tick
	// (0: ingest.DefaultDrainPerTick).
	PerTick int
	// Took sees each run of aggregates the controller takes (serve's
	// counters and record_observations); nil: none.
	Took func([]record.Aggregate)

	Detect detect.Config
	Policy runbook.Policy
	// RunbookState is the runbook's saved state (runbook.Marshal); nil or
	// empty: a new runbook.
	RunbookState []byte
	// Mitigate off: detect and record, never act (the lab's baseline).
	Mitigate bool
	Guard    autoshift.Guard

	// Shifts is the shift model the resource's data plane shifts in:
	// serve's, of all its resources over its database, shared with its API
	// (NewShifts). Nil: New builds this resource's own over ShiftStore
	// (nil: in memory), with ShiftIDs (nil: random ids).
	Shifts     *shift.Manager
	ShiftStore shift.Store
	ShiftIDs   func() string
	// ExpiresIn is an automatic shift's expiry (0: shift.MaxExpiresIn).
	ExpiresIn time.Duration
	// Control is the control plane (nil: none, and the runbook plans no
	// control-plane step).
	Control actuator.Actuator
	// SetShifted sets a zone in or out of the front door table (nil: the
	// table's own SetShifted; serve fences it when replicated).
	SetShifted func(ctx context.Context, zone string, away bool) error
	// SetWeight gives the shifted zone its weight in the front door table
	// during a gradual return (nil: the table's own SetWeight; serve
	// fences it when replicated).
	SetWeight func(ctx context.Context, zone string, percent int) error
	// Reconciled follows each reconciliation with the zone the active shift
	// is away from ("" none), its expiry and the zone's weight (Weight: 0
	// the shift fully in force, else the gradual return's step): an
	// external data plane (HAProxy, xDS, Kubernetes) is brought in step
	// there. Nil: none.
	Reconciled func(ctx context.Context, away string, expires time.Time, weight int)
	// Started, Ended and Carried are ShiftPlane's hooks (each may be nil).
	Started func(ctx context.Context, now time.Time, sh shift.Shift, why string)
	Ended   func(ctx context.Context, now time.Time, sh shift.Shift)
	Carried func(ctx context.Context, id string) error

	// Save, Audit, Inline and ActionTimeout are the Driver's.
	Save          func(ctx context.Context, st runbook.State) error
	Audit         func(autoshift.AuditEvent)
	Inline        bool
	ActionTimeout time.Duration
	// Now is the clock (the lab's virtual one in sim mode).
	Now func() time.Time
	Log *slog.Logger
}

// Assembly is one resource, assembled: the front door table and its
// recorder, the ingest gate and the intake feeding the controller, the
// controller and the driver carrying out its decisions on the planes (the
// shift model for data, Config.Control for control). The path of an
// observation is Recorder or source → Gate → Intake.Feed → Ctrl → Driver →
// Planes.
type Assembly struct {
	Table    *frontdoor.Table
	Recorder *record.Recorder // nil unless Config.Record
	Gate     *ingest.Gate
	Intake   *Intake
	Ctrl     *autoshift.Controller
	Driver   *Driver
	Shifts   *shift.Manager
	// Planes is what Driver applies actions to: Data is the shift model's
	// ShiftPlane. The lab may wrap them (the AWS stand-in) by setting
	// Driver.Actuator before the first tick.
	Planes actuator.Planes
	// Detect is the engine's configuration, defaults filled in; its
	// Resolution is the controller's tick.
	Detect detect.Config

	cfg    Config
	policy runbook.Policy
}

// New assembles a resource. Nothing runs until the caller ticks it:
// Intake.Feed then Driver.Tick (Tick does both).
func New(c Config) (*Assembly, error) {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.ExpiresIn <= 0 {
		c.ExpiresIn = shift.MaxExpiresIn
	}
	if c.PerTick == 0 {
		c.PerTick = ingest.DefaultDrainPerTick
	}
	a := &Assembly{cfg: c, Table: frontdoor.NewTable(c.Zones, c.Health)}
	for _, t := range c.Targets {
		if err := a.Table.AddTarget(t); err != nil {
			return nil, fmt.Errorf("resource %s: %w", c.Name, err)
		}
	}
	// One set of latency thresholds per resource: the engine's, which the
	// gate (where slow is resolved) and the recorder apply.
	c.Limits.Thresholds, c.Limits.DefaultThreshold = c.Detect.Thresholds, c.Detect.DefaultThreshold
	a.Gate = ingest.New(c.Name, c.Zones, c.Limits)
	a.Intake = &Intake{Gate: a.Gate, PerTick: c.PerTick, Took: c.Took}
	if c.Record {
		a.Recorder = record.New(record.Options{Thresholds: c.Detect.Thresholds, DefaultThreshold: c.Detect.DefaultThreshold})
		a.Intake.FrontDoor = a.Recorder
	}
	eng, err := detect.New(c.Detect)
	if err != nil {
		return nil, fmt.Errorf("resource %s: %w", c.Name, err)
	}
	a.Detect = eng.Config()
	a.policy = c.Policy
	a.policy.Resource = c.Name
	a.policy.NoControlPlane = a.policy.NoControlPlane || c.Control == nil
	rb, err := a.runbook(c.RunbookState)
	if err != nil {
		return nil, err
	}
	if a.Shifts = c.Shifts; a.Shifts == nil {
		store := c.ShiftStore
		if store == nil {
			store = shift.NewMemoryStore()
		}
		if a.Shifts, err = NewShifts(store, c.ShiftIDs, c); err != nil {
			return nil, err
		}
	}
	a.Ctrl = autoshift.New(autoshift.Options{Engine: eng, Runbook: rb, Mitigate: c.Mitigate, Guard: c.Guard, Log: c.Log})
	a.Planes = actuator.Planes{Control: c.Control, Data: &ShiftPlane{Resource: c.Name, Shifts: a.Shifts, ExpiresIn: c.ExpiresIn, Now: c.Now,
		Why: func() string { return a.Ctrl.Last().Why }, Reconcile: a.Reconcile, Started: c.Started, Ended: c.Ended, Carried: c.Carried}}
	a.Driver = &Driver{Ctrl: a.Ctrl, Actuator: a.Planes, Save: c.Save, Audit: c.Audit, Now: c.Now, Inline: c.Inline,
		ActionTimeout: c.ActionTimeout, Log: c.Log}
	return a, nil
}

// NewShifts is the shift model of resources over store: serve's holds all
// of its resources, the lab's its one. A resource's capacity per zone is
// its front door's targets there.
func NewShifts(store shift.Store, ids func() string, resources ...Config) (*shift.Manager, error) {
	rs := make([]shift.Resource, 0, len(resources))
	for _, c := range resources {
		capa := map[string]int{}
		for _, t := range c.Targets {
			capa[t.Zone]++
		}
		rs = append(rs, shift.Resource{Name: c.Name, Zones: c.Zones, Capacity: capa, MinCapacity: c.MinCapacity})
	}
	m, err := shift.NewManager(rs, store, ids)
	if err != nil {
		return nil, fmt.Errorf("load shifts: %w", err)
	}
	return m, nil
}

// runbook is a runbook of the resource's policy, restored from data when
// there is any.
func (a *Assembly) runbook(data []byte) (*runbook.Runbook, error) {
	if len(data) == 0 {
		return runbook.New(a.policy), nil
	}
	rb, err := runbook.Unmarshal(a.policy, data)
	if err != nil {
		return nil, fmt.Errorf("resource %s: %w", a.cfg.Name, err)
	}
	return rb, nil
}

// Policy is the runbook policy the controller runs (Config.Policy with the
// resource's name and whether there is a control plane).
func (a *Assembly) Policy() runbook.Policy { return a.policy }

// RestoreRunbook replaces the controller's runbook with one restored from
// data (nil: a new one): a replica taking over from another's saved state.
func (a *Assembly) RestoreRunbook(data []byte) error {
	rb, err := a.runbook(data)
	if err != nil {
		return err
	}
	a.Ctrl.SetRunbook(rb)
	return nil
}

// Tick feeds what reached the gate to the controller, then steps it at now
// and carries out what it decides. It returns the assessment.
func (a *Assembly) Tick(ctx context.Context, now time.Time) detect.Assessment {
	a.Intake.Feed(now, a.Ctrl)
	return a.Driver.Tick(ctx, now)
}

// Reconcile makes the front door match the active shift (level-triggered:
// after a restart, an API call or an expiry alike), then hands the active
// shift to Config.Reconciled.
func (a *Assembly) Reconcile(ctx context.Context, _ time.Time) {
	want := ""
	var expires time.Time
	act, ok := a.Shifts.Active(a.cfg.Name)
	if ok {
		want, expires = act.AwayFrom, act.ExpiresAt
	}
	st, _ := a.Ctrl.RunbookState()
	weight := Weight(act, ok, st) // the gradual return's step, while the runbook ramps the zone back
	for _, z := range a.cfg.Zones {
		if a.Table.Shifted(z) != (z == want) {
			var err error
			if a.cfg.SetShifted != nil {
				err = a.cfg.SetShifted(ctx, z, z == want)
			} else {
				err = a.Table.SetShifted(z, z == want)
			}
			if err != nil {
				a.cfg.Log.Warn("front door not updated", "resource", a.cfg.Name, "zone", z, "err", err)
				continue
			}
			a.cfg.Log.Info("front door updated", "resource", a.cfg.Name, "zone", z, "shifted", z == want)
		}
		if z == want && a.Table.Weight(z) != weight {
			var err error
			if a.cfg.SetWeight != nil {
				err = a.cfg.SetWeight(ctx, z, weight)
			} else {
				err = a.Table.SetWeight(z, weight)
			}
			if err != nil {
				a.cfg.Log.Warn("front door weight not updated", "resource", a.cfg.Name, "zone", z, "err", err)
				continue
			}
			a.cfg.Log.Info("front door updated", "resource", a.cfg.Name, "zone", z, "returning_percent", weight)
		}
	}
	if a.cfg.Reconciled != nil {
		a.cfg.Reconciled(ctx, want, expires, weight)
	}
}
