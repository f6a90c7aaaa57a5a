package service_test

// Notifications from grayzone serve as a real process, to a real
// Alertmanager (routing to the test's receiver) and a signed CloudEvents
// webhook in the test.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/amtest"
	"github.com/grayzone/grayzone/internal/freeport"
	"github.com/grayzone/grayzone/notify/event"
	"github.com/grayzone/grayzone/notify/webhook"
	"github.com/grayzone/grayzone/server/api"
)

const hookSecret = "test-webhook-secret-0123456789abcdef"

// hook is a CloudEvents receiver that checks every signature, and can be
// stopped and started again on the same address.
type hook struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	srv  *http.Server
	got  []event.Event
	bad  []string
}

func newHook(t *testing.T) *hook {
	h := &hook{t: t, addr: freeport.Addr(t)}
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *hook) url() string { return "http://" + h.addr + "/events" }

func (h *hook) start() {
	h.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger for a moment after stop
		if ln, err = net.Listen("tcp", h.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		h.t.Fatalf("hook: listen again on %s: %v", h.addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ce webhook.CloudEvent
		err := webhook.Verify([]byte(hookSecret), r.Header, body, time.Now(), 0)
		if err == nil {
			err = json.Unmarshal(body, &ce)
		}
		if err == nil && (ce.SpecVersion != "1.0" || ce.ID != ce.Data.ID || ce.ID != r.Header.Get(webhook.HeaderIdempotency) ||
			r.Header.Get("Content-Type") != webhook.ContentType || ce.Type != ce.Data.Type()) {
			err = fmt.Errorf("not a proper CloudEvent: %s", body)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if err != nil {
			h.bad = append(h.bad, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.got = append(h.got, ce.Data)
	})}
	h.mu.Lock()
	h.srv = srv
	h.mu.Unlock()
	go srv.Serve(ln)
}

func (h *hook) stop() {
	h.mu.Lock()
	srv := h.srv
	h.srv = nil
	h.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (h *hook) events() []event.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.bad) > 0 {
		h.t.Fatalf("hook refused deliveries: %v", h.bad)
	}
	return append([]event.Event(nil), h.got...)
}

// has reports whether an event of kind about zone has arrived (zone "" any).
func (h *hook) has(kind event.Kind, zone string) (event.Event, bool) {
	for _, e := range h.events() {
		if e.Kind == kind && (zone == "" || e.Zone == zone) {
			return e, true
		}
	}
	return event.Event{}, false
}

// checkOnceInOrder: every event ID arrived exactly once, in the order
// the audit log wrote them.
func (h *hook) checkOnceInOrder(t *testing.T) []event.Event {
	t.Helper()
	evs := h.events()
	seen := map[string]bool{}
	var last int64
	for _, e := range evs {
		if seen[e.ID] {
			t.Errorf("event %s (%s) arrived twice", e.ID, e.Kind)
		}
		seen[e.ID] = true
		if e.AuditSeq <= last {
			t.Errorf("event %s (%s, audit %d) arrived after audit %d", e.ID, e.Kind, e.AuditSeq, last)
		}
		last = e.AuditSeq
	}
	return evs
}

func notifyHead(amURL, hookURL string) string {
	return fmt.Sprintf(`notifications:
  alertmanagers: [{url: %s, resend_every: 2s}]
  webhooks: [{name: hook, url: %s, secret: %s}]
  retry: {initial: 200ms, max: 1s}
`, amURL, hookURL, hookSecret)
}

func kinds(evs []event.Event) []event.Kind {
	var out []event.Kind
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

// An automatic shift's episode reaches Alertmanager and the webhook, each
// event once and in order, though the receiver is down for part of it; an
// event queued when serve is killed -9 is delivered after the restart.
func TestServeNotifiesAutomaticShift(t *testing.T) {
	if testing.Short() {
		t.Skip("runs grayzone serve, Alertmanager and an episode")
	}
	t.Parallel()
	am := amtest.Start(t, amtest.Options{GroupBy: []string{"alertname", "resource", "zone"}})
	h := newHook(t)
	cp := newControlPlane(t)
	cfg := writeConfig(t, "serve", notifyHead(am.URL, h.url()), backends(t, 6),
		"    autoshift: {enabled: true, min_interval: 0s, expires_in: 1h, control_plane_after: 1s, recovery_hold: 2s}\n"+cp.yaml())
	listen := freeport.Addr(t)
	args := []string{"--config", cfg, "--data-dir", t.TempDir(), "--listen", listen}
	s := startServe(t, args...)
	c := api.NewClient("http://"+listen, "test-token-0123456789abcdef")
	zones := []string{"z1", "z2", "z3"}
	status := func() api.ResourceStatus {
		st, err := c.Status(context.Background())
		if err != nil || len(st.Resources) == 0 {
			return api.ResourceStatus{}
		}
		return st.Resources[0]
	}
	eventually(t, 60*time.Second, "z2 shifted and excluded", func() bool {
		_ = observe(c, zones, "z2")
		st := status()
		return st.ActiveShift != nil && st.ActiveShift.AwayFrom == "z2" && slices.Contains(st.Excluded, "z2")
	})
	eventually(t, 20*time.Second, "shift.started and zone.excluded at the webhook", func() bool {
		_, a := h.has(event.ShiftStarted, "z2")
		_, b := h.has(event.ZoneExcluded, "z2")
		return a && b
	})
	h.stop() // the receiver goes away for the recovery
	eventually(t, 60*time.Second, "recovered from z2", func() bool {
		_ = observe(c, zones, "")
		st := status()
		return st.Phase == "idle" && st.ActiveShift == nil && len(st.Pending) == 0 && len(st.Excluded) == 0
	})
	time.Sleep(500 * time.Millisecond) // a failed attempt or two while it is down
	h.start()
	eventually(t, 30*time.Second, "shift.ended at the webhook after it came back", func() bool {
		_, ok := h.has(event.ShiftEnded, "z2")
		return ok
	})
	evs := h.checkOnceInOrder(t)
	ks := kinds(evs)
	var order []event.Kind
	for _, k := range ks {
		if slices.Contains([]event.Kind{event.Detection, event.ShiftStarted, event.ZoneExcluded, event.ZoneIncluded, event.ShiftEnded}, k) && !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	if want := []event.Kind{event.Detection, event.ShiftStarted, event.ZoneExcluded, event.ZoneIncluded, event.ShiftEnded}; !slices.Equal(order, want) {
		t.Fatalf("webhook kinds %v, want in order %v", ks, want)
	}
	started, _ := h.has(event.ShiftStarted, "z2")
	ended, _ := h.has(event.ShiftEnded, "z2")
	if started.Origin != "auto" || started.ShiftID == "" || ended.ShiftID != started.ShiftID || started.Resource != "web" {
		t.Fatalf("shift events: %+v / %+v", started, ended)
	}
	// Alertmanager: the shift's alert fired (once) and resolved, carrying the same event IDs.
	ns := am.WaitFor(t, 30*time.Second, "GrayzoneShiftActive resolved", func(ns []amtest.Notification) bool {
		return amtest.Any(ns, "GrayzoneShiftActive", amtest.Resolved)
	})
	var firing, resolved int
	for _, n := range ns {
		for _, a := range n.Alerts {
			if a.Labels["alertname"] != "GrayzoneShiftActive" {
				continue
			}
			if a.Labels["resource"] != "web" || a.Labels["zone"] != "z2" || a.Labels["severity"] == "" || a.Annotations["event_id"] != started.ID {
				t.Fatalf("alert %+v, want web/z2 from event %s", a, started.ID)
			}
			if a.Status == "firing" {
				if resolved > 0 {
					t.Fatalf("fired again after it resolved: %+v", ns)
				}
				firing++
			} else {
				resolved++
				if a.Annotations["resolved_by_event_id"] != ended.ID {
					t.Fatalf("resolved by %q, want %s", a.Annotations["resolved_by_event_id"], ended.ID)
				}
			}
		}
	}
	if firing != 1 || resolved != 1 {
		t.Fatalf("GrayzoneShiftActive: %d firing, %d resolved notifications, want 1 and 1", firing, resolved)
	}

	// kill -9 with an event in the outbox: the restarted serve delivers it.
	h.stop()
	sh, err := c.StartShift(context.Background(), api.StartShiftRequest{Resource: "web", AwayFrom: "z3", ExpiresIn: "1h", Comment: "undelivered"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the manual shift's event waiting in the outbox", func() bool {
		st, err := c.Status(context.Background())
		if err != nil {
			return false
		}
		for _, d := range st.Notifications {
			if d.Endpoint == "hook" && d.Pending > 0 && d.Failures > 0 {
				return true
			}
		}
		return false
	})
	s.kill()
	h.start()
	s = startServe(t, args...)
	eventually(t, 30*time.Second, "the manual shift.started delivered after the restart", func() bool {
		for _, e := range h.events() {
			if e.Kind == event.ShiftStarted && e.ShiftID == sh.ID && e.Origin == string(shift.Manual) {
				return true
			}
		}
		return false
	})
	h.checkOnceInOrder(t)
	am.WaitFor(t, 30*time.Second, "the manual shift firing at Alertmanager", func(ns []amtest.Notification) bool {
		return amtest.Any(ns, "GrayzoneShiftActive", func(a amtest.Alert) bool {
			return a.Labels["zone"] == "z3" && a.Status == "firing" && a.Annotations["origin"] == "manual"
		})
	})
	_ = s
}

// A decision awaiting approval reaches Alertmanager within 2 s, with a link
// that opens the dashboard's approval of it; approving resolves it.
func TestServeApprovalReachesAlertmanager(t *testing.T) {
	if testing.Short() {
		t.Skip("runs grayzone serve and Alertmanager")
	}
	t.Parallel()
	am := amtest.Start(t, amtest.Options{})
	h := newHook(t)
	cfg := testConfigHead(t, notifyHead(am.URL, h.url()), "    autoshift: {enabled: true, approval: true, min_interval: 0s}\n")
	s := startServe(t, "--config", cfg, "--data-dir", t.TempDir())
	c := api.NewClient(s.url(), "test-token-0123456789abcdef")
	ctx := context.Background()
	var d api.Decision
	eventually(t, 60*time.Second, "a decision awaiting approval", func() bool {
		failZone(t, c, "z2")
		ds, _ := c.Decisions(ctx)
		for _, x := range ds {
			if x.Status == "pending" && x.Zone == "z2" {
				d = x
				return true
			}
		}
		return false
	})
	var alert amtest.Alert
	ns := am.WaitFor(t, 10*time.Second, "GrayzoneApprovalPending firing", func(ns []amtest.Notification) bool {
		for _, a := range amtest.Find(ns, "GrayzoneApprovalPending") {
			alert = a
			return true
		}
		return false
	})
	var arrived time.Time
	for _, n := range ns {
		if len(amtest.Find([]amtest.Notification{n}, "GrayzoneApprovalPending")) > 0 {
			arrived = n.Received
			break
		}
	}
	if lag := arrived.Sub(d.At); lag > 2*time.Second {
		t.Errorf("the approval alert arrived %s after the decision, want within 2s", lag)
	}
	t.Logf("decision %s at %s; alert at the receiver %s later", d.ID, d.At.Format(time.RFC3339Nano), arrived.Sub(d.At))
	want := s.url() + "/?decision=" + d.ID
	if alert.GeneratorURL != want || alert.Labels["decision"] != d.ID || alert.Labels["resource"] != "web" || alert.Labels["zone"] != "z2" {
		t.Fatalf("alert %+v, want generatorURL %s", alert, want)
	}
	// The link opens the dashboard, whose approval view reads ?decision=.
	page := get(t, alert.GeneratorURL)
	app := get(t, s.url()+"/assets/app.js")
	if !strings.Contains(page, "approval") || !strings.Contains(app, "URLSearchParams(location.search).get('decision')") {
		t.Fatalf("the approval link does not open the dashboard's approval view")
	}
	if _, err := c.Approve(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	am.WaitFor(t, 20*time.Second, "GrayzoneApprovalPending resolved", func(ns []amtest.Notification) bool {
		return amtest.Any(ns, "GrayzoneApprovalPending", amtest.Resolved)
	})
	if e, ok := h.has(event.ApprovalPending, "z2"); !ok || e.DecisionID != d.ID || e.Link != want {
		t.Fatalf("webhook approval.pending: %+v", e)
	}
}

// testConfigHead is testConfig with top-level keys.
func testConfigHead(t *testing.T, head, extra string) string {
	t.Helper()
	return writeConfig(t, "serve", head, backends(t, 6), extra)
}

// Two replicas on PostgreSQL: only the leader delivers.
func TestServeFollowerSendsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two grayzone serve processes on PostgreSQL")
	}
	t.Parallel()
	am := amtest.Start(t, amtest.Options{})
	h := newHook(t)
	url := throwawayPostgres(t)
	be := backends(t, 6)
	a := startServe(t, "--config", writeConfig(t, "a", fmt.Sprintf("store: %s\nreplica: {name: a, lease: %s}\n", url, failoverLease)+notifyHead(am.URL, h.url()), be, ""))
	waitLeading(t, a, 10*time.Second)
	b := startServe(t, "--config", writeConfig(t, "b", fmt.Sprintf("store: %s\nreplica: {name: b, lease: %s}\n", url, failoverLease)+notifyHead(am.URL, h.url()), be, ""))
	eventually(t, 5*time.Second, "b to follow a", func() bool { v, _ := b.leader(t); return v.Address == a.addr })
	c := api.NewClient(a.url(), "test-token-0123456789abcdef")
	ctx := context.Background()
	sh, err := c.StartShift(ctx, api.StartShiftRequest{Resource: "web", AwayFrom: "z1", ExpiresIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CancelShift(ctx, sh.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "shift.ended at the webhook", func() bool { _, ok := h.has(event.ShiftEnded, "z1"); return ok })
	time.Sleep(3 * time.Second) // room for a follower's duplicate, were it to send
	h.checkOnceInOrder(t)
	if m := get(t, b.url()+"/metrics"); strings.Contains(m, `grayzone_notify_delivered_total{endpoint="hook",kind="webhook"} `) &&
		!strings.Contains(m, `grayzone_notify_delivered_total{endpoint="hook",kind="webhook"} 0`) {
		t.Fatalf("the follower delivered:\n%s", grep(m, "grayzone_notify_delivered_total"))
	}
	if m := get(t, a.url()+"/metrics"); !strings.Contains(m, `grayzone_notify_delivered_total{endpoint="hook",kind="webhook"} `) ||
		strings.Contains(m, `grayzone_notify_delivered_total{endpoint="hook",kind="webhook"} 0`) {
		t.Fatalf("the leader's delivery count:\n%s", grep(m, "grayzone_notify"))
	}
}

// examples/serve-alertmanager.yaml, its Alertmanager URL pointed at a real
// one: a manual shift through the API fires an alert naming the resource
// and the zone; ending it resolves the alert.
func TestExampleServeAlertmanager(t *testing.T) {
	if testing.Short() {
		t.Skip("runs grayzone serve and Alertmanager")
	}
	// Not parallel: the example's front door ports are those of examples/serve.yaml.
	am := amtest.Start(t, amtest.Options{})
	data, err := os.ReadFile("../../examples/serve-alertmanager.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "url: http://127.0.0.1:9093") {
		t.Fatal("the example does not notify an Alertmanager at 127.0.0.1:9093")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "serve-alertmanager.yaml")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(cfg, []byte(strings.ReplaceAll(string(data), "http://127.0.0.1:9093", am.URL)), 0o644))
	tokens, err := os.ReadFile("../../examples/tokens.txt")
	must(err)
	must(os.WriteFile(filepath.Join(dir, "tokens.txt"), tokens, 0o600))
	s := startServe(t, "--config", cfg, "--data-dir", t.TempDir())
	c := api.NewClient(s.url(), exampleToken(t))
	ctx := context.Background()
	sh, err := c.StartShift(ctx, api.StartShiftRequest{Resource: "web", AwayFrom: "use2-az2", ExpiresIn: "1h", Comment: "example"})
	if err != nil {
		t.Fatal(err)
	}
	am.WaitFor(t, 20*time.Second, "the shift's alert firing", func(ns []amtest.Notification) bool {
		return amtest.Any(ns, "GrayzoneShiftActive", func(a amtest.Alert) bool {
			return a.Status == "firing" && a.Labels["resource"] == "web" && a.Labels["zone"] == "use2-az2" && a.Annotations["shift_id"] == sh.ID
		})
	})
	if _, err := c.CancelShift(ctx, sh.ID); err != nil {
		t.Fatal(err)
	}
	am.WaitFor(t, 20*time.Second, "the shift's alert resolved", func(ns []amtest.Notification) bool {
		return amtest.Any(ns, "GrayzoneShiftActive", amtest.Resolved)
	})
}
