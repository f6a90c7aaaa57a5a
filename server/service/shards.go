package service

// Sharded replicas (replica.sharded): every resource has its own lease in
// the shared store and the replicas share the resources (server/leader
// Shards). Per resource, a replica either leads it (decides, acts and
// writes, fenced by the resource's own epoch; its data planes, ARC mirror
// and control-plane commands run under the resource's own term) or follows
// it (reads its shifts and runbook state every tick, keeps detecting, and
// sends its mutations to the replica that leads it). The leader lease stays,
// for what is the whole service's: delivering notifications.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/server/leader"
	"github.com/grayzone/grayzone/server/store"
)

// sharding is a sharded replica's part per resource.
type sharding struct {
	runner atomic.Pointer[leader.ShardRunner] // nil until the API address is known
	of     map[string]*shardTerm
	// refused is why takeovers were last refused (said once); loop-owned.
	refused string
}

// run is the runner of the resource leases, nil until it starts (Run
// starts it once the API address is known; the resources' goroutines ask
// before that).
func (sh *sharding) run() *leader.ShardRunner { return sh.runner.Load() }

// shardTerm is one resource's leadership on this replica.
type shardTerm struct {
	term *leader.Term // for the resource's goroutines (data plane, ARC mirror)
	// acting is the epoch the loop acts under (0: following); mutations of
	// the resource pass only while it is the lease's current epoch.
	acting atomic.Uint64

	mu     sync.Mutex // guards lctx and cancel (the watcher cancels)
	lctx   context.Context
	cancel context.CancelFunc
}

func (st *shardTerm) context() (context.Context, context.CancelFunc) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.lctx, st.cancel
}

// openShards prepares a sharded replica, once its resources exist: every
// write about a resource is fenced by its own lease from now on (and fails
// until this replica leads it).
func (s *Service) openShards() {
	if !s.replicated() || !s.cfg.Replica.Sharded {
		return
	}
	s.shard = &sharding{of: map[string]*shardTerm{}}
	names := make([]string, 0, len(s.resources))
	for _, r := range s.resources {
		s.shard.of[r.cfg.Name] = &shardTerm{term: leader.NewTerm()}
		names = append(names, r.cfg.Name)
	}
	s.db.EnableShards(names)
	s.shifts.SetOwner(func(resource string) bool {
		st := s.shard.of[resource]
		return st != nil && st.acting.Load() != 0
	})
}

// startShards joins the sharing of the resources, under the same holder
// identity as the leader lease.
func (s *Service) startShards(ctx context.Context, wg *sync.WaitGroup, address string, t leader.Timing) {
	names := make([]string, 0, len(s.resources))
	for _, r := range s.resources {
		names = append(names, r.cfg.Name)
	}
	run := leader.NewShardRunner(s.db, s.rep.run.Holder(), address, names, t, s.clock, s.log)
	s.shard.runner.Store(run)
	s.log.Info("replica: sharing the resources", "resources", len(names))
	wg.Add(2)
	go func() { defer wg.Done(); run.Run(ctx) }()
	go func() { defer wg.Done(); s.watchShards(ctx) }()
}

// tickShards is a sharded replica's tick: take over the resources whose
// lease it now holds, step down from those it lost, follow the others, and
// tick the ones it leads under their own leadership's context.
func (s *Service) tickShards(ctx context.Context, now time.Time) {
	s.leadService(ctx, now)
	var held map[string]uint64
	if s.shard.run() != nil {
		held = s.shard.run().Held()
	}
	var taking []*resource
	for _, r := range s.resources {
		st := s.shard.of[r.cfg.Name]
		e, ok := held[r.cfg.Name]
		if cur := st.acting.Load(); cur != 0 {
			if lctx, _ := st.context(); !ok || e != cur || lctx.Err() != nil {
				s.stepDownResource(r, st, "its lease was lost, released or superseded")
			}
		}
		if ok && st.acting.Load() == 0 {
			taking = append(taking, r)
		}
	}
	if len(taking) > 0 && s.mixedFleet(ctx) == nil {
		s.takeOverResources(ctx, now, taking, held)
	}
	var led, followed []*resource
	for _, r := range s.resources {
		if s.shard.of[r.cfg.Name].acting.Load() != 0 {
			led = append(led, r)
		} else {
			followed = append(followed, r)
		}
	}
	if len(followed) > 0 {
		s.followResources(ctx, now, followed)
	}
	s.expire(ctx, now) // only the shifts of the resources led (the manager's owner)
	s.tickEach(led, func(r *resource) {
		lctx, _ := s.shard.of[r.cfg.Name].context()
		s.tickOne(r, lctx, now)
	})
}

