// Package frontdoor is grayzone's zone-aware front door, shaped like an AWS
// ALB with cross-zone load balancing off: one zonal endpoint per zone that
// sends only to that zone's targets, and a regional endpoint that spreads
// customer traffic across the zones that are not shifted away.
//
// Table is the routing logic with no I/O; the HTTP proxy (real mode) and the
// simulator both route through it, so they cannot disagree.
package frontdoor

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/grayzone/grayzone/actuator"
)

// Target is one backend instance.
type Target struct {
	ID   string
	Zone string
	Addr string // host:port; empty in sim mode
}

// HealthPolicy is the load balancer's health-check thresholds.
type HealthPolicy struct {
	HealthyThreshold   int // consecutive passes to become healthy again
	UnhealthyThreshold int // consecutive failures to be taken out
}

// DefaultHealthPolicy mirrors an ALB tuned for a lab: 2 failures out, 2 passes back.
var DefaultHealthPolicy = HealthPolicy{HealthyThreshold: 2, UnhealthyThreshold: 2}

type targetState struct {
	Target
	healthy bool
	streak  int // consecutive results disagreeing with healthy
}

// Table holds zones, targets, health and shifts, and publishes an immutable
// Snapshot on every change so the request path reads it without locks.
type Table struct {
	mu      sync.Mutex
	policy  HealthPolicy
	zones   []string
	targets map[string][]*targetState // zone -> targets, in insertion order
	shifted map[string]bool
	// weight: a shifted zone's gradual return, percent of a full zone's
	// weight in the regional turn (absent: 0, the shift fully in force).
	weight map[string]int
	snap   atomic.Pointer[Snapshot]
	// Round-robin counters survive snapshot swaps, so a change does not
	// restart every zone at its first target.
	regionalRR atomic.Uint64
	zoneRR     map[string]*atomic.Uint64
	fence      uint64 // highest fencing token seen (SetShiftedFenced)
}

// NewTable returns a table for the zones, with no targets.
func NewTable(zones []string, policy HealthPolicy) *Table {
	if policy.HealthyThreshold <= 0 {
		policy.HealthyThreshold = DefaultHealthPolicy.HealthyThreshold
	}
	if policy.UnhealthyThreshold <= 0 {
		policy.UnhealthyThreshold = DefaultHealthPolicy.UnhealthyThreshold
	}
	t := &Table{
		policy:  policy,
		zones:   slices.Clone(zones),
		targets: make(map[string][]*targetState),
		shifted: make(map[string]bool),
		weight:  make(map[string]int),
		zoneRR:  make(map[string]*atomic.Uint64),
	}
	for _, z := range zones {
		t.zoneRR[z] = new(atomic.Uint64)
	}
	t.publishLocked()
	return t
}

// Zones lists the table's zones.
func (t *Table) Zones() []string { return slices.Clone(t.zones) }

func (t *Table) knownZone(z string) bool { return slices.Contains(t.zones, z) }

// AddTarget registers a healthy target (as a load balancer does once a new
// instance passes its first checks).
func (t *Table) AddTarget(tg Target) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.knownZone(tg.Zone) {
		return fmt.Errorf("frontdoor: target %s: unknown zone %q", tg.ID, tg.Zone)
	}
	for _, ts := range t.targets[tg.Zone] {
		if ts.ID == tg.ID {
			return fmt.Errorf("frontdoor: target %s already registered", tg.ID)
		}
	}
	t.targets[tg.Zone] = append(t.targets[tg.Zone], &targetState{Target: tg, healthy: true})
	t.publishLocked()
	return nil
}

// RemoveTarget deregisters a target; unknown ids are ignored.
func (t *Table) RemoveTarget(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for z, ts := range t.targets {
		for i, s := range ts {
			if s.ID == id {
				t.targets[z] = slices.Delete(ts, i, i+1)
				t.publishLocked()
				return
			}
		}
	}
}

// ReportHealth records one health-check result and reports whether the
// target's routing state changed.
func (t *Table) ReportHealth(id string, ok bool) (changed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ts := range t.targets {
		for _, s := range ts {
			if s.ID != id {
				continue
			}
			if ok == s.healthy {
				s.streak = 0
				return false
			}
			s.streak++
			need := t.policy.UnhealthyThreshold
			if ok {
				need = t.policy.HealthyThreshold
			}
			if s.streak < need {
				return false
			}
			s.healthy, s.streak = ok, 0
			t.publishLocked()
			return true
		}
	}
	return false
}

// SetShifted takes the zone out of (away=true) or back into the regional endpoint.
// Its zonal endpoint is unaffected.
func (t *Table) SetShifted(zone string, away bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.setShiftedLocked(zone, away)
}

