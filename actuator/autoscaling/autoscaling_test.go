package autoscaling_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/arc"
	"github.com/grayzone/grayzone/actuator/autoscaling"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/lab/awsstandin"
)

const albARN = "arn:aws:elasticloadbalancing:us-east-2:123456789012:loadbalancer/app/web/0123456789abcdef"

// memStore is the actuator's store; fail makes the next PutState calls
// fail (a crash before the write lands).
type memStore struct {
	autoscaling.MemoryStore
	fail atomic.Int32
}

func (s *memStore) PutState(ctx context.Context, k string, v []byte) error {
	if s.fail.Add(-1) >= 0 {
		return errors.New("disk gone")
	}
	s.fail.Store(0)
	return s.MemoryStore.PutState(ctx, k, v)
}

type env struct {
	s      *awsstandin.Server
	clk    *clock.Fake
	store  *memStore
	a      *autoscaling.Actuator
	events []autoscaling.Event
}

// newEnv: three AZs with two subnets each in use2-az1 and one elsewhere;
// group "web" over all of them with 6 instances.
func newEnv(t *testing.T, min int, zonalShift bool) *env {
	t.Helper()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	s := awsstandin.New(awsstandin.Options{Clock: clk})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i, sn := range []awsstandin.Subnet{
		{ID: "subnet-a1", AZ: "us-east-2a", AZID: "use2-az1"}, {ID: "subnet-a2", AZ: "us-east-2a", AZID: "use2-az1"},
		{ID: "subnet-b1", AZ: "us-east-2b", AZID: "use2-az2"}, {ID: "subnet-c1", AZ: "us-east-2c", AZID: "use2-az3"},
	} {
		sn.VPC, sn.CIDR = "vpc-1", fmt.Sprintf("10.0.%d.0/24", i)
		s.AddSubnet(sn)
	}
	s.AddGroup(awsstandin.GroupSpec{Name: "web", MinSize: 3, MaxSize: 9, Desired: 6, Subnets: []string{"subnet-a1", "subnet-b1", "subnet-a2", "subnet-c1"}, ZonalShiftEnabled: zonalShift})
	s.AddManagedResource(albARN, "use2-az1", "use2-az2", "use2-az3")
	e := &env{s: s, clk: clk, store: &memStore{}}
	e.a = e.actuator(t, s.Config(), min)
	return e
}

func (e *env) actuator(t *testing.T, cfg aws.Config, min int) *autoscaling.Actuator {
	a, err := autoscaling.New(cfg, autoscaling.Options{Groups: []string{"web"}, MinCapacity: min, Store: e.store,
		Report: func(ev autoscaling.Event) { e.events = append(e.events, ev) }})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func fast(cfg aws.Config) aws.Config {
	cfg.Retryer = awsstandin.LoopbackRetryer(arc.MaxAttempts)
	return cfg
}

func (e *env) apply(kind actuator.Kind, zone string) error {
	return e.a.Apply(context.Background(), actuator.Action{Kind: kind, Resource: "web", Zone: zone})
}

func (e *env) group(t *testing.T) awsstandin.GroupState {
	g, ok := e.s.Group("web")
	if !ok {
		t.Fatal("no group")
	}
	return g
}

func total(g awsstandin.GroupState) int {
	n := 0
	for _, c := range g.PerZone {
		n += c
	}
	return n
}

func TestExcludeAndIncludeExactly(t *testing.T) {
	e := newEnv(t, 0, false)
	for range 2 { // applying twice is applying once
		if err := e.apply(actuator.ExcludeZone, "use2-az1"); err != nil {
			t.Fatal(err)
		}
	}
	g := e.group(t)
	if strings.Join(g.Subnets, ",") != "subnet-b1,subnet-c1" || g.PerZone["use2-az1"] != 0 || total(g) != 6 || len(g.Suspended) != 0 {
		t.Fatalf("after exclude: %+v", g)
	}
	if len(e.events) != 1 || !strings.Contains(e.events[0].Msg, "subnet-a1, subnet-a2") {
		t.Fatalf("events %+v", e.events)
	}
	// Someone adds a subnet meanwhile: include puts back exactly grayzone's.
	for range 2 {
		if err := e.apply(actuator.IncludeZone, "use2-az1"); err != nil {
			t.Fatal(err)
		}
	}
	g = e.group(t)
	if got := slices.Sorted(slices.Values(g.Subnets)); strings.Join(got, ",") != "subnet-a1,subnet-a2,subnet-b1,subnet-c1" || total(g) != 6 || g.PerZone["use2-az1"] != 2 {
		t.Fatalf("after include: %+v", g)
	}
	if err := e.apply(actuator.RemoveExtra, "use2-az1"); err != nil {
		t.Fatal(err)
	}
}

func TestGroupWithZonalShiftIsLeftAlone(t *testing.T) {
	e := newEnv(t, 0, true)
	if err := e.apply(actuator.ExcludeZone, "use2-az1"); err != nil {
		t.Fatal(err)
	}
	if g := e.group(t); len(g.Subnets) != 4 {
		t.Fatalf("subnets changed: %+v", g)
	}
	if len(e.events) != 1 || e.events[0].Kind != "skipped" || !strings.Contains(e.events[0].Msg, "ZonalShiftEnabled") {
		t.Fatalf("events %+v", e.events)
	}
}

func TestRefusals(t *testing.T) {
	e := newEnv(t, 5, false) // 4 instances outside use2-az1, min 5
	err := e.apply(actuator.ExcludeZone, "use2-az1")
	var r *autoscaling.Refusal
	if !errors.As(err, &r) || !strings.Contains(err.Error(), "below min_capacity 5") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v", err)
	}
	if g := e.group(t); len(g.Subnets) != 4 {
		t.Fatalf("refused but changed: %+v", g)
	}
	// A group entirely in the zone would be left with no subnets.
	e.s.AddGroup(awsstandin.GroupSpec{Name: "one", MinSize: 1, MaxSize: 2, Desired: 1, Subnets: []string{"subnet-a1"}})
	a, _ := autoscaling.New(e.s.Config(), autoscaling.Options{Groups: []string{"one"}, Store: e.store})
	err = a.Apply(context.Background(), actuator.Action{Kind: actuator.ExcludeZone, Zone: "use2-az1"})
	if !errors.As(err, &r) || !strings.Contains(err.Error(), "left with none") {
		t.Fatalf("err = %v", err)
	}
}

