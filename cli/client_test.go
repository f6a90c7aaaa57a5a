package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/observation"
)

const testToken = "cli-test-token"

// fakeBackend serves the API commands: shifts are a real shift.Manager on a
// fixed clock, the rest canned. It counts state-changing calls.
type fakeBackend struct {
	mu        sync.Mutex
	m         *shift.Manager
	now       time.Time
	mutations int
	fail      error // returned by Status when set
}

func newFakeBackend(t *testing.T) *fakeBackend {
	t.Helper()
	n := 0
	m, err := shift.NewManager([]shift.Resource{{Name: "web", Zones: []string{"use2-az1", "use2-az2", "use2-az3"}}},
		shift.NewMemoryStore(), func() string { n++; return fmt.Sprintf("gzs-%d", n) })
	if err != nil {
		t.Fatal(err)
	}
	return &fakeBackend{m: m, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (f *fakeBackend) Status(context.Context) (api.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return api.Status{}, f.fail
	}
	rs := api.ResourceStatus{Name: "web", Detector: "default", Phase: "idle", Autoshift: "enabled", Why: "all zones healthy",
		Zones: []api.ZoneStatus{
			{Zone: "use2-az1", Availability: 0.9712, P99Ms: 812, Requests: 1203, Healthy: true, Impacted: true, Isolated: true},
			{Zone: "use2-az2", Availability: 1, P99Ms: 4.25, Requests: 1180, Healthy: true},
			{Zone: "use2-az3", P99Ms: -1, Healthy: false},
		}}
	if s, ok := f.m.Active("web"); ok {
		rs.ActiveShift, rs.Phase, rs.PhaseZone = &s, "shifted", s.AwayFrom
	}
	return api.Status{Now: f.now, Resources: []api.ResourceStatus{rs}}, nil
}

func (f *fakeBackend) Alarms(_ context.Context, resource string) ([]api.Alarm, error) {
	return []api.Alarm{
		{Resource: "web", Name: "web-az1-impact", State: "ALARM", Reason: "availability below 99%"},
		{Resource: "web", Name: "web-az2-impact", State: "OK"},
	}, nil
}

func (f *fakeBackend) Shifts(_ context.Context, flt shift.ListFilter) ([]shift.Shift, error) {
	return f.m.List(flt), nil
}

func (f *fakeBackend) Shift(_ context.Context, id string) (shift.Shift, error) { return f.m.Get(id) }

func (f *fakeBackend) StartShift(_ context.Context, req shift.StartRequest) (shift.Shift, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutations++
	return f.m.Start(f.now, req)
}

func (f *fakeBackend) UpdateShift(_ context.Context, id string, req shift.UpdateRequest) (shift.Shift, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutations++
	return f.m.Update(f.now, id, req)
}

func (f *fakeBackend) CancelShift(_ context.Context, id, by string) (shift.Shift, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutations++
	return f.m.Cancel(f.now, id, by)
}

func (f *fakeBackend) Audit(_ context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	return []store.AuditEntry{{Seq: 1, At: f.now, Kind: "shift_started", Resource: "web", Zone: "use2-az1",
		Actor: "cli", Message: fmt.Sprintf("limit=%d", q.Limit)}}, nil
}

func (f *fakeBackend) Practices(context.Context, string, int) ([]store.PracticeRun, error) {
	return nil, nil
}

func (f *fakeBackend) Ingest(context.Context, string, []observation.Observation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutations++
	return nil
}

func (f *fakeBackend) History(ctx context.Context, resource string, since time.Time) (api.History, error) {
	return api.History{Resource: resource, Points: []api.HistoryPoint{}, Spans: []api.Span{}}, nil
}

func (f *fakeBackend) Decisions(context.Context) ([]api.Decision, error) {
	return []api.Decision{{ID: "d1", Resource: "web", Zone: "use2-az1", Why: "isolated impact", At: f.now, Status: "pending"}}, nil
}

func (f *fakeBackend) Approve(_ context.Context, id, by string) (api.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutations++
	if id != "d1" {
		return api.Decision{}, fmt.Errorf("decision %q: %w", id, shift.ErrNotFound)
	}
	return api.Decision{ID: "d1", Resource: "web", Zone: "use2-az1", Why: "isolated impact", At: f.now, Status: "approved", ApprovedBy: by}, nil
}

func (f *fakeBackend) Mutations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mutations
}

// apiServer serves the real handler over a fake, points the commands at it
// through GRAYZONE_SERVER and sets the token (unset it with t.Setenv).
func apiServer(t *testing.T, openReads bool) *fakeBackend {
	t.Helper()
	f := newFakeBackend(t)
	srv := httptest.NewServer(api.NewHandler(f, api.Options{
		Tokens:    func() []config.Token { return []config.Token{{Name: "cli", Secret: testToken}} },
		OpenReads: openReads,
	}))
	t.Cleanup(srv.Close)
	t.Setenv(envServer, srv.URL)
	t.Setenv(envToken, testToken)
	return f
}

