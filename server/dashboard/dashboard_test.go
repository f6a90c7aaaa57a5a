package dashboard_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/report"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/dashboard"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/observation"
)

// fake is an api.Backend with a timeline the test extends.
type fake struct {
	mu     sync.Mutex
	points []api.HistoryPoint
	audit  []store.AuditEntry
	calls  atomic.Int64 // Status calls: how often someone polls
}

var t0 = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

func (f *fake) add(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		t := t0.Add(time.Duration(len(f.points)) * time.Second).UnixMilli()
		f.points = append(f.points, api.HistoryPoint{T: t, Phase: "idle", Zones: []api.ZonePoint{
			{Zone: "z1", Availability: 0.5, P99Ms: 900, CanaryAvailability: 0.6, CanaryP99Ms: 800},
			{Zone: "z2", Availability: 1, P99Ms: 5, CanaryAvailability: 1, CanaryP99Ms: 4, Healthy: true},
		}})
		f.audit = append(f.audit, store.AuditEntry{Seq: int64(len(f.audit) + 1), At: time.UnixMilli(t), Kind: "decision", Message: fmt.Sprintf("entry %d", len(f.audit)+1)})
	}
}

func (f *fake) Status(context.Context) (api.Status, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := t0
	if n := len(f.points); n > 0 {
		now = time.UnixMilli(f.points[n-1].T)
	}
	return api.Status{Now: now, Resources: []api.ResourceStatus{{Name: "web", Detector: "default", Phase: "idle", Autoshift: "enabled",
		Zones: []api.ZoneStatus{{Zone: "z1"}, {Zone: "z2"}}}}}, nil
}

func (f *fake) Alarms(context.Context, string) ([]api.Alarm, error) {
	return []api.Alarm{{Resource: "web", Name: "z1-isolated-impact", State: "ALARM", Reason: "impact AND outlier"}}, nil
}

func (f *fake) Shifts(context.Context, shift.ListFilter) ([]shift.Shift, error) { return nil, nil }
func (f *fake) Shift(context.Context, string) (shift.Shift, error) {
	return shift.Shift{}, shift.ErrNotFound
}
func (f *fake) StartShift(context.Context, shift.StartRequest) (shift.Shift, error) {
	return shift.Shift{}, shift.ErrConflict
}
func (f *fake) UpdateShift(context.Context, string, shift.UpdateRequest) (shift.Shift, error) {
	return shift.Shift{}, shift.ErrConflict
}
func (f *fake) CancelShift(context.Context, string, string) (shift.Shift, error) {
	return shift.Shift{}, shift.ErrConflict
}

// Audit answers newest first, as the store does.
func (f *fake) Audit(_ context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.AuditEntry
	for i := len(f.audit) - 1; i >= 0; i-- {
		if e := f.audit[i]; e.Seq > q.After && (q.Limit == 0 || len(out) < q.Limit) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *fake) Practices(context.Context, string, int) ([]store.PracticeRun, error) { return nil, nil }
func (f *fake) Ingest(context.Context, string, []observation.Observation) error     { return nil }
func (f *fake) Decisions(context.Context) ([]api.Decision, error)                   { return nil, nil }
func (f *fake) Approve(context.Context, string, string) (api.Decision, error) {
	return api.Decision{}, shift.ErrNotFound
}

func (f *fake) History(_ context.Context, _ string, since time.Time) (api.History, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := api.History{Resource: "web", AvailabilityTarget: 0.99, LatencyThresholds: map[string]float64{"ride": 100}}
	for _, p := range f.points {
		if since.IsZero() || p.T >= since.UnixMilli() {
			h.Points = append(h.Points, p)
		}
	}
	return h, nil
}

// server mounts the dashboard over f.
func server(t *testing.T, f *fake, opts dashboard.Options) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for p, h := range dashboard.Handlers(f, opts) {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

type event struct {
	name, id string
	data     struct {
		Reset     bool `json:"reset"`
		Resources map[string]struct {
			Points []api.HistoryPoint `json:"points"`
			Alarms []api.Alarm        `json:"alarms"`
			Target *float64           `json:"availability_target"`
		} `json:"resources"`
		Audit []store.AuditEntry `json:"audit"`
	}
}

// stream opens /v1/events and returns a function reading the next event.
func stream(t *testing.T, ctx context.Context, url string, header http.Header) (*http.Response, func() event) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	r := bufio.NewReader(resp.Body)
	return resp, func() event {
		t.Helper()
		var ev event
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && ev.name != "":
				return ev
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data); err != nil {
					t.Fatalf("event data: %v", err)
				}
			}
		}
	}
}