// Interrupted steps are finished when applied again: the record of the
// removed subnets is written before the call, and every step starts from
// the group's current state.
func TestInterruptedStepsFinish(t *testing.T) {
	e := newEnv(t, 0, false)
	// The record cannot be written: nothing is changed.
	e.store.fail.Store(1)
	if err := e.apply(actuator.ExcludeZone, "use2-az1"); err == nil {
		t.Fatal("exclude went ahead without its record")
	}
	if g := e.group(t); len(g.Subnets) != 4 {
		t.Fatalf("changed without a record: %+v", g)
	}
	// The record lands, the call does not (the process dies, or Auto
	// Scaling is unreachable): the next apply makes the call.
	e.s.Inject(awsstandin.AutoScaling, awsstandin.Drop, 100)
	a := e.actuator(t, fast(e.s.Config()), 0)
	if err := a.Apply(context.Background(), actuator.Action{Kind: actuator.ExcludeZone, Zone: "use2-az1"}); err == nil {
		t.Fatal("no error while Auto Scaling drops every connection")
	}
	e.s = resetFaults(e.s)
	if err := e.apply(actuator.ExcludeZone, "use2-az1"); err != nil {
		t.Fatal(err)
	}
	// A restarted process with a fresh actuator on the same store restores the same subnets.
	b := e.actuator(t, e.s.Config(), 0)
	e.store.fail.Store(1) // the call lands, clearing the record does not
	if err := b.Apply(context.Background(), actuator.Action{Kind: actuator.IncludeZone, Zone: "use2-az1"}); err == nil {
		t.Fatal("include reported done without clearing its record")
	}
	if err := b.Apply(context.Background(), actuator.Action{Kind: actuator.IncludeZone, Zone: "use2-az1"}); err != nil {
		t.Fatal(err)
	}
	if g := e.group(t); len(g.Subnets) != 4 {
		t.Fatalf("after include: %+v", g)
	}
}

// resetFaults drains the queued faults by sending requests that absorb them.
func resetFaults(s *awsstandin.Server) *awsstandin.Server {
	s.ClearFaults()
	return s
}

// The seed's lesson: with Auto Scaling down for minutes, the shift happens
// on time (ARC is a separate data plane), and the exclusion lands when the
// endpoint comes back, through the runbook's own retries.
func TestShiftOnTimeWhileAutoScalingIsDown(t *testing.T) {
	e := newEnv(t, 0, false)
	t0 := e.clk.Now()
	e.s.DownUntil(awsstandin.AutoScaling, t0.Add(3*time.Minute))
	cfg := fast(e.s.Config())
	planes := actuator.Planes{Data: arc.Actuator{Client: arc.New(cfg, albARN), Owner: "test"}, Control: e.actuator(t, cfg, 0)}
	rb := runbook.New(runbook.Policy{Resource: "web", ControlPlaneAfter: 10 * time.Second, RecoveryHold: time.Minute, RetryMin: time.Second, RetryMax: 20 * time.Second})
	var excludedAt time.Time
	for now := t0; now.Before(t0.Add(5 * time.Minute)); now = now.Add(time.Second) {
		e.clk.Advance(now.Sub(e.clk.Now()))
		for _, act := range rb.Step(now, runbook.Input{Isolated: "use2-az1", Healthy: map[string]bool{"use2-az2": true, "use2-az3": true}}) {
			err := planes.Apply(context.Background(), act)
			rb.Done(now, act, err)
			if act.Kind == actuator.ExcludeZone && err == nil {
				excludedAt = now
			}
		}
	}
	var shiftedAt time.Time
	for _, ev := range rb.Events() {
		if ev.Kind == runbook.ShiftStarted {
			shiftedAt = ev.At
		}
	}
	if !shiftedAt.Equal(t0) || e.s.ShiftedAway(albARN) != "use2-az1" {
		t.Fatalf("shift at %v (t0 %v), ARC away from %q", shiftedAt, t0, e.s.ShiftedAway(albARN))
	}
	if excludedAt.Before(t0.Add(3*time.Minute)) || excludedAt.After(t0.Add(3*time.Minute+25*time.Second)) {
		t.Fatalf("excluded at +%s, want within the retry cap after the endpoint came back at +3m", excludedAt.Sub(t0))
	}
	if g := e.group(t); g.PerZone["use2-az1"] != 0 || total(g) != 6 {
		t.Fatalf("group %+v", g)
	}
}
