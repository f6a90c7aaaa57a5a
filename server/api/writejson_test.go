package api

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
)

// writeJSON's bytes are json.Marshal's and a newline, whatever buffer it
// reuses: HTML-escaped strings, omitted empty fields, maps in key order;
// a smaller response after a larger one leaves nothing of it behind.
func TestWriteJSONIsMarshalled(t *testing.T) {
	at := time.Date(2026, 12, 7, 21, 0, 0, 123456789, time.UTC)
	big := Status{Now: at, Engine: &EngineStatus{TickEveryMs: 250, Passes: 240, TickP99Ms: 12.5, Why: "<late> & behind"},
		Notifications: []DeliveryStatus{{Endpoint: "am", Kind: "alertmanager", LagSeconds: 0.25}}}
	for i := range 50 {
		rs := ResourceStatus{Name: "web-" + string(rune('a'+i%26)), Phase: "shifted", PhaseZone: "z2", Excluded: []string{"z2"}, Pending: []string{},
			Why: "p99 > 250ms in z2 <and> not elsewhere \u2028 é", ActiveShift: &shift.Shift{ID: "s-1", Resource: "web", AwayFrom: "z2", StartedAt: at, ExpiresAt: at.Add(time.Hour)},
			FailStatic: &FailStatic{Reason: "telemetry_lost", Since: at},
			Telemetry:  []TelemetryStatus{{Source: "otlp", Rejected: map[string]uint64{"unknown_zone": 2, "invalid": 1}, NewestAgeS: 1.5e-7}}}
		for _, z := range []string{"z1", "z2", "z3"} {
			rs.Zones = append(rs.Zones, ZoneStatus{Zone: z, Availability: 0.999, P99Ms: -1, Requests: 1e6, Targets: []Target{{ID: z + "-1", Addr: "127.0.0.1:1", Healthy: true}}})
		}
		big.Resources = append(big.Resources, rs)
	}
	small := Status{Now: at, Resources: []ResourceStatus{}}
	for _, v := range []any{big, small, big, []Alarm{}, ErrorBody{Error: "x"}} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		writeJSON(rec, 200, v)
		if got := rec.Body.String(); got != string(want)+"\n" {
			t.Fatalf("writeJSON wrote %d bytes, json.Marshal %d:\n%.300s\nwant\n%.300s", len(got), len(want)+1, got, want)
		}
	}
	rec := httptest.NewRecorder()
	writeJSON(rec, 200, EngineStatus{TickP99Ms: math.NaN()})
	if rec.Code != 500 {
		t.Errorf("a NaN: HTTP %d, want 500", rec.Code)
	}
}
