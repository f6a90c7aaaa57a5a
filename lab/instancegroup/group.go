// Package instancegroup models the workshop's Auto Scaling group: it owns the
// app instances, and on a zonal event it can exclude a zone (launch
// replacement capacity in the other zones while the zone's own instances keep
// running idle) and include it again, then remove the extra capacity.
//
// Group holds the bookkeeping; a Launcher starts and stops real (or simulated)
// instances. Every change is one control-plane call that succeeds whole or
// fails whole, and may be refused while the control plane is impaired.
package instancegroup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/grayzone/grayzone/actuator"
)

// Instance is one member of the group.
type Instance struct {
	ID   string
	Zone string
	// Extra marks replacement capacity launched while ForZone was excluded.
	Extra   bool
	ForZone string
}

// Launcher starts and stops instances. Both must be idempotent.
type Launcher interface {
	Launch(ctx context.Context, in Instance) error
	Terminate(ctx context.Context, in Instance) error
}

// ErrControlPlaneUnavailable is returned while the control plane is impaired.
var ErrControlPlaneUnavailable = errors.New("instance group control plane unavailable")

// Group is an instance group over a fixed set of zones. Safe for concurrent use.
type Group struct {
	mu        sync.Mutex
	zones     []string
	launcher  Launcher
	instances []Instance
	excluded  map[string]bool
	next      map[string]int // next instance number per zone
	available func() bool
}

// New returns a group that already owns the given instances (launched by the
// caller). available reports whether the control plane answers; nil means always.
func New(zones []string, initial []Instance, l Launcher, available func() bool) *Group {
	g := &Group{
		zones:     slices.Clone(zones),
		launcher:  l,
		instances: slices.Clone(initial),
		excluded:  make(map[string]bool),
		next:      make(map[string]int),
		available: available,
	}
	for _, z := range zones {
		g.next[z] = 1
	}
	for _, in := range initial {
		g.next[in.Zone]++
	}
	return g
}

// Snapshot is the group's state for display and reports.
type Snapshot struct {
	Excluded []string
	PerZone  map[string]int // running instances per zone
	Extra    int
}

func (s Snapshot) String() string {
	zs := make([]string, 0, len(s.PerZone))
	for z := range s.PerZone {
		zs = append(zs, z)
	}
	sort.Strings(zs)
	out := ""
	for i, z := range zs {
		if i > 0 {
			out += " "
		}
		mark := ""
		if slices.Contains(s.Excluded, z) {
			mark = "(excluded)"
		}
		out += fmt.Sprintf("%s=%d%s", z, s.PerZone[z], mark)
	}
	return out
}

// Snapshot returns the current state.
func (g *Group) Snapshot() Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := Snapshot{PerZone: make(map[string]int), Excluded: g.excludedLocked()}
	for _, z := range g.zones {
		s.PerZone[z] = 0
	}
	for _, in := range g.instances {
		s.PerZone[in.Zone]++
		if in.Extra {
			s.Extra++
		}
	}
	return s
}

// ExcludedZones lists the excluded zones, in zone order (Snapshot's Excluded,
// without counting the instances: sim mode asks every simulated second).
func (g *Group) ExcludedZones() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.excludedLocked()
}

// excludedLocked lists the excluded zones in zone order; g.mu is held.
func (g *Group) excludedLocked() []string {
	var ex []string
	for _, z := range g.zones {
		if g.excluded[z] {
			ex = append(ex, z)
		}
	}
	return ex
}

// Instances lists the group's instances.
func (g *Group) Instances() []Instance {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.instances)
}

func (g *Group) checkLocked(zone string) error {
	if !slices.Contains(g.zones, zone) {
		return fmt.Errorf("instancegroup: unknown zone %q", zone)
	}
	if g.available != nil && !g.available() {
		return ErrControlPlaneUnavailable
	}
	return nil
}

// Exclude stops new capacity going to the zone and launches, in the other
// included zones, as many replacement instances as the zone has. The zone's
// own instances keep running. Repeating it is harmless; a failed launch
// leaves what was launched recorded, and a retry launches the rest.
func (g *Group) Exclude(ctx context.Context, zone string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkLocked(zone); err != nil {
		return err
	}
	own, extra := 0, 0
	for _, in := range g.instances {
		if in.Zone == zone && !in.Extra {
			own++
		}
		if in.Extra && in.ForZone == zone {
			extra++
		}
	}
	var others []string
	for _, z := range g.zones {
		if z != zone && !g.excluded[z] {
			others = append(others, z)
		}
	}
	if len(others) == 0 {
		return fmt.Errorf("instancegroup: cannot exclude %s: no other zone takes capacity", zone)
	}
	for i := extra; i < own; i++ {
		z := others[i%len(others)]
		in := Instance{ID: fmt.Sprintf("%s-%d", z, g.next[z]), Zone: z, Extra: true, ForZone: zone}
		if err := g.launcher.Launch(ctx, in); err != nil {
			return fmt.Errorf("instancegroup: launch %s: %w", in.ID, err)
		}
		g.next[z]++
		g.instances = append(g.instances, in)
	}
	// Excluded only once the replacement capacity is all up: a failed
	// exclusion leaves the zone taking capacity, as before it.
	g.excluded[zone] = true
	return nil
}

// Include lets the zone take capacity again. The extra capacity stays until RemoveExtra.
func (g *Group) Include(_ context.Context, zone string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkLocked(zone); err != nil {
		return err
	}
	delete(g.excluded, zone)
	return nil
}

// RemoveExtra terminates the replacement capacity launched for the zone's exclusion.
func (g *Group) RemoveExtra(ctx context.Context, zone string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkLocked(zone); err != nil {
		return err
	}
	if g.excluded[zone] {
		return fmt.Errorf("instancegroup: %s is still excluded; include it before removing its replacement capacity", zone)
	}
	kept := g.instances[:0]
	var firstErr error
	for _, in := range g.instances {
		if in.Extra && in.ForZone == zone && firstErr == nil {
			if err := g.launcher.Terminate(ctx, in); err != nil {
				firstErr = fmt.Errorf("instancegroup: terminate %s: %w", in.ID, err)
				kept = append(kept, in)
			}
			continue
		}
		kept = append(kept, in)
	}
	g.instances = kept
	return firstErr
}

// Excluded reports whether the zone is excluded.
func (g *Group) Excluded(zone string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.excluded[zone]
}

// Actuator exposes the group as the control plane.
type Actuator struct{ Group *Group }

// Apply implements actuator.Actuator.
func (a Actuator) Apply(ctx context.Context, act actuator.Action) error {
	switch act.Kind {
	case actuator.ExcludeZone:
		return a.Group.Exclude(ctx, act.Zone)
	case actuator.IncludeZone:
		return a.Group.Include(ctx, act.Zone)
	case actuator.RemoveExtra:
		return a.Group.RemoveExtra(ctx, act.Zone)
	}
	return fmt.Errorf("instancegroup: %s: %w", act, actuator.ErrUnsupported)
}
