// Package service is grayzone serve: the long-running controller an operator
// runs next to their workload. Per configured resource it runs the embedded
// front door, the canaries, the detection engine, the runbook and the
// controller joining them; it keeps zonal shifts (Route 53 ARC semantics),
// practice runs, the runbook's progress and an audit log in SQLite, so that a
// restart — even after kill -9 — resumes where it stopped.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/certreload"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/leader"
	res "github.com/grayzone/grayzone/server/resource"
	"github.com/grayzone/grayzone/server/store"
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
	// LeaseEpoch, with Leading, is the epoch of the lease this replica
	// holds (kubelease.Elector.Epoch: the Lease's leaseTransitions + 1),
	// which fences its orders to shared data planes; nil or 0: no epoch.
	LeaseEpoch func() uint64
	// TickWorkers is how many resources a pass of the tick loop ticks at
	// once (0: GOMAXPROCS, the cores Go runs on; 1: one after the other).
	TickWorkers int
	// Slow, when set, is told of each pass of the tick loop and each GET
	// /v1/status as it ends, with its wall time (serve --trace-slow keeps a
	// flight recorder and writes its window when one is slow).
	Slow func(what string, took time.Duration)
}

// Service is a running grayzone serve.
type Service struct {
	cfg    *config.Config
	db     *store.DB
	shifts *shift.Manager
	log    *slog.Logger
	clock  clock.Clock
	ticks  *tickMetrics // the tick loop's duration and lag (tickmetrics.go)
	// tickWorkers is how many resources a pass ticks at once (tickEach).
	tickWorkers int
	// tickOne ticks one resource in a pass: (*resource).tick; tests wrap it.
	tickOne func(r *resource, ctx context.Context, now time.Time)
	// slow is Options.Slow; nil: nobody asks.
	slow func(what string, took time.Duration)
	// ownFDs is the canaries' transport, in memory to serve's own front doors (canarydial.go).
	ownFDs *ownFrontDoors
	tokens []config.Token
	extra  func(api.Backend) map[string]http.Handler
	certs  *certreload.Cert // nil: plain HTTP
	// netHTTPOnly makes the front doors skip their fast path (tests of both paths).
	netHTTPOnly bool
	rep         *replication  // nil: a single replica on SQLite
	term        *leader.Term  // a replica's leadership, for goroutines; nil: alone
	shard       *sharding     // replica.sharded: each resource's own lease (shards.go); nil: off
	kubeLeading func() bool   // leader_election kubernetes-lease; nil: always
	kubeEpoch   func() uint64 // the Lease's epoch while kubeLeading; nil: none

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
	s := &Service{cfg: o.Config, db: db, log: o.Log, clock: o.Clock, ticks: newTickMetrics(), ownFDs: newOwnFrontDoors(), tokens: o.Tokens, extra: o.Extra, kubeLeading: o.Leading, kubeEpoch: o.LeaseEpoch,
		byName: map[string]*resource{}, ready: make(chan struct{}),
		tickWorkers: o.TickWorkers, tickOne: (*resource).tick, slow: o.Slow}
	if s.tickWorkers <= 0 {
		s.tickWorkers = runtime.GOMAXPROCS(0)
	}
	if s.replicated() {
		// Nothing is written until this replica leads (see replica.go).
		db.SetFence(store.NoEpoch)
		s.term = leader.NewTerm()
	} else if s.kubeLeading != nil {
		s.term = leader.NewTerm() // see kubeTerm
	}
	s.openNotify()
	s.awsCfg = o.AWS
	var resCfgs []res.Config
	for i := range o.Config.Resources {
		resCfgs = append(resCfgs, resourceConfig(&o.Config.Resources[i]))
	}
	if o.Config.TLS.Enabled() {
		if s.certs, err = certreload.NewCert(o.Config.TLS.CertFile, o.Config.TLS.KeyFile, s.clock.Now); err != nil {
			db.Close()
			return nil, fmt.Errorf("serve: tls_cert_file, tls_key_file: %w", err)
		}
	}
	// One shift model for every resource, shared with the API.
	s.shifts, err = res.NewShifts(db, shift.NewID, resCfgs...)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("serve: %w", err)
	}
	now := s.clock.Now()
	for i := range o.Config.Resources {
		r, err := s.newResource(ctx, &o.Config.Resources[i], resCfgs[i])
		if err != nil {
			db.Close()
			return nil, err
		}
		s.resources = append(s.resources, r)
		s.byName[r.cfg.Name] = r
	}
	s.openShards()
	// Expiries that passed while the service was down happened at their time.
	if !s.replicated() { // a replica does this when it comes to lead
		s.expire(ctx, now)
	}
	for _, r := range s.resources {
		r.reconcile(ctx, now)
		if !s.leads() { // a replica syncs when it comes to lead (runMirror)
			continue
		}
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
	apiH := s.followerGate(api.NewHandler(s, api.Options{
		Tokens:    func() []config.Token { return s.tokens },
		OpenReads: s.cfg.Auth.OpenReads,
		Log:       s.log,
		Now:       s.clock.Now,
		Metrics:   nil,
	}))
	mux.Handle("/", apiH)
	if s.slow != nil {
		mux.Handle("GET /v1/status", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			start := time.Now()
			apiH.ServeHTTP(w, req)
			s.slow("status", time.Since(start))
		}))
	}
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
			took := time.Since(wall)
			s.ticks.observe(now, start, took)
			if s.slow != nil {
				s.slow("tick", took)
			}
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
		r.drv.Wait()
		if s.mayWrite() {
			r.persist(context.Background())
		}
	}
	return err2
}

