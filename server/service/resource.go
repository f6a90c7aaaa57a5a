package service

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/arc"
	"github.com/grayzone/grayzone/actuator/command"
	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/engine/alarm"
	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/practice"
	res "github.com/grayzone/grayzone/server/resource"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/canary"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// resource is one front-doored service and everything grayzone runs for it.
type resource struct {
	s     *Service
	cfg   *config.Resource
	table *frontdoor.Table
	proxy *frontdoor.Proxy
	plane externalPlane // HAProxy or xDS instead of the embedded proxy; nil: embedded
	// asm is the resource's assembly (server/resource, as in the lab); the
	// fields below it are its parts, under serve's short names.
	asm  *res.Assembly
	ctrl *autoshift.Controller
	drv  *res.Driver // carries out what ctrl decides
	prac *practice.Scheduler
	rec  *record.Recorder // the front door's view of customer requests; nil when off
	gate *ingest.Gate     // every observation's way in (telemetry.go)
	in   *res.Intake      // the front door, canaries and sources, through gate, to ctrl
	// batches records what the engine takes (record_observations); nil when off.
	batches *batchLog
	// mirror keeps the shifts in step with ARC (front door type arc); nil otherwise.
	mirror *arc.Mirror
	// refused is ARC's refusal of the automatic shift in flight ("" none).
	refused string

	putMu     sync.Mutex
	mu        sync.Mutex
	lastAuto  time.Time
	decisions map[string]*api.Decision // by id
	// leaders are the decisions of the replica that leads the resource, as
	// it last saved them (replicas): what this replica shows of them while
	// it does not lead it.
	leaders  []api.Decision
	saved    map[string]savedState // last persisted states, by key
	keys     stateKeys
	cancel   context.CancelFunc
	observed [2]int64 // server, canary observations ingested
	history  history
	// zonePoints is record's scratch for a point's zones.
	zonePoints []api.ZonePoint
	starters   []func(context.Context) // control-plane informers, started with the resource
	// onGuard, in tests, is called as the controller asks the guard, under
	// the controller's lock in the middle of a tick; nil otherwise.
	onGuard func()
}

func stateKey(kind, res string) string { return kind + "/" + res }

// stateKeys are a resource's keys of its saved states, made once: the tick
// loop saves (or finds unchanged) each of them every tick.
type stateKeys struct{ runbook, autoshift, decisions, practice string }

func newStateKeys(res string) stateKeys {
	return stateKeys{stateKey("runbook", res), stateKey("autoshift", res), stateKey("decisions", res), stateKey("practice", res)}
}

// resourceConfig is the part of a resource's assembly its configuration
// says (Open builds the shift model of every resource from it; newResource
// adds what serve brings).
func resourceConfig(rc *config.Resource) res.Config {
	hc := rc.FrontDoor.HealthCheck
	c := res.Config{Name: rc.Name, Zones: rc.Zones, Health: frontdoor.HealthPolicy{HealthyThreshold: hc.HealthyThreshold, UnhealthyThreshold: hc.UnhealthyThreshold},
		MinCapacity: rc.MinCapacity, Limits: gateLimits(rc), PerTick: drainPerTick, Detect: rc.DetectConfig(), Policy: rc.RunbookPolicy(),
		Mitigate: rc.Autoshift.Enabled, ExpiresIn: rc.Autoshift.ExpiresIn}
	for _, t := range rc.FrontDoor.Targets {
		c.Targets = append(c.Targets, frontdoor.Target{ID: t.ID, Zone: t.Zone, Addr: t.Addr})
	}
	if rc.FrontDoor.Type == config.FrontDoorARC {
		c.MinCapacity = 0 // no targets of grayzone's to count: the control plane checks it
	}
	return c
}

