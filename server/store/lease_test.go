package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
)

func TestLease(t *testing.T) { eachBackend(t, testLease) }

func testLease(t *testing.T, reopen func(t *testing.T) *DB) {
	ctx := context.Background()
	a, b := reopen(t), reopen(t) // two replicas on one database
	if _, ok, err := a.CurrentLease(ctx); ok || err != nil {
		t.Fatalf("fresh database has a lease: %v %v", ok, err)
	}
	la, ok, err := a.AcquireLease(ctx, "a", "10.0.0.1:8080", time.Minute)
	if err != nil || !ok || la.Epoch != 1 || la.Holder != "a" || la.Address != "10.0.0.1:8080" {
		t.Fatalf("first acquisition = %+v %v %v, want a's, epoch 1", la, ok, err)
	}
	// b cannot take a live lease; it learns who leads and where.
	lb, ok, err := b.AcquireLease(ctx, "b", "10.0.0.2:8080", time.Minute)
	if err != nil || ok || lb.Holder != "a" || lb.Address != "10.0.0.1:8080" || lb.Epoch != 1 {
		t.Fatalf("b's acquisition of a live lease = %+v %v %v", lb, ok, err)
	}
	if ok, err := a.RenewLease(ctx, "a", 1, time.Minute); !ok || err != nil {
		t.Fatalf("a's renewal: %v %v", ok, err)
	}
	if ok, _ := b.RenewLease(ctx, "b", 1, time.Minute); ok {
		t.Fatal("b renewed a's lease")
	}
	// a restarted under the same name reclaims it at once, with a new epoch.
	if l, ok, err := a.AcquireLease(ctx, "a", "10.0.0.1:8080", time.Minute); !ok || err != nil || l.Epoch != 2 {
		t.Fatalf("reacquisition by its holder = %+v %v %v, want epoch 2", l, ok, err)
	}
	if ok, _ := a.RenewLease(ctx, "a", 1, time.Minute); ok {
		t.Fatal("renewal of a superseded epoch succeeded")
	}
	// An expired lease goes to whoever asks, with the next epoch.
	if ok, _ := a.RenewLease(ctx, "a", 2, time.Millisecond); !ok {
		t.Fatal("renewal failed")
	}
	time.Sleep(20 * time.Millisecond) // real time: the lease is on the database's clock
	if ok, _ := a.RenewLease(ctx, "a", 2, time.Minute); ok {
		t.Fatal("an expired lease was renewed")
	}
	lb, ok, err = b.AcquireLease(ctx, "b", "10.0.0.2:8080", time.Minute)
	if err != nil || !ok || lb.Epoch != 3 || lb.Holder != "b" {
		t.Fatalf("b's acquisition of an expired lease = %+v %v %v, want epoch 3", lb, ok, err)
	}
	// Released: taken at once.
	must(t, b.ReleaseLease(ctx, "b", 3))
	if l, ok, err := a.AcquireLease(ctx, "a", "10.0.0.1:8080", time.Minute); !ok || err != nil || l.Epoch != 4 {
		t.Fatalf("acquisition of a released lease = %+v %v %v, want epoch 4", l, ok, err)
	}
}

// A deposed leader's late writes fail; the new leader's succeed.
func TestFencedWrites(t *testing.T) { eachBackend(t, testFencedWrites) }

func testFencedWrites(t *testing.T, reopen func(t *testing.T) *DB) {
	ctx := context.Background()
	a, b := reopen(t), reopen(t)
	la, _, err := a.AcquireLease(ctx, "a", "a:1", time.Millisecond)
	must(t, err)
	a.SetFence(la.Epoch)
	must(t, a.PutState(ctx, "runbook/web", []byte("a1")))
	time.Sleep(20 * time.Millisecond)
	lb, ok, err := b.AcquireLease(ctx, "b", "b:1", time.Minute)
	if err != nil || !ok {
		t.Fatalf("b could not take the expired lease: %v %v", ok, err)
	}
	b.SetFence(lb.Epoch)
	sh := shift.Shift{ID: "s", Resource: "web", AwayFrom: "az1", Status: shift.Active, Origin: shift.Auto, StartedAt: t0, ExpiresAt: t0.Add(time.Hour), UpdatedAt: t0}
	for name, write := range map[string]func() error{
		"put state":     func() error { return a.PutState(ctx, "runbook/web", []byte("a2")) },
		"save shift":    func() error { return a.SaveShift(ctx, sh) },
		"append audit":  func() error { _, err := a.Append(ctx, AuditEntry{Kind: "action", Message: "late"}); return err },
		"save practice": func() error { return a.SavePractice(ctx, PracticeRun{ID: "p", Resource: "web", StartedAt: t0}) },
	} {
		if err := write(); !errors.Is(err, ErrFenced) {
			t.Errorf("deposed leader's %s: %v, want ErrFenced", name, err)
		}
	}
	must(t, b.PutState(ctx, "runbook/web", []byte("b1")))
	if v, _, _ := b.GetState(ctx, "runbook/web"); string(v) != "b1" {
		t.Fatalf("state = %q, want the new leader's b1", v)
	}
	if list, _ := b.LoadShifts(ctx); len(list) != 0 {
		t.Fatalf("a deposed leader's shift was saved: %+v", list)
	}
	// A follower writes nothing.
	a.SetFence(NoEpoch)
	if err := a.PutState(ctx, "x", nil); !errors.Is(err, ErrFenced) {
		t.Fatalf("follower's write: %v, want ErrFenced", err)
	}
}
