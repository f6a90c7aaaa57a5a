package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
)

func TestResourceLeases(t *testing.T) { eachBackend(t, testResourceLeases) }

// Two replicas share resources: each takes its own; a live lease cannot be
// taken; an expired one is taken with the next epoch; every write about a
// resource is fenced by that resource's lease, and writes about another
// resource are not affected.
func testResourceLeases(t *testing.T, reopen func(t *testing.T) *DB) {
	ctx := context.Background()
	a, b := reopen(t), reopen(t)
	for _, d := range []*DB{a, b} {
		d.EnableShards([]string{"web", "api"})
	}
	if _, ok, err := a.AcquireResourceLease(ctx, "web", "a", "10.0.0.1:1", time.Minute); !ok || err != nil {
		t.Fatalf("a takes web: %v %v", ok, err)
	}
	if l, ok, err := b.AcquireResourceLease(ctx, "web", "b", "10.0.0.2:1", time.Minute); ok || err != nil || l.Holder != "a" || l.Address != "10.0.0.1:1" {
		t.Fatalf("b takes a's live lease of web: %+v %v %v", l, ok, err)
	}
	if _, ok, err := b.AcquireResourceLease(ctx, "api", "b", "10.0.0.2:1", 50*time.Millisecond); !ok || err != nil {
		t.Fatalf("b takes api: %v %v", ok, err)
	}
	a.SetResourceFence("web", 1)
	b.SetResourceFence("api", 1)
	save := func(d *DB, res string) error {
		return d.SaveShift(ctx, shift.Shift{ID: res + "-1", Resource: res, AwayFrom: "z1", Status: shift.Active,
			StartedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), UpdatedAt: time.Now()})
	}
	if err := save(a, "web"); err != nil {
		t.Fatalf("a writes about web, which it leads: %v", err)
	}
	if err := save(a, "api"); !errors.Is(err, ErrFenced) {
		t.Fatalf("a writes about api, which b leads: %v, want ErrFenced", err)
	}
	if err := b.PutState(ctx, "runbook/api", []byte("{}")); err != nil {
		t.Fatalf("b writes api's state: %v", err)
	}
	if _, err := b.Append(ctx, AuditEntry{At: time.Now(), Kind: "x", Resource: "web", Actor: "t", Message: "m"}); !errors.Is(err, ErrFenced) {
		t.Fatalf("b audits web: %v, want ErrFenced", err)
	}
	// b's lease of api lapses: a takes it with epoch 2, and b's writes fail.
	time.Sleep(100 * time.Millisecond)
	if l, ok, err := a.AcquireResourceLease(ctx, "api", "a", "10.0.0.1:1", time.Minute); !ok || err != nil || l.Epoch != 2 {
		t.Fatalf("a takes the lapsed lease of api: %+v %v %v, want epoch 2", l, ok, err)
	}
	if err := b.PutState(ctx, "runbook/api", []byte("{}")); !errors.Is(err, ErrFenced) {
		t.Fatalf("b writes api's state after losing it: %v, want ErrFenced", err)
	}
	// Renewal returns what is still held; b holds nothing any more.
	if got, err := a.RenewResourceLeases(ctx, "a", time.Minute); err != nil || len(got) != 2 || got["web"] != 1 || got["api"] != 2 {
		t.Fatalf("a renews: %v %v", got, err)
	}
	if got, err := b.RenewResourceLeases(ctx, "b", time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("b renews: %v %v, want nothing", got, err)
	}
	// Released, web is free at once; its next holder gets epoch 2.
	if err := a.ReleaseResourceLease(ctx, "web", "a", 1); err != nil {
		t.Fatal(err)
	}
	ls, err := b.ResourceLeases(ctx)
	if err != nil || len(ls) != 2 || ls[0].Resource != "api" || !ls[0].Live || ls[1].Resource != "web" || ls[1].Live {
		t.Fatalf("leases: %+v %v", ls, err)
	}
	if l, ok, err := b.AcquireResourceLease(ctx, "web", "b", "10.0.0.2:1", time.Minute); !ok || err != nil || l.Epoch != 2 {
		t.Fatalf("b takes the released web: %+v %v %v", l, ok, err)
	}
	// Writes about nothing sharded keep the leader lease's fence (none here).
	if _, err := a.Append(ctx, AuditEntry{At: time.Now(), Kind: "service", Actor: "t", Message: "m"}); err != nil {
		t.Fatalf("a service entry: %v", err)
	}
}

func TestMembership(t *testing.T) { eachBackend(t, testMembership) }

func testMembership(t *testing.T, reopen func(t *testing.T) *DB) {
	ctx := context.Background()
	d := reopen(t)
	// c's heartbeat lapses after a second (long enough for the next calls
	// on a loaded machine).
	if _, err := d.Heartbeat(ctx, "c", "c:1", time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Heartbeat(ctx, "a", "a:1", time.Minute); err != nil {
		t.Fatal(err)
	}
	ms, err := d.Heartbeat(ctx, "b", "b:1", time.Minute)
	if err != nil || len(ms) != 3 || ms[0].Holder != "b" || ms[1].Holder != "a" || ms[2].Holder != "c" {
		t.Fatalf("members: %+v %v, want b (itself) first, then a, c", ms, err)
	}
	time.Sleep(1200 * time.Millisecond) // c's heartbeat lapses
	if err := d.LeaveMembership(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if ms, err := d.Heartbeat(ctx, "b", "b:1", time.Minute); err != nil || len(ms) != 1 || ms[0].Address != "b:1" {
		t.Fatalf("members: %+v %v, want b alone", ms, err)
	}
}

func TestMixedFleet(t *testing.T) { eachBackend(t, testMixedFleet) }

// A leader lease held by a replica that is no sharded member is reported
// (sharded replicas then take nothing over); one held by a member, live or
// lately lapsed, is not; live resource leases are counted (a replica
// without sharding then does not lead).
func testMixedFleet(t *testing.T, reopen func(t *testing.T) *DB) {
	ctx := context.Background()
	d := reopen(t)
	if h, err := d.UnshardedLeader(ctx); h != "" || err != nil {
		t.Fatalf("no lease: %q %v", h, err)
	}
	if _, ok, err := d.AcquireLease(ctx, "plain", "p:1", time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if h, err := d.UnshardedLeader(ctx); h != "plain" || err != nil {
		t.Fatalf("a plain replica leads: %q %v, want plain", h, err)
	}
	if err := d.ReleaseLease(ctx, "plain", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Heartbeat(ctx, "sh", "s:1", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.AcquireLease(ctx, "sh", "s:1", time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	time.Sleep(100 * time.Millisecond) // its heartbeat lapses; the row is kept
	if _, err := d.Heartbeat(ctx, "other", "o:1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if h, err := d.UnshardedLeader(ctx); h != "" || err != nil {
		t.Fatalf("a sharded replica leads: %q %v, want none reported", h, err)
	}
	if n, err := d.LiveResourceLeases(ctx); n != 0 || err != nil {
		t.Fatalf("live resource leases: %d %v", n, err)
	}
	if _, _, err := d.AcquireResourceLease(ctx, "web", "sh", "s:1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, err := d.LiveResourceLeases(ctx); n != 1 || err != nil {
		t.Fatalf("live resource leases: %d %v, want 1", n, err)
	}
}
