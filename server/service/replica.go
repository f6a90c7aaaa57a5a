package service

// Replicas: two or more grayzone serve processes sharing one PostgreSQL
// store. One leads (server/leader): it decides, acts and writes, every write
// fenced by its epoch and every action stamped with it. The others follow:
// each tick they read the shared shifts and runbook state, so that their
// front doors carry the leader's shifts and their reads show them, they keep
// detecting on their own canaries, and they send mutations to the leader.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/haproxy"
	"github.com/grayzone/grayzone/actuator/xds"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/leader"
	"github.com/grayzone/grayzone/server/store"
)

// LeaderHeader names the leader's API address on every API answer of a
// replica, and on a follower's refusal of a mutation.
const LeaderHeader = "X-Grayzone-Leader"

// readTimeout bounds the shared-state reads of a tick.
const readTimeout = 2 * time.Second

// replication is a replica's part in the election.
type replication struct {
	run *leader.Runner
	// Owned by the service loop:
	epoch  uint64             // the epoch acted under; 0 while following
	lctx   context.Context    // the leadership's context, fence-stamped
	cancel context.CancelFunc // ends it: in-flight actions are abandoned
	// acting is epoch for the API's goroutines: mutations pass only once the
	// loop has taken over (loaded the shared state) under the current epoch.
	acting atomic.Uint64
}

func openStore(ctx context.Context, cfg *config.Config) (*store.DB, error) {
	if cfg.Store != "" {
		db, err := store.OpenPostgres(ctx, cfg.Store)
		if err != nil {
			return nil, fmt.Errorf("serve: open store: %w", err)
		}
		return db, nil
	}
	db, err := store.Open(ctx, cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("serve: open data directory %s: %w", cfg.DataDir, err)
	}
	return db, nil
}

// replicated reports whether this service is one replica of several (a
// shared PostgreSQL store); a SQLite service is alone and always leads.
func (s *Service) replicated() bool { return s.cfg.Store != "" }

// startReplication starts the election once the API address is known.
func (s *Service) startReplication(ctx context.Context, wg *sync.WaitGroup) {
	if !s.replicated() {
		return
	}
	addr := s.cfg.Replica.Advertise
	if addr == "" {
		addr = s.apiAddr
	}
	name := s.cfg.Replica.Name
	if name == "" {
		host, _ := os.Hostname()
		name = host + "/" + addr
	}
	t := leader.TimingFor(s.cfg.Replica.Lease)
	s.rep = &replication{run: leader.NewRunner(s.db, name, addr, t, s.clock, s.log)}
	s.log.Info("replica: joining the election", "name", name, "address", addr, "lease", t.Lease)
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.rep.run.Run(ctx)
	}()
	if s.shard != nil {
		s.startShards(ctx, wg, addr, t)
	}
}

// lead is called at every tick of a replica. It returns the context to act
// in (stamped with the epoch) and whether this replica leads now.
func (s *Service) lead(ctx context.Context, now time.Time) (context.Context, bool) {
	rep := s.rep
	epoch, ok := rep.run.Leading()
	if ok && epoch == rep.epoch && rep.lctx.Err() == nil {
		return rep.lctx, true
	}
	if rep.epoch != 0 {
		s.stepDown("leadership lost or superseded")
	}
	if !ok {
		return ctx, false
	}
	if err := s.takeOver(ctx, now, epoch); err != nil {
		s.log.Error("replica: cannot take over yet", "epoch", epoch, "err", err)
		s.db.SetFence(store.NoEpoch)
		return ctx, false
	}
	return rep.lctx, true
}

