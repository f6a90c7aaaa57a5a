package shift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func resources() []Resource {
	return []Resource{
		{Name: "web", Zones: []string{"az1", "az2", "az3"}, Capacity: map[string]int{"az1": 2, "az2": 2, "az3": 2}, MinCapacity: 4},
		{Name: "api", Zones: []string{"az1", "az2"}, Capacity: map[string]int{"az1": 3, "az2": 1}, MinCapacity: 2},
		{Name: "db", Zones: []string{"az1", "az2"}}, // no capacity check
	}
}

// seqIDs returns deterministic ids s1, s2, ...
func seqIDs() func() string {
	var mu sync.Mutex
	n := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("s%d", n)
	}
}

func newManager(t *testing.T, st Store) *Manager {
	t.Helper()
	if st == nil {
		st = NewMemoryStore()
	}
	m, err := NewManager(resources(), st, seqIDs())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func req(resource, zone string, d time.Duration) StartRequest {
	return StartRequest{Resource: resource, AwayFrom: zone, ExpiresIn: d, StartedBy: "alice", Comment: "c"}
}

func TestStartValidation(t *testing.T) {
	tests := []struct {
		name  string
		prior []StartRequest // started first, must succeed
		req   StartRequest
		want  error // nil: must succeed
		msg   string
	}{
		{name: "ok", req: req("web", "az1", time.Hour)},
		{name: "expires_in min inclusive", req: req("web", "az1", time.Minute)},
		{name: "expires_in max inclusive", req: req("web", "az1", 72*time.Hour)},
		{name: "expires_in below min", req: req("web", "az1", time.Minute-time.Second), want: ErrInvalid, msg: "expires_in: 59s is out of range (1m..72h): invalid"},
		{name: "expires_in zero", req: req("web", "az1", 0), want: ErrInvalid, msg: "expires_in"},
		{name: "expires_in above max", req: req("web", "az1", 80*time.Hour), want: ErrInvalid, msg: "expires_in: 80h is out of range (1m..72h): invalid"},
		{name: "expires_in just above max", req: req("web", "az1", 72*time.Hour+time.Second), want: ErrInvalid},
		{name: "comment 128", req: withComment(req("web", "az1", time.Hour), strings.Repeat("é", 128))},
		{name: "comment 129", req: withComment(req("web", "az1", time.Hour), strings.Repeat("x", 129)), want: ErrInvalid, msg: "comment: 129 characters"},
		{name: "unknown resource", req: req("nope", "az1", time.Hour), want: ErrNotFound, msg: `resource: "nope"`},
		{name: "unknown zone", req: req("web", "az9", time.Hour), want: ErrInvalid, msg: `away_from: zone "az9"`},
		{name: "unknown origin", req: StartRequest{Resource: "web", AwayFrom: "az1", ExpiresIn: time.Hour, Origin: "robot"}, want: ErrInvalid, msg: "origin"},
		{name: "second shift same zone", prior: []StartRequest{req("web", "az1", time.Hour)}, req: req("web", "az1", time.Hour), want: ErrConflict, msg: "shift s1 away from az1 is already active"},
		{name: "second zone", prior: []StartRequest{req("web", "az1", time.Hour)}, req: req("web", "az2", time.Hour), want: ErrConflict},
		{name: "other resource unaffected", prior: []StartRequest{req("web", "az1", time.Hour)}, req: req("api", "az2", time.Hour)},
		{name: "capacity exactly min", req: req("web", "az2", time.Hour)}, // 4 left, min 4
		{name: "capacity refused", req: req("api", "az1", time.Hour), want: ErrCapacity, msg: "leaves 1 instances in the other zones, below min_capacity 2"},
		{name: "capacity ok other zone", req: req("api", "az2", time.Hour)}, // 3 left
		{name: "no capacity check", req: req("db", "az1", time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := NewMemoryStore()
			m := newManager(t, st)
			for _, p := range tt.prior {
				if _, err := m.Start(t0, p); err != nil {
					t.Fatalf("prior: %v", err)
				}
			}
			before, _ := st.LoadShifts(context.Background())
			s, err := m.Start(t0.Add(time.Second), tt.req)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Start: %v", err)
				}
				if s.Status != Active || !s.ExpiresAt.Equal(t0.Add(time.Second+tt.req.ExpiresIn)) || s.Origin != Manual {
					t.Fatalf("shift = %+v", s)
				}
				got, err := m.Get(s.ID)
				if err != nil || got.ID != s.ID {
					t.Fatalf("Get = %+v, %v", got, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %q, want it to contain %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("err is not one line: %q", err)
			}
			after, _ := st.LoadShifts(context.Background())
			if len(after) != len(before) {
				t.Fatalf("a refused start wrote to the store")
			}
		})
	}
}

func withComment(r StartRequest, c string) StartRequest { r.Comment = c; return r }

func TestNewManagerValidatesResources(t *testing.T) {
	bad := [][]Resource{
		{{Name: ""}},
		{{Name: "a", Zones: []string{"z1"}}, {Name: "a", Zones: []string{"z1"}}},
		{{Name: "a"}},
		{{Name: "a", Zones: []string{"z1", "z1"}}},
		{{Name: "a", Zones: []string{"z1"}, Capacity: map[string]int{"z2": 1}}},
		{{Name: "a", Zones: []string{"z1"}, MinCapacity: -1}},
	}
	for i, rs := range bad {
		if _, err := NewManager(rs, NewMemoryStore(), nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("case %d: err = %v, want ErrInvalid", i, err)
		}
	}
	if _, err := NewManager(nil, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil store: err = %v", err)
	}
}

func TestUpdate(t *testing.T) {
	m := newManager(t, nil)
	s, err := m.Start(t0, req("web", "az1", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	d, c := 2*time.Hour, "new comment"
	now := t0.Add(10 * time.Minute)
	u, err := m.Update(now, s.ID, UpdateRequest{ExpiresIn: &d, Comment: &c, By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if !u.ExpiresAt.Equal(now.Add(d)) || u.Comment != c || !u.UpdatedAt.Equal(now) || u.UpdatedBy != "bob" || !u.StartedAt.Equal(t0) {
		t.Fatalf("updated = %+v", u)
	}
	c2 := "latest"
	u, err = m.Update(now, s.ID, UpdateRequest{Comment: &c2})
	if err != nil || u.Comment != "latest" || !u.ExpiresAt.Equal(now.Add(d)) {
		t.Fatalf("comment-only update = %+v, %v", u, err)
	}

	bad := []struct {
		name string
		id   string
		req  UpdateRequest
		want error
	}{
		{"nothing", s.ID, UpdateRequest{}, ErrInvalid},
		{"too short", s.ID, UpdateRequest{ExpiresIn: ptr(30 * time.Second)}, ErrInvalid},
		{"too long", s.ID, UpdateRequest{ExpiresIn: ptr(73 * time.Hour)}, ErrInvalid},
		{"comment", s.ID, UpdateRequest{Comment: ptr(strings.Repeat("x", 129))}, ErrInvalid},
		{"unknown", "zzz", UpdateRequest{Comment: &c}, ErrNotFound},
	}
	for _, tt := range bad {
		if _, err := m.Update(now, tt.id, tt.req); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := m.Update(now, s.ID, UpdateRequest{ExpiresIn: ptr(72 * time.Hour)}); err != nil {
		t.Errorf("72h update: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestNonActiveConflicts(t *testing.T) {
	m := newManager(t, nil)
	a, _ := m.Start(t0, req("web", "az1", time.Hour))
	b, _ := m.Start(t0, req("api", "az2", time.Hour))
	if _, err := m.Cancel(t0.Add(time.Minute), a.ID, "carol"); err != nil {
		t.Fatal(err)
	}
	if got := m.Expire(t0.Add(time.Hour)); len(got) != 1 || got[0].ID != b.ID {
		t.Fatalf("Expire = %+v", got)
	}
	c := "x"
	for _, id := range []string{a.ID, b.ID} {
		if _, err := m.Update(t0.Add(2*time.Hour), id, UpdateRequest{Comment: &c}); !errors.Is(err, ErrConflict) {
			t.Errorf("update %s: err = %v, want ErrConflict", id, err)
		}
		if _, err := m.Cancel(t0.Add(2*time.Hour), id, "x"); !errors.Is(err, ErrConflict) {
			t.Errorf("cancel %s: err = %v, want ErrConflict", id, err)
		}
	}
	if _, err := m.Cancel(t0, "nope", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("cancel unknown: %v", err)
	}
}

func TestCancel(t *testing.T) {
	m := newManager(t, nil)
	s, _ := m.Start(t0, req("web", "az1", time.Hour))
	now := t0.Add(5 * time.Minute)
	c, err := m.Cancel(now, s.ID, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != Canceled || c.EndedAt == nil || !c.EndedAt.Equal(now) || c.EndedBy != "carol" || !c.UpdatedAt.Equal(now) {
		t.Fatalf("canceled = %+v", c)
	}
	if _, ok := m.Active("web"); ok {
		t.Fatal("still active after cancel")
	}
	// The zone can be shifted again.
	if _, err := m.Start(now, req("web", "az2", time.Hour)); err != nil {
		t.Fatal(err)
	}
}

func TestExpire(t *testing.T) {
	st := NewMemoryStore()
	m := newManager(t, st)
	a, _ := m.Start(t0, req("web", "az1", time.Hour))
	b, _ := m.Start(t0, req("api", "az2", 2*time.Hour))
	if got := m.Expire(t0.Add(time.Hour - time.Nanosecond)); len(got) != 0 {
		t.Fatalf("expired early: %+v", got)
	}
	// Expiry is at or before now; the service was "down" until much later.
	late := t0.Add(5 * time.Hour)
	got := m.Expire(late)
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("Expire = %+v", got)
	}
	for _, s := range got {
		if s.Status != Expired || s.EndedAt == nil || !s.EndedAt.Equal(s.ExpiresAt) {
			t.Fatalf("expired shift = %+v, want EndedAt = ExpiresAt", s)
		}
	}
	if again := m.Expire(late); len(again) != 0 {
		t.Fatalf("reported twice: %+v", again)
	}
	stored, _ := st.LoadShifts(context.Background())
	for _, s := range stored {
		if s.Status != Expired {
			t.Fatalf("store has %+v", s)
		}
	}
}

func TestExpiryAtBoundaryFreesResource(t *testing.T) {
	m := newManager(t, nil)
	a, _ := m.Start(t0, req("web", "az1", time.Hour))
	// Start at exactly the expiry: the old shift no longer blocks, and Expire
	// still reports it once.
	b, err := m.Start(t0.Add(time.Hour), req("web", "az2", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Update(t0.Add(time.Hour), a.ID, UpdateRequest{Comment: ptr("x")}); !errors.Is(err, ErrConflict) {
		t.Fatalf("update of overdue shift: %v", err)
	}
	got := m.Expire(t0.Add(time.Hour))
	if len(got) != 1 || got[0].ID != a.ID {
		t.Fatalf("Expire = %+v", got)
	}
	if act, ok := m.Active("web"); !ok || act.ID != b.ID {
		t.Fatalf("Active = %+v %v", act, ok)
	}
}

func TestReloadAfterRestart(t *testing.T) {
	st := NewMemoryStore()
	m := newManager(t, st)
	a, _ := m.Start(t0, req("web", "az1", time.Hour))
	b, _ := m.Start(t0.Add(time.Minute), req("api", "az2", 3*time.Hour))
	c, _ := m.Start(t0.Add(2*time.Minute), StartRequest{Resource: "db", AwayFrom: "az1", ExpiresIn: time.Hour, Origin: Auto, Reason: "isolated impact"})
	if _, err := m.Cancel(t0.Add(3*time.Minute), c.ID, "dave"); err != nil {
		t.Fatal(err)
	}

	// "Restart": a new manager on the same store, with a fresh id sequence
	// that would collide with s1.
	m2 := newManager(t, st)
	for _, want := range []Shift{a, b} {
		got, err := m2.Get(want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != want.ID || !got.ExpiresAt.Equal(want.ExpiresAt) || got.Status != Active || got.AwayFrom != want.AwayFrom {
			t.Fatalf("reloaded %+v, want %+v", got, want)
		}
	}
	if got, _ := m2.Get(c.ID); got.Status != Canceled || got.EndedBy != "dave" || got.Origin != Auto {
		t.Fatalf("reloaded canceled = %+v", got)
	}
	if s, ok := m2.Active("web"); !ok || s.ID != a.ID {
		t.Fatalf("Active(web) = %+v %v", s, ok)
	}
	if _, err := m2.Start(t0.Add(4*time.Minute), req("web", "az2", time.Hour)); !errors.Is(err, ErrConflict) {
		t.Fatalf("second zone after restart: %v", err)
	}
	// An expiry that passed while down is dated at its time.
	got := m2.Expire(t0.Add(10 * time.Hour))
	if len(got) != 2 || !got[0].EndedAt.Equal(a.ExpiresAt) || !got[1].EndedAt.Equal(b.ExpiresAt) {
		t.Fatalf("Expire after restart = %+v", got)
	}
	// A duplicate id from the generator is refused rather than overwriting.
	if _, err := m2.Start(t0.Add(10*time.Hour), req("db", "az2", time.Hour)); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate id: %v", err)
	}
}

func TestList(t *testing.T) {
	m := newManager(t, nil)
	a, err := m.Start(t0, req("web", "az1", time.Hour))
	must(t, err)
	b, err := m.Start(t0.Add(time.Minute), req("api", "az2", time.Hour))
	must(t, err)
	_, err = m.Cancel(t0.Add(2*time.Minute), a.ID, "x")
	must(t, err)
	c, err := m.Start(t0.Add(3*time.Minute), req("web", "az2", time.Hour))
	must(t, err)
	ids := func(ss []Shift) string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		f    ListFilter
		want string
	}{
		{ListFilter{}, ids([]Shift{c, b, a})},
		{ListFilter{Resource: "web"}, ids([]Shift{c, a})},
		{ListFilter{Status: Active}, ids([]Shift{c, b})},
		{ListFilter{Resource: "web", Status: Canceled}, a.ID},
		{ListFilter{Resource: "db"}, ""},
		{ListFilter{Status: Expired}, ""},
	}
	for _, tt := range tests {
		if got := ids(m.List(tt.f)); got != tt.want {
			t.Errorf("List(%+v) = %s, want %s", tt.f, got, tt.want)
		}
	}
}

func TestJSONShape(t *testing.T) {
	m := newManager(t, nil)
	local := time.FixedZone("X", 2*3600)
	s, _ := m.Start(t0.In(local), StartRequest{Resource: "web", AwayFrom: "az1", ExpiresIn: 90 * time.Minute, Comment: "hi", StartedBy: "alice", Reason: "r", Origin: Practice})
	s, _ = m.Cancel(t0.Add(time.Minute).In(local), s.ID, "bob")
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": "s1", "resource": "web", "away_from": "az1", "status": "CANCELED", "origin": "practice",
		"comment": "hi", "started_by": "alice", "reason": "r",
		"started_at": "2025-03-01T12:00:00Z", "expires_at": "2025-03-01T13:30:00Z",
		"updated_at": "2025-03-01T12:01:00Z", "ended_at": "2025-03-01T12:01:00Z", "ended_by": "bob",
	}
	if len(got) != len(want) {
		t.Errorf("keys = %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	// A shift built with local times still marshals in UTC.
	raw := Shift{ID: "x", StartedAt: t0.In(local)}
	b, _ = json.Marshal(raw)
	if !strings.Contains(string(b), `"started_at":"2025-03-01T12:00:00Z"`) || strings.Contains(string(b), "ended_at") {
		t.Errorf("json = %s", b)
	}
	var back Shift
	if err := json.Unmarshal(b, &back); err != nil || !back.StartedAt.Equal(t0) {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}

// failStore fails saves on demand.
type failStore struct {
	*MemoryStore
	fail bool
}

func (f *failStore) SaveShift(ctx context.Context, s Shift) error {
	if f.fail {
		return errors.New("disk on fire")
	}
	return f.MemoryStore.SaveShift(ctx, s)
}

func TestWriteThrough(t *testing.T) {
	st := &failStore{MemoryStore: NewMemoryStore()}
	m := newManager(t, st)
	st.fail = true
	if _, err := m.Start(t0, req("web", "az1", time.Hour)); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Start with failing store: %v", err)
	}
	if len(m.List(ListFilter{})) != 0 {
		t.Fatal("unsaved shift kept in memory")
	}
	st.fail = false
	s, err := m.Start(t0, req("web", "az1", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	st.fail = true
	if _, err := m.Cancel(t0, s.ID, "x"); err == nil {
		t.Fatal("Cancel with failing store succeeded")
	}
	if got, _ := m.Get(s.ID); got.Status != Active {
		t.Fatalf("failed cancel changed memory: %+v", got)
	}
	// Expiry stands even when the store fails, and is written once it recovers.
	if got := m.Expire(t0.Add(time.Hour)); len(got) != 1 {
		t.Fatalf("Expire = %+v", got)
	}
	st.fail = false
	m.Expire(t0.Add(time.Hour))
	stored, _ := st.LoadShifts(context.Background())
	if len(stored) != 1 || stored[0].Status != Expired {
		t.Fatalf("store after recovery = %+v", stored)
	}
}

func TestConcurrentStarts(t *testing.T) {
	m, err := NewManager(resources(), NewMemoryStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			zone := []string{"az1", "az2", "az3"}[i%3]
			if _, err := m.Start(t0, req("web", zone, time.Hour)); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, ErrConflict) {
				t.Error(err)
			}
			m.List(ListFilter{})
		}(i)
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d concurrent starts succeeded, want 1", ok)
	}
	s, _ := m.Active("web")
	if !strings.HasPrefix(s.ID, "gzs-") || len(s.ID) != 16 {
		t.Fatalf("default id %q", s.ID)
	}
}

// Active and Expire look only at the active shifts, among a history that
// only grows: after many ended shifts, a restart (the store's shifts loaded)
// and a Reload, the active one is still found, and expires once.
func TestActiveAmongHistory(t *testing.T) {
	st := NewMemoryStore()
	m := newManager(t, st)
	now := t0
	for i := range 50 {
		s, err := m.Start(now, req("web", "az1", time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
		if i%2 == 0 {
			_, err = m.Cancel(now, s.ID, "carol")
		} else {
			m.Expire(s.ExpiresAt)
			now = s.ExpiresAt
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want, err := m.Start(now, req("web", "az2", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	check := func(m *Manager, when string) {
		t.Helper()
		if act, ok := m.Active("web"); !ok || act.ID != want.ID {
			t.Errorf("%s: Active(web) = %s %v, want %s", when, act.ID, ok, want.ID)
		}
		if act, ok := m.Active("api"); ok {
			t.Errorf("%s: Active(api) = %s, want none", when, act.ID)
		}
	}
	check(m, "running")
	restarted, err := NewManager(resources(), st, seqIDs())
	if err != nil {
		t.Fatal(err)
	}
	check(restarted, "restarted")
	if err := restarted.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	check(restarted, "reloaded")
	if got := restarted.Expire(want.ExpiresAt); len(got) != 1 || got[0].ID != want.ID {
		t.Errorf("Expire at its expiry = %+v, want %s alone", got, want.ID)
	}
	if act, ok := restarted.Active("web"); ok {
		t.Errorf("Active(web) after its expiry = %s", act.ID)
	}
	if got := restarted.Expire(want.ExpiresAt.Add(time.Hour)); len(got) != 0 {
		t.Errorf("expired again: %+v", got)
	}
}