func (t *Table) setShiftedLocked(zone string, away bool) error {
	if !t.knownZone(zone) {
		return fmt.Errorf("frontdoor: unknown zone %q", zone)
	}
	if t.shifted[zone] == away {
		return nil
	}
	t.shifted[zone] = away
	delete(t.weight, zone) // a shift starts, and ends, at weight 0
	t.publishLocked()
	return nil
}

// SetWeight gives a shifted zone a weight of percent (0-100) of a full
// zone's in the regional endpoint while its shift stays in force: a gradual
// return (actuator.Weigher). Weights are relative, as in HAProxy and Envoy:
// see weightedTurns. Ending (or starting) the zone's shift resets it to 0.
func (t *Table) SetWeight(zone string, percent int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.setWeightLocked(zone, percent)
}

func (t *Table) setWeightLocked(zone string, percent int) error {
	if !t.knownZone(zone) {
		return fmt.Errorf("frontdoor: unknown zone %q", zone)
	}
	if err := actuator.CheckWeight(percent); err != nil {
		return fmt.Errorf("frontdoor: zone %s: %w", zone, err)
	}
	if t.weight[zone] == percent {
		return nil
	}
	if percent == 0 {
		delete(t.weight, zone)
	} else {
		t.weight[zone] = percent
	}
	t.publishLocked()
	return nil
}

// Weight is the shifted zone's weight (0: none, or not shifted).
func (t *Table) Weight(zone string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.weight[zone]
}

// Shifted reports whether the zone is shifted away.
func (t *Table) Shifted(zone string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.shifted[zone]
}

// Targets lists every target with its health, zone by zone.
func (t *Table) Targets() []TargetStatus { return t.AppendTargets(nil) }

// AppendTargets appends Targets' list to dst and returns it: a caller that
// asks every health-check round (sim mode, every virtual second) reuses its
// slice rather than allocating one per round.
func (t *Table) AppendTargets(dst []TargetStatus) []TargetStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, z := range t.zones {
		n += len(t.targets[z])
	}
	dst = slices.Grow(dst, n) // one allocation at most, not append's doublings
	for _, z := range t.zones {
		for _, s := range t.targets[z] {
			dst = append(dst, TargetStatus{Target: s.Target, Healthy: s.healthy})
		}
	}
	return dst
}

// TargetStatus is a target and whether the load balancer considers it healthy.
type TargetStatus struct {
	Target
	Healthy bool
}

// Snapshot returns the current routing snapshot.
func (t *Table) Snapshot() *Snapshot { return t.snap.Load() }

func (t *Table) publishLocked() {
	s := &Snapshot{zonal: make(map[string]*zoneRoute, len(t.zones)), regionalRR: &t.regionalRR}
	share := map[*zoneRoute]int{} // percent of a full zone's weight, for zones returning from a shift
	for i, z := range t.zones {
		zr := &zoneRoute{zone: z, slot: i, rr: t.zoneRR[z]}
		var all []*Target
		for _, ts := range t.targets[z] {
			tg := ts.Target
			all = append(all, &tg)
			if ts.healthy {
				zr.targets = append(zr.targets, &tg)
			}
		}
		healthy := len(zr.targets) > 0
		// Fail open like an ALB: with every target unhealthy, the zonal
		// endpoint routes to all of them.
		if !healthy {
			zr.targets = all
		}
		s.zonal[z] = zr
		// The regional endpoint, like DNS in front of an ALB, leaves out a
		// zone with no healthy target at all.
		switch w := t.weight[z]; {
		case !healthy:
		case !t.shifted[z]:
			s.regional = append(s.regional, zr)
		case w > 0:
			s.regional = append(s.regional, zr)
			share[zr] = w
		}
	}
	// With every zone shifted or empty, the regional endpoint still serves from
	// whatever exists rather than failing every customer.
	if len(s.regional) == 0 {
		for _, z := range t.zones {
			if zr := s.zonal[z]; len(zr.targets) > 0 {
				s.regional = append(s.regional, zr)
			}
		}
	}
	if len(share) > 0 {
		s.turns = weightedTurns(s.regional, share)
	}
	t.snap.Store(s)
}

