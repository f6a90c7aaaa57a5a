package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/observation"
)

const token = "s3cret-token-1"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fake is a Backend over a real shift.Manager (so shift errors are the real
// ones) plus canned reads. It records every call that would change state.
type fake struct {
	mu        sync.Mutex
	m         *shift.Manager
	now       time.Time
	mutations []string
	ingested  []observation.Observation
	resource  string // of the last Ingest
	filter    shift.ListFilter
	auditQ    store.AuditQuery
	practiceQ [2]any
	alarmRes  string
	decisions []api.Decision
	err       error // when set, every read fails with it
}

func newFake(t *testing.T) *fake {
	t.Helper()
	m, err := shift.NewManager([]shift.Resource{
		{Name: "web", Zones: []string{"use2-az1", "use2-az2", "use2-az3"}},
		{Name: "tiny", Zones: []string{"a", "b"}, Capacity: map[string]int{"a": 1, "b": 1}, MinCapacity: 5},
	}, shift.NewMemoryStore(), seqIDs())
	if err != nil {
		t.Fatal(err)
	}
	return &fake{m: m, now: t0, decisions: []api.Decision{
		{ID: "d1", Resource: "web", Zone: "use2-az1", Why: "isolated impact", At: t0, Status: "pending"},
	}}
}

func seqIDs() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("gzs-%d", n) }
}

// mutated records a state-changing call; f.mu is held.
func (f *fake) mutated(what string) { f.mutations = append(f.mutations, what) }

// read runs fn under the lock, for tests inspecting what the handler passed.
func (f *fake) read(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fake) Mutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.mutations)
}

func (f *fake) Status(ctx context.Context) (api.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return api.Status{}, f.err
	}
	active, ok := f.m.Active("web")
	rs := api.ResourceStatus{
		Name: "web", Detector: "default", Phase: "idle", Autoshift: "enabled", Why: "all zones healthy",
		Excluded: []string{}, Pending: []string{},
		Zones: []api.ZoneStatus{
			{Zone: "use2-az1", Availability: 0.9712, P99Ms: 812, Requests: 1203, Healthy: true, Impacted: true, Outlier: true, Isolated: true, Targets: []api.Target{}},
			{Zone: "use2-az2", Availability: 1, P99Ms: 12.5, Requests: 1180, Healthy: true, Targets: []api.Target{}},
			{Zone: "use2-az3", Availability: 1, P99Ms: -1, Healthy: false, Targets: []api.Target{}},
		},
	}
	if ok {
		rs.ActiveShift, rs.Phase, rs.PhaseZone = &active, "shifted", active.AwayFrom
	}
	return api.Status{Now: f.now, Resources: []api.ResourceStatus{rs}}, nil
}

func (f *fake) Alarms(ctx context.Context, resource string) ([]api.Alarm, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alarmRes = resource
	if f.err != nil {
		return nil, f.err
	}
	return []api.Alarm{
		{Resource: "web", Name: "web-use2-az1-isolated-impact", State: "ALARM", Reason: "availability 97.1% < 99%"},
		{Resource: "web", Name: "web-use2-az2-isolated-impact", State: "OK"},
	}, nil
}

func (f *fake) Shifts(ctx context.Context, flt shift.ListFilter) ([]shift.Shift, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filter = flt
	if f.err != nil {
		return nil, f.err
	}
	return f.m.List(flt), nil
}

func (f *fake) Shift(ctx context.Context, id string) (shift.Shift, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return shift.Shift{}, f.err
	}
	return f.m.Get(id)
}

func (f *fake) StartShift(ctx context.Context, req shift.StartRequest) (shift.Shift, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutated("StartShift")
	return f.m.Start(f.now, req)
}

func (f *fake) UpdateShift(ctx context.Context, id string, req shift.UpdateRequest) (shift.Shift, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutated("UpdateShift")
	return f.m.Update(f.now, id, req)
}

func (f *fake) CancelShift(ctx context.Context, id, by string) (shift.Shift, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutated("CancelShift")
	return f.m.Cancel(f.now, id, by)
}

func (f *fake) Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auditQ = q
	if f.err != nil {
		return nil, f.err
	}
	return []store.AuditEntry{{Seq: 7, At: t0, Kind: "shift_started", Resource: "web", Zone: "use2-az1", Actor: "auto", Message: "shifted away"}}, nil
}

func (f *fake) Practices(ctx context.Context, resource string, limit int) ([]store.PracticeRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.practiceQ = [2]any{resource, limit}
	if f.err != nil {
		return nil, f.err
	}
	return nil, nil // nil must come out as []
}

func (f *fake) Ingest(ctx context.Context, resource string, obs []observation.Observation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutated("Ingest")
	if resource != "web" {
		return fmt.Errorf("resource %q: %w", resource, shift.ErrNotFound)
	}
	for _, o := range obs {
		if o.Zone == "nowhere" {
			return fmt.Errorf("zone %q is not a zone of web: %w", o.Zone, shift.ErrInvalid)
		}
	}
	f.resource = resource
	f.ingested = append(f.ingested, obs...)
	return nil
}

func (f *fake) History(ctx context.Context, resource string, since time.Time) (api.History, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return api.History{}, f.err
	}
	return api.History{Resource: resource, Points: []api.HistoryPoint{}, Spans: []api.Span{}}, nil
}

func (f *fake) Decisions(ctx context.Context) ([]api.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return f.decisions, nil
}

func (f *fake) Approve(ctx context.Context, id, by string) (api.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutated("Approve")
	for i, d := range f.decisions {
		if d.ID == id {
			if d.Status != "pending" {
				return api.Decision{}, fmt.Errorf("decision %s is %s: %w", id, d.Status, shift.ErrConflict)
			}
			f.decisions[i].Status, f.decisions[i].ApprovedBy = "approved", by
			return f.decisions[i], nil
		}
	}
	return api.Decision{}, fmt.Errorf("decision %q: %w", id, shift.ErrNotFound)
}

// server serves the API over f with the test token; reads are closed unless
// openReads.
func server(t *testing.T, f *fake, openReads bool) *httptest.Server {
	t.Helper()
	h := api.NewHandler(f, api.Options{
		Tokens: func() []config.Token {
			return []config.Token{{Name: "other", Secret: "other-token"}, {Name: "alice", Secret: token}}
		},
		OpenReads: openReads,
		Now:       func() time.Time { return t0 },
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
