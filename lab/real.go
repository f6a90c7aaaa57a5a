package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/lab/database"
	"github.com/grayzone/grayzone/lab/dblink"
	"github.com/grayzone/grayzone/lab/fault"
	"github.com/grayzone/grayzone/lab/instancegroup"
	"github.com/grayzone/grayzone/lab/loadgen"
	labreport "github.com/grayzone/grayzone/lab/report"
	"github.com/grayzone/grayzone/lab/telemetrypath"
	"github.com/grayzone/grayzone/lab/workload"
	"github.com/grayzone/grayzone/report"
	"github.com/grayzone/grayzone/telemetry/canary"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// dbTarget is the database both the mitigated and the baseline run use.
type dbTarget struct {
	url  string // as the app would use it directly
	addr string // host:port the links forward to
	what string // for the report and the start line
}

// startDatabase picks the database of a real-mode run: the URL given, else a
// throwaway PostgreSQL cluster where its binaries exist, else the embedded store.
func startDatabase(ctx context.Context, o Options) (dbTarget, func(), error) {
	switch {
	case o.Database == "embedded":
		return startEmbedded(ctx, "embedded store (--database embedded)")
	case o.Database != "":
		u, err := url.Parse(o.Database)
		if err != nil || u.Host == "" {
			return dbTarget{}, nil, fmt.Errorf("%w: --database %q: want a postgres://user:pass@host:port/db URL", ErrUsage, o.Database)
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "5432")
		}
		return dbTarget{url: o.Database, addr: host, what: "postgresql at " + host}, func() {}, nil
	case database.PostgresAvailable():
		cl, err := database.StartPostgres(ctx, database.PostgresOptions{})
		if err != nil {
			return dbTarget{}, nil, fmt.Errorf("lab: start a throwaway PostgreSQL: %w", err)
		}
		return dbTarget{url: cl.URL(), addr: cl.Addr(), what: "throwaway postgresql at " + cl.Addr()}, func() { cl.Stop() }, nil
	default:
		return startEmbedded(ctx, "embedded store (no PostgreSQL found; pass --database URL or install postgresql)")
	}
}

func startEmbedded(ctx context.Context, what string) (dbTarget, func(), error) {
	em, err := database.StartEmbedded(ctx)
	if err != nil {
		return dbTarget{}, nil, fmt.Errorf("lab: start the embedded store: %w", err)
	}
	return dbTarget{url: em.URL(), addr: em.Addr(), what: what}, func() { em.Close() }, nil
}

// linkURL is the app's database URL pointed at its link instead of the database.
func linkURL(dbURL, linkAddr string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", err
	}
	u.Host = linkAddr
	q := u.Query()
	q.Set("sslmode", "disable") // the link's per-query faults read PostgreSQL's framing
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// realInstance is one running app instance with its own database link.
type realInstance struct {
	zone, id string
	link     *dblink.Link
	client   *database.Client
	app      *workload.Instance
}

// realWorld runs instances, links and fault injection for one real-mode run.
type realWorld struct {
	ctx    context.Context
	o      Options
	db     dbTarget
	table  *frontdoor.Table
	plan   fault.Plan
	start  time.Time
	record func(observation.Observation)

	mu        sync.Mutex
	instances map[string]*realInstance
	// canaryPaths are the zonal canaries' own paths, cut by canary_failure.
	canaryPaths []zonePath
}

type zonePath struct {
	zone string
	path *canaryPath
}

// warmRounds is how many times the warm-up requests each operation through
// each endpoint: enough to reach every instance behind the front door and
// open several of its connections.
const warmRounds = 4

// warmConcurrency bounds the warm-up's requests in flight.
const warmConcurrency = 8

// warmUp requests every operation through every canary endpoint (the
// regional front door and each zone's path) before the scenario's clock
// starts, its observations discarded. A service is warm when an incident
// starts: connections open, code paths run. Without it the first requests'
// costs, in every zone at once, read as regional latency impact, and the
// regional memory then hides an isolated fault for a minute.
func warmUp(ctx context.Context, endpoints []canary.Endpoint, ops []string) {
	ctx, cancel := context.WithTimeout(ctx, warmTimeout)
	defer cancel()
	client := &http.Client{}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	// A few at a time: a burst of every request at once would load the
	// machine more than the scenario ever does.
	slots := make(chan struct{}, warmConcurrency)
	for _, e := range endpoints {
		for _, op := range ops {
			for range warmRounds {
				wg.Add(1)
				slots <- struct{}{}
				go func() {
					defer func() { <-slots; wg.Done() }()
					req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(e.URL, "/")+"/"+op, nil)
					if err != nil {
						return
					}
					if resp, err := client.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}()
			}
		}
	}
	wg.Wait()
}

// warmTimeout bounds an instance's warm-up (its database connections) at
// launch: a replacement launched into a broken zone starts anyway.
const warmTimeout = 3 * time.Second