// takeOver starts leading under epoch: writes are fenced with it, and the
// state the last leader left is loaded, so its half-done runbook step resumes.
func (s *Service) takeOver(ctx context.Context, now time.Time, epoch uint64) error {
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	if n, err := s.db.LiveResourceLeases(rctx); err != nil || n > 0 {
		if err == nil {
			err = fmt.Errorf("%d resource(s) are led by sharded replicas (replica.sharded): give every replica the same replica.sharded", n)
		}
		return err
	}
	s.db.SetFence(epoch)
	if err := s.shifts.Reload(rctx); err != nil {
		return err
	}
	for _, r := range s.resources {
		if err := r.loadShared(rctx, true); err != nil {
			return err
		}
	}
	rep := s.rep
	rep.epoch = epoch
	rep.acting.Store(epoch)
	lctx, lcancel := context.WithCancel(ctx)
	rep.lctx, rep.cancel = actuator.WithFence(lctx, epoch), lcancel
	go s.watchLeadership(lctx, lcancel, epoch)
	// The shared data planes get the shared state under the new epoch
	// before anything of this term runs on its own (HAProxy's drift
	// correction would otherwise restore what this replica last wanted).
	for _, r := range s.resources {
		r.reconcile(rep.lctx, now)
	}
	s.term.Begin(rep.lctx, epoch)
	if epoch > 1 {
		// The leadership before this one is over (its replica died, was
		// cut off or restarted): said here, since that replica's own writes
		// are fenced off now.
		s.audit(rep.lctx, store.AuditEntry{At: now, Kind: "leader_lost", Actor: "grayzone",
			Message: fmt.Sprintf("the leadership of epoch %d is over: replica %s took over", epoch-1, rep.run.Holder())})
	}
	s.audit(rep.lctx, store.AuditEntry{At: now, Kind: "leader", Actor: "grayzone",
		Message: fmt.Sprintf("replica %s leads with epoch %d (API at %s)", rep.run.Holder(), epoch, rep.run.Known().Address)})
	s.log.Info("replica: leading", "epoch", epoch)
	return nil
}

// watchLeadership ends the leadership's context the moment this replica
// stops leading under epoch, independently of the service loop (which may be
// blocked on a database that no longer answers): in-flight actions are
// cancelled and database calls made under it return.
func (s *Service) watchLeadership(ctx context.Context, cancel context.CancelFunc, epoch uint64) {
	tick, stop := s.clock.NewTicker(watchEvery)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if e, ok := s.rep.run.Leading(); !ok || e != epoch {
				s.log.Warn("replica: leadership over; cancelling what it started", "epoch", epoch)
				cancel()
				return
			}
		}
	}
}

// watchEvery is how often watchLeadership looks.
const watchEvery = 50 * time.Millisecond

// stepDown stops acting at once: nothing more is written (fenced), and
// in-flight actions are cancelled.
func (s *Service) stepDown(why string) {
	rep := s.rep
	rep.acting.Store(0)
	s.term.End()
	s.db.SetFence(store.NoEpoch)
	s.shifts.Refollow() // what it holds in memory but never saved goes at the next read
	if rep.cancel != nil {
		rep.cancel()
	}
	s.log.Warn("replica: stepped down", "epoch", rep.epoch, "why", why)
	rep.epoch, rep.lctx, rep.cancel = 0, nil, nil
}

// mayWrite reports whether this service writes its state: alone, always; a
// replica, while it leads.
func (s *Service) mayWrite() bool {
	if s.rep == nil {
		return !s.replicated()
	}
	epoch, ok := s.rep.run.Leading()
	return ok && s.rep.acting.Load() == epoch
}

// setShifted applies a shift to the resource's front door. A replica's
// orders carry the fencing token of the leadership they come from (the
// context's, else this replica's own), and the front door refuses one older
// than it has obeyed.
func (r *resource) setShifted(ctx context.Context, zone string, away bool) error {
	if token, ok := r.fence(ctx); ok {
		return r.table.SetShiftedFenced(zone, away, token)
	}
	return r.table.SetShifted(zone, away)
}

// setWeight gives the shifted zone its weight in the resource's front door,
// fenced like setShifted.
func (r *resource) setWeight(ctx context.Context, zone string, percent int) error {
	if token, ok := r.fence(ctx); ok {
		return r.table.SetWeightFenced(zone, percent, token)
	}
	return r.table.SetWeight(zone, percent)
}

// fence is the fencing token of a replica's order: the context's, else this
// replica's own; ok is false for a service that is not replicated.
func (r *resource) fence(ctx context.Context) (token uint64, ok bool) {
	if r.s.rep == nil {
		return 0, false
	}
	if r.s.shard != nil {
		return r.shardToken(), true
	}
	if token, ok := actuator.FenceFrom(ctx); ok {
		return token, true
	}
	return r.s.rep.acting.Load(), true
}

// follow keeps a follower's view and front doors current with the shared
// state, and its detection running; it acts on nothing.
func (s *Service) follow(ctx context.Context, now time.Time) {
	// A database that does not answer must not stall the loop: the front
	// doors keep the last state read (static stability).
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	// The shared state read now is the doing of the leader last seen.
	ctx = actuator.WithFence(ctx, s.rep.run.Known().Epoch)
	if err := s.shifts.Follow(ctx, nil); err != nil { // what changed since the last tick
		s.log.Warn("replica: read shared shifts", "err", err)
	}
	get := s.sharedStates(ctx, s.resources)
	s.tickEach(s.resources, func(r *resource) { r.followTick(ctx, now, get) })
}

