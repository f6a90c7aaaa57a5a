package alertmanager

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/amtest"
	"github.com/grayzone/grayzone/notify/event"
)

func ev(kind event.Kind, res, zone string) event.Event {
	return event.Event{ID: event.NewID(), Version: event.Version, Kind: kind, At: time.Now().UTC(), Resource: res, Zone: zone,
		Origin: "manual", Message: string(kind) + " of " + res, Link: "http://gz.example/", Action: "exclude_zone"}
}

// Through a real Alertmanager: alerts of one resource arrive grouped, with
// the labels routing needs; resending adds no notification; an ended
// condition arrives resolved.
func TestRealAlertmanager(t *testing.T) {
	am := amtest.Start(t, amtest.Options{GroupBy: []string{"resource"}, GroupWait: 500 * time.Millisecond})
	n := &Notifier{URL: am.URL, ResendEvery: time.Second}
	ctx := context.Background()
	started := ev(event.ShiftStarted, "api", "use1-az1")
	for _, e := range []event.Event{started, ev(event.ActuatorFailed, "api", "use1-az1"), ev(event.ShiftStarted, "web", "use1-az2")} {
		if err := n.Notify(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Notify(ctx, ev(event.Detection, "api", "use1-az1")); err != nil { // no alert: nothing posted
		t.Fatal(err)
	}
	got := am.WaitFor(t, 20*time.Second, "two groups firing", func(ns []amtest.Notification) bool { return len(ns) >= 2 })
	groups := map[string]amtest.Notification{}
	for _, g := range got {
		groups[g.GroupLabels["resource"]] = g
	}
	api := groups["api"]
	if len(api.Alerts) != 2 || api.Status != "firing" || len(groups["web"].Alerts) != 1 {
		t.Fatalf("groups: %+v", got)
	}
	shift := amtest.Find(got, ShiftActive)
	var a amtest.Alert
	for _, x := range shift {
		if x.Labels["resource"] == "api" {
			a = x
		}
	}
	if a.Labels["zone"] != "use1-az1" || a.Labels["severity"] != "warning" || a.GeneratorURL != "http://gz.example/" ||
		a.Annotations["event_id"] != started.ID || a.Annotations["origin"] != "manual" || !a.StartsAt.Equal(started.At.Truncate(time.Millisecond)) && !a.StartsAt.Equal(started.At) {
		t.Fatalf("shift alert: %+v", a)
	}
	// Resent while active: Alertmanager already has them; no new notification.
	for range 2 {
		if err := n.Resend(ctx); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	if len(am.Notifications()) != len(got) {
		t.Fatalf("resend made notifications: %+v", am.Notifications()[len(got):])
	}
	ended := ev(event.ShiftEnded, "api", "use1-az1")
	if err := n.Notify(ctx, ended); err != nil {
		t.Fatal(err)
	}
	got = am.WaitFor(t, 20*time.Second, "the api shift resolved", func(ns []amtest.Notification) bool {
		for _, x := range amtest.Find(ns, ShiftActive) {
			if x.Labels["resource"] == "api" && x.Status == "resolved" {
				return true
			}
		}
		return false
	})
	for _, x := range amtest.Find(got, ShiftActive) {
		if x.Labels["resource"] == "api" && (x.Annotations["resolved_by_event_id"] != ended.ID || x.Annotations["event_id"] != started.ID) {
			t.Fatalf("resolved alert: %+v", x)
		}
	}
	if len(n.memory) != 2 {
		t.Fatalf("active after the end: %+v", n.memory)
	}
}

func TestForLabels(t *testing.T) {
	a, firing, ok := For(event.Event{Kind: event.ApprovalPending, Resource: "api", Zone: "z", DecisionID: "gzd-z-1", Link: "http://d/?decision=gzd-z-1"})
	if !ok || !firing || a.Labels["alertname"] != ApprovalPending || a.Labels["decision"] != "gzd-z-1" || a.Labels["severity"] != "critical" || a.GeneratorURL != "http://d/?decision=gzd-z-1" {
		t.Fatalf("%+v %v %v", a, firing, ok)
	}
	r, firing, ok := For(event.Event{Kind: event.ApprovalGiven, Resource: "api", Zone: "z", DecisionID: "gzd-z-1"})
	if !ok || firing || r.key() != a.key() {
		t.Fatalf("the approval does not resolve the pending alert: %+v", r)
	}
	if _, _, ok := For(event.Event{Kind: event.LeadershipGained}); ok {
		t.Fatal("leadership is no alert")
	}
}

// An alert whose condition no longer holds at a resend is resolved, not
// resent, and forgotten.
func TestResendResolvesWhatNoLongerHolds(t *testing.T) {
	var posts [][]Alert
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var as []Alert
		_ = json.NewDecoder(r.Body).Decode(&as)
		posts = append(posts, as)
	}))
	defer srv.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lost := "gzd-z2-1"
	n := &Notifier{URL: srv.URL, Now: func() time.Time { return now },
		Holds: func(l map[string]string) bool { return l["decision"] != lost }}
	ctx := context.Background()
	for _, e := range []event.Event{
		{ID: "a", Kind: event.ApprovalPending, At: now, Resource: "web", Zone: "z2", DecisionID: lost},
		{ID: "b", Kind: event.ShiftStarted, At: now, Resource: "web", Zone: "z1"},
	} {
		if err := n.Notify(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Minute)
	if err := n.Resend(ctx); err != nil {
		t.Fatal(err)
	}
	last := posts[len(posts)-1]
	if len(last) != 2 {
		t.Fatalf("resend posted %+v", last)
	}
	for _, a := range last {
		resolved := !a.EndsAt.After(now)
		if resolved != (a.Labels["alertname"] == ApprovalPending) {
			t.Errorf("%s: endsAt %s at %s", a.Labels["alertname"], a.EndsAt, now)
		}
	}
	if err := n.Resend(ctx); err != nil {
		t.Fatal(err)
	}
	if last := posts[len(posts)-1]; len(last) != 1 || last[0].Labels["alertname"] != ShiftActive {
		t.Fatalf("the resolved alert was resent: %+v", last)
	}
}
