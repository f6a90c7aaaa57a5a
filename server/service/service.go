// Package service is grayzone serve: the long-running controller an operator
// runs next to their workload. Per configured resource it runs the embedded
// front door, the canaries, the detection engine, the runbook and the
// controller joining them; it keeps zonal shifts (Route 53 ARC semantics),
// practice runs, the runbook's progress and an audit log in SQLite, so that a
// restart — even after kill -9 — resumes where it stopped.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/arc"
	"github.com/grayzone/grayzone/actuator/command"
	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/engine/alarm"
	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/certreload"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/practice"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/canary"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Options configure a Service.
type Options struct {
	Config *config.Config
	// Tokens are the bearer tokens accepted for mutations (from the tokens
	// file or the configuration; never from the command line).
	Tokens []config.Token
	Log    *slog.Logger
	Clock  clock.Clock
	// Extra, when set, returns handlers mounted beside the API (the
	// dashboard), keyed by ServeMux pattern. It is a function because they
	// need the Backend, which is the Service itself.
	Extra func(api.Backend) map[string]http.Handler
	// AWS, when set, is the AWS SDK configuration of the arc and
	// autoscaling actuators (tests, the lab); nil: the SDK's default chain.
	AWS *aws.Config
	// Leading, when set, says whether this replica leads (leader election):
	// a follower keeps its API, front door and caches warm but neither
	// decides nor acts.
	Leading func() bool
}

// Service is a running grayzone serve.
type Service struct {
	cfg    *config.Config
	db     *store.DB
	shifts *shift.Manager
	log    *slog.Logger
	clock  clock.Clock
	ticks  *tickMetrics // the tick loop's duration and lag (tickmetrics.go)
	tokens []config.Token
	extra  func(api.Backend) map[string]http.Handler
	certs  *certreload.Cert // nil: plain HTTP
	// netHTTPOnly makes the front doors skip their fast path (tests of both paths).
	netHTTPOnly bool
	rep         *replication // nil: a single replica on SQLite
	kubeLeading func() bool  // leader_election kubernetes-lease; nil: always

	resources []*resource
	byName    map[string]*resource
	ready     chan struct{}
	apiAddr   string
	notify    *notifications // nil: no notification endpoints (notify.go)
	failures  actionFailures
	awsState
	kubeState
}

// Open opens the data directory, restores every resource's state and builds
// the components; nothing listens until Run.
func Open(ctx context.Context, o Options) (*Service, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	db, err := openStore(ctx, o.Config)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: o.Config, db: db, log: o.Log, clock: o.Clock, ticks: newTickMetrics(), tokens: o.Tokens, extra: o.Extra, kubeLeading: o.Leading,
		byName: map[string]*resource{}, ready: make(chan struct{})}
	if s.replicated() {
		// Nothing is written until this replica leads (see replica.go).
		db.SetFence(store.NoEpoch)
	}
	s.openNotify()
	s.awsCfg = o.AWS
	var shiftRes []shift.Resource
	for i := range o.Config.Resources {
		rc := &o.Config.Resources[i]
		capa := map[string]int{}
		for _, t := range rc.FrontDoor.Targets {
			capa[t.Zone]++
		}
		minCap := rc.MinCapacity
		if rc.FrontDoor.Type == config.FrontDoorARC {
			minCap = 0 // no targets of grayzone's to count: the control plane checks it
		}
		shiftRes = append(shiftRes, shift.Resource{Name: rc.Name, Zones: rc.Zones, Capacity: capa, MinCapacity: minCap})
	}
	if o.Config.TLS.Enabled() {
		if s.certs, err = certreload.NewCert(o.Config.TLS.CertFile, o.Config.TLS.KeyFile, s.clock.Now); err != nil {
			db.Close()
			return nil, fmt.Errorf("serve: tls_cert_file, tls_key_file: %w", err)
		}
	}
	s.shifts, err = shift.NewManager(shiftRes, db, shift.NewID)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("serve: load shifts: %w", err)
	}
	now := s.clock.Now()
	for i := range o.Config.Resources {
		r, err := s.newResource(ctx, &o.Config.Resources[i], now)
		if err != nil {
			db.Close()
			return nil, err
		}
		s.resources = append(s.resources, r)
		s.byName[r.cfg.Name] = r
	}
	// Expiries that passed while the service was down happened at their time.
	if !s.replicated() { // a replica does this when it comes to lead
		s.expire(ctx, now)
	}
	for _, r := range s.resources {
		r.reconcile(ctx, now)
		if err := r.syncARC(ctx); err != nil { // on start: shifts made or ended while grayzone was down
			s.log.Warn("ARC reconciliation at start", "resource", r.cfg.Name, "err", err)
		}
	}
	if !s.replicated() {
		s.audit(ctx, store.AuditEntry{At: now, Kind: "service", Actor: "grayzone", Message: fmt.Sprintf("started with %d resource(s) from %s", len(s.resources), o.Config.File)})
	}
	return s, nil
}