// newResource assembles the resource (server/resource, as the lab does):
// c, its configuration's part, with serve's database, guard, audit log and
// planes.
func (s *Service) newResource(ctx context.Context, rc *config.Resource, c res.Config) (*resource, error) {
	r := &resource{s: s, cfg: rc, decisions: map[string]*api.Decision{}, saved: map[string]savedState{}, keys: newStateKeys(rc.Name)}
	if rc.Telemetry.RecordObservations {
		var err error
		if r.batches, err = openBatchLog(s.cfg.DataDir, rc.Name); err != nil {
			return nil, err
		}
	}
	var err error
	if r.plane, err = newExternalPlane(rc, s.log, s.clock); err != nil {
		return nil, err
	}
	if rc.FrontDoor.Type == config.FrontDoorKubernetesSlices {
		if r.plane, err = r.kubernetesSlices(); err != nil {
			return nil, err
		}
	}
	var control actuator.Actuator
	if rc.ControlPlane.Type == config.ControlPlaneCommand {
		cmds := map[actuator.Kind][]string{}
		for k, argv := range rc.ControlPlane.Commands {
			cmds[actuator.Kind(k)] = argv
		}
		control = command.Actuator{Commands: cmds, Timeout: rc.ControlPlane.Timeout, Env: rc.ControlPlane.Env}
	}
	if ac, err := s.awsPlanes(ctx, r); err != nil {
		return nil, err
	} else if ac != nil {
		control = ac
	}
	if rc.ControlPlane.Type == config.ControlPlaneKubernetes {
		if control, err = r.kubernetesControl(); err != nil {
			return nil, err
		}
	}
	// The embedded proxy is the only front door of grayzone's own that counts requests.
	c.Record = rc.FrontDoor.Record && r.plane == nil && r.mirror == nil
	c.Took, c.Guard, c.Control, c.Shifts, c.Now = r.took, r.guard, control, s.shifts, s.clock.Now
	c.Log = s.log.With("resource", rc.Name)
	c.SetShifted, c.SetWeight = r.setShifted, r.setWeight
	c.Reconciled = func(ctx context.Context, away string, expires time.Time, weight int) {
		if r.plane != nil && r.leads() { // a follower gives no orders to a data plane
			r.reconcilePlane(ctx, away, expires, weight)
		}
	}
	c.Started = func(ctx context.Context, now time.Time, sh shift.Shift, why string) {
		r.mu.Lock()
		r.lastAuto = now
		r.mu.Unlock()
		s.audit(ctx, store.AuditEntry{At: now, Kind: "shift_started", Resource: rc.Name, Zone: sh.AwayFrom, Actor: "autoshift",
			Message: fmt.Sprintf("automatic shift %s away from %s", sh.ID, sh.AwayFrom), Detail: jsonDetail(map[string]string{"shift_id": sh.ID, "why": why})})
	}
	c.Ended = func(ctx context.Context, now time.Time, sh shift.Shift) {
		s.audit(ctx, store.AuditEntry{At: now, Kind: "shift_ended", Resource: rc.Name, Zone: sh.AwayFrom, Actor: "autoshift",
			Message: fmt.Sprintf("automatic shift %s away from %s ended: the zone has been healthy for %s", sh.ID, sh.AwayFrom, rc.Autoshift.RecoveryHold)})
		_ = r.pushed(ctx, sh.ID) // ended in grayzone; the mirror cancels it in ARC, now or on its next pass
	}
	c.Carried = func(ctx context.Context, id string) error {
		if err := r.planeSynced(ctx); err != nil || id == "" {
			return err
		}
		return r.pushedAuto(ctx, id) // in ARC too, when ARC is the front door
	}
	c.Audit = func(e autoshift.AuditEvent) {
		var detail json.RawMessage
		if e.ID != "" {
			detail = jsonDetail(map[string]string{"action_id": e.ID})
		}
		s.audit(context.Background(), store.AuditEntry{At: e.At, Kind: e.Kind, Resource: rc.Name, Zone: e.Zone, Actor: "autoshift", Message: e.Msg, Detail: detail})
	}
	c.Save = func(ctx context.Context, st runbook.State) error {
		return r.put(ctx, r.keys.runbook, st)
	}
	if data, ok, err := s.db.GetState(ctx, r.keys.runbook); err != nil {
		return nil, fmt.Errorf("serve: resource %s: read runbook state: %w", rc.Name, err)
	} else if ok {
		c.RunbookState = data
		r.saved[r.keys.runbook] = savedState{data: data}
	}
	if r.asm, err = res.New(c); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	r.table, r.gate, r.in, r.ctrl, r.drv, r.rec = r.asm.Table, r.asm.Gate, r.asm.Intake, r.asm.Ctrl, r.asm.Driver, r.asm.Recorder
	if ph, z := r.ctrl.Phase(); ph != runbook.Idle {
		s.log.Info("resuming runbook", "resource", rc.Name, "phase", ph, "zone", z, "pending", len(r.ctrl.Pending()))
	}
	if data, ok, err := s.db.GetState(ctx, r.keys.autoshift); err == nil && ok {
		_ = json.Unmarshal(data, &r.lastAuto)
	}
	if rc.Practice.Enabled {
		r.prac = practice.New(rc.Practice.Config, rc.Zones, time.Time{})
		if data, ok, err := s.db.GetState(ctx, r.keys.practice); err == nil && ok {
			var st practice.State
			if err := json.Unmarshal(data, &st); err == nil {
				if err := r.prac.Restore(st); err != nil {
					return nil, fmt.Errorf("serve: resource %s: restore practice state: %w", rc.Name, err)
				}
			}
		}
	}
	return r, nil
}

