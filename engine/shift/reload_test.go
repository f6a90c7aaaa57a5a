package shift

import (
	"context"
	"testing"
	"time"
)

// Two managers on one store, as a leader and a follower replica: the
// follower sees the leader's shifts once it reloads.
func TestReloadSeesAnotherManagersShifts(t *testing.T) {
	res := []Resource{{Name: "web", Zones: []string{"az1", "az2", "az3"}}}
	st := NewMemoryStore()
	leader, err := NewManager(res, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	follower, err := NewManager(res, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := leader.Start(t0, StartRequest{Resource: "web", AwayFrom: "az2", ExpiresIn: time.Hour, Comment: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := follower.Active("web"); ok {
		t.Fatal("the follower saw the shift before reloading")
	}
	if err := follower.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, ok := follower.Active("web"); !ok || got.ID != s.ID || !got.ExpiresAt.Equal(s.ExpiresAt) {
		t.Fatalf("after reload Active = %+v %v, want %+v", got, ok, s)
	}
	if _, err := leader.Cancel(t0.Add(time.Minute), s.ID, "op"); err != nil {
		t.Fatal(err)
	}
	if err := follower.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := follower.Active("web"); ok {
		t.Fatal("the follower still sees a cancelled shift after reloading")
	}
}