// Close releases the data directory.
func (s *Service) Close() error { return s.db.Close() }

// APIAddr is the address the API listens on, once Run has bound it.
func (s *Service) APIAddr() string {
	<-s.ready
	return s.apiAddr
}

// Run serves until ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1+len(s.resources))
	for _, r := range s.resources {
		if err := r.start(ctx, &wg); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", s.cfg.Listen, err)
	}
	s.apiAddr = ln.Addr().String()
	close(s.ready)
	s.startReplication(ctx, &wg)
	s.startNotify(ctx, &wg)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/leader", http.HandlerFunc(s.leaderHandler))
	mux.Handle("/", s.followerGate(api.NewHandler(s, api.Options{
		Tokens:    func() []config.Token { return s.tokens },
		OpenReads: s.cfg.Auth.OpenReads,
		Log:       s.log,
		Now:       s.clock.Now,
		Metrics:   nil,
	})))
	mux.Handle("GET /metrics", s.guardMetrics(s.metricsHandler()))
	if s.extra != nil {
		for pattern, h := range s.extra(s) {
			mux.Handle(pattern, h)
		}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.serveAPI(srv, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve: api: %w", err)
		}
	}()
	s.log.Info("grayzone serve is up", "api", s.APIURL(), "resources", len(s.resources), "data_dir", s.cfg.DataDir)

	tick, stop := s.clock.NewTicker(tickEvery)
	defer stop()
	var err2 error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err2 = <-errc:
			break loop
		case now := <-tick:
			start, wall := s.clock.Now(), time.Now()
			s.tick(ctx, now)
			s.ticks.observe(now, start, time.Since(wall))
		}
	}
	shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = srv.Shutdown(shutdown)
	cancel()
	for _, r := range s.resources {
		r.stop()
	}
	wg.Wait()
	for _, r := range s.resources {
		r.ctrl.Wait()
		if s.mayWrite() {
			r.persist(context.Background())
		}
	}
	return err2
}

// tickEvery is the service loop's period: the engine's resolution.
const tickEvery = 250 * time.Millisecond

func (s *Service) tick(ctx context.Context, now time.Time) {
	if s.kubeLeading != nil && !s.kubeLeading() {
		return // a follower: the leader decides and acts
	}
	if s.rep != nil {
		var leading bool
		if ctx, leading = s.lead(ctx, now); !leading {
			s.follow(ctx, now)
			return
		}
	}
	s.expire(ctx, now)
	for _, r := range s.resources {
		r.tick(ctx, now)
	}
}

// expire marks shifts whose expiry passed EXPIRED and records it.
func (s *Service) expire(ctx context.Context, now time.Time) {
	for _, sh := range s.shifts.Expire(now) {
		s.audit(ctx, store.AuditEntry{At: now, Kind: "shift_expired", Resource: sh.Resource, Zone: sh.AwayFrom, Actor: "grayzone",
			Message: fmt.Sprintf("shift %s away from %s expired at %s", sh.ID, sh.AwayFrom, sh.ExpiresAt.Format(time.RFC3339))})
		if r := s.byName[sh.Resource]; r != nil {
			r.reconcile(ctx, now)
		}
	}
}

