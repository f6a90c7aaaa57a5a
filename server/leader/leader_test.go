package leader

import (
	"errors"
	"testing"
	"time"

	"github.com/grayzone/grayzone/server/store"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

var errDown = errors.New("dial tcp: connection refused")

func TestTimingForDefaultLease(t *testing.T) {
	got := TimingFor(0)
	want := Timing{Lease: 10 * time.Second, TTL: 7 * time.Second, Poll: time.Second, Renew: 7 * time.Second / 3, StepDown: 14 * time.Second / 3}
	if got != want {
		t.Fatalf("TimingFor(0) = %+v, want %+v", got, want)
	}
	// A follower takes over at most Lease after the leader's last renewal.
	if got.TTL+got.Poll > got.Lease {
		t.Fatalf("TTL %s + poll %s exceeds the lease %s", got.TTL, got.Poll, got.Lease)
	}
}

func TestLeaderRenewsAndKeepsLeading(t *testing.T) {
	tm := TimingFor(10 * time.Second)
	e := NewElector(tm)
	if a := e.Next(at(0)); a != Acquire {
		t.Fatalf("first attempt %v, want acquire", a)
	}
	e.Result(at(0), at(5), Acquire, store.Lease{Holder: "a", Epoch: 7}, true, nil)
	if ep, ok := e.Leading(at(5)); !ok || ep != 7 {
		t.Fatalf("Leading = %d %v, want 7 true", ep, ok)
	}
	// Nothing is due before Renew (TTL/3); then a renewal, every Renew.
	if a := e.Next(t0.Add(tm.Renew - time.Millisecond)); a != None {
		t.Fatalf("attempt before Renew: %v", a)
	}
	for i := 1; i <= 20; i++ {
		sent := t0.Add(time.Duration(i) * tm.Renew)
		if a := e.Next(sent); a != Renew {
			t.Fatalf("renewal %d: %v, want renew", i, a)
		}
		e.Result(sent, sent.Add(10*time.Millisecond), Renew, store.Lease{}, true, nil)
		if ep, ok := e.Leading(sent.Add(tm.Renew)); !ok || ep != 7 {
			t.Fatalf("renewal %d: not leading", i)
		}
	}
}

// Cut off from the database, a leader stops acting at StepDown after its last
// successful renewal was sent: before the lease can expire for anyone else.
func TestLeaderCutOffStepsDownBeforeTheLeaseExpires(t *testing.T) {
	tm := TimingFor(10 * time.Second)
	e := NewElector(tm)
	e.Next(at(0))
	e.Result(at(0), at(1), Acquire, store.Lease{Holder: "a", Epoch: 1}, true, nil)
	lastSent := t0.Add(tm.Renew)
	e.Next(lastSent)
	e.Result(lastSent, lastSent.Add(2*time.Millisecond), Renew, store.Lease{}, true, nil)
	// The database goes away: every later attempt fails (or hangs until its timeout).
	ms := int(tm.Renew.Milliseconds()) + 2
	for ; ms < 20000; ms++ {
		if a := e.Next(at(ms)); a != None {
			e.Result(at(ms), at(ms+500), a, store.Lease{}, false, errDown)
		}
		if _, ok := e.Leading(at(ms)); !ok {
			break
		}
	}
	stepped := at(ms)
	if want := lastSent.Add(tm.StepDown); stepped.Before(want) || stepped.Sub(want) >= time.Millisecond { // stepped on a 1 ms grid
		t.Fatalf("stepped down at %s, want %s (last renewal sent + %s)", stepped.Sub(t0), want.Sub(t0), tm.StepDown)
	}
	// The lease the database holds expires no earlier than TTL after the
	// renewal was sent; a follower can have it only then.
	if expiry := lastSent.Add(tm.TTL); !stepped.Before(expiry) || expiry.Sub(stepped) < tm.TTL/3-time.Millisecond {
		t.Fatalf("stepped down at %s, lease expires at %s: want a margin of at least TTL/3", stepped.Sub(t0), expiry.Sub(t0))
	}
	// Once past that point it does not renew the old epoch: it must acquire anew.
	if a := e.Next(at(ms + 500 + 2*int(tm.Poll.Milliseconds()))); a != Acquire {
		t.Fatalf("after stepping down: %v, want acquire", a)
	}
}

func TestFollowerLearnsTheLeaderAndTakesOverWhenTheLeaseLapses(t *testing.T) {
	tm := TimingFor(10 * time.Second)
	e := NewElector(tm)
	held := store.Lease{Holder: "a", Address: "10.0.0.1:8080", Epoch: 4}
	e.Next(at(0))
	e.Result(at(0), at(2), Acquire, held, false, nil)
	if _, ok := e.Leading(at(2)); ok {
		t.Fatal("a follower leads")
	}
	if e.Known() != held {
		t.Fatalf("Known = %+v, want the leader's lease", e.Known())
	}
	// It tries again every Poll.
	if a := e.Next(at(2 + int(tm.Poll.Milliseconds()) - 1)); a != None {
		t.Fatalf("attempt before poll: %v", a)
	}
	next := at(2 + int(tm.Poll.Milliseconds()))
	if a := e.Next(next); a != Acquire {
		t.Fatalf("attempt at poll: %v", a)
	}
	e.Result(next, next.Add(time.Millisecond), Acquire, store.Lease{Holder: "b", Epoch: 5}, true, nil)
	if ep, ok := e.Leading(next.Add(time.Millisecond)); !ok || ep != 5 {
		t.Fatalf("after taking the lease: %d %v, want epoch 5", ep, ok)
	}
}

func TestRenewalRefusedStopsLeadingAtOnce(t *testing.T) {
	e := NewElector(TimingFor(10 * time.Second))
	e.Next(at(0))
	e.Result(at(0), at(1), Acquire, store.Lease{Epoch: 2}, true, nil)
	e.Next(at(3000))
	e.Result(at(3000), at(3001), Renew, store.Lease{}, false, nil)
	if _, ok := e.Leading(at(3001)); ok {
		t.Fatal("still leading after the lease was taken")
	}
	if a := e.Next(at(3001)); a != Acquire {
		t.Fatalf("next attempt %v, want acquire", a)
	}
}

func TestOneAttemptInFlight(t *testing.T) {
	e := NewElector(TimingFor(10 * time.Second))
	if a := e.Next(at(0)); a != Acquire {
		t.Fatal(a)
	}
	if a := e.Next(at(5000)); a != None {
		t.Fatalf("second attempt while one is in flight: %v", a)
	}
}

// A renewal that succeeds only after the step-down point (a slow database)
// does not revive the old epoch: the leader has already stopped acting under
// it, so it acquires anew and gets the next epoch.
func TestLateRenewalDoesNotReviveASteppedDownEpoch(t *testing.T) {
	tm := TimingFor(10 * time.Second)
	e := NewElector(tm)
	e.Next(at(0))
	e.Result(at(0), at(1), Acquire, store.Lease{Epoch: 3}, true, nil)
	sent := at(int(tm.Renew.Milliseconds()) + 1)
	if a := e.Next(sent); a != Renew {
		t.Fatalf("attempt %v, want renew", a)
	}
	stepDown := at(int(tm.StepDown.Milliseconds()) + 1)
	if _, ok := e.Leading(stepDown); ok {
		t.Fatal("still leading at the step-down point with a renewal in flight")
	}
	e.Result(sent, stepDown.Add(time.Millisecond), Renew, store.Lease{}, true, nil)
	if _, ok := e.Leading(stepDown.Add(time.Millisecond)); ok {
		t.Fatal("a late renewal revived the stepped-down epoch")
	}
	if a := e.Next(stepDown.Add(time.Millisecond)); a != Acquire {
		t.Fatalf("next attempt %v, want acquire (a new epoch)", a)
	}
}
