// Package autoscaling is the control plane for EC2 Auto Scaling groups,
// through the official AWS SDK for Go v2: excluding a zone removes the
// zone's subnets from each group's VPCZoneIdentifier (subnet to AZ ID through
// EC2 DescribeSubnets), so the group launches no new capacity there and
// replaces the zone's instances in the remaining zones, keeping its desired
// capacity; including the zone puts back exactly the subnets grayzone took
// out.
//
// Durability: the subnets to remove are written to the store before the
// UpdateAutoScalingGroup call, and every step starts by reading the group's
// current state, so a step interrupted at any point (kill -9 included) is
// finished, not repeated or undone, when it is applied again.
//
// AZRebalance is deliberately left alone (neither suspended nor resumed):
// removing the subnets is what moves capacity out of the zone, and it is
// AZRebalance that does so launch-before-terminate, keeping the group's
// capacity while it happens; on inclusion, the same process moves capacity
// back evenly. Suspending it would leave the zone's instances running but
// unserved, and a suspension forgotten by a crashed controller would leave
// the group unbalanced for good.
//
// A group with ARC's zonal-shift integration (AvailabilityZoneImpairmentPolicy
// .ZonalShiftEnabled) follows the ARC zonal shift by itself: it is skipped.
package autoscaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/arc"
)

// Store keeps the subnets removed from each group; *store.DB is one. A
// record must be durable when PutState returns nil.
type Store interface {
	GetState(ctx context.Context, key string) ([]byte, bool, error)
	PutState(ctx context.Context, key string, value []byte) error
}

// MemoryStore is a Store in memory, for runs that end with the process
// (the lab) and tests.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

// GetState implements Store.
func (s *MemoryStore) GetState(_ context.Context, k string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	return v, ok, nil
}

// PutState implements Store.
func (s *MemoryStore) PutState(_ context.Context, k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[k] = v
	return nil
}

// Event is one thing the actuator did or decided, for the audit log.
type Event struct {
	Kind  string // excluded, included, skipped
	Group string
	Zone  string
	Msg   string
}

// Options configure an Actuator.
type Options struct {
	Groups []string // Auto Scaling group names
	// MinCapacity is the number of in-service instances that must remain
	// outside the zone for its exclusion to go ahead (0: no check).
	MinCapacity int
	Store       Store
	Report      func(Event) // nil: discard
}

// Actuator implements actuator.Actuator for exclude_zone, include_zone and
// remove_extra.
type Actuator struct {
	as  *autoscaling.Client
	ec2 *ec2.Client
	o   Options
}

// New returns an actuator built from cfg (config.LoadDefaultConfig's, or
// the lab's), with the bounded retryer of every AWS actuator.
func New(cfg aws.Config, o Options) (*Actuator, error) {
	if len(o.Groups) == 0 || o.Store == nil {
		return nil, errors.New("autoscaling: groups and store are required")
	}
	return &Actuator{
		as: autoscaling.NewFromConfig(cfg, func(x *autoscaling.Options) {
			if cfg.Retryer == nil {
				x.Retryer = arc.Retryer()
			}
		}),
		ec2: ec2.NewFromConfig(cfg, func(x *ec2.Options) {
			if cfg.Retryer == nil {
				x.Retryer = arc.Retryer()
			}
		}),
		o: o,
	}, nil
}

// record is what grayzone took out of a group for a zone.
type record struct {
	Group   string   `json:"group"`
	Zone    string   `json:"zone"`
	Removed []string `json:"removed"` // subnets, in the group's order
}

func key(group, zone string) string { return "autoscaling/" + group + "/" + zone }

// Refusal is an exclusion grayzone will not make (it would leave the group
// without subnets or below min_capacity). The shift stays.
type Refusal struct{ Msg string }

func (r *Refusal) Error() string { return r.Msg }

// Apply implements actuator.Actuator.
func (a *Actuator) Apply(ctx context.Context, act actuator.Action) error {
	var errs []error
	for _, g := range a.o.Groups {
		var err error
		switch act.Kind {
		case actuator.ExcludeZone:
			err = a.exclude(ctx, g, act.Zone)
		case actuator.IncludeZone:
			err = a.include(ctx, g, act.Zone)
		case actuator.RemoveExtra:
			// The group kept its desired capacity: there is no extra to
			// remove; AZRebalance moves capacity back into the zone.
			continue
		default:
			return fmt.Errorf("autoscaling: %s: %w", act, actuator.ErrUnsupported)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("autoscaling group %s: %s: %w", g, act.Kind, err))
		}
	}
	return errors.Join(errs...)
}