// start binds the front door and starts health checks and canaries.
func (r *resource) start(ctx context.Context, wg *sync.WaitGroup) error {
	ctx, r.cancel = context.WithCancel(ctx)
	for _, st := range r.starters {
		st(ctx)
	}
	fd := r.cfg.FrontDoor
	if r.mirror != nil {
		r.runMirror(ctx, wg) // ARC is the front door: nothing of grayzone's to listen on
	} else if r.plane != nil {
		// HAProxy or xDS carries the traffic; serve drives it (dataplanes.go).
		if err := r.startLogs(ctx, wg); err != nil {
			return err
		}
		wg.Add(1)
		go func() { defer wg.Done(); r.runPlane(ctx) }()
	} else {
		p, err := frontdoor.StartProxy(ctx, r.table, r.proxyOptions())
		if err != nil {
			return fmt.Errorf("serve: resource %s: front door: %w", r.cfg.Name, err)
		}
		r.proxy = p
		r.s.ownFDs.add(p, r.cfg.Zones)
	}
	if err := r.startSources(ctx, wg); err != nil {
		return err
	}
	if checksTargets(r.cfg) {
		hc := fd.HealthCheck
		wg.Add(1)
		go func() {
			defer wg.Done()
			(&frontdoor.HealthChecker{Table: r.table, Path: hc.Path, Interval: hc.Interval, Timeout: hc.Timeout, Log: r.s.log,
				Phase: phase(hc.Interval, r.cfg.Name, "health")}).Run(ctx)
		}()
	}
	r.startCanaries(ctx, wg)
	return nil
}

// startCanaries runs the resource's canaries.
func (r *resource) startCanaries(ctx context.Context, wg *sync.WaitGroup) {
	for _, c := range r.cfg.Canaries {
		c := c
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := canary.Run(ctx, canary.Config{Interval: c.Interval, Endpoints: []canary.Endpoint{{Zone: c.Zone, URL: c.URL}}, Spread: true, Transport: r.s.ownFDs,
				Phase:  phase(canary.ProbeInterval(c.Interval), r.cfg.Name, c.Zone, c.URL),
				Record: func(o observation.Observation) { r.observe(o) },
				// A shifted zone is probed harder: its recovery test needs the samples.
				Shifted: func(z string) bool { act, ok := r.s.shifts.Active(r.cfg.Name); return ok && act.AwayFrom == z }})
			if err != nil && ctx.Err() == nil {
				r.s.log.Error("canary stopped", "resource", r.cfg.Name, "zone", c.Zone, "err", err)
			}
		}()
	}
}

// phase is a periodic job's fixed offset within its period, a hash of what
// names it: the health checks and canary rounds of a fleet's resources, all
// started together, would otherwise fire together, period after period —
// thousands of goroutines runnable at once, ahead of the tick loop and the
// API (a pass of 1,000 resources then waited a second for the CPU).
func phase(period time.Duration, names ...string) time.Duration {
	if period <= 0 {
		return 0
	}
	h := fnv.New64a()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
	}
	return time.Duration(h.Sum64() % uint64(period))
}

func (r *resource) stop() {
	if r.cancel != nil {
		r.cancel()
	}
	if r.batches != nil {
		_ = r.batches.close()
	}
	if r.proxy != nil {
		r.proxy.Close()
	}
}

// observe offers one observation (a canary's call, an HAProxy log line) to
// the gate, as every observation reaches the engine.
func (r *resource) observe(o observation.Observation) {
	src := res.SourceCanary
	if o.Source == observation.Server {
		src = "haproxy_log"
	}
	_ = r.in.OfferObservation(src, o) // a rejection or drop is counted in the gate's stats
}

