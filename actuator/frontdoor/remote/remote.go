package remote

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/actuator/xds"
	"github.com/grayzone/grayzone/internal/certreload"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/internal/loglimit"
)

// Options configure a FrontDoor.
type Options struct {
	Config *Config
	Log    *slog.Logger
	Clock  clock.Clock
}

// FrontDoor is the embedded front door fed over xDS.
type FrontDoor struct {
	cfg   *Config
	log   *slog.Logger
	clock clock.Clock
	table *frontdoor.Table
	proxy *frontdoor.Proxy

	// Mutual TLS to serve (nil: plaintext), re-read when the files change.
	cert  *certreload.Cert
	roots *certreload.Pool

	metrics   *prometheus.Registry
	refused   *prometheus.CounterVec // by reason
	refuseLog *loglimit.Limiter      // what serve (or whoever answers) sends is bounded in the log
	metricsLn net.Listener

	mu    sync.Mutex
	state State
	have  bool // a state has been loaded or received

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start restores the last state from the state file (so it routes as
// before at once, whether or not serve answers), binds the endpoints, and
// starts following serve.
func Start(ctx context.Context, o Options) (*FrontDoor, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	c := o.Config
	if c.NodeID == "" {
		host, _ := os.Hostname()
		c.NodeID = fmt.Sprintf("frontdoor-%s-%d", host, os.Getpid())
	}
	f := &FrontDoor{cfg: c, log: o.Log, clock: o.Clock, table: frontdoor.NewTable(c.Zones(), frontdoor.DefaultHealthPolicy),
		metrics: prometheus.NewRegistry(), refuseLog: loglimit.New(o.Log)}
	f.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grayzone_frontdoor_xds_refused_total",
		Help: "States from serve's xDS server the front door refused (NACKed, kept the last good state), by reason."}, []string{"reason"})
	for _, r := range refusalReasons {
		f.refused.WithLabelValues(r)
	}
	f.metrics.MustRegister(f.refused)
	var err error
	if c.TLS.Enabled() {
		if f.cert, err = certreload.NewCert(c.TLS.CertFile, c.TLS.KeyFile, f.clock.Now); err != nil {
			return nil, fmt.Errorf("frontdoor: %s: tls: %w", c.File, err)
		}
		if f.roots, err = certreload.NewPool(c.TLS.CAFile, f.clock.Now); err != nil {
			return nil, fmt.Errorf("frontdoor: %s: tls: %w", c.File, err)
		}
	} else if c.Insecure {
		f.log.Warn("xds: plaintext to serve (insecure: true): anyone on the network path can read the routing or feed the front door another", "xds", c.XDS)
	}
	st, ok, err := Load(c.StateFile, c.Resource)
	if err != nil {
		return nil, err
	}
	if ok {
		if reason, err := f.check(st, 0); err != nil {
			// Written by an older front door, or the configuration changed since.
			return nil, fmt.Errorf("frontdoor: %s: the saved state is refused (%s): %w; remove the file to start without it", c.StateFile, reason, err)
		}
		if err := st.Apply(f.table, f.clock.Now()); err != nil {
			return nil, fmt.Errorf("frontdoor: %s: %w", c.StateFile, err)
		}
		f.state, f.have = st, true
		f.log.Info("routing with the last state received", "received_at", st.ReceivedAt.Format(time.RFC3339), "state", st.String())
	} else {
		f.log.Info("no saved state yet: no targets until serve answers", "state_file", c.StateFile)
	}
	f.proxy, err = frontdoor.StartProxy(ctx, f.table, frontdoor.ProxyOptions{Regional: c.Regional, Zonal: c.Zonal, Log: f.log,
		Limits: frontdoor.Limits{MaxConnections: c.MaxConnections, ResponseTimeout: c.ResponseTimeout}})
	if err != nil {
		return nil, fmt.Errorf("frontdoor: %w", err)
	}
	if c.MetricsListen != "" {
		if f.metricsLn, err = net.Listen("tcp", c.MetricsListen); err != nil {
			f.proxy.Close()
			return nil, fmt.Errorf("frontdoor: metrics_listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(f.metrics, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
		go srv.Serve(f.metricsLn)
	}
	ctx, f.cancel = context.WithCancel(ctx)
	run := func(fn func(context.Context)) { f.wg.Add(1); go func() { defer f.wg.Done(); fn(ctx) }() }
	run(func(ctx context.Context) {
		(&frontdoor.HealthChecker{Table: f.table, Path: c.Health.Path, Interval: c.Health.Interval, Timeout: c.Health.Timeout, Log: f.log}).Run(ctx)
	})
	run(f.follow)
	// The ticker exists before Start returns, so a test's fake clock drives it.
	tick, stop := f.clock.NewTicker(250 * time.Millisecond)
	run(func(ctx context.Context) { defer stop(); f.expire(ctx, tick) })
	return f, nil
}

// Table is the front door's routing table.
func (f *FrontDoor) Table() *frontdoor.Table { return f.table }

// State is the last state received (or loaded).
func (f *FrontDoor) State() (State, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.have
}

// RegionalURL and ZonalURL are the endpoints' base URLs.
func (f *FrontDoor) RegionalURL() string         { return f.proxy.RegionalURL() }
func (f *FrontDoor) ZonalURL(zone string) string { return f.proxy.ZonalURL(zone) }

// Metrics is the front door's own registry (what metrics_listen serves).
func (f *FrontDoor) Metrics() *prometheus.Registry { return f.metrics }

// MetricsURL is the base URL of metrics_listen ("" when not set).
func (f *FrontDoor) MetricsURL() string {
	if f.metricsLn == nil {
		return ""
	}
	return "http://" + f.metricsLn.Addr().String()
}

// Close stops following serve and closes the endpoints.
func (f *FrontDoor) Close() {
	f.cancel()
	f.wg.Wait()
	f.proxy.Close()
	if f.metricsLn != nil {
		f.metricsLn.Close()
	}
}

// follow keeps an ADS stream to serve open, reconnecting with backoff;
// while there is none, the front door routes with the last state.
func (f *FrontDoor) follow(ctx context.Context) {
	names := []string{f.cfg.Resource}
	for _, z := range f.cfg.Zones() {
		names = append(names, xds.ZonalName(f.cfg.Resource, z))
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		clas := map[string]*endpoint.ClusterLoadAssignment{}
		connected := false
		var tlsConf *tls.Config
		if f.cert != nil {
			tlsConf = certreload.MutualClient(f.cert, f.roots, f.cfg.TLS.ServerName) // per connection: renewed roots apply
		}
		err := xds.Watch(ctx, f.cfg.XDS, tlsConf, f.cfg.NodeID, map[string][]string{resource.EndpointType: names}, func(u xds.Update) error {
			next := maps.Clone(clas)
			for name, m := range u.Resources {
				next[name] = m.(*endpoint.ClusterLoadAssignment)
			}
			st, err := FromAssignments(f.cfg.Resource, f.cfg.Zones(), next, f.clock.Now())
			if err != nil {
				clas = next
				return nil // not every assignment yet: wait for the rest
			}
			// A version that is not grayzone's (EPOCH.HASH) is taken as
			// epoch 0: a serve from before epochs, never newer than a leader's.
			st.Epoch, _ = xds.EpochOf(u.Version)
			if !connected {
				connected = true
				backoff = 100 * time.Millisecond
				f.log.Info("in sync with serve", "xds", f.cfg.XDS, "state", st.String())
			}
			if err := f.take(st); err != nil {
				return err // NACK; the assignments of the refused update are forgotten too
			}
			clas = next
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		f.log.Warn("serve unreachable: routing with the last state received", "xds", f.cfg.XDS, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-f.clock.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// Reasons a state from serve is refused (the label of
// grayzone_frontdoor_xds_refused_total).
const (
	RefusedStaleEpoch    = "stale_epoch"    // older than the state held: a deposed leader's
	RefusedSeveralShifts = "several_shifts" // more than one zone shifted away
	RefusedUnknownTarget = "unknown_target" // a backend not in the front door's own targets
	RefusedUnusable      = "unusable"       // cannot be applied to the routing table
)

var refusalReasons = []string{RefusedStaleEpoch, RefusedSeveralShifts, RefusedUnknownTarget, RefusedUnusable}

// check decides whether the front door may route with st, given the epoch
// of the state it holds; reason names a refusal.
func (f *FrontDoor) check(st State, held uint64) (reason string, err error) {
	if st.Epoch < held {
		return RefusedStaleEpoch, fmt.Errorf("state of leadership epoch %d, older than the %d held: a deposed serve's", st.Epoch, held)
	}
	if len(st.Shifted) > 1 {
		zones := slices.Sorted(maps.Keys(st.Shifted))
		return RefusedSeveralShifts, fmt.Errorf("%d zones shifted away (%s); at most one zone is ever shifted", len(zones), strings.Join(zones, ", "))
	}
	for _, t := range st.Targets {
		if !f.cfg.allowed(t) {
			return RefusedUnknownTarget, fmt.Errorf("target %s (zone %s, %s) is not one of the front door's targets", t.ID, t.Zone, t.Addr)
		}
	}
	return "", nil
}

// refuse counts and logs a refused state; the error NACKs it.
func (f *FrontDoor) refuse(reason string, err error, st State) error {
	f.refused.WithLabelValues(reason).Inc()
	f.refuseLog.Warn(context.Background(), "refused a state from serve; routing with the last good one", slog.String("reason", reason),
		slog.String("why", err.Error()), slog.String("xds", f.cfg.XDS), slog.String("refused_state", st.String()))
	return fmt.Errorf("grayzone frontdoor refused the state (%s): %w", reason, err)
}

// take applies a state received from serve and saves it, unless check
// refuses it: then the last good state stays in force, and on disk.
func (f *FrontDoor) take(st State) error {
	f.mu.Lock()
	same := f.have && reflect.DeepEqual(withoutTime(f.state), withoutTime(st))
	held := f.state.Epoch
	f.mu.Unlock()
	if same {
		return nil
	}
	if reason, err := f.check(st, held); err != nil {
		return f.refuse(reason, err, st)
	}
	if err := st.Apply(f.table, f.clock.Now()); err != nil {
		return f.refuse(RefusedUnusable, err, st) // NACK: serve logs and counts it
	}
	if err := st.Save(f.cfg.StateFile); err != nil {
		f.log.Error("could not save the state; routing with it anyway", "err", err)
	}
	f.mu.Lock()
	f.state, f.have = st, true
	f.mu.Unlock()
	f.log.Info("routing updated", "state", st.String())
	return nil
}

func withoutTime(s State) State { s.ReceivedAt = time.Time{}; return s }

// expire ends shifts whose expiry passed, on the front door's own clock:
// serve would have ended them, and may be unable to say so.
func (f *FrontDoor) expire(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			now := f.clock.Now() // not the tick's time: a late tick must not hold a shift past its expiry
			f.mu.Lock()
			st := f.state
			f.mu.Unlock()
			for _, z := range f.table.Zones() {
				if want := st.ShiftedAt(z, now); f.table.Shifted(z) != want {
					_ = f.table.SetShifted(z, want)
					if !want {
						f.log.Info("shift expired on the front door's clock", "zone", z)
					}
				}
			}
		}
	}
}