func (a *Actuator) exclude(ctx context.Context, name, zone string) error {
	g, err := a.describe(ctx, name)
	if err != nil {
		return err
	}
	if p := g.AvailabilityZoneImpairmentPolicy; p != nil && aws.ToBool(p.ZonalShiftEnabled) {
		a.report(Event{Kind: "skipped", Group: name, Zone: zone,
			Msg: fmt.Sprintf("group %s has ARC zonal shift enabled (AvailabilityZoneImpairmentPolicy.ZonalShiftEnabled): it follows the zonal shift by itself; its subnets are left alone", name)})
		return nil
	}
	rec, _, err := a.load(ctx, name, zone)
	if err != nil {
		return err
	}
	subnets := split(aws.ToString(g.VPCZoneIdentifier))
	zoneOf, idOfName, err := a.zones(ctx, subnets)
	if err != nil {
		return err
	}
	var inZone, rest []string
	for _, s := range subnets {
		if zoneOf[s] == zone {
			inZone = append(inZone, s)
		} else {
			rest = append(rest, s)
		}
	}
	if len(inZone) == 0 {
		return nil // already excluded (by this step before a restart, or never in the zone)
	}
	if len(rest) == 0 {
		return &Refusal{Msg: fmt.Sprintf("refusing to exclude %s: every subnet of the group (%s) is in it, the group would be left with none", zone, strings.Join(subnets, ", "))}
	}
	if a.o.MinCapacity > 0 {
		outside := 0
		for _, in := range g.Instances {
			id := aws.ToString(in.AvailabilityZoneId)
			if id == "" { // older answers name the zone only
				id = idOfName[aws.ToString(in.AvailabilityZone)]
			}
			if in.LifecycleState == astypes.LifecycleStateInService && id != zone && id != "" {
				outside++
			}
		}
		if outside < a.o.MinCapacity {
			return &Refusal{Msg: fmt.Sprintf("refusing to exclude %s: %d in-service instance(s) outside it, below min_capacity %d", zone, outside, a.o.MinCapacity)}
		}
	}
	// Write what will be removed before removing it, so that include puts
	// back exactly these, whatever happens after this line.
	for _, s := range inZone {
		if !slices.Contains(rec.Removed, s) {
			rec.Removed = append(rec.Removed, s)
		}
	}
	rec.Group, rec.Zone = name, zone
	if err := a.save(ctx, rec); err != nil {
		return err
	}
	if err := a.update(ctx, name, rest); err != nil {
		return err
	}
	a.report(Event{Kind: "excluded", Group: name, Zone: zone,
		Msg: fmt.Sprintf("group %s: subnets %s of %s removed from VPCZoneIdentifier (now %s); desired capacity %d kept in the other zones",
			name, strings.Join(inZone, ", "), zone, strings.Join(rest, ","), aws.ToInt32(g.DesiredCapacity))})
	return nil
}

func (a *Actuator) include(ctx context.Context, name, zone string) error {
	rec, ok, err := a.load(ctx, name, zone)
	if err != nil || !ok || len(rec.Removed) == 0 {
		return err // nothing of ours to put back
	}
	g, err := a.describe(ctx, name)
	if err != nil {
		return err
	}
	subnets := split(aws.ToString(g.VPCZoneIdentifier))
	var missing []string
	for _, s := range rec.Removed {
		if !slices.Contains(subnets, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		if err := a.update(ctx, name, append(subnets, missing...)); err != nil {
			return err
		}
		a.report(Event{Kind: "included", Group: name, Zone: zone,
			Msg: fmt.Sprintf("group %s: subnets %s of %s restored to VPCZoneIdentifier", name, strings.Join(missing, ", "), zone)})
	}
	rec.Removed = nil
	return a.save(ctx, rec) // done: a repeat finds nothing to restore
}

func (a *Actuator) describe(ctx context.Context, name string) (astypes.AutoScalingGroup, error) {
	out, err := a.as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		return astypes.AutoScalingGroup{}, wrap("DescribeAutoScalingGroups", err)
	}
	for _, g := range out.AutoScalingGroups {
		if aws.ToString(g.AutoScalingGroupName) == name {
			return g, nil
		}
	}
	return astypes.AutoScalingGroup{}, fmt.Errorf("no Auto Scaling group named %s in this account and region", name)
}

func (a *Actuator) update(ctx context.Context, name string, subnets []string) error {
	_, err := a.as.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name),
		VPCZoneIdentifier: aws.String(strings.Join(subnets, ","))})
	if err != nil {
		return wrap("UpdateAutoScalingGroup", err)
	}
	return nil
}

// zones maps subnets to their AZ IDs, and AZ names to AZ IDs.
func (a *Actuator) zones(ctx context.Context, subnets []string) (zoneOf, idOfName map[string]string, err error) {
	out, err := a.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: subnets})
	if err != nil {
		return nil, nil, wrap("DescribeSubnets", err)
	}
	zoneOf, idOfName = map[string]string{}, map[string]string{}
	for _, s := range out.Subnets {
		zoneOf[aws.ToString(s.SubnetId)] = aws.ToString(s.AvailabilityZoneId)
		idOfName[aws.ToString(s.AvailabilityZone)] = aws.ToString(s.AvailabilityZoneId)
	}
	for _, s := range subnets {
		if zoneOf[s] == "" {
			return nil, nil, fmt.Errorf("DescribeSubnets gave no AZ ID for subnet %s", s)
		}
	}
	return zoneOf, idOfName, nil
}

func (a *Actuator) load(ctx context.Context, group, zone string) (record, bool, error) {
	data, ok, err := a.o.Store.GetState(ctx, key(group, zone))
	if err != nil || !ok {
		return record{}, false, err
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		return record{}, false, fmt.Errorf("stored exclusion record %s is unreadable: %w", key(group, zone), err)
	}
	return r, true, nil
}

func (a *Actuator) save(ctx context.Context, r record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := a.o.Store.PutState(ctx, key(r.Group, r.Zone), data); err != nil {
		return fmt.Errorf("write exclusion record before the call: %w", err)
	}
	return nil
}

func (a *Actuator) report(e Event) {
	if a.o.Report != nil {
		a.o.Report(e)
	}
}

func split(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// wrap makes an SDK error one line (the SDK's own text repeats the
// operation, status and request id); the SDK error stays in the chain.
func wrap(op string, err error) error {
	return arc.OneLine(op, err)
}
