package service

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/notify/event"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/store"
)

// The events serve queues with its audit entries, on a fake clock: a
// detection, the decision awaiting approval (with its approval link), the
// approval, the automatic shift and its end; Alertmanager is queued only
// the alerts' edges.
func TestEventsFollowTheAuditLog(t *testing.T) {
	s, fc := guardService(t, "approval: true")
	s.cfg.Notifications = config.Notifications{DashboardURL: "https://gz.example/",
		Alertmanagers: []config.AlertmanagerEndpoint{{Name: "am", URL: "http://127.0.0.1:9"}},
		Webhooks:      []config.WebhookEndpoint{{Name: "hook", URL: "http://127.0.0.1:9", Secret: []byte("x")}}}
	s.openNotify()
	ctx := context.Background()
	run(t, s, fc, 5, "z2")
	ds, _ := s.Decisions(ctx)
	if len(ds) != 1 {
		t.Fatalf("decisions %+v", ds)
	}
	if _, err := s.Approve(ctx, ds[0].ID, "alice"); err != nil {
		t.Fatal(err)
	}
	run(t, s, fc, 2, "z2")
	sh, ok := active(s)
	if !ok {
		t.Fatalf("not shifted\n%s", auditKinds(t, s))
	}
	if _, err := s.CancelShift(ctx, sh.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	queued := func(ep string) []event.Event {
		items, err := s.db.Outbox().Pending(ctx, ep, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []event.Event
		for _, it := range items {
			out = append(out, it.Event)
		}
		return out
	}
	hook := queued("hook")
	var ks []event.Kind
	for _, e := range hook {
		ks = append(ks, e.Kind)
	}
	want := []event.Kind{event.Detection, event.ApprovalPending, event.ApprovalGiven, event.ShiftStarted, event.ShiftEnded}
	if !slices.Equal(ks, want) {
		t.Fatalf("webhook queue %v, want %v\n%s", ks, want, auditKinds(t, s))
	}
	det, pend, appr, start, end := hook[0], hook[1], hook[2], hook[3], hook[4]
	if det.Zone != "z2" || !strings.Contains(det.Why, "z2") || det.Resource != "web" {
		t.Errorf("detection %+v", det)
	}
	if pend.DecisionID != ds[0].ID || pend.Link != "https://gz.example/?decision="+ds[0].ID || appr.DecisionID != ds[0].ID || appr.Actor != "alice" {
		t.Errorf("approval events %+v / %+v", pend, appr)
	}
	if start.Origin != "auto" || start.ShiftID != sh.ID || start.Why == "" || end.ShiftID != sh.ID || end.Origin != "auto" || end.Actor != "bob" {
		t.Errorf("shift events %+v / %+v", start, end)
	}
	for i := 1; i < len(hook); i++ {
		if hook[i].AuditSeq <= hook[i-1].AuditSeq || hook[i].ID == hook[i-1].ID {
			t.Errorf("events not in audit order with distinct IDs: %+v", hook)
		}
	}
	var amKinds []event.Kind
	for _, e := range queued("am") {
		amKinds = append(amKinds, e.Kind)
	}
	if want := []event.Kind{event.ApprovalPending, event.ApprovalGiven, event.ShiftStarted, event.ShiftEnded}; !slices.Equal(amKinds, want) {
		t.Fatalf("alertmanager queue %v, want %v", amKinds, want)
	}
}

// The end of an earlier leadership is told as leadership.lost, from the
// audit entry the replica that took over writes (replica.go takeOver).
func TestLeadershipLostIsTold(t *testing.T) {
	s, _ := guardService(t, "approval: true")
	s.cfg.Notifications = config.Notifications{Webhooks: []config.WebhookEndpoint{{Name: "hook", URL: "http://127.0.0.1:9", Secret: []byte("x")}}}
	s.openNotify()
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.audit(ctx, store.AuditEntry{At: now, Kind: "leader_lost", Actor: "grayzone", Message: "the leadership of epoch 3 is over: replica b took over"})
	s.audit(ctx, store.AuditEntry{At: now, Kind: "leader", Actor: "grayzone", Message: "replica b leads with epoch 4"})
	items, err := s.db.Outbox().Pending(ctx, "hook", 10)
	if err != nil {
		t.Fatal(err)
	}
	var ks []event.Kind
	for _, it := range items {
		ks = append(ks, it.Event.Kind)
	}
	if want := []event.Kind{event.LeadershipLost, event.LeadershipGained}; !slices.Equal(ks, want) {
		t.Fatalf("queued %v, want %v", ks, want)
	}
}
