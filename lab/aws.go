package lab

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/arc"
	"github.com/grayzone/grayzone/actuator/autoscaling"
	"github.com/grayzone/grayzone/lab/awsstandin"
	"github.com/grayzone/grayzone/lab/fault"
)

// Names of the lab's load balancer and Auto Scaling group in the stand-in.
const (
	labALB   = "arn:aws:elasticloadbalancing:us-east-2:123456789012:loadbalancer/app/grayzone-lab/0123456789abcdef"
	labGroup = "grayzone-lab"
)

// awsLab runs the lab's data and/or control plane through the AWS stand-in,
// with the real SDK clients and actuators serve uses: a shift is an ARC
// StartZonalShift, an exclusion an UpdateAutoScalingGroup. The lab's front
// door then obeys the zonal shifts the stand-in holds, and its instance
// group obeys the group's subnets, so customers see exactly what AWS would
// do with those calls.
type awsLab struct {
	srv *awsstandin.Server
	c   *core
	mu  sync.Mutex // serialises follow
	// at is the run's time when the current action started (unix ns): the
	// stand-in's clock. A snapshot, because in sim mode the virtual clock
	// belongs to the sim loop, which waits in the action meanwhile.
	at atomic.Int64
}

// useAWS switches the core's planes to the stand-in as o asks; stop ends it.
// now is the run's clock (virtual in sim mode). The stand-in's Auto Scaling
// endpoint is down while the scenario's control_plane_outage is.
func useAWS(ctx context.Context, o Options, c *core, now func() time.Time) (stop func(), err error) {
	if o.FrontDoor != FrontDoorARC && o.ControlPlane != ControlPlaneASG {
		return func() {}, nil
	}
	l := &awsLab{c: c}
	l.at.Store(now().UnixNano())
	snap := func() time.Time { return time.Unix(0, l.at.Load()).UTC() }
	plan := fault.NewPlan(c.sc)
	l.srv = awsstandin.New(awsstandin.Options{Clock: funcClock(snap), Log: o.Log})
	if err := l.srv.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	sc := c.sc
	l.srv.AddManagedResource(labALB, sc.Topology.Zones...)
	var subnets []string
	total := 0
	for i, z := range sc.Topology.Zones {
		id := "subnet-" + z
		l.srv.AddSubnet(awsstandin.Subnet{ID: id, VPC: "vpc-lab", AZ: z, AZID: z, CIDR: fmt.Sprintf("10.0.%d.0/24", i)})
		subnets = append(subnets, id)
		total += len(sc.Topology.InstanceIDs(z))
	}
	l.srv.AddGroup(awsstandin.GroupSpec{Name: labGroup, MinSize: 0, MaxSize: 2 * total, Desired: total, Subnets: subnets})
	l.srv.SetDown(awsstandin.AutoScaling, func() bool { return plan.ControlPlaneDown(snap().Sub(c.start)) })

	cfg := l.srv.Config()
	// Loopback: the SDK's standard retryer, with short backoff and no retry
	// quota, so a control-plane outage costs the run milliseconds, not the
	// seconds of backoff a real endpoint deserves (serve keeps arc.Retryer).
	cfg.Retryer = awsstandin.LoopbackRetryer(arc.MaxAttempts)
	planes := c.asm.Planes
	if o.FrontDoor == FrontDoorARC {
		planes.Data = arc.Actuator{Client: arc.New(cfg, labALB), Owner: "lab"}
	}
	if o.ControlPlane == ControlPlaneASG {
		a, err := autoscaling.New(cfg, autoscaling.Options{Groups: []string{labGroup}, Store: &autoscaling.MemoryStore{}})
		if err != nil {
			l.srv.Close()
			return nil, err
		}
		planes.Control = a
	}
	// Every action is followed at once by the lab's front door and instance
	// group reading the stand-in's state back (in sim mode within the same
	// virtual instant, so runs stay deterministic).
	c.drv.Actuator = actuator.Func(func(ctx context.Context, a actuator.Action) error {
		l.at.Store(now().UnixNano())
		err := planes.Apply(ctx, a)
		l.follow(ctx, o)
		return err
	})
	return func() { l.srv.Close() }, nil
}

// follow makes the lab's front door and instance group match the stand-in.
func (l *awsLab) follow(ctx context.Context, o Options) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.FrontDoor == FrontDoorARC {
		away := l.srv.ShiftedAway(labALB)
		for _, z := range l.c.sc.Topology.Zones {
			if l.c.table.Shifted(z) != (z == away) {
				_ = l.c.table.SetShifted(z, z == away)
			}
		}
	}
	if o.ControlPlane == ControlPlaneASG {
		g, ok := l.srv.Group(labGroup)
		if !ok {
			return
		}
		for _, z := range l.c.sc.Topology.Zones {
			in := slices.Contains(g.Subnets, "subnet-"+z)
			switch {
			case !in && !l.c.group.Excluded(z):
				if err := l.c.group.Exclude(ctx, z); err != nil {
					o.Log.Error("lab instance group: follow the Auto Scaling group's subnets", "zone", z, "err", err)
				}
			case in && l.c.group.Excluded(z):
				// The zone is back in the group: Auto Scaling rebalances, so the
				// replacement capacity goes.
				if err := l.c.group.Include(ctx, z); err == nil {
					_ = l.c.group.RemoveExtra(ctx, z)
				}
			}
		}
	}
}

// funcClock is a clock.Clock reading the run's time (only Now is used by the stand-in).
type funcClock func() time.Time

func (f funcClock) Now() time.Time { return f() }

func (f funcClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

func (f funcClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