// followTick is a follower's tick of one resource: its shared runbook state
// read (through get), its detection fed, its own front door set to the
// shared shifts.
func (r *resource) followTick(ctx context.Context, now time.Time, get stateGetter) {
	if err := r.loadSharedFrom(get, false); err != nil {
		r.s.log.Warn("replica: read shared runbook state", "resource", r.cfg.Name, "err", err)
	}
	r.in.Feed(now, r.ctrl) // the follower's own front door's customer traffic, its canaries and sources
	a := r.ctrl.Assess(now)
	r.record(now, a)
	r.reconcile(ctx, now)
}

// actContext is the context to act on r in from the service loop: r's own
// leadership's on a sharded replica, else ctx.
func (r *resource) actContext(ctx context.Context) context.Context {
	if r.s.shard == nil {
		return ctx
	}
	if lctx, _ := r.s.shard.of[r.cfg.Name].context(); lctx != nil {
		return lctx
	}
	return ctx
}

// loadShared loads the resource's runbook and autoshift state from the store
// when it changed (always, when force).
func (r *resource) loadShared(ctx context.Context, force bool) error {
	return r.loadSharedFrom(func(key string) ([]byte, bool, error) { return r.s.db.GetState(ctx, key) }, force)
}

// stateGetter reads one state blob (store.DB.GetState, or a batch read).
type stateGetter func(key string) ([]byte, bool, error)

// sharedStates reads the runbook and autoshift state of every resource of
// rs in one query: a follower reads them every tick.
func (s *Service) sharedStates(ctx context.Context, rs []*resource) stateGetter {
	keys := make([]string, 0, 3*len(rs))
	for _, r := range rs {
		keys = append(keys, r.keys.runbook, r.keys.autoshift, r.keys.decisions)
	}
	got, err := s.db.GetStates(ctx, keys)
	return func(key string) ([]byte, bool, error) {
		v, ok := got[key]
		return v, ok, err
	}
}

// loadSharedFrom is loadShared reading through get.
func (r *resource) loadSharedFrom(get stateGetter, force bool) error {
	key := r.keys.runbook
	data, ok, err := get(key)
	if err != nil {
		return err
	}
	r.mu.Lock()
	same := ok && string(r.saved[key].data) == string(data)
	r.mu.Unlock()
	if !same || force {
		if !ok {
			data = nil
		}
		if err := r.asm.RestoreRunbook(data); err != nil {
			return err
		}
		r.mu.Lock()
		r.saved[key] = savedState{data: data}
		r.mu.Unlock()
	}
	akey := r.keys.autoshift
	if data, ok, err := get(akey); err != nil {
		return err
	} else if ok {
		var last time.Time
		if json.Unmarshal(data, &last) == nil {
			r.mu.Lock()
			r.lastAuto, r.saved[akey] = last, savedState{data: data}
			r.mu.Unlock()
		}
	}
	dkey := r.keys.decisions
	if data, ok, err := get(dkey); err != nil {
		return err
	} else if ok {
		var ds []api.Decision
		if json.Unmarshal(data, &ds) == nil {
			r.mu.Lock()
			r.leaders = ds
			r.mu.Unlock()
		}
	}
	return nil
}

// followerGate passes reads, and mutations when this replica leads. A
// follower answers a mutation with 307 to the leader's API (the same method
// and body are re-sent there), or 503 while no leader is known; both name
// the leader in LeaderHeader and the body.
func (s *Service) followerGate(next http.Handler) http.Handler {
	if !s.replicated() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		known := s.rep.run.Known()
		if known.Address != "" {
			w.Header().Set(LeaderHeader, known.Address)
		}
		epoch, leading := s.rep.run.Leading()
		leading = leading && s.rep.acting.Load() == epoch
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, req)
			return
		}
		if s.shard != nil {
			s.shardGate(w, req, next) // per resource
			return
		}
		if leading {
			next.ServeHTTP(w, req)
			return
		}
		address := known.Address
		if known.Holder == s.rep.run.Holder() {
			address = ""
		}
		s.redirect(w, req, address, "")
	})
}

