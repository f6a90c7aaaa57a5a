package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
)

// countingStore counts the shifts a follower's reads return.
type countingStore struct {
	*DB
	read int
}

func (c *countingStore) LoadShiftsSince(ctx context.Context, after uint64) ([]shift.Shift, uint64, error) {
	ss, top, err := c.DB.LoadShiftsSince(ctx, after)
	c.read += len(ss)
	return ss, top, err
}

// TestFollowerReadsOnlyChangedShifts: a follower (a second Manager on the
// same database) sees a new shift, a cancel and an expiry made by the
// leader's Manager, and each of its reads after the first returns only the
// shifts saved since the one before: nothing when nothing changed.
func TestFollowerReadsOnlyChangedShifts(t *testing.T) {
	eachBackend(t, testFollowerReadsOnlyChangedShifts)
}

func testFollowerReadsOnlyChangedShifts(t *testing.T, reopen func(t *testing.T) *DB) {
	ctx := context.Background()
	res := []shift.Resource{{Name: "web", Zones: []string{"az1", "az2"}}, {Name: "api", Zones: []string{"az1", "az2"}}}
	d := reopen(t)
	lead, err := shift.NewManager(res, d, nil)
	must(t, err)
	// History the follower reads once, in full.
	for i := range 5 {
		s, err := lead.Start(t0.Add(time.Duration(i)*time.Minute), shift.StartRequest{Resource: "api", AwayFrom: "az1", ExpiresIn: time.Hour, Comment: "old"})
		must(t, err)
		_, err = lead.Cancel(t0.Add(time.Duration(i)*time.Minute+time.Second), s.ID, "ops")
		must(t, err)
	}
	cs := &countingStore{DB: d}
	fol, err := shift.NewManager(res, cs, nil)
	must(t, err)
	follow := func(want int) {
		t.Helper()
		cs.read = 0
		must(t, fol.Follow(ctx, nil))
		if cs.read != want {
			t.Fatalf("the follower's read returned %d shifts, want %d", cs.read, want)
		}
	}
	follow(5) // the first read: all of them
	follow(0) // nothing changed

	// A new shift.
	s, err := lead.Start(t0.Add(time.Hour), shift.StartRequest{Resource: "web", AwayFrom: "az2", ExpiresIn: 10 * time.Minute, Comment: "new"})
	must(t, err)
	follow(1)
	if got, ok := fol.Active("web"); !ok || got.ID != s.ID {
		t.Fatalf("follower: active %+v %v, want %s", got, ok, s.ID)
	}
	// Its cancel.
	_, err = lead.Cancel(t0.Add(time.Hour+time.Minute), s.ID, "ops")
	must(t, err)
	follow(1)
	if got, err := fol.Get(s.ID); err != nil || got.Status != shift.Canceled {
		t.Fatalf("follower: %+v %v, want CANCELED", got, err)
	}
	// Another's expiry.
	s, err = lead.Start(t0.Add(2*time.Hour), shift.StartRequest{Resource: "web", AwayFrom: "az1", ExpiresIn: 10 * time.Minute, Comment: "short"})
	must(t, err)
	follow(1)
	if exp := lead.Expire(t0.Add(3 * time.Hour)); len(exp) != 1 {
		t.Fatalf("leader: Expire = %+v", exp)
	}
	follow(1)
	if got, err := fol.Get(s.ID); err != nil || got.Status != shift.Expired {
		t.Fatalf("follower: %+v %v, want EXPIRED", got, err)
	}
	if _, ok := fol.Active("web"); ok {
		t.Fatal("follower: web still shifted after the expiry")
	}
	follow(0)

	// A save the fence refuses takes no version (it is rolled back), and
	// the next one is read.
	_, top, err := d.LoadShiftsSince(ctx, 0)
	must(t, err)
	d.EnableShards([]string{"web"})
	_, err = lead.Start(t0.Add(4*time.Hour), shift.StartRequest{Resource: "web", AwayFrom: "az1", ExpiresIn: time.Hour, Comment: "fenced"})
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("a save about a resource not led: %v, want ErrFenced", err)
	}
	if ss, after, err := d.LoadShiftsSince(ctx, top); err != nil || len(ss) != 0 || after != top {
		t.Fatalf("after a refused save: %d shifts, version %d (was %d), %v", len(ss), after, top, err)
	}
	_, err = lead.Start(t0.Add(4*time.Hour), shift.StartRequest{Resource: "api", AwayFrom: "az2", ExpiresIn: time.Hour, Comment: "api"})
	must(t, err)
	follow(1)
	// Refollow: everything again, once.
	fol.Refollow()
	follow(8) // every shift stored
	follow(0)
}
