package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/alarm"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	res "github.com/grayzone/grayzone/server/resource"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// fleetService opens serve on n resources shaped like the fleet
// benchmark's (examples/serve.yaml's web: 3 zones, 6 targets, an embedded
// front door recording, a canary per zone, autoshift in dry run), without
// listening, and gives each resource a few seconds of canary and front-door
// observations through its gate and ticks, so that everything /metrics and
// the status read has its steady-state shape.
func fleetService(tb testing.TB, n int) *Service {
	tb.Helper()
	var b strings.Builder
	b.WriteString("auth: {tokens: [test-token-0123456789abcdef]}\nresources:\n")
	port := 10000
	addr := func() string { port++; return fmt.Sprintf("127.0.0.1:%d", port) }
	zones := []string{"z1", "z2", "z3"}
	for i := range n {
		fmt.Fprintf(&b, "  - name: web-%d\n    zones: [z1, z2, z3]\n    min_capacity: 2\n    frontdoor:\n      type: embedded\n      regional: %s\n", i, addr())
		zonal := make([]string, len(zones))
		for z := range zones {
			zonal[z] = addr()
		}
		fmt.Fprintf(&b, "      zonal: {z1: %s, z2: %s, z3: %s}\n      record: true\n      targets:\n", zonal[0], zonal[1], zonal[2])
		for t := range 6 {
			fmt.Fprintf(&b, "        - {id: web-%d-%d, zone: %s, addr: %s}\n", i, t+1, zones[t/2], addr())
		}
		b.WriteString("    canaries:\n")
		for z, zone := range zones {
			fmt.Fprintf(&b, "      - {zone: %s, url: http://%s, interval: 10s}\n", zone, zonal[z])
		}
		b.WriteString("    autoshift: {enabled: true, dry_run: true}\n")
	}
	cfg, err := config.Parse("fleet.yaml", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	cfg.DataDir = tb.TempDir()
	fc := clock.NewFake(t0)
	s, err := Open(context.Background(), Options{Config: cfg, Tokens: cfg.Auth.Tokens, Log: slog.New(slog.DiscardHandler), Clock: fc})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	ctx := context.Background()
	// The front door's counters, as start makes them (nothing listens here):
	// every target's series of the four operations, drained at each tick.
	for _, r := range s.resources {
		r.rec = record.New(record.Options{Thresholds: r.cfg.Operations})
		r.in.FrontDoor = r.rec
	}
	for range 5 * 4 {
		fleetTraffic(s, fc.Now())
		fc.Advance(tickEvery)
		s.tick(ctx, fc.Now())
	}
	for _, r := range s.resources {
		r.drv.Wait()
	}
	return s
}

// fleetTraffic gives every resource of a fleetService a tick's worth of
// observations: a canary call per zone, and a request to each of its
// targets' series of the four operations.
func fleetTraffic(s *Service, now time.Time) {
	for i, r := range s.resources {
		for _, zone := range []string{"z1", "z2", "z3"} {
			_ = r.in.OfferObservation(res.SourceCanary, observation.Observation{At: now, Source: observation.Canary, Zone: zone, Operation: "ride", Latency: 5 * time.Millisecond})
		}
		for tg := range 6 {
			for _, op := range []string{"ride", "pay", "signin", "home"} {
				r.rec.Series(observation.Server, fmt.Sprintf("z%d", tg/2+1), fmt.Sprintf("web-%d-%d", i, tg+1), op).Observe(observation.Success, 5*time.Millisecond)
			}
		}
	}
}

// BenchmarkMetrics1000 is the cost of one /metrics scrape of a serve
// watching 1,000 resources: time and allocations per scrape (go test's own
// figures; relative, on a loaded machine), plus the exposition's size and
// sample lines. Run: go test -run '^$' -bench Metrics1000 -benchmem ./server/service/
func BenchmarkMetrics1000(b *testing.B) {
	s := fleetService(b, 1000)
	h := s.metricsHandler()
	var size, series int
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		size = rec.Body.Len()
		series = 0
		for line := range strings.Lines(rec.Body.String()) {
			if line != "" && line[0] != '#' {
				series++
			}
		}
	}
	b.ReportMetric(float64(size)/1000, "kB/scrape")
	b.ReportMetric(float64(series), "series")
	b.ReportMetric(float64(series)/1000, "series/resource")
}

// BenchmarkStatus1000 is the cost of GET /v1/status at 1,000 resources,
// through the API's handler (the dashboard's stream makes the same call).
func BenchmarkStatus1000(b *testing.B) {
	s := fleetService(b, 1000)
	h := api.NewHandler(s, api.Options{OpenReads: true, Now: s.clock.Now})
	var size int
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil))
		if rec.Code != 200 {
			b.Fatalf("GET /v1/status: %d %s", rec.Code, rec.Body)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size)/1000, "kB/call")
}

