package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/replay"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// aggregate sums observations into one aggregate per series: what the
// middleware or a telemetry source sends instead of single observations.
func aggregate(obs []observation.Observation) (aggs []record.Aggregate, canaries []observation.Observation) {
	idx := map[record.SeriesKey]int{}
	for _, o := range obs {
		if o.Source == observation.Canary {
			canaries = append(canaries, o)
			continue
		}
		s := record.Single(o)
		i, ok := idx[s.Key]
		if !ok {
			idx[s.Key] = len(aggs)
			s.Slow = 0
			aggs = append(aggs, s)
			continue
		}
		a := &aggs[i]
		a.Requests++
		a.Faults += s.Faults
		a.Errors += s.Errors
		a.AddLatency(o.Latency, 1)
	}
	return aggs, canaries
}

// TestAggregatesDecideLikeSingleObservations runs the same traffic through
// single observations and through aggregates: the engine takes both by one
// path, so the shift starts at the same moment.
func TestAggregatesDecideLikeSingleObservations(t *testing.T) {
	shiftAt := func(useAggs bool) time.Time {
		s, fc := guardService(t, "")
		ctx := context.Background()
		for tick := range 15 * 4 {
			failing := ""
			if tick >= 10*4 {
				failing = "z2"
			}
			obs := traffic(fc.Now(), failing)
			var err error
			if useAggs {
				aggs, canaries := aggregate(obs)
				err = s.IngestAggregates(ctx, "web", "middleware", canaries, aggs)
			} else {
				err = s.Ingest(ctx, "web", obs)
			}
			if err != nil {
				t.Fatal(err)
			}
			fc.Advance(tickEvery)
			s.tick(ctx, fc.Now())
			s.resources[0].drv.Wait()
			if sh, ok := active(s); ok {
				return sh.StartedAt
			}
		}
		t.Fatalf("no shift (aggregates %v)\n%s", useAggs, auditKinds(t, s))
		return time.Time{}
	}
	single, agg := shiftAt(false), shiftAt(true)
	if !single.Equal(agg) {
		t.Errorf("shift at %s with single observations, %s with aggregates", single, agg)
	}
}

// traffic is one tick of the guard tests' traffic (see run).
func traffic(now time.Time, failing string) []observation.Observation {
	var obs []observation.Observation
	for _, z := range []string{"z1", "z2", "z3"} {
		for i := range 10 {
			o := observation.Observation{At: now, Source: observation.Server, Zone: z, Instance: fmt.Sprintf("%s-%d", z, i%2+1),
				Operation: "ride", Latency: 5 * time.Millisecond}
			if z == failing && i%4 < 2 {
				o.Outcome = observation.Fault
			}
			obs = append(obs, o)
		}
		obs = append(obs, observation.Observation{At: now, Source: observation.Canary, Zone: z, Operation: "home", Latency: 5 * time.Millisecond,
			Outcome: map[bool]observation.Outcome{true: observation.Fault, false: observation.Success}[z == failing]})
	}
	return obs
}

func TestTelemetryCountsInMetricsAndStatus(t *testing.T) {
	s, fc := guardService(t, "")
	ctx := context.Background()
	aggs, _ := aggregate(traffic(fc.Now(), ""))
	if err := s.IngestAggregates(ctx, "web", "middleware", nil, aggs); err != nil {
		t.Fatal(err)
	}
	bad := aggs[0]
	bad.Key.Zone = "z9"
	if err := s.IngestAggregates(ctx, "web", "middleware", nil, []record.Aggregate{bad}); !errors.Is(err, ingest.ErrRejected) {
		t.Fatalf("unknown zone: %v", err)
	}
	fc.Advance(3 * time.Second)
	s.tick(ctx, fc.Now())
	rec := httptest.NewRecorder()
	s.metricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`grayzone_telemetry_accepted_total{resource="web",source="middleware"} 6`,
		`grayzone_telemetry_requests_total{resource="web",source="middleware"} 30`,
		`grayzone_telemetry_rejected_total{reason="unknown_zone",resource="web",source="middleware"} 1`,
		`grayzone_telemetry_newest_age_seconds{resource="web",source="middleware"} 3`,
		`grayzone_telemetry_cardinality{kind="instances",resource="web"} 6`,
		`grayzone_telemetry_pending{resource="web"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// A reason that never counted has no series (a fleet's scrape was a fifth zeros).
	if strings.Contains(string(body), `grayzone_telemetry_rejected_total{reason="invalid"`) {
		t.Error("/metrics has a rejected series for a reason that never counted")
	}
	st, _ := s.Status(ctx)
	tel := st.Resources[0].Telemetry
	if len(tel) != 1 || tel[0].Accepted != 6 || !strings.Contains(tel[0].LastReject, `"z9" is not a zone of web`) || tel[0].NewestAgeS != 3 {
		t.Errorf("status telemetry: %+v", tel)
	}
}

func TestRecordObservationsReplaysToTheSameDecision(t *testing.T) {
	s, fc := guardService(t, "")
	dir := t.TempDir()
	r := s.resources[0]
	var err error
	if r.batches, err = openBatchLog(dir, "web"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var shiftAt time.Time
	for tick := range 15 * 4 {
		failing := ""
		if tick >= 10*4 {
			failing = "z2"
		}
		aggs, canaries := aggregate(traffic(fc.Now(), failing))
		if err := s.IngestAggregates(ctx, "web", "middleware", canaries, aggs); err != nil {
			t.Fatal(err)
		}
		fc.Advance(tickEvery)
		s.tick(ctx, fc.Now())
		r.drv.Wait()
		if sh, ok := active(s); ok && shiftAt.IsZero() {
			shiftAt = sh.StartedAt
		}
	}
	r.batches.close()
	data, err := os.ReadFile(filepath.Join(dir, "observations-web.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 60 {
		t.Fatalf("%d lines recorded, want one per tick (60)", n)
	}
	in, err := replay.ReadBatches(strings.NewReader(string(data)), "rec", "web")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := replay.Run(ctx, in, replay.Options{Detect: r.cfg.DetectConfig(), Runbook: r.cfg.RunbookPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	if shiftAt.IsZero() || len(rep.Shifts) != 1 || rep.Shifts[0].AwayFrom != "z2" {
		t.Fatalf("live shift at %v; replay shifts %+v", shiftAt, rep.Shifts)
	}
	// Replay's clock starts at the first record's second; the live shift's offset from t0 must match.
	if live, replayed := shiftAt.Sub(t0).Seconds(), rep.Shifts[0].Start; live != replayed {
		t.Errorf("live shift at %.2fs, replayed at %.2fs", live, replayed)
	}
}