// leadService keeps the leader lease's part in a sharded replica: the
// writes about no resource (the outbox) are fenced by it, and its holder
// delivers the notifications.
func (s *Service) leadService(ctx context.Context, now time.Time) {
	rep := s.rep
	epoch, ok := rep.run.Leading()
	switch cur := rep.acting.Load(); {
	case ok && cur != epoch:
		s.db.SetFence(epoch)
		rep.acting.Store(epoch)
		s.audit(ctx, store.AuditEntry{At: now, Kind: "leader", Actor: "grayzone",
			Message: fmt.Sprintf("replica %s holds the service's lease with epoch %d: it delivers the notifications", rep.run.Holder(), epoch)})
	case !ok && cur != 0:
		rep.acting.Store(0)
		s.db.SetFence(store.NoEpoch)
	}
}

// mixedFleet refuses to take resources over while a replica without
// replica.sharded leads them all (said once per such leader).
func (s *Service) mixedFleet(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	h, err := s.db.UnshardedLeader(rctx)
	if err == nil && h == "" {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("replica %s leads every resource without replica.sharded: give every replica the same replica.sharded", h)
	}
	if msg := err.Error(); msg != s.shard.refused {
		s.shard.refused = msg
		s.log.Error("replica: taking no resource over", "err", err)
	}
	return err
}

// takeOverResources starts leading each of rs under its epoch in held: its
// writes are fenced with it, the state its last leader left is loaded (a
// half-done runbook step resumes), its data plane gets the shared state,
// then its term begins.
func (s *Service) takeOverResources(ctx context.Context, now time.Time, rs []*resource, held map[string]uint64) {
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	taking := make(map[string]bool, len(rs))
	for _, r := range rs {
		taking[r.cfg.Name] = true
		s.db.SetResourceFence(r.cfg.Name, held[r.cfg.Name])
	}
	// What their last leaders left, read in two queries for all of them.
	reloaded := s.shifts.ReloadWhere(rctx, func(res string) bool { return taking[res] })
	get := s.sharedStates(rctx, rs)
	for _, r := range rs {
		name, epoch := r.cfg.Name, held[r.cfg.Name]
		err := reloaded
		if err == nil {
			err = r.loadSharedFrom(get, true)
		}
		if err != nil {
			s.db.SetResourceFence(name, 0)
			s.log.Error("replica: cannot take the resource over yet", "resource", name, "epoch", epoch, "err", err)
			continue
		}
		st := s.shard.of[name]
		lctx, lcancel := context.WithCancel(ctx)
		fenced := actuator.WithFence(lctx, epoch)
		st.mu.Lock()
		st.lctx, st.cancel = fenced, lcancel
		st.mu.Unlock()
		st.acting.Store(epoch)
		r.reconcile(fenced, now)
		st.term.Begin(fenced, epoch)
		// Its own kind: one per resource is no "leadership gained"
		// notification (the service lease's "leader" entry is).
		s.audit(fenced, store.AuditEntry{At: now, Kind: "resource_leader", Resource: name, Actor: "grayzone",
			Message: fmt.Sprintf("replica %s leads %s with epoch %d", s.rep.run.Holder(), name, epoch)})
	}
}

// stepDownResource stops acting on r at once: nothing more is written about
// it (fenced), and what runs under its term is cancelled.
func (s *Service) stepDownResource(r *resource, st *shardTerm, why string) {
	epoch := st.acting.Swap(0)
	st.term.End()
	s.db.SetResourceFence(r.cfg.Name, 0)
	// Its shifts are followed from now on: read them all again, since the
	// reads while leading it skipped their changes (another replica may
	// have taken it over already).
	s.shifts.Refollow()
	st.mu.Lock()
	if st.cancel != nil {
		st.cancel()
	}
	st.lctx, st.cancel = nil, nil
	st.mu.Unlock()
	s.log.Info("replica: stepped down from a resource", "resource", r.cfg.Name, "epoch", epoch, "why", why)
}

// watchShards cancels a resource's leadership context the moment this
// replica stops leading it, independently of the service loop (which may be
// blocked on a database that no longer answers): one watcher for all.
func (s *Service) watchShards(ctx context.Context) {
	tick, stop := s.clock.NewTicker(watchEvery)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		held := s.shard.run().Held()
		for name, st := range s.shard.of {
			cur := st.acting.Load()
			if cur == 0 || held[name] == cur {
				continue
			}
			if lctx, cancel := st.context(); cancel != nil && lctx.Err() == nil {
				s.log.Warn("replica: leadership of a resource over; cancelling what it started", "resource", name, "epoch", cur)
				cancel()
			}
		}
	}
}

// followResources keeps the resources this replica follows current with
// the shared state (their shifts, runbook state) and their detection
// running, as a follower does for all.
func (s *Service) followResources(ctx context.Context, now time.Time, rs []*resource) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	follows := make(map[string]bool, len(rs))
	for _, r := range rs {
		follows[r.cfg.Name] = true
	}
	if err := s.shifts.Follow(ctx, func(res string) bool { return follows[res] }); err != nil {
		s.log.Warn("replica: read shared shifts", "err", err)
	}
	get := s.sharedStates(ctx, rs)
	s.tickEach(rs, func(r *resource) {
		r.followTick(actuator.WithFence(ctx, s.shard.run().Known(r.cfg.Name).Epoch), now, get)
	})
}

