package service

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/telemetry/observation"
)

// feed ticks the service every 250 ms for secs seconds, each tick with 10
// server-side requests per zone over its two instances and one zonal canary
// call per zone: failing's instances fault half their requests and its
// canary every call; with server false only the canaries report.
func feed(t *testing.T, s *Service, fc *clock.Fake, secs int, failing string, server bool) {
	t.Helper()
	if err := feedTicks(s, fc, secs, failing, server); err != nil {
		t.Fatal(err)
	}
}

// feedTicks is feed for any goroutine: it returns the first error.
func feedTicks(s *Service, fc *clock.Fake, secs int, failing string, server bool) error {
	ctx := context.Background()
	for range secs * 4 {
		now := fc.Now()
		var obs []observation.Observation
		for _, z := range []string{"z1", "z2", "z3"} {
			for i := 0; server && i < 10; i++ {
				o := observation.Observation{At: now, Source: observation.Server, Zone: z, Instance: fmt.Sprintf("%s-%d", z, i%2+1),
					Operation: "ride", Latency: 5 * time.Millisecond}
				if z == failing && i%4 < 2 { // both instances fail
					o.Outcome = observation.Fault
				}
				obs = append(obs, o)
			}
			obs = append(obs, observation.Observation{At: now, Source: observation.Canary, Zone: z, Operation: "home", Latency: 5 * time.Millisecond,
				Outcome: map[bool]observation.Outcome{true: observation.Fault, false: observation.Success}[z == failing]})
		}
		if err := s.Ingest(ctx, "web", obs); err != nil {
			return err
		}
		fc.Advance(tickEvery)
		s.tick(ctx, fc.Now())
		// Actions run asynchronously; let them land before the next tick.
		for _, r := range s.resources {
			r.drv.Wait()
		}
	}
	return nil
}

func scrape(t *testing.T, s *Service) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.metricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// Server-side telemetry stops in every zone while a shift is in force: the
// shift stays although the canaries see the zone healthy again, and status,
// /metrics and the audit log say why; once telemetry is back the zone must
// look healthy for a whole recovery hold before the shift ends.
func TestFailStaticHoldsShiftAndSaysWhy(t *testing.T) {
	s, fc := guardService(t, "recovery_hold: 10s")
	run(t, s, fc, 10, "")
	run(t, s, fc, 5, "z2")
	sh, ok := active(s)
	if !ok || sh.AwayFrom != "z2" {
		t.Fatalf("no shift away from z2\n%s", auditKinds(t, s))
	}
	// Blind on the server side for 40 s (the hold is 10 s): without failing
	// static the shift would end within ~20 s.
	feed(t, s, fc, 40, "", false)
	if _, ok := active(s); !ok {
		t.Fatalf("the shift ended while grayzone was blind\n%s", auditKinds(t, s))
	}
	st, _ := s.Status(context.Background())
	fs := st.Resources[0].FailStatic
	if fs == nil || fs.Reason != detect.ReasonTelemetryLost || !strings.Contains(fs.Why, "no server observations from any zone") {
		t.Fatalf("status fail_static = %+v", fs)
	}
	if !strings.Contains(st.Resources[0].Why, "fail static") {
		t.Errorf("why = %q", st.Resources[0].Why)
	}
	m := scrape(t, s)
	for _, want := range []string{`grayzone_fail_static{reason="telemetry_lost",resource="web"} 1`, `grayzone_fail_static{reason="canaries_failing",resource="web"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	audit := auditKinds(t, s)
	if !strings.Contains(audit, "fail_static: fail static (telemetry_lost): no server observations") {
		t.Errorf("audit log has no start of fail static:\n%s", audit)
	}
	// Telemetry is back: doubt ends at once, the hold starts over.
	feed(t, s, fc, 5, "", true)
	if _, ok := active(s); !ok {
		t.Fatal("the shift ended before a full recovery hold after the doubt")
	}
	if st, _ := s.Status(context.Background()); st.Resources[0].FailStatic != nil {
		t.Errorf("still failing static with telemetry back: %+v", st.Resources[0].FailStatic)
	}
	if !strings.Contains(scrape(t, s), `grayzone_fail_static{reason="telemetry_lost",resource="web"} 0`) {
		t.Error("/metrics still reports fail static")
	}
	if audit := auditKinds(t, s); !strings.Contains(audit, "fail static (telemetry_lost) ended after") {
		t.Errorf("audit log has no end of fail static:\n%s", audit)
	}
	// The dashboard's charts shade the span.
	h, err := s.History(context.Background(), "web", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	spans := 0
	for _, sp := range h.Spans {
		if sp.Kind == "fail_static" {
			spans++
			if sp.To == nil || !strings.HasPrefix(sp.Label, "telemetry_lost: ") {
				t.Errorf("fail static span %+v", sp)
			}
		}
	}
	if spans != 1 {
		t.Errorf("%d fail static spans in the history, want 1", spans)
	}
	feed(t, s, fc, 15, "", true)
	if _, ok := active(s); ok {
		t.Errorf("shift not ended after the hold\n%s", auditKinds(t, s))
	}
}
