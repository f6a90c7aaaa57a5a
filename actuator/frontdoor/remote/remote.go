package remote

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/actuator/xds"
	"github.com/grayzone/grayzone/internal/clock"
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
	f := &FrontDoor{cfg: c, log: o.Log, clock: o.Clock, table: frontdoor.NewTable(c.Zones(), frontdoor.DefaultHealthPolicy)}
	st, ok, err := Load(c.StateFile, c.Resource)
	if err != nil {
		return nil, err
	}
	if ok {
		if err := st.Apply(f.table, f.clock.Now()); err != nil {
			return nil, fmt.Errorf("frontdoor: %s: %w", c.StateFile, err)
		}
		f.state, f.have = st, true
		f.log.Info("routing with the last state received", "received_at", st.ReceivedAt.Format(time.RFC3339), "state", st.String())
	} else {
		f.log.Info("no saved state yet: no targets until serve answers", "state_file", c.StateFile)
	}
	f.proxy, err = frontdoor.StartProxy(ctx, f.table, frontdoor.ProxyOptions{Regional: c.Regional, Zonal: c.Zonal, Log: f.log})
	if err != nil {
		return nil, fmt.Errorf("frontdoor: %w", err)
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

// Close stops following serve and closes the endpoints.
func (f *FrontDoor) Close() {
	f.cancel()
	f.wg.Wait()
	f.proxy.Close()
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
		err := xds.Watch(ctx, f.cfg.XDS, f.cfg.NodeID, map[string][]string{resource.EndpointType: names}, func(u xds.Update) error {
			for name, m := range u.Resources {
				clas[name] = m.(*endpoint.ClusterLoadAssignment)
			}
			st, err := FromAssignments(f.cfg.Resource, f.cfg.Zones(), clas, f.clock.Now())
			if err != nil {
				return nil // not every assignment yet: wait for the rest
			}
			if !connected {
				connected = true
				backoff = 100 * time.Millisecond
				f.log.Info("in sync with serve", "xds", f.cfg.XDS, "state", st.String())
			}
			return f.take(st)
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

// take applies a state received from serve and saves it.
func (f *FrontDoor) take(st State) error {
	f.mu.Lock()
	same := f.have && reflect.DeepEqual(withoutTime(f.state), withoutTime(st))
	f.mu.Unlock()
	if same {
		return nil
	}
	if err := st.Apply(f.table, f.clock.Now()); err != nil {
		return err // NACK: serve logs and counts it
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