func TestShiftCommands(t *testing.T) {
	f := apiServer(t, false)

	code, out, errOut := run(t, "shift", "start", "--resource", "web", "--away-from", "use2-az1", "--expires-in", "30m", "--comment", "bad az1")
	if code != 0 {
		t.Fatalf("start: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[0] != "gzs-1" ||
		lines[1] != "shifted web away from use2-az1 until 2026-03-01T12:30:00Z (30m): bad az1" {
		t.Errorf("start printed:\n%s", out)
	}

	code, out, _ = run(t, "shift", "list", "--output", "json")
	if code != 0 {
		t.Fatalf("list: exit %d", code)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list json: %v\n%s", err, out)
	}
	if len(list) != 1 {
		t.Fatalf("list: %s", out)
	}
	want := map[string]any{"id": "gzs-1", "resource": "web", "away_from": "use2-az1", "status": "ACTIVE",
		"origin": "manual", "comment": "bad az1", "expires_at": "2026-03-01T12:30:00Z"}
	for k, v := range want {
		if list[0][k] != v {
			t.Errorf("list[0][%q] = %v, want %v", k, list[0][k], v)
		}
	}
	if _, err := time.Parse(time.RFC3339, list[0]["expires_at"].(string)); err != nil {
		t.Errorf("expires_at is not RFC 3339: %v", err)
	}

	code, out, _ = run(t, "shift", "list", "--resource", "web", "--status", "active")
	if code != 0 || !strings.Contains(out, "ID ") || !strings.Contains(out, "gzs-1") || !strings.Contains(out, "bad az1") {
		t.Errorf("list text: exit %d\n%s", code, out)
	}
	// Columns line up: the header's STATUS starts where the row's ACTIVE does.
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if strings.Index(rows[0], "STATUS") != strings.Index(rows[1], "ACTIVE") {
		t.Errorf("table not aligned:\n%s", out)
	}

	if code, out, _ = run(t, "shift", "get", "gzs-1"); code != 0 || !strings.Contains(out, "by cli") {
		t.Errorf("get: exit %d\n%s", code, out)
	}
	if code, out, _ = run(t, "shift", "update", "gzs-1", "--expires-in", "2h"); code != 0 || !strings.Contains(out, "until 2026-03-01T14:00:00Z: bad az1") {
		t.Errorf("update: exit %d\n%s", code, out)
	}
	if code, out, _ = run(t, "shift", "update", "gzs-1", "--comment", ""); code != 0 || strings.Contains(out, "bad az1") {
		t.Errorf("clearing the comment: exit %d\n%s", code, out)
	}
	if code, out, _ = run(t, "shift", "cancel", "gzs-1"); code != 0 || !strings.Contains(out, "canceled shift gzs-1") {
		t.Errorf("cancel: exit %d\n%s", code, out)
	}
	// Canceling again is a conflict: the server's message, exit 2.
	code, _, errOut = run(t, "shift", "cancel", "gzs-1")
	if code != ExitUsage || strings.TrimSpace(errOut) != "grayzone: shift gzs-1: is CANCELED, not ACTIVE: conflict" {
		t.Errorf("second cancel: exit %d, stderr %q", code, errOut)
	}
	if n := f.Mutations(); n != 5 {
		t.Errorf("%d mutations, want 5", n)
	}
}

func TestAPICommandsNeedToken(t *testing.T) {
	f := apiServer(t, true)
	t.Setenv(envToken, "")

	code, _, errOut := run(t, "shift", "start", "--resource", "web", "--away-from", "use2-az1", "--expires-in", "30m")
	if code != ExitUsage || !strings.Contains(errOut, "missing bearer token") || !strings.Contains(errOut, "set GRAYZONE_TOKEN") {
		t.Errorf("start without token: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut = run(t, "approve", "d1"); code != ExitUsage || !strings.Contains(errOut, "missing bearer token") {
		t.Errorf("approve without token: exit %d, stderr %q", code, errOut)
	}
	t.Setenv(envToken, "wrong")
	if code, _, errOut = run(t, "shift", "cancel", "gzs-1"); code != ExitUsage || !strings.Contains(errOut, "not accepted") {
		t.Errorf("cancel with a wrong token: exit %d, stderr %q", code, errOut)
	}
	if n := f.Mutations(); n != 0 {
		t.Errorf("%d mutations without a valid token", n)
	}
	// Reads are open on this server.
	t.Setenv(envToken, "")
	if code, _, errOut = run(t, "shift", "list"); code != 0 {
		t.Errorf("open read without token: exit %d %s", code, errOut)
	}
}

func TestReadsClosed(t *testing.T) {
	apiServer(t, false)
	t.Setenv(envToken, "")
	for _, args := range [][]string{{"status"}, {"shift", "list"}, {"alarms"}, {"audit"}, {"decisions"}} {
		if code, _, errOut := run(t, args...); code != ExitUsage || !strings.Contains(errOut, "missing bearer token") {
			t.Errorf("%v without token: exit %d, stderr %q", args, code, errOut)
		}
	}
}

func TestReadCommands(t *testing.T) {
	apiServer(t, false)
	if code, _, errOut := run(t, "shift", "start", "--resource", "web", "--away-from", "use2-az1", "--expires-in", "30m"); code != 0 {
		t.Fatal(errOut)
	}

	code, out, _ := run(t, "status")
	for _, want := range []string{"web  phase shifted (use2-az1)", "gzs-1 away from use2-az1", "(in 30m)",
		"97.12%", "812ms", "4.2ms", "unhealthy", "impacted,isolated"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	code, out, _ = run(t, "status", "--output", "json")
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.Resources[0].ActiveShift == nil {
		t.Errorf("status json: exit %d %v\n%s", code, err, out)
	}

	code, out, _ = run(t, "alarms", "--state", "alarm")
	if code != 0 || !strings.Contains(out, "web-az1-impact") || strings.Contains(out, "web-az2-impact") {
		t.Errorf("alarms --state: exit %d\n%s", code, out)
	}
	if code, out, _ = run(t, "audit", "--limit", "7"); code != 0 || !strings.Contains(out, "limit=7") {
		t.Errorf("audit: exit %d\n%s", code, out)
	}
	if code, out, _ = run(t, "decisions"); code != 0 || !strings.Contains(out, "d1") || !strings.Contains(out, "pending") {
		t.Errorf("decisions: exit %d\n%s", code, out)
	}
	if code, out, _ = run(t, "approve", "d1"); code != 0 || !strings.Contains(out, "approved decision d1") {
		t.Errorf("approve: exit %d\n%s", code, out)
	}
}

func TestAPICommandExitCodes(t *testing.T) {
	f := apiServer(t, false)

	// A dead address: exit 1 with the hint.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"not found", []string{"shift", "get", "nope"}, ExitUsage, `grayzone: shift "nope": not found`},
		{"invalid", []string{"shift", "start", "--resource", "web", "--away-from", "mars", "--expires-in", "30m"}, ExitUsage, "away_from: zone \"mars\""},
		{"out of range", []string{"shift", "start", "--resource", "web", "--away-from", "use2-az1", "--expires-in", "10s"}, ExitUsage, "expires_in: 10s is out of range"},
		{"bad duration flag", []string{"shift", "start", "--resource", "web", "--away-from", "use2-az1", "--expires-in", "soon"}, ExitUsage, "invalid argument"},
		{"missing flag", []string{"shift", "start", "--resource", "web"}, ExitUsage, "required flag"},
		{"nothing to update", []string{"shift", "update", "gzs-1"}, ExitUsage, "nothing to update"},
		{"no id", []string{"shift", "get"}, ExitUsage, "accepts 1 arg"},
		{"bad status", []string{"shift", "list", "--status", "gone"}, ExitUsage, `status: "GONE" is not ACTIVE`},
		{"bad output", []string{"shift", "list", "--output", "yaml"}, ExitUsage, `--output "yaml"`},
		{"bad server", []string{"status", "--server", "127.0.0.1:8080"}, ExitUsage, "want an http:// or https:// URL"},
		{"unreachable", []string{"status", "--server", dead}, ExitFailed, "is grayzone serve running at " + dead + "? set --server or GRAYZONE_SERVER"},
		{"unreachable shift", []string{"shift", "--server", dead, "list"}, ExitFailed, "is grayzone serve running at " + dead},
		{"server error", []string{"status"}, ExitFailed, "grayzone: database is locked (HTTP 500)"},
		{"unknown decision", []string{"approve", "zz"}, ExitUsage, `decision "zz": not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "server error" {
				f.mu.Lock()
				f.fail = fmt.Errorf("database is locked")
				f.mu.Unlock()
				defer func() { f.mu.Lock(); f.fail = nil; f.mu.Unlock() }()
			}
			code, out, errOut := run(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.err) {
				t.Errorf("exit %d, stderr %q (stdout %q); want exit %d and %q", code, errOut, out, tc.code, tc.err)
			}
		})
	}
}

// The server address comes from --server over GRAYZONE_SERVER.
func TestServerFlagWins(t *testing.T) {
	f := newFakeBackend(t)
	srv := httptest.NewServer(api.NewHandler(f, api.Options{OpenReads: true}))
	defer srv.Close()
	t.Setenv(envServer, "http://127.0.0.1:1")
	if code, out, errOut := run(t, "shift", "list", "--server", srv.URL); code != 0 || strings.TrimSpace(out) != "no shifts" {
		t.Errorf("exit %d %q %q", code, out, errOut)
	}
}
