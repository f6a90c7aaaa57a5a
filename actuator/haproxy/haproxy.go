// Package haproxy drives a running HAProxy as grayzone's data plane,
// through its runtime API: a zonal shift drains the zone's servers in the
// regional backends (established connections finish, no new requests go
// there), ending it makes them ready again.
//
// The actuator is level-triggered. It keeps the desired state (which zones
// are shifted away) and, every reconcile interval, reads the servers' state
// back with `show servers state` and corrects what differs. An HAProxy
// reload forgets runtime changes, and grayzone itself may have restarted:
// either way a shift in force is back in HAProxy within one interval.
//
// grayzone owns the drain (or maint) flag of the servers it maps: a server
// that is drained while its zone is not shifted is made ready again.
//
// A replica's orders carry its leadership's epoch into HAProxy, where an
// epoch record (a map the configuration declares) is read before each
// order and keeps a deposed leader's orders out; see epoch.go.
package haproxy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/internal/clock"
)

// Server is one server line of one HAProxy backend.
type Server struct {
	Backend, Name string
}

func (s Server) String() string { return s.Backend + "/" + s.Name }

// Shift states: what a shifted zone's servers are set to.
const (
	StateDrain = "drain" // no new requests, established ones finish, health checks go on
	StateMaint = "maint" // no traffic at all, health checks stop
)

// DefaultInterval is the default reconcile interval.
const DefaultInterval = 5 * time.Second

// Options configure an Actuator.
type Options struct {
	Runtime Runtime
	// Zones maps each zone to its servers in the regional backends.
	Zones map[string][]Server
	// ShiftState is StateDrain (default) or StateMaint.
	ShiftState string
	// Interval between reconciles (default DefaultInterval).
	Interval time.Duration
	Clock    clock.Clock
	Log      *slog.Logger
}

// Actuator carries zonal shifts out in HAProxy. It is safe for concurrent use.
type Actuator struct {
	o Options

	mu      sync.Mutex // serializes reconciles, guards shifted, weight and fence
	shifted map[string]bool
	weight  map[string]int // a shifted zone's gradual return, percent (weight.go)
	fence   epochFence

	refused          atomic.Uint64 // orders the epoch record refused
	loggedSuperseded uint64        // the record last logged by refuse
}

// New checks the options and returns an actuator; it does not talk to
// HAProxy until Apply, SetShifted, Reconcile or Run.
func New(o Options) (*Actuator, error) {
	if o.Runtime.Addr == "" {
		return nil, fmt.Errorf("haproxy: no runtime API address")
	}
	switch o.ShiftState {
	case "":
		o.ShiftState = StateDrain
	case StateDrain, StateMaint:
	default:
		return nil, fmt.Errorf("haproxy: shift state %q: want %s or %s", o.ShiftState, StateDrain, StateMaint)
	}
	if len(o.Zones) == 0 {
		return nil, fmt.Errorf("haproxy: no zones mapped to servers")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Actuator{o: o, shifted: map[string]bool{}, weight: map[string]int{}}, nil
}

// Apply implements actuator.Actuator for shift_away and end_shift.
func (a *Actuator) Apply(ctx context.Context, act actuator.Action) error {
	switch act.Kind {
	case actuator.ShiftAway:
		return a.SetShifted(ctx, act.Zone, true)
	case actuator.EndShift:
		return a.SetShifted(ctx, act.Zone, false)
	case actuator.SetWeight:
		return a.SetWeight(ctx, act.Zone, act.Weight)
	}
	return fmt.Errorf("haproxy: %s: %w", act, actuator.ErrUnsupported)
}

// SetShifted records the zone's desired state and, when it changed, makes
// HAProxy match at once: the zone's servers are set to the shift state, or
// to ready, over one runtime API connection, without reading their state
// first. That command is what moves traffic, and each round trip before it
// is time the zone still gets new requests (or stays empty). grayzone owns
// the flag of the servers it maps, so nothing needs reading first; the
// reconcile loop corrects any drift. The one read is the epoch record's,
// when ctx carries an epoch (see exchange). On error the desired state
// stays recorded and the next reconcile retries.
func (a *Actuator) SetShifted(ctx context.Context, zone string, away bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	servers, ok := a.o.Zones[zone]
	if !ok {
		return fmt.Errorf("haproxy: unknown zone %q", zone)
	}
	if a.shifted[zone] == away {
		return nil
	}
	a.shifted[zone] = away
	state := "ready"
	if away {
		state = a.o.ShiftState
	}
	cmds := setStateCommands(map[string][]Server{state: servers})
	if a.weight[zone] > 0 { // a weighted return ends: the servers' full weight back too
		delete(a.weight, zone)
		cmds = weightCmds(servers, 0, state)
	}
	if err := a.exchange(ctx, nil, func([]string) ([]string, error) { return cmds, nil }); err != nil {
		return err
	}
	a.o.Log.Info("haproxy zone set", "runtime_api", a.o.Runtime.Addr, "zone", zone, state, names(servers))
	return nil
}

// Shifted reports the zone's desired state.
func (a *Actuator) Shifted(zone string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.shifted[zone]
}

// Reconcile reads every mapped backend's servers and sets those whose state
// differs from the desired one, over one runtime API connection (with the
// epoch record, see exchange); it returns how many it changed.
func (a *Actuator) Reconcile(ctx context.Context) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	backends := a.backends()
	var toShift, toReady, toWeigh []Server
	err := a.exchange(ctx, serversStateCommands(backends), func(answers []string) ([]string, error) {
		byBackend, err := serversStates(backends, strings.Join(answers, ""))
		if err != nil {
			return nil, err
		}
		toShift, toReady, toWeigh, err = a.differing(byBackend)
		if err != nil {
			return nil, err
		}
		return append(a.weighCmds(toWeigh), setStateCommands(map[string][]Server{a.o.ShiftState: toShift, "ready": toReady})...), nil
	})
	if err != nil {
		return 0, err
	}
	if n := len(toShift) + len(toReady) + len(toWeigh); n > 0 {
		a.o.Log.Info("haproxy reconciled", "runtime_api", a.o.Runtime.Addr, a.o.ShiftState, names(toShift), "ready", names(toReady), "weight", names(toWeigh))
	}
	return len(toShift) + len(toReady) + len(toWeigh), nil
}