func (s *Service) audit(ctx context.Context, e store.AuditEntry) {
	if e.At.IsZero() {
		e.At = s.clock.Now()
	}
	if _, err := s.appendAudit(ctx, e); err != nil { // with its events (notify.go)
		s.log.Error("audit log write failed", "err", err, "message", e.Message)
	}
}

// resource is one front-doored service and everything grayzone runs for it.
type resource struct {
	s     *Service
	cfg   *config.Resource
	table *frontdoor.Table
	proxy *frontdoor.Proxy
	plane externalPlane // HAProxy or xDS instead of the embedded proxy; nil: embedded
	ctrl  *autoshift.Controller
	rbPol runbook.Policy
	prac  *practice.Scheduler
	rec   *record.Recorder // the front door's view of customer requests; nil when off
	gate  *ingest.Gate     // telemetry sources and aggregated batches (telemetry.go)
	// batches records what the engine takes (record_observations); nil when off.
	batches *batchLog
	// mirror keeps the shifts in step with ARC (front door type arc); nil otherwise.
	mirror *arc.Mirror
	// refused is ARC's refusal of the automatic shift in flight ("" none).
	refused string

	putMu     sync.Mutex
	mu        sync.Mutex
	last      detect.Assessment
	lastAuto  time.Time
	decisions map[string]*api.Decision // by id
	saved     map[string][]byte        // last persisted blobs, by key
	cancel    context.CancelFunc
	observed  [2]int64 // server, canary observations ingested
	history   []api.HistoryPoint
	starters  []func(context.Context) // control-plane informers, started with the resource
}

func stateKey(kind, res string) string { return kind + "/" + res }