func (r *resource) tick(ctx context.Context, now time.Time) {
	// An automatic shift that ended outside the runbook (cancelled by an
	// operator, or expired) ends the runbook's episode.
	if ph, z := r.ctrl.Phase(); ph == runbook.Shifted || ph == runbook.Restoring || ph == runbook.Ramping {
		if act, ok := r.s.shifts.Active(r.cfg.Name); !ok || act.AwayFrom != z || act.Origin != shift.Auto {
			r.drv.Abandon(now, "the automatic shift ended outside the runbook (cancelled or expired)")
		}
	}
	r.abandonRefused(now)
	r.in.Feed(now, r.ctrl)
	if r.batches != nil {
		if err := r.batches.flush(); err != nil {
			r.s.log.Error("record_observations: write failed", "resource", r.cfg.Name, "err", err)
		}
	}
	a := r.drv.Tick(ctx, now)
	r.record(now, a)
	r.practiceStep(ctx, now, a)
	r.reconcile(ctx, now)
	r.persist(ctx)
}

// reconcile makes the front door match the active shift (the assembly's
// Reconcile: the table, then an external data plane).
func (r *resource) reconcile(ctx context.Context, now time.Time) { r.asm.Reconcile(ctx, now) }

// persist saves the runbook's, practice's and autoshift's state when it changed.
func (r *resource) persist(ctx context.Context) {
	_ = r.drv.SaveState(ctx)
	r.mu.Lock()
	last := r.lastAuto
	saved, known := r.saved[r.keys.autoshift].v.(time.Time)
	r.mu.Unlock()
	if !known || last != saved { // unchanged (nearly always): not even boxed for put
		_ = r.put(ctx, r.keys.autoshift, last)
	}
	if r.s.replicated() { // for the other replicas' API and dashboard
		_ = r.put(ctx, r.keys.decisions, r.ownDecisions())
	}
	if r.prac != nil {
		_ = r.put(ctx, r.keys.practice, r.prac.State())
	}
}

// put saves v under key unless the last saved value is the same. putMu
// orders the writers (the tick loop and the controller's write-ahead), so an
// older value never overwrites a newer one.
//
// The tick loop puts every state every tick, and it has rarely changed: a
// value deeply equal to the one last saved is known unchanged without
// marshalling it (reflect.DeepEqual of these small structs costs a fraction
// of json.Marshal and allocates nothing of its own); otherwise its bytes are compared
// with the saved ones, as a value equal in JSON may differ in memory (a
// time's monotonic reading, a state read back from the store).
func (r *resource) put(ctx context.Context, key string, v any) error {
	r.putMu.Lock()
	defer r.putMu.Unlock()
	r.mu.Lock()
	prev, ok := r.saved[key]
	r.mu.Unlock()
	if ok && prev.v != nil && reflect.DeepEqual(prev.v, v) {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if !ok || string(prev.data) != string(data) {
		if err := r.s.db.PutState(ctx, key, data); err != nil {
			r.s.log.Error("persist state", "key", key, "err", err)
			return err
		}
	}
	r.mu.Lock()
	r.saved[key] = savedState{data: data, v: v}
	r.mu.Unlock()
	return nil
}

// savedState is a state last known durable: its bytes, and the value they
// were marshalled from (nil: unknown, e.g. read from the store), which put
// compares a new value with before marshalling it. The callers pass values
// of their own (runbook.State and practice.State are copies), never memory
// that changes afterwards.
type savedState struct {
	data []byte
	v    any
}

func jsonDetail(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// alarmState looks an alarm up in the last assessment.
func (r *resource) alarmState(name string) alarm.State {
	for _, al := range r.ctrl.View().Assessment.Alarms.All() {
		if al.Name == name {
			return al.State
		}
	}
	return alarm.InsufficientData
}

// ownDecisions are the decisions this replica made about r, newest first.
func (r *resource) ownDecisions() []api.Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]api.Decision, 0, len(r.decisions))
	for _, d := range r.decisions {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b api.Decision) int { return b.At.Compare(a.At) })
	return out
}

// shownDecisions are r's decisions as the API shows them: this replica's
// own while it leads r (or runs alone), else those of r's leader.
func (r *resource) shownDecisions() []api.Decision {
	if r.leads() {
		return r.ownDecisions()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.leaders)
}