// Launch implements instancegroup.Launcher: link, client, app server, target.
func (w *realWorld) Launch(ctx context.Context, in instancegroup.Instance) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.instances[in.ID]; ok {
		return nil
	}
	link, err := dblink.New(w.ctx, in.ID, w.db.addr, dblink.Options{Seed: w.o.Scenario.Seed})
	if err != nil {
		return err
	}
	u, err := linkURL(w.db.url, link.Addr())
	if err != nil {
		link.Close()
		return err
	}
	client, err := database.Open(ctx, u)
	if err != nil {
		link.Close()
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, warmTimeout)
	client.Warm(wctx)
	cancel()
	app, err := workload.Start(w.ctx, workload.Config{Zone: in.Zone, ID: in.ID, DB: client, Record: w.record, Seed: w.o.Scenario.Seed})
	if err != nil {
		client.Close()
		link.Close()
		return err
	}
	ri := &realInstance{zone: in.Zone, id: in.ID, link: link, client: client, app: app}
	w.applyFaults(ri, time.Since(w.start))
	if err := w.table.AddTarget(frontdoor.Target{ID: in.ID, Zone: in.Zone, Addr: app.Addr()}); err != nil {
		ri.close()
		return err
	}
	w.instances[in.ID] = ri
	return nil
}

// Terminate implements instancegroup.Launcher.
func (w *realWorld) Terminate(_ context.Context, in instancegroup.Instance) error {
	w.mu.Lock()
	ri := w.instances[in.ID]
	delete(w.instances, in.ID)
	w.mu.Unlock()
	w.table.RemoveTarget(in.ID)
	if ri != nil {
		ri.close()
	}
	return nil
}

func (ri *realInstance) close() {
	ri.app.Close()
	ri.client.Close()
	ri.link.Close()
}

func (w *realWorld) closeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, ri := range w.instances {
		ri.close()
		delete(w.instances, id)
	}
}

// applyFaults puts the plan's faults at offset t on the instance.
func (w *realWorld) applyFaults(ri *realInstance, t time.Duration) {
	var lf []dblink.Fault
	for _, f := range w.plan.Link(t, ri.zone, ri.id) {
		lf = append(lf, dblink.Fault{Kind: string(f.Kind), Percent: f.Percent, Latency: f.Latency, Jitter: f.Jitter})
	}
	if err := ri.link.Set(lf); err != nil {
		w.o.Log.Error("apply link faults", "instance", ri.id, "err", err)
	}
	pct, slow, jitter := w.plan.Instance(t, ri.zone, ri.id)
	ri.app.SetFaults(workload.InstanceFaults{HTTPErrorPercent: pct, Slow: slow, SlowJitter: jitter})
}

// injectFaults applies the plan at each of its change points until ctx ends.
func (w *realWorld) injectFaults(ctx context.Context) {
	for _, at := range w.plan.Changes() {
		if wait := time.Until(w.start.Add(at)); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		w.mu.Lock()
		for _, ri := range w.instances {
			w.applyFaults(ri, at)
		}
		w.mu.Unlock()
		for _, zp := range w.canaryPaths {
			zp.path.SetCut(w.plan.CanaryFails(at, zp.zone))
		}
		for _, f := range w.plan.Active(at) {
			if f.At == at {
				w.o.Log.Info("fault starts", "kind", f.Kind, "target", f.Target.String())
			}
		}
	}
}

