package lab

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/lab/telemetrypath"
	promsource "github.com/grayzone/grayzone/telemetry/prometheus"
)

// TestSimEveryScenarioThroughEveryTelemetryPath: every built-in (public)
// scenario meets its expect when the instances report through each path.
func TestSimEveryScenarioThroughEveryTelemetryPath(t *testing.T) {
	for _, name := range scenario.BuiltinNames() {
		sc, err := scenario.Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range telemetrypath.Names {
			r, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeSim, Telemetry: path})
			if err != nil {
				t.Fatalf("%s via %s: %v", name, path, err)
			}
			if !r.Expect.Met {
				t.Errorf("%s via %s: expect not met: %v", name, path, r.Expect.Failures)
			}
			var at []float64
			for _, d := range r.Detections {
				at = append(at, d.At)
			}
			t.Logf("%-26s %-10s detections at %v", name, path, at)
		}
	}
}

func TestUnknownTelemetryPathIsAClearError(t *testing.T) {
	sc, _ := scenario.Builtin("smoke")
	for _, mode := range []string{ModeSim, ModeReal} {
		_, err := Run(context.Background(), Options{Scenario: sc, Mode: mode, Telemetry: "statsd"})
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), `--telemetry "statsd"`) {
			t.Fatalf("%s: err = %v", mode, err)
		}
	}
}

// TestRealSmokeThroughOTLP runs the smoke scenario in real mode with every
// instance reporting through its own OpenTelemetry SDK meter provider and
// OTLP/HTTP exporter to a real receiver.
func TestRealSmokeThroughOTLP(t *testing.T) {
	realSmokeThrough(t, telemetrypath.OTLP)
}

// TestRealSmokeThroughEMF runs the smoke scenario in real mode with every
// instance appending the workshop application's EMF line per request to a
// log file that the EMF source tails.
func TestRealSmokeThroughEMF(t *testing.T) {
	allPaths(t)
	realSmokeThrough(t, telemetrypath.EMF)
}

// TestRealSmokeThroughMiddleware runs the smoke scenario in real mode with
// every instance counted by grayzone's Go middleware, which ships
// per-interval aggregates to the batch API over HTTP.
func TestRealSmokeThroughMiddleware(t *testing.T) {
	allPaths(t)
	realSmokeThrough(t, telemetrypath.Middleware)
}

// allPaths skips the real-mode runs through EMF and the middleware unless
// GRAYZONE_LAB_ALL_PATHS=1: CI runs OTLP and Prometheus in real mode (the
// middleware's counting is under Prometheus too), and every path in sim
// mode; two more 100 s runs would take CI past its budget on 2 cores.
func allPaths(t *testing.T) {
	t.Helper()
	if os.Getenv("GRAYZONE_LAB_ALL_PATHS") != "1" {
		t.Skip("real mode through every path: GRAYZONE_LAB_ALL_PATHS=1 go test ./lab/ -run TestRealSmokeThrough")
	}
}

func realSmokeThrough(t *testing.T, path string) {
	t.Helper()
	if testing.Short() {
		t.Skip("real mode runs for 100 s")
	}
	t.Parallel()
	r, err := Run(context.Background(), Options{Scenario: loadPublic(t, "smoke"), Mode: ModeReal, Telemetry: path})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expect.Met {
		t.Errorf("expect not met through %s: %v", path, r.Expect.Failures)
	}
	if len(r.Detections) == 0 || r.Detections[0].Zone != "az-a" {
		t.Errorf("detections %+v", r.Detections)
	}
}

// TestRealSmokeThroughPrometheus runs the smoke scenario in real mode with
// the instances counted by grayzone's middleware, scraped every second by
// Debian's Prometheus and read by the Prometheus source.
func TestRealSmokeThroughPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("real mode runs for 100 s")
	}
	if _, err := os.Stat(promsource.Binary); err != nil && os.Getenv("CI") != "true" {
		t.Skipf("skipping: %v (apt-get install prometheus)", err)
	}
	t.Parallel()
	sc := loadPublic(t, "smoke")
	r, err := Run(context.Background(), Options{Scenario: sc, Mode: ModeReal, Telemetry: telemetrypath.Prometheus})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expect.Met {
		t.Errorf("expect not met through Prometheus: %v", r.Expect.Failures)
	}
}