// redirect answers a mutation this replica does not serve with 307 to the
// leader at address (of what, when the leadership is a resource's), or 503
// while none is known.
func (s *Service) redirect(w http.ResponseWriter, req *http.Request, address, of string) {
	w.Header().Set("Content-Type", "application/json")
	if address != "" {
		w.Header().Set(LeaderHeader, address)
	}
	leaderOf := "the leader"
	if of != "" {
		leaderOf = "the leader of " + of
	}
	if req.Header.Get(ForwardedHeader) != "" {
		address = "" // forwarded once already: never a second hop (nor a loop)
	}
	if address == "" {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf("replica %s is not %s and knows no other yet: retry shortly", s.rep.run.Holder(), leaderOf)})
		return
	}
	// The listener's scheme: with TLS the client re-sends its token
	// to the leader over TLS too (every replica serves the same way).
	scheme := "http://"
	if s.certs != nil {
		scheme = "https://"
	}
	if req.Header.Get("Origin") != "" {
		s.forward(w, req, scheme+address)
		return
	}
	w.Header().Set("Location", scheme+address+req.URL.RequestURI())
	w.WriteHeader(http.StatusTemporaryRedirect)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "this replica follows: send mutations to " + leaderOf + " at " + address, "leader": address})
}

// ForwardedHeader marks a mutation a replica forwarded to the leader (it
// names the forwarding replica): the leader's own answer comes back through
// it, and a replica that no longer leads answers 503 rather than forward it
// again.
const ForwardedHeader = "X-Grayzone-Forwarded-By"

// forward sends a browser's mutation (it carries Origin: the dashboard's
// fetch) to the leader at base and relays the answer, instead of a 307: a
// browser does not follow a redirect to another origin with the
// dashboard's Authorization header. The caller's token goes as it came;
// the leader checks it as any request's.
func (s *Service) forward(w http.ResponseWriter, req *http.Request, base string) {
	target, err := url.Parse(base)
	if err != nil {
		s.redirect(w, req, "", "")
		return
	}
	(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set(ForwardedHeader, s.rep.run.Holder())
		},
		Transport: s.forwardTransport(),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("replica: forward a mutation to its leader", "leader", target.Host, "path", r.URL.Path, "err", err)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusBadGateway)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf("forwarding to the leader at %s: %v", target.Host, err)})
		},
	}).ServeHTTP(w, req)
}