// runReal is real mode: real servers, links, database, front door, load and
// canaries on loopback, in wall-clock time.
func runReal(ctx context.Context, o Options, mitigate bool, db dbTarget) (labreport.Run, error) {
	sc := o.Scenario
	// start is the scenario's time zero, set again once the fleet is warm;
	// nothing reads it before then but the instances' launch.
	start := time.Now()
	var warming atomic.Bool
	warming.Store(true)
	// Servers and links live until the end of this function, past the deadline,
	// so in-flight requests finish.
	lifeCtx, stopLife := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLife()

	plan := fault.NewPlan(sc)
	c, err := newCore(sc, o.Detector, mitigate, false, time.Now, start, o.Log)
	if err != nil {
		return labreport.Run{}, err
	}
	rt, err := startRealTelemetry(lifeCtx, o, c.gate)
	if err != nil {
		return labreport.Run{}, err
	}
	w := &realWorld{
		ctx: lifeCtx, o: o, db: db, table: c.table, plan: plan, start: start,
		instances: map[string]*realInstance{},
		record: func(obs observation.Observation) {
			if warming.Load() {
				return // the warm-up's requests are not the scenario's
			}
			// telemetry_loss: the instance's own reports never arrive.
			if obs.Source == observation.Server && plan.TelemetryLost(time.Since(start), obs.Zone, obs.Instance) {
				return
			}
			if rt != nil && obs.Source == observation.Server {
				if err := rt.observe(obs); err != nil {
					o.Log.Error("telemetry path", "err", err)
				}
				return
			}
			if obs.Source == observation.Server && o.FrontDoor != FrontDoorHAProxy {
				return // direct: the front door's recorder counts the request, as in serve
			}
			src := telemetrypath.SourceCanary
			if obs.Source == observation.Server {
				src = "server" // HAProxy records nothing of grayzone's: the instances report
			}
			_ = c.in.OfferObservation(src, obs)
		},
	}
	if rt != nil {
		defer rt.close()
	}
	defer w.closeAll()
	if err := c.launch(lifeCtx, w, func() bool { return !w.plan.ControlPlaneDown(time.Since(start)) }); err != nil {
		return labreport.Run{}, err
	}
	// telemetry_loss: the lost instances' customer requests never reach the engine.
	c.in.Drop = func(now time.Time, k record.SeriesKey) bool {
		return plan.TelemetryLost(now.Sub(c.start), k.Zone, k.Instance)
	}
	c.path = servePath(o)
	stopAWS, err := useAWS(lifeCtx, o, c, time.Now)
	if err != nil {
		return labreport.Run{}, err
	}
	defer stopAWS()

	var wg sync.WaitGroup
	goRun := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	var proxy front
	if o.FrontDoor == FrontDoorHAProxy {
		if proxy, err = startHAProxyFront(lifeCtx, w.table, o.Log); err != nil {
			return labreport.Run{}, err
		}
	} else {
		po := frontdoor.ProxyOptions{Log: o.Log}
		if rt == nil {
			po.Recorder = c.rec // direct: the front door's counters are the server-side signal, as serve's default
		}
		if proxy, err = frontdoor.StartProxy(lifeCtx, w.table, po); err != nil {
			return labreport.Run{}, err
		}
	}
	defer proxy.Close()
	endpoints := []canary.Endpoint{{URL: proxy.RegionalURL()}}
	for _, z := range sc.Topology.Zones {
		path, err := newCanaryPath(lifeCtx, proxy.ZonalURL(z))
		if err != nil {
			return labreport.Run{}, err
		}
		defer path.Close()
		w.canaryPaths = append(w.canaryPaths, zonePath{zone: z, path: path})
		endpoints = append(endpoints, canary.Endpoint{Zone: z, URL: path.URL()})
	}
	warmUp(lifeCtx, endpoints, operation.Names())

	// Time zero: the scenario's clock, faults and deadline start here.
	start = time.Now()
	w.mu.Lock()
	w.start = start
	w.mu.Unlock()
	c.start = start
	c.rec.Drain(func(record.SeriesKey, record.Snapshot) {}) // the warm-up's requests are not the scenario's
	warming.Store(false)
	runCtx, cancel := context.WithDeadline(ctx, start.Add(sc.Duration))
	defer cancel()
	if o.FrontDoor != FrontDoorHAProxy {
		goRun(func() { (&frontdoor.HealthChecker{Table: w.table, Log: o.Log}).Run(runCtx) })
	}

	var req report.Requests
	var reqMu sync.Mutex
	goRun(func() {
		err := loadgen.Run(runCtx, loadgen.Config{
			Target: proxy.RegionalURL(), Rate: sc.Load.RPSAt, Mix: sc.Load.Mix, Seed: sc.Seed, Duration: sc.Duration,
			OnResult: func(r loadgen.Result) {
				reqMu.Lock()
				req.Count(r.Failed(), slowFor(r.Operation, r.Latency))
				reqMu.Unlock()
			},
		})
		if err != nil && runCtx.Err() == nil {
			o.Log.Error("load generator stopped", "err", err)
		}
	})
	goRun(func() { w.injectFaults(runCtx) })
	goRun(func() {
		err := canary.Run(runCtx, canary.Config{Interval: sc.Canary.Interval, Endpoints: endpoints, Operations: operation.Names(), Record: w.record, Shifted: w.table.Shifted})
		if err != nil && runCtx.Err() == nil {
			o.Log.Error("canaries stopped", "err", err)
		}
	})

	prog := newProgress(o.Progress, sc, mitigate, start)
	dash := ""
	if o.Listen != "" && mitigate {
		u, stopDash, err := serveDashboard(lifeCtx, o, c)
		if err != nil {
			return labreport.Run{}, err
		}
		defer stopDash()
		dash = u
	}
	prog.header(ModeReal, db.what, dash)
	requests := func() report.Requests {
		reqMu.Lock()
		defer reqMu.Unlock()
		return req
	}
	tick := time.NewTicker(c.every)
	defer tick.Stop()
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case now := <-tick.C:
			a := c.tick(lifeCtx, now)
			prog.update(min(now.Sub(start), sc.Duration), a, c, requests())
		}
	}
	elapsed := min(time.Since(start), sc.Duration)
	wg.Wait() // load and canaries return once their in-flight requests are done
	c.drv.Wait()
	// The last word at the end (or the interruption): the ticker may not have
	// fired at the deadline itself.
	prog.update(elapsed, c.ctrl.Last(), c, requests())
	return c.run(ModeReal, o.Detector, elapsed, requests(), db.what), nil
}
