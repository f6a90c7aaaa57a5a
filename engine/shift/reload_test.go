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

// Two managers sharing the resources (sharded replicas): each expires only
// the shifts of the resources it owns, and reloads only those it follows,
// keeping its own as they are.
func TestReloadWhereAndOwnerSplitTheResources(t *testing.T) {
	st := NewMemoryStore()
	a, b := newManager(t, st), newManager(t, st)
	a.SetOwner(func(r string) bool { return r == "web" })
	b.SetOwner(func(r string) bool { return r == "db" })
	web, err := a.Start(t0, req("web", "az1", time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	b.ids = func() string { return "b1" }
	db, err := b.Start(t0, req("db", "az2", time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	// a follows db: it reloads db's shifts only.
	if err := a.ReloadWhere(context.Background(), func(r string) bool { return r == "db" }); err != nil {
		t.Fatal(err)
	}
	if got, ok := a.Active("db"); !ok || got.ID != db.ID {
		t.Fatalf("a's view of db after reloading it: %+v %v", got, ok)
	}
	if got, ok := a.Active("web"); !ok || got.ID != web.ID {
		t.Fatalf("a lost its own web shift on reloading db: %+v %v", got, ok)
	}
	// Both shifts are due: a expires web's only, b db's only.
	later := t0.Add(2 * time.Minute)
	if got := a.Expire(later); len(got) != 1 || got[0].ID != web.ID {
		t.Fatalf("a expired %+v, want web's only", got)
	}
	if got, ok := a.Active("db"); !ok || got.ID != db.ID {
		t.Fatalf("a expired db's shift, which b owns: %+v %v", got, ok)
	}
	if got := b.Expire(later); len(got) != 1 || got[0].ID != db.ID {
		t.Fatalf("b expired %+v, want db's only", got)
	}
}