// differing lists the mapped servers whose state differs from their zone's
// desired one, and those whose weight differs from their zone's gradual
// return.
func (a *Actuator) differing(byBackend map[string][]ServerState) (toShift, toReady, toWeigh []Server, err error) {
	for _, zone := range sortedKeys(a.o.Zones) {
		w := a.weight[zone]
		away := a.shifted[zone] && w == 0 // a zone returning at a weight is ready, at that weight
		for _, s := range a.o.Zones[zone] {
			st, ok := find(byBackend[s.Backend], s.Name)
			if !ok {
				return nil, nil, nil, fmt.Errorf("haproxy: server %s (zone %s) is not in HAProxy's backend %s", s, zone, s.Backend)
			}
			is := a.held(st)
			switch {
			case away && !is:
				toShift = append(toShift, s)
			case !away && is:
				toReady = append(toReady, s)
			}
			if w > 0 && st.UWeight != st.IWeight*w/100 { // HAProxy's own rounding of N%
				toWeigh = append(toWeigh, s)
			}
		}
	}
	return toShift, toReady, toWeigh, nil
}

// held reports whether the server is in the shift state grayzone sets.
func (a *Actuator) held(st ServerState) bool {
	if a.o.ShiftState == StateMaint {
		return st.Maint()
	}
	return st.Drained()
}

// Run reconciles every interval until ctx is done, logging failures (HAProxy
// down or reloading); the desired state is kept and retried.
func (a *Actuator) Run(ctx context.Context) {
	tick, stop := a.o.Clock.NewTicker(a.o.Interval)
	defer stop()
	failing := false
	for {
		if _, err := a.Reconcile(ctx); err != nil {
			if !failing && ctx.Err() == nil {
				a.o.Log.Warn("haproxy reconcile failed; retrying every interval", "err", err, "interval", a.o.Interval)
			}
			failing = true
		} else if failing {
			a.o.Log.Info("haproxy reconcile succeeded again", "runtime_api", a.o.Runtime.Addr)
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

func (a *Actuator) backends() []string {
	var out []string
	for _, ss := range a.o.Zones {
		for _, s := range ss {
			if !slices.Contains(out, s.Backend) {
				out = append(out, s.Backend)
			}
		}
	}
	sort.Strings(out)
	return out
}

func find(rows []ServerState, name string) (ServerState, bool) {
	for _, r := range rows {
		if r.Server == name {
			return r, true
		}
	}
	return ServerState{}, false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func names(ss []Server) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.String()
	}
	return out
}