func (s *Service) newResource(ctx context.Context, rc *config.Resource, now time.Time) (*resource, error) {
	hc := rc.FrontDoor.HealthCheck
	r := &resource{s: s, cfg: rc, decisions: map[string]*api.Decision{}, saved: map[string][]byte{}, gate: newGate(rc),
		table: frontdoor.NewTable(rc.Zones, frontdoor.HealthPolicy{HealthyThreshold: hc.HealthyThreshold, UnhealthyThreshold: hc.UnhealthyThreshold})}
	for _, t := range rc.FrontDoor.Targets {
		if err := r.table.AddTarget(frontdoor.Target{ID: t.ID, Zone: t.Zone, Addr: t.Addr}); err != nil {
			return nil, fmt.Errorf("serve: resource %s: %w", rc.Name, err)
		}
	}
	if rc.Telemetry.RecordObservations {
		var err error
		if r.batches, err = openBatchLog(s.cfg.DataDir, rc.Name); err != nil {
			return nil, err
		}
	}
	eng, err := detect.New(rc.DetectConfig())
	if err != nil {
		return nil, fmt.Errorf("serve: resource %s: %w", rc.Name, err)
	}
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
		control = command.Actuator{Commands: cmds, Timeout: rc.ControlPlane.Timeout}
	}
	if c, err := s.awsPlanes(ctx, r); err != nil {
		return nil, err
	} else if c != nil {
		control = c
	}
	if rc.ControlPlane.Type == config.ControlPlaneKubernetes {
		if control, err = r.kubernetesControl(); err != nil {
			return nil, err
		}
	}
	r.rbPol = rc.RunbookPolicy()
	r.rbPol.NoControlPlane = control == nil
	rb := runbook.New(r.rbPol)
	if data, ok, err := s.db.GetState(ctx, stateKey("runbook", rc.Name)); err != nil {
		return nil, fmt.Errorf("serve: resource %s: read runbook state: %w", rc.Name, err)
	} else if ok {
		if rb, err = runbook.Unmarshal(r.rbPol, data); err != nil {
			return nil, fmt.Errorf("serve: resource %s: %w", rc.Name, err)
		}
		r.saved[stateKey("runbook", rc.Name)] = data
		if ph, z := rb.Phase(); ph != runbook.Idle {
			s.log.Info("resuming runbook", "resource", rc.Name, "phase", ph, "zone", z, "pending", len(rb.Pending()))
		}
	}
	if data, ok, err := s.db.GetState(ctx, stateKey("autoshift", rc.Name)); err == nil && ok {
		_ = json.Unmarshal(data, &r.lastAuto)
	}
	r.ctrl = autoshift.New(autoshift.Options{
		Engine:   eng,
		Runbook:  rb,
		Actuator: actuator.Planes{Data: dataPlane{r}, Control: control},
		Mitigate: rc.Autoshift.Enabled,
		Executor: autoshift.Async,
		Clock:    s.clock,
		Log:      s.log.With("resource", rc.Name),
		Guard:    r.guard,
		Audit: func(e autoshift.AuditEvent) {
			var detail json.RawMessage
			if e.ID != "" {
				detail = jsonDetail(map[string]string{"action_id": e.ID})
			}
			s.audit(context.Background(), store.AuditEntry{At: e.At, Kind: e.Kind, Resource: rc.Name, Zone: e.Zone, Actor: "autoshift", Message: e.Msg, Detail: detail})
		},
		Persist: func(ctx context.Context, st runbook.State) error {
			return r.put(ctx, stateKey("runbook", rc.Name), st)
		},
	})
	if rc.Practice.Enabled {
		r.prac = practice.New(rc.Practice.Config, rc.Zones, time.Time{})
		if data, ok, err := s.db.GetState(ctx, stateKey("practice", rc.Name)); err == nil && ok {
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
		go func() { defer wg.Done(); r.plane.Run(ctx) }()
	} else {
		if fd.Record {
			r.rec = record.New(record.Options{Thresholds: r.cfg.Operations})
		}
		p, err := frontdoor.StartProxy(ctx, r.table, r.proxyOptions())
		if err != nil {
			return fmt.Errorf("serve: resource %s: front door: %w", r.cfg.Name, err)
		}
		r.proxy = p
	}
	if err := r.startSources(ctx, wg); err != nil {
		return err
	}
	if checksTargets(r.cfg) {
		hc := fd.HealthCheck
		wg.Add(1)
		go func() {
			defer wg.Done()
			(&frontdoor.HealthChecker{Table: r.table, Path: hc.Path, Interval: hc.Interval, Timeout: hc.Timeout, Log: r.s.log}).Run(ctx)
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
			err := canary.Run(ctx, canary.Config{Interval: c.Interval, Endpoints: []canary.Endpoint{{Zone: c.Zone, URL: c.URL}}, Spread: true,
				Record: func(o observation.Observation) { r.observe(o) }})
			if err != nil && ctx.Err() == nil {
				r.s.log.Error("canary stopped", "resource", r.cfg.Name, "zone", c.Zone, "err", err)
			}
		}()
	}
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

func (r *resource) observe(o observation.Observation) {
	r.ctrl.Observe(o)
	if r.batches != nil {
		r.batches.observe(o)
	}
	r.mu.Lock()
	r.observed[o.Source]++
	r.mu.Unlock()
}

func (r *resource) tick(ctx context.Context, now time.Time) {
	// An automatic shift that ended outside the runbook (cancelled by an
	// operator, or expired) ends the runbook's episode.
	if ph, z := r.ctrl.Phase(); ph == runbook.Shifted || ph == runbook.Restoring {
		if act, ok := r.s.shifts.Active(r.cfg.Name); !ok || act.AwayFrom != z || act.Origin != shift.Auto {
			r.ctrl.Abandon(now, "the automatic shift ended outside the runbook (cancelled or expired)")
		}
	}
	r.abandonRefused(now)
	if r.rec != nil && r.batches == nil {
		r.ctrl.ObserveSnapshots(now, r.rec)
	}
	r.feed(now)
	a := r.ctrl.Tick(ctx, now)
	r.mu.Lock()
	r.last = a
	r.mu.Unlock()
	r.record(now, a)
	r.practiceStep(ctx, now, a)
	r.reconcile(ctx, now)
	r.persist(ctx)
}

// reconcile makes the front door match the active shift (level-triggered:
// after a restart, an API call or an expiry alike).
func (r *resource) reconcile(ctx context.Context, now time.Time) {
	want := ""
	var expires time.Time
	if act, ok := r.s.shifts.Active(r.cfg.Name); ok {
		want, expires = act.AwayFrom, act.ExpiresAt
	}
	for _, z := range r.cfg.Zones {
		if r.table.Shifted(z) != (z == want) {
			if err := r.setShifted(ctx, z, z == want); err != nil {
				r.s.log.Warn("front door not updated", "resource", r.cfg.Name, "zone", z, "err", err)
				continue
			}
			r.s.log.Info("front door updated", "resource", r.cfg.Name, "zone", z, "shifted", z == want)
		}
	}
	if r.plane != nil {
		r.reconcilePlane(ctx, want, expires)
	}
}

// persist saves the runbook's, practice's and autoshift's state when it changed.
func (r *resource) persist(ctx context.Context) {
	_ = r.put(ctx, stateKey("runbook", r.cfg.Name), r.ctrl.RunbookState())
	r.mu.Lock()
	last := r.lastAuto
	r.mu.Unlock()
	_ = r.put(ctx, stateKey("autoshift", r.cfg.Name), last)
	if r.prac != nil {
		_ = r.put(ctx, stateKey("practice", r.cfg.Name), r.prac.State())
	}
}

// put saves v under key unless the last saved value is the same. putMu
// orders the writers (the tick loop and the controller's write-ahead), so an
// older value never overwrites a newer one.
func (r *resource) put(ctx context.Context, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.putMu.Lock()
	defer r.putMu.Unlock()
	r.mu.Lock()
	same := string(r.saved[key]) == string(data)
	r.mu.Unlock()
	if same {
		return nil
	}
	if err := r.s.db.PutState(ctx, key, data); err != nil {
		r.s.log.Error("persist state", "key", key, "err", err)
		return err
	}
	r.mu.Lock()
	r.saved[key] = data
	r.mu.Unlock()
	return nil
}

// errVeto is a guard's refusal; errDryRun marks the dry-run veto.
var errDryRun = errors.New("dry run: decided and recorded, nothing acted on")

// guard decides whether an automatic shift of zone may start now.
func (r *resource) guard(now time.Time, zone, why string) error {
	as := r.cfg.Autoshift
	if act, ok := r.s.shifts.Active(r.cfg.Name); ok {
		return fmt.Errorf("shift %s (%s) is already active away from %s", act.ID, act.Origin, act.AwayFrom)
	}
	r.mu.Lock()
	last := r.lastAuto
	r.mu.Unlock()
	if !last.IsZero() && now.Sub(last) < as.MinInterval {
		return fmt.Errorf("the last automatic shift started %s ago; min_interval is %s", now.Sub(last).Round(time.Second), as.MinInterval)
	}
	if err := r.capacityCheck(zone); err != nil {
		return err
	}
	if as.DryRun {
		return errDryRun
	}
	if as.Approval {
		return r.approvalGate(now, zone, why)
	}
	return nil
}

// capacityCheck refuses a shift that would leave less than min_capacity outside zone.
func (r *resource) capacityCheck(zone string) error {
	if r.cfg.MinCapacity <= 0 || r.mirror != nil { // with ARC, the control plane checks capacity
		return nil
	}
	left := 0
	for _, t := range r.cfg.FrontDoor.Targets {
		if t.Zone != zone {
			left++
		}
	}
	if left < r.cfg.MinCapacity {
		return fmt.Errorf("shifting %s would leave %d instances, below min_capacity %d: %w", zone, left, r.cfg.MinCapacity, shift.ErrCapacity)
	}
	return nil
}

// approvalGate holds a decision until an operator approves it.
func (r *resource) approvalGate(now time.Time, zone, why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, d := range r.decisions {
		if d.Zone != zone {
			continue
		}
		switch d.Status {
		case "approved":
			delete(r.decisions, id)
			return nil
		case "pending":
			return fmt.Errorf("awaiting an operator's approval (grayzone approve %s)", id)
		}
	}
	d := &api.Decision{ID: fmt.Sprintf("gzd-%s-%d", zone, now.Unix()), Resource: r.cfg.Name, Zone: zone, Why: why, At: now, Status: "pending"}
	r.decisions[d.ID] = d
	return fmt.Errorf("awaiting an operator's approval (grayzone approve %s)", d.ID)
}

// dataPlane is the runbook's data-plane actuator in serve: a zonal shift in
// the shift model (origin auto), which reconcile applies to the front door.
type dataPlane struct{ r *resource }

func (d dataPlane) Apply(ctx context.Context, a actuator.Action) error {
	r := d.r
	now := r.s.clock.Now()
	switch a.Kind {
	case actuator.ShiftAway:
		if act, ok := r.s.shifts.Active(r.cfg.Name); ok && act.AwayFrom == a.Zone && act.Origin == shift.Auto {
			if err := r.planeSynced(ctx); err != nil {
				return err
			}
			return r.pushedAuto(ctx, act.ID) // already in force (in ARC too, when ARC is the front door): Apply is idempotent
		}
		r.mu.Lock()
		why := r.last.Why
		r.mu.Unlock()
		sh, err := r.s.shifts.Start(now, shift.StartRequest{Resource: r.cfg.Name, AwayFrom: a.Zone, ExpiresIn: r.cfg.Autoshift.ExpiresIn,
			Comment: "autoshift: isolated zonal impact", StartedBy: "autoshift", Reason: why, Origin: shift.Auto})
		if err != nil {
			return err
		}
		r.mu.Lock()
		r.lastAuto = now
		r.mu.Unlock()
		r.reconcile(ctx, now)
		r.s.audit(ctx, store.AuditEntry{At: now, Kind: "shift_started", Resource: r.cfg.Name, Zone: a.Zone, Actor: "autoshift",
			Message: fmt.Sprintf("automatic shift %s away from %s", sh.ID, a.Zone), Detail: jsonDetail(map[string]string{"shift_id": sh.ID, "why": why})})
		if err := r.planeSynced(ctx); err != nil {
			return err // the shift stands; the runbook retries this step until the data plane carries it
		}
		return r.pushedAuto(ctx, sh.ID)
	case actuator.EndShift:
		act, ok := r.s.shifts.Active(r.cfg.Name)
		if !ok || act.AwayFrom != a.Zone || act.Origin != shift.Auto {
			return r.planeSynced(ctx) // already ended (a retry: the data plane may not carry it yet)
		}
		if _, err := r.s.shifts.Cancel(now, act.ID, "autoshift: zone recovered"); err != nil {
			return err
		}
		r.reconcile(ctx, now)
		r.s.audit(ctx, store.AuditEntry{At: now, Kind: "shift_ended", Resource: r.cfg.Name, Zone: a.Zone, Actor: "autoshift",
			Message: fmt.Sprintf("automatic shift %s away from %s ended: the zone has been healthy for %s", act.ID, a.Zone, r.cfg.Autoshift.RecoveryHold)})
		_ = r.pushed(ctx, act.ID) // ended in grayzone; the mirror cancels it in ARC, now or on its next pass
		return r.planeSynced(ctx)
	}
	return fmt.Errorf("serve: %s: %w", a, actuator.ErrUnsupported)
}

func jsonDetail(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// alarmState looks an alarm up in the last assessment.
func (r *resource) alarmState(name string) alarm.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, al := range r.last.Alarms {
		if al.Name == name {
			return al.State
		}
	}
	return alarm.InsufficientData
}