// shardToken is the fencing token of r's front-door orders on a sharded
// replica: its own epoch while leading r, else that of r's leader as last
// seen. Epochs are per resource, so they never mix with the leader lease's.
func (r *resource) shardToken() uint64 {
	if e := r.s.shard.of[r.cfg.Name].acting.Load(); e != 0 {
		return e
	}
	if r.s.shard.run() == nil {
		return 0
	}
	return r.s.shard.run().Known(r.cfg.Name).Epoch
}

// leads says whether this replica decides and acts for r now: on a sharded
// replica, while it holds r's lease and has taken r over; else as the
// service does.
func (r *resource) leads() bool {
	if r.s.shard == nil {
		return r.s.leads()
	}
	st := r.s.shard.of[r.cfg.Name]
	if r.s.shard.run() == nil {
		return false
	}
	e, ok := r.s.shard.run().Leads(r.cfg.Name)
	return ok && st.acting.Load() == e
}

// acts is leads for the resource's Kubernetes loops (see Service.acts).
func (r *resource) acts() bool {
	if r.s.shard == nil {
		return r.s.acts()
	}
	return r.leads()
}

// leaderTerm is the term r's goroutines act under: r's own on a sharded
// replica, else the service's (nil: alone).
func (r *resource) leaderTerm() *leader.Term {
	if r.s.shard != nil {
		return r.s.shard.of[r.cfg.Name].term
	}
	return r.s.term
}

// runWhileLeading runs f under every term of r (see Service.runWhileLeading).
func (r *resource) runWhileLeading(ctx context.Context, f func(context.Context)) {
	if t := r.leaderTerm(); t != nil {
		t.Each(ctx, f)
		return
	}
	f(ctx)
}

// maxRoutedBody bounds what the gate reads of a mutation to find its resource.
const maxRoutedBody = 32 << 20

// mutationResource names the resource a mutation is about, when it can be
// told: the body's "resource" (POST /v1/shifts, /v1/observations), the
// shift's (/v1/shifts/{id}...), the decision's (/v1/decisions/{id}/...).
// The body is left as it was, for the handler.
func (s *Service) mutationResource(req *http.Request) string {
	path := req.URL.Path
	switch {
	case path == "/v1/shifts" || path == "/v1/observations":
		if req.Body == nil {
			return ""
		}
		data, err := io.ReadAll(io.LimitReader(req.Body, maxRoutedBody))
		req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(data), req.Body))
		if err != nil {
			return ""
		}
		var b struct {
			Resource string `json:"resource"`
		}
		_ = json.Unmarshal(data, &b)
		return b.Resource
	case strings.HasPrefix(path, "/v1/shifts/"):
		id, _, _ := strings.Cut(strings.TrimPrefix(path, "/v1/shifts/"), "/")
		if sh, err := s.shifts.Get(id); err == nil {
			return sh.Resource
		}
	case strings.HasPrefix(path, "/v1/decisions/"):
		id, _, _ := strings.Cut(strings.TrimPrefix(path, "/v1/decisions/"), "/")
		return decisionResource(id)
	}
	return ""
}

// shardGate routes a mutation on a sharded replica: served here when this
// replica leads its resource (or it names none this replica knows: the
// handler answers), else sent to the replica that leads it.
func (s *Service) shardGate(w http.ResponseWriter, req *http.Request, next http.Handler) {
	name := s.mutationResource(req)
	r := s.byName[name]
	if r == nil || r.leads() {
		next.ServeHTTP(w, req)
		return
	}
	var l store.ResourceLease
	if s.shard.run() != nil {
		l = s.shard.run().Known(name)
	}
	if !l.Live || l.Holder == s.rep.run.Holder() {
		l.Address = ""
	}
	s.redirect(w, req, l.Address, "resource "+name)
}

// resourceLeaders is GET /v1/leader's view of the resources on a sharded
// replica: who leads each and where.
type resourceLeader struct {
	Leader  string `json:"leader,omitempty"`
	Address string `json:"address,omitempty"`
	Epoch   uint64 `json:"epoch,omitempty"`
	Leading bool   `json:"leading"`
}

func (s *Service) resourceLeaders() map[string]resourceLeader {
	out := make(map[string]resourceLeader, len(s.resources))
	for _, r := range s.resources {
		var l store.ResourceLease
		if s.shard.run() != nil {
			l = s.shard.run().Known(r.cfg.Name)
		}
		rl := resourceLeader{Leading: r.leads()}
		if l.Live || rl.Leading {
			rl.Leader, rl.Address, rl.Epoch = l.Holder, l.Address, l.Epoch
		}
		out[r.cfg.Name] = rl
	}
	return out
}