func TestEventsSnapshotTicksAndResume(t *testing.T) {
	f := &fake{}
	f.add(3)
	srv := server(t, f, dashboard.Options{OpenReads: true, Interval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, next := stream(t, ctx, srv.URL+"/v1/events", nil)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	snap := next()
	web := snap.data.Resources["web"]
	if snap.name != "snapshot" || !snap.data.Reset || len(web.Points) != 3 || len(snap.data.Audit) != 3 || len(web.Alarms) != 1 || web.Target == nil {
		t.Fatalf("snapshot = %s reset=%v points=%d audit=%d alarms=%d", snap.name, snap.data.Reset, len(web.Points), len(snap.data.Audit), len(web.Alarms))
	}
	if want := fmt.Sprintf("%d.3", t0.Add(2*time.Second).UnixMilli()); snap.id != want {
		t.Fatalf("snapshot id %q, want %q (last point, last audit seq)", snap.id, want)
	}
	// New data arrives in ticks, each point once; alarms only when changed.
	f.add(2)
	var got []int64
	alarms := 0
	for deadline := time.Now().Add(5 * time.Second); len(got) < 2 && time.Now().Before(deadline); {
		ev := next()
		if ev.name != "tick" || ev.data.Reset {
			t.Fatalf("after the snapshot: %s reset=%v", ev.name, ev.data.Reset)
		}
		for _, p := range ev.data.Resources["web"].Points {
			got = append(got, p.T)
		}
		alarms += len(ev.data.Resources["web"].Alarms)
	}
	if len(got) != 2 || got[1] != t0.Add(4*time.Second).UnixMilli() {
		t.Fatalf("ticks carried points %v, want the 2 new ones", got)
	}
	if alarms > 1 {
		t.Errorf("unchanged alarms sent %d times", alarms)
	}

	// A reconnect with Last-Event-ID resumes: only what came after.
	_, again := stream(t, ctx, srv.URL+"/v1/events", http.Header{"Last-Event-Id": {snap.id}})
	res := again()
	if res.data.Reset || len(res.data.Resources["web"].Points) != 2 || len(res.data.Audit) != 2 || res.data.Audit[0].Seq != 5 {
		t.Fatalf("resume: reset=%v points=%d audit=%v", res.data.Reset, len(res.data.Resources["web"].Points), res.data.Audit)
	}
	// ?since= does the same (the page's manual reconnects use it).
	_, since := stream(t, ctx, srv.URL+"/v1/events?since="+snap.id, nil)
	if res := since(); len(res.data.Resources["web"].Points) != 2 {
		t.Fatalf("since: %d points", len(res.data.Resources["web"].Points))
	}
}

func TestEventsStopPollingWhenNobodyWatches(t *testing.T) {
	f := &fake{}
	f.add(1)
	srv := server(t, f, dashboard.Options{OpenReads: true, Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	_, next := stream(t, ctx, srv.URL+"/v1/events", nil)
	next()
	next()
	cancel()
	time.Sleep(100 * time.Millisecond)
	before := f.calls.Load()
	time.Sleep(200 * time.Millisecond)
	if after := f.calls.Load(); after != before {
		t.Fatalf("the backend was polled %d more times after the last client left", after-before)
	}
}

func TestEventsAuthAndLimits(t *testing.T) {
	f := &fake{}
	srv := server(t, f, dashboard.Options{OpenReads: false, Tokens: func() []config.Token { return []config.Token{{Name: "ops", Secret: "sekrit-token"}} }, MaxClients: 1})
	for _, tc := range []struct {
		name, auth string
		code       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"not bearer", "Basic c2Vrcml0LXRva2Vu", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/events", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	auth := http.Header{"Authorization": {"Bearer sekrit-token"}}
	resp, next := stream(t, ctx, srv.URL+"/v1/events", auth)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with the token: %d", resp.StatusCode)
	}
	next()
	// One client is the limit here: a second is turned away, not queued.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/events", nil)
	req.Header = auth
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable || resp2.Header.Get("Retry-After") == "" {
		t.Fatalf("second client: %d, want 503 with Retry-After", resp2.StatusCode)
	}
	// Unknown parameters are mistakes, as in the API.
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/v1/events?sinse=1.1", nil)
	req.Header = auth
	resp3, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp3.Body.Close()
	if resp3.StatusCode != http.StatusBadRequest {
		t.Fatalf("?sinse=: %d, want 400", resp3.StatusCode)
	}
}

func TestPageAndAssets(t *testing.T) {
	srv := server(t, &fake{}, dashboard.Options{OpenReads: true, ReadOnly: "a lab run <b>"})
	get := func(path string, h http.Header) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, page := get("/", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `src="assets/app.js"`) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("GET /: %d csp=%q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	if !strings.Contains(page, `data-readonly="a lab run &lt;b&gt;"`) {
		t.Errorf("the read-only reason is not in the page, escaped")
	}
	for _, ref := range []string{`src="http`, `href="http`, `src="//`, `href="//`} {
		if strings.Contains(page, ref) {
			t.Errorf("the page loads something from elsewhere: %s", ref)
		}
	}
	resp, js := get("/assets/vendor/uPlot.iife.min.js", nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "javascript") || etag == "" || !strings.Contains(js, "uPlot") {
		t.Fatalf("uPlot: %d %q etag %q", resp.StatusCode, resp.Header.Get("Content-Type"), etag)
	}
	if resp, _ := get("/assets/vendor/uPlot.iife.min.js", http.Header{"If-None-Match": {etag}}); resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", resp.StatusCode)
	}
	for _, p := range []string{"/assets/index.html", "/assets/nope.js", "/assets/../dashboard.go"} {
		if resp, _ := get(p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestWriteReport(t *testing.T) {
	// The scene as the lab tells the workshop's scenario (lab/report.Scene).
	sc := &report.Scene{Source: "topology: {zones: [use2-az1, use2-az2, use2-az3], instances_per_zone: 2}",
		Meta:   []string{"3 zones × 2 instances", "20 req/s"},
		Faults: []report.FaultScene{{Zone: "use2-az1", What: "30% packet loss between use2-az1 and the database"}}}
	end, shiftEnd, restored := 240.0, 300.0, 299.0
	r := &report.Report{Scenario: "workshop-db-packet-loss", Mode: "sim", Detector: "default", Seed: 7, Duration: 360,
		Requests: report.Requests{Total: 7000, Failed: 10},
		Faults:   []report.Fault{{Kind: "packet_loss", Target: "zone use2-az1", Start: 60, End: &end}},
		Detections: []report.Detection{{Alarm: "use2-az1-isolated-impact", Zone: "use2-az1", At: 68,
			Why: "use2-az1: isolated availability impact: CUSUM 23.3; 18.8% bad </script><script>alert(1)</script>"}},
		Shifts:       []report.Shift{{AwayFrom: "use2-az1", Start: 68, End: &shiftEnd, Origin: "auto"}},
		ControlPlane: []report.ControlPlane{{Action: "exclude_zone", Zone: "use2-az1", At: 98, Restored: &restored}},
		Baseline:     &report.Baseline{Requests: report.Requests{Total: 7000, Failed: 210}},
		Expect:       report.Expect{Met: true},
		Timeline: []report.Point{{At: 1, Zones: []report.ZonePoint{{Zone: "use2-az1", Availability: 1, P99: 5, Requests: 10, CanaryAvailability: -1, CanaryP99: -1}}},
			{At: 2, Zones: []report.ZonePoint{{Zone: "use2-az1", Availability: 0.5, P99: 900, Requests: 10, CanaryAvailability: 0.5, CanaryP99: 800}}}},
	}
	var buf bytes.Buffer
	if err := dashboard.WriteReport(&buf, r, sc); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"use2-az1</em> failed at 1:00", "saved 200 failed requests", "30% packet loss between use2-az1 and the database",
		"instances_per_zone: 2", "8.0 s later"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert(1)") {
		t.Error("the detector's text reached the page unescaped")
	}
	if n := strings.Count(page, "</script>"); n != 2 {
		t.Errorf("%d </script> in the page, want 2 (data and code): something ended a script early", n)
	}
	for _, ref := range []string{`src="http`, `href="http`, `src="//`, `href="//`, "<link "} {
		if strings.Contains(page, ref) {
			t.Errorf("the report loads something from elsewhere: %s", ref)
		}
	}
	// A relapse: traffic went back at 5:00, the zone failed again and was
	// shifted away a second time; the page tells the second episode too.
	again, againEnd := 345.0, 530.0
	r.Shifts = append(r.Shifts, report.Shift{AwayFrom: "use2-az1", Start: again, End: &againEnd, Origin: "auto", Episode: 2, Relapse: true})
	buf.Reset()
	if err := dashboard.WriteReport(&buf, r, sc); err != nil {
		t.Fatal(err)
	}
	page = buf.String()
	for _, want := range []string{"Traffic went back to use2-az1 at 5:00 and it failed again: shift episode 2 began at 5:45 (a relapse",
		"Shifted away again", "episode 2 · at 5:45 · 45 s after traffic went back · relapse · ended 8:50", "shifted away from use2-az1 (episode 2)"} {
		if !strings.Contains(page, want) {
			t.Errorf("report with a relapse lacks %q", want)
		}
	}
	// Without a scenario, or with nothing detected, it still tells what it can.
	r.Detections, r.Shifts, r.ControlPlane, r.Baseline = nil, nil, nil, nil
	buf.Reset()
	if err := dashboard.WriteReport(&buf, r, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "grayzone did not detect isolated zonal impact") || !strings.Contains(buf.String(), "--baseline") {
		t.Errorf("report without detection does not say so")
	}
}