// BenchmarkTick1000 is the cost of one pass of the tick loop over 1,000
// resources in steady state (light traffic, nothing to act on): the budget
// is 250 ms. The pass ticks the resources on 1 worker (the loop before
// tickEach) and on GOMAXPROCS (serve's default; set it with -cpu).
func BenchmarkTick1000(b *testing.B) {
	s := fleetService(b, 1000)
	fc := s.clock.(*clock.Fake)
	ctx := context.Background()
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			s.tickWorkers = workers
			b.ReportAllocs()
			pass := 0
			for b.Loop() {
				b.StopTimer()
				// About the fleet benchmark's load: a customer request a
				// second and a canary call every few seconds per resource.
				now := fc.Now()
				for i, r := range s.resources {
					zone, target := pass/12%3+1, pass/4%6+1
					if pass%4 == 0 {
						r.rec.Series(observation.Server, fmt.Sprintf("z%d", (target+1)/2), fmt.Sprintf("web-%d-%d", i, target), "ride").Observe(observation.Success, 5*time.Millisecond)
					}
					if pass%12 == 0 {
						_ = r.in.OfferObservation(res.SourceCanary, observation.Observation{At: now, Source: observation.Canary, Zone: fmt.Sprintf("z%d", zone), Operation: "ride", Latency: 5 * time.Millisecond})
					}
				}
				pass++
				fc.Advance(tickEvery)
				b.StartTimer()
				s.tick(ctx, fc.Now())
			}
		})
	}
}

// A resource's share of /metrics stays small, since a fleet's scrape is
// its resources' sum: one runbook_phase series (the current phase), alarms
// only while in ALARM, and no more than maxSeriesPerResource in all.
func TestMetricsSeriesPerResource(t *testing.T) {
	// 44 for this shape: 56 before telemetry_rejected_total left out its
	// reasons that never counted.
	const maxSeriesPerResource = 48
	s := fleetService(t, 2)
	perRes := map[string]int{}
	phases, alarms := 0, 0
	for line := range strings.Lines(scrape(t, s)) {
		if line == "" || line[0] == '#' {
			continue
		}
		for _, name := range []string{"web-0", "web-1"} {
			if strings.Contains(line, `resource="`+name+`"`) {
				perRes[name]++
			}
		}
		if strings.HasPrefix(line, "grayzone_runbook_phase{") {
			phases++
			if !strings.Contains(line, `phase="idle"`) || !strings.HasSuffix(line, "} 1\n") {
				t.Errorf("phase series %q, want idle at 1", line)
			}
		}
		if strings.HasPrefix(line, "grayzone_alarm_in_alarm{") {
			alarms++
		}
	}
	if phases != 2 || alarms != 0 {
		t.Errorf("%d runbook_phase series, %d alarm series for 2 idle resources with every alarm OK; want 2 and 0", phases, alarms)
	}
	for name, n := range perRes {
		if n > maxSeriesPerResource {
			t.Errorf("%s: %d series, want at most %d", name, n, maxSeriesPerResource)
		}
	}
	if len(perRes) != 2 {
		t.Errorf("series for %v, want web-0 and web-1", perRes)
	}
	// An alarm in ALARM has its series: web-1's zone z2 fails every
	// request and canary call for two minutes.
	fc := s.clock.(*clock.Fake)
	r := s.byName["web-1"]
	for range 2 * 60 * 4 {
		fleetTraffic(s, fc.Now())
		for tg := range 2 {
			for _, op := range []string{"ride", "pay", "signin", "home"} {
				for range 5 {
					r.rec.Series(observation.Server, "z2", fmt.Sprintf("web-1-%d", tg+3), op).Observe(observation.Fault, 5*time.Millisecond)
				}
			}
		}
		for _, op := range []string{"ride", "pay", "signin", "home"} {
			_ = r.in.OfferObservation(res.SourceCanary, observation.Observation{At: fc.Now(), Source: observation.Canary, Zone: "z2", Operation: op, Outcome: observation.Fault, Latency: 5 * time.Millisecond})
		}
		fc.Advance(tickEvery)
		s.tick(context.Background(), fc.Now())
	}
	m := scrape(t, s)
	inAlarm := 0
	for _, al := range r.ctrl.View().Assessment.Alarms.All() {
		if al.State != alarm.Alarm {
			continue
		}
		inAlarm++
		if series := `grayzone_alarm_in_alarm{alarm="` + al.Name + `",resource="web-1"} 1`; !strings.Contains(m, series) {
			t.Errorf("alarm %s in ALARM: no %s", al.Name, series)
		}
	}
	if inAlarm == 0 || strings.Count(m, "grayzone_alarm_in_alarm{") != inAlarm || strings.Contains(m, `grayzone_alarm_in_alarm{alarm="z2-isolated-impact",resource="web-0"}`) {
		t.Errorf("%d alarms of web-1 in ALARM: /metrics has %d alarm series, want as many (and at least one)", inAlarm, strings.Count(m, "grayzone_alarm_in_alarm{"))
	}
}