// forwardTransport carries one forwarded mutation to the leader (they are
// rare: an operator's click). Over TLS it verifies the leader's certificate
// against the system's roots and the certificates of this replica's own
// tls cert_file, read now (so a rotated one counts): replicas that share a
// certificate, or its chain, trust each other without more configuration.
func (s *Service) forwardTransport() *http.Transport {
	t := &http.Transport{
		DisableKeepAlives:     true,
		ResponseHeaderTimeout: 30 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
	}
	if s.certs == nil {
		return t
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if pem, err := os.ReadFile(s.cfg.TLS.CertFile); err == nil {
		roots.AppendCertsFromPEM(pem)
	}
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	return t
}

// leaderHandler answers GET /v1/leader: who leads, and whether it is us.
func (s *Service) leaderHandler(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Replicated bool   `json:"replicated"`
		Replica    string `json:"replica,omitempty"`
		Leading    bool   `json:"leading"`
		Epoch      uint64 `json:"epoch,omitempty"`
		Leader     string `json:"leader,omitempty"`
		Address    string `json:"address,omitempty"`
		// Sharded: each resource's leader (replica.sharded); the fields
		// above are then the service lease's (notifications).
		Sharded   bool                      `json:"sharded,omitempty"`
		Replicas  int                       `json:"replicas,omitempty"`
		Resources map[string]resourceLeader `json:"resources,omitempty"`
	}{Replicated: s.replicated(), Leading: true}
	if s.rep != nil {
		k := s.rep.run.Known()
		// Leading once the lease is ours and the loop has taken over (loaded
		// the shared state): from then on mutations are served here.
		epoch, leading := s.rep.run.Leading()
		leading = leading && s.rep.acting.Load() == epoch
		out.Replica, out.Leading, out.Epoch, out.Leader, out.Address = s.rep.run.Name(), leading, k.Epoch, k.Holder, k.Address
	}
	if s.shard != nil {
		out.Sharded, out.Resources = true, s.resourceLeaders()
		if s.shard.run() != nil {
			out.Replicas = s.shard.run().Members()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

var (
	mLeading = prometheus.NewDesc("grayzone_replica_leading", "1 while this replica leads (holds the lease and acts); only with replicas.", []string{"replica"}, nil)
	mEpoch   = prometheus.NewDesc("grayzone_replica_epoch", "The leader lease's epoch as this replica last saw it; only with replicas.", []string{"replica"}, nil)
	mLed     = prometheus.NewDesc("grayzone_replica_resources_led", "Resources this replica leads (holds their lease and acts on); only with sharded replicas.", []string{"replica"}, nil)
	mMembers = prometheus.NewDesc("grayzone_replica_members", "Live replicas sharing the resources, as this replica last saw them; only with sharded replicas.", []string{"replica"}, nil)
)

// replicaCollector exports this replica's part in the election.
type replicaCollector Service

func (c *replicaCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *replicaCollector) Collect(ch chan<- prometheus.Metric) {
	s := (*Service)(c)
	if s.rep == nil {
		return
	}
	name := s.rep.run.Name()
	leading := 0.0
	if s.mayWrite() {
		leading = 1
	}
	ch <- prometheus.MustNewConstMetric(mLeading, prometheus.GaugeValue, leading, name)
	ch <- prometheus.MustNewConstMetric(mEpoch, prometheus.GaugeValue, float64(s.rep.run.Known().Epoch), name)
	if s.shard != nil && s.shard.run() != nil {
		led := 0
		for _, r := range s.resources {
			if r.leads() {
				led++
			}
		}
		ch <- prometheus.MustNewConstMetric(mLed, prometheus.GaugeValue, float64(led), name)
		ch <- prometheus.MustNewConstMetric(mMembers, prometheus.GaugeValue, float64(s.shard.run().Members()), name)
	}
}

// leads says whether this replica decides and acts now, whichever election
// it runs: a Kubernetes Lease, the shared store's lease, or none.
func (s *Service) leads() bool {
	if s.kubeLeading != nil && !s.kubeLeading() {
		return false
	}
	if s.rep != nil {
		epoch, leading := s.rep.run.Leading()
		return leading && s.rep.acting.Load() == epoch
	}
	return !s.replicated() // a replica before its election follows
}

// runPlane runs the external data plane's own loop. A replica's HAProxy
// drift correction writes to an HAProxy the replicas may share, so it runs
// only under a leadership term (and stops with it); an xDS server keeps its
// listener but answers only while this replica leads (a follower's proxies
// are refused with Unavailable and keep their last good state; see
// xds.Server.ServeWhile); the EndpointSlices loop writes only while acts().
func (r *resource) runPlane(ctx context.Context) {
	term := r.leaderTerm()
	if term == nil {
		r.plane.Run(ctx)
		return
	}
	switch p := r.plane.(type) {
	case *haproxy.Actuator:
		term.Each(ctx, p.Run)
	case *xds.Server:
		p.ServeWhile(func() bool { _, _, ok := term.Context(); return ok })
		p.Run(ctx)
	default:
		r.plane.Run(ctx)
	}
}

// kubeTerm keeps the term of leader_election kubernetes-lease (without a
// shared store): begun at the first tick this replica holds the Lease, once
// the shared data planes have the state, and ended when it no longer does
// (serve then stops: see cli/serve_lease.go). With a shared store the
// store's election keeps the term (takeOver, stepDown). It returns ctx
// carrying the term's epoch (the Lease's), so that this tick's orders to a
// shared HAProxy are checked against its epoch record like a store
// leader's.
func (s *Service) kubeTerm(ctx context.Context, now time.Time, leading bool) context.Context {
	if s.replicated() {
		return ctx
	}
	_, epoch, has := s.term.Context()
	switch {
	case leading && !has:
		if s.kubeEpoch != nil {
			epoch = s.kubeEpoch()
		}
		ctx = withEpoch(ctx, epoch)
		for _, r := range s.resources {
			r.reconcile(ctx, now)
		}
		s.term.Begin(ctx, epoch)
		return ctx
	case !leading && has:
		s.term.End()
	}
	return withEpoch(ctx, epoch)
}

// withEpoch gives ctx the fencing token epoch; 0 is no epoch (orders are
// not checked).
func withEpoch(ctx context.Context, epoch uint64) context.Context {
	if epoch == 0 {
		return ctx
	}
	return actuator.WithFence(ctx, epoch)
}

// runWhileLeading runs f (a loop acting on something shared) under every
// leadership term of a replica, else under ctx.
func (s *Service) runWhileLeading(ctx context.Context, f func(context.Context)) {
	if s.term == nil {
		f(ctx)
		return
	}
	s.term.Each(ctx, f)
}