// weightedTurns is the regional endpoint's order of zones when some return
// from a shift at a weight: a zone's weight is relative, as in HAProxy's
// server weights and Envoy's locality weights (a zone at w % weighs w, one at
// its full share 100), so with k zones one at w % gets w/(w+100(k−1)) of the
// turns: 2.4 % at 5 % with three zones, 11 % at 25 %. The order is smooth
// weighted round robin (nginx's): the zones' turns are interleaved, so a zone
// at 5 % gets one turn in 41, evenly spaced, not a burst of them; and it is
// exact over each cycle, so the lab's sim mode stays deterministic.
func weightedTurns(set []*zoneRoute, share map[*zoneRoute]int) []*zoneRoute {
	k := len(set)
	weights := make([]int, k)
	for i, zr := range set {
		weights[i] = 100
		if w, ok := share[zr]; ok {
			weights[i] = w
		}
	}
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	total := 0
	for i := range weights {
		weights[i] /= g
		total += weights[i]
	}
	turns := make([]*zoneRoute, 0, total)
	cur := make([]int, k)
	for range total {
		best := 0
		for i := range cur {
			cur[i] += weights[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		turns = append(turns, set[best])
	}
	return turns
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Snapshot is an immutable routing state; picks on it are safe for concurrent use.
type Snapshot struct {
	regional []*zoneRoute
	// turns, when a zone returns from a shift at a weight, is the order of
	// zones the regional endpoint takes in turn (weightedTurns); nil: each
	// zone of regional in turn.
	turns      []*zoneRoute
	zonal      map[string]*zoneRoute
	regionalRR *atomic.Uint64
}

type zoneRoute struct {
	zone    string
	slot    int // the zone's place in the table (Cursor.zonal)
	targets []*Target
	rr      *atomic.Uint64
}

func (zr *zoneRoute) pick() *Target {
	if len(zr.targets) == 0 {
		return nil
	}
	return zr.targets[(zr.rr.Add(1)-1)%uint64(len(zr.targets))]
}

// turnSet is the regional endpoint's zones, one per turn.
func (s *Snapshot) turnSet() []*zoneRoute {
	if s.turns != nil {
		return s.turns
	}
	return s.regional
}

// PickRegional chooses a target for a customer request: a zone in turn among
// those not shifted away (DNS spreading across zonal endpoints; a zone
// returning from a shift at a weight gets its share of the turns), then a
// target in turn within it. nil when there is no target at all.
func (s *Snapshot) PickRegional() *Target {
	set := s.turnSet()
	if len(set) == 0 {
		return nil
	}
	zr := set[(s.regionalRR.Add(1)-1)%uint64(len(set))]
	return zr.pick()
}

// PickZonal chooses a target of the zone's own endpoint.
func (s *Snapshot) PickZonal(zone string) *Target {
	zr := s.zonal[zone]
	if zr == nil {
		return nil
	}
	return zr.pick()
}

// Cursor is one caller's own place in a table's round robins, for a caller
// that makes every pick on the table itself, from one goroutine (the lab's
// sim mode): PickRegionalWith and PickZonalWith through it choose what
// PickRegional and PickZonal would, in the same order (both start at the
// first turn), without the atomic add and the division per turn that
// requests on many goroutines need (a tenth of a simulated hour's request
// path). The table's own counters are then left alone. The zero Cursor is
// ready to use.
type Cursor struct {
	regional turn
	zonal    []turn // by zoneRoute.slot
}

// turn is a round-robin counter: n turns taken, and at = n modulo size,
// kept as long as the set it turns through keeps its size.
type turn struct{ n, size, at uint64 }

// next takes a turn through a set of size elements (size > 0) and returns
// the index of the element, (n-1) mod size as an atomic counter's Add(1)-1
// would give.
func (t *turn) next(size int) uint64 {
	if s := uint64(size); s != t.size {
		t.size, t.at = s, t.n%s
	}
	i := t.at
	t.n++
	if t.at++; t.at == t.size {
		t.at = 0
	}
	return i
}

func (c *Cursor) pick(zr *zoneRoute) *Target {
	if len(zr.targets) == 0 {
		return nil
	}
	if zr.slot >= len(c.zonal) {
		c.zonal = append(c.zonal, make([]turn, zr.slot+1-len(c.zonal))...)
	}
	return zr.targets[c.zonal[zr.slot].next(len(zr.targets))]
}

// PickRegionalWith is PickRegional taking its turns from c.
func (s *Snapshot) PickRegionalWith(c *Cursor) *Target {
	set := s.turnSet()
	if len(set) == 0 {
		return nil
	}
	return c.pick(set[c.regional.next(len(set))])
}

// PickZonalWith is PickZonal taking its turns from c.
func (s *Snapshot) PickZonalWith(c *Cursor, zone string) *Target {
	zr := s.zonal[zone]
	if zr == nil {
		return nil
	}
	return c.pick(zr)
}

// RegionalZones lists the zones the regional endpoint currently sends to.
func (s *Snapshot) RegionalZones() []string {
	out := make([]string, len(s.regional))
	for i, zr := range s.regional {
		out[i] = zr.zone
	}
	return out
}