// tickEvery is the service loop's period: the engine's resolution.
const tickEvery = 250 * time.Millisecond

func (s *Service) tick(ctx context.Context, now time.Time) {
	if s.kubeLeading != nil {
		leading := s.kubeLeading()
		ctx = s.kubeTerm(ctx, now, leading)
		if !leading {
			return // a follower: the leader decides and acts
		}
	}
	if s.shard != nil {
		s.tickShards(ctx, now)
		return
	}
	if s.rep != nil {
		var leading bool
		if ctx, leading = s.lead(ctx, now); !leading {
			s.follow(ctx, now)
			return
		}
	}
	s.expire(ctx, now)
	s.tickEach(s.resources, func(r *resource) { s.tickOne(r, ctx, now) })
}

// tickEach runs tick for every resource of rs once, on up to s.tickWorkers
// goroutines, and returns when all are done: a pass of the tick loop. Each
// resource's assembly is its own (its engine runs on one goroutine at a
// time, deterministic as ever); what the resources share (the shift model,
// the store, the audit log, the logger) is safe for concurrent use, as the
// API already uses it beside the loop. A slow resource holds one worker, not
// the others' ticks; the pass still waits for it, so the pass's duration
// (grayzone_tick_seconds) is the slowest chain of resources on one worker.
func (s *Service) tickEach(rs []*resource, tick func(*resource)) {
	workers := min(s.tickWorkers, len(rs))
	if workers <= 1 {
		for _, r := range rs {
			tick(r)
		}
		return
	}
	var next atomic.Int64 // the index of the next resource to take
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(rs); i = int(next.Add(1)) - 1 {
				tick(rs[i])
			}
		})
	}
	wg.Wait()
}

// expire marks shifts whose expiry passed EXPIRED and records it.
func (s *Service) expire(ctx context.Context, now time.Time) {
	for _, sh := range s.shifts.Expire(now) {
		s.audit(ctx, store.AuditEntry{At: now, Kind: "shift_expired", Resource: sh.Resource, Zone: sh.AwayFrom, Actor: "grayzone",
			Message: fmt.Sprintf("shift %s away from %s expired at %s", sh.ID, sh.AwayFrom, sh.ExpiresAt.Format(time.RFC3339))})
		if r := s.byName[sh.Resource]; r != nil {
			r.reconcile(r.actContext(ctx), now)
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
