package service

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/server/api"
)

// GET /v1/status, the Status backend call and a /metrics scrape answer
// while a resource's tick is stopped in the middle, holding the
// controller's lock (here in the guard the controller asks before a shift,
// as the engine's assessment holds it in every tick): they read what the
// last change published and wait for nothing the tick holds.
func TestStatusDoesNotWaitForATick(t *testing.T) {
	s, fc := guardService(t, "recovery_hold: 10s")
	run(t, s, fc, 10, "")
	r := s.byName["web"]
	entered, release := make(chan struct{}), make(chan struct{})
	r.onGuard = func() {
		r.onGuard = nil // the tick goroutine alone reads it from here on
		close(entered)
		<-release
	}
	ticked := make(chan error, 1)
	go func() { ticked <- feedTicks(s, fc, 10, "z2", true) }() // z2 fails: the guard is asked
	select {
	case <-entered:
	case err := <-ticked:
		t.Fatalf("the ticks ended (%v) without asking the guard\n%s", err, auditKinds(t, s))
	}
	defer func() {
		close(release)
		if err := <-ticked; err != nil {
			t.Error(err)
		}
	}()
	answer := func(what string, f func() string) string {
		t.Helper()
		got := make(chan string, 1)
		go func() { got <- f() }()
		select {
		case out := <-got:
			return out
		case <-time.After(30 * time.Second): // generous: it must not wait at all
			t.Fatalf("%s waited for the tick in progress", what)
			return ""
		}
	}
	h := api.NewHandler(s, api.Options{OpenReads: true, Now: s.clock.Now})
	body := answer("GET /v1/status", func() string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil))
		return rec.Body.String()
	})
	if !strings.Contains(body, `"phase":"idle"`) || strings.Contains(body, `"active_shift"`) {
		t.Errorf("status during the tick: want the last published (idle, no shift):\n%s", body)
	}
	var st api.Status
	answer("Status", func() string { st, _ = s.Status(context.Background()); return "" })
	if len(st.Resources) != 1 || st.Resources[0].Phase != string(runbook.Idle) {
		t.Errorf("Status during the tick: %+v", st.Resources)
	}
	if m := answer("/metrics", func() string { return scrape(t, s) }); !strings.Contains(m, `grayzone_runbook_phase{phase="idle",resource="web"} 1`) {
		t.Errorf("/metrics during the tick lacks the idle phase:\n%s", m)
	}
}
