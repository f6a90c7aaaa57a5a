package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/server/api"
)

func TestStatusSaysFailStatic(t *testing.T) {
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printStatus(&b, api.Status{Now: since.Add(time.Minute), Resources: []api.ResourceStatus{{
		Name: "web", Phase: "shifted", PhaseZone: "z2",
		FailStatic: &api.FailStatic{Reason: "telemetry_lost", Why: "no server observations from any zone for 10s", Since: since},
		Zones:      []api.ZoneStatus{{Zone: "z1", Silent: true, Requests: 0}, {Zone: "z2", Shifted: true}},
	}}})
	out := b.String()
	for _, want := range []string{
		"  fail static   telemetry_lost since 2026-03-01T12:00:00Z: no server observations from any zone for 10s; no new shift starts and none ends on its own",
		"unhealthy  silent\n", "unhealthy  shifted\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

func TestPrintStatusShowsDelivery(t *testing.T) {
	var b strings.Builder
	printStatus(&b, api.Status{Resources: []api.ResourceStatus{{Name: "web", Phase: "idle"}},
		Notifications: []api.DeliveryStatus{{Endpoint: "am", Kind: "alertmanager", Delivered: 7, Pending: 2, LagSeconds: 95, Failures: 3, LastError: "alertmanager: HTTP 503: down"}}})
	out := b.String()
	for _, want := range []string{"NOTIFY", "am", "alertmanager", "7", "1m35s", "HTTP 503: down"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
}

func TestStatusSaysReturning(t *testing.T) {
	var b bytes.Buffer
	printStatus(&b, api.Status{Now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Resources: []api.ResourceStatus{{
		Name: "web", Phase: "ramping", PhaseZone: "z2", Returning: 25, Autoshift: "enabled", Detector: "default",
		Zones: []api.ZoneStatus{{Zone: "z2", Shifted: true}},
	}}})
	if want := "web  phase ramping (z2, returning: 25 %)  autoshift enabled"; !strings.Contains(b.String(), want) {
		t.Errorf("status lacks %q:\n%s", want, b.String())
	}
}

// The engine's line leads the status, and a loop that falls behind is
// warned about at the top and again at the end.
func TestPrintStatusShowsEngine(t *testing.T) {
	var b strings.Builder
	printStatus(&b, api.Status{Resources: []api.ResourceStatus{{Name: "web", Phase: "idle"}},
		Engine: &api.EngineStatus{TickEveryMs: 250, Passes: 240, TickP99Ms: 12.4, TickMaxMs: 31, LagS: 0}})
	out := b.String()
	if want := "engine: tick p99 12ms, max 31ms (last 240 passes, every 250ms), lag 0s\n\nweb  phase idle"; !strings.HasPrefix(out, want) {
		t.Errorf("status does not start with %q:\n%s", want, out)
	}
	if strings.Contains(out, "WARNING") {
		t.Errorf("a warning for a loop that keeps up:\n%s", out)
	}
	b.Reset()
	why := "the last tick started 1.5s late (more than 1s): detection and actions run late"
	printStatus(&b, api.Status{Resources: []api.ResourceStatus{{Name: "web", Phase: "idle"}},
		Engine: &api.EngineStatus{TickEveryMs: 250, Passes: 240, TickP99Ms: 400, TickMaxMs: 1800, LagS: 1.5, Behind: true, Why: why}})
	out = b.String()
	if n := strings.Count(out, "WARNING: the engine falls behind: "+why+"\n"); n != 2 {
		t.Errorf("%d warnings, want 2 (top and end):\n%s", n, out)
	}
	if !strings.Contains(out, "lag 1.5s") {
		t.Errorf("no lag 1.5s:\n%s", out)
	}
	b.Reset()
	printStatus(&b, api.Status{Engine: &api.EngineStatus{TickEveryMs: 250}})
	if out := b.String(); out != "engine: no tick yet\nno resources\n" {
		t.Errorf("before the first tick: %q", out)
	}
}
