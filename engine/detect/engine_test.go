package detect

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/alarm"
	"github.com/grayzone/grayzone/engine/outlier"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var zones3 = []string{"az1", "az2", "az3"}

// traffic feeds the engine a steady workload: per second, rps requests spread
// over the zones' instances, with bad(zone, instance, sec) deciding each
// request's outcome and latency. It ticks every second and returns the
// assessments.
type traffic struct {
	e   *Engine
	rng *rand.Rand
	rps int
	per int // instances per zone
	// bad returns (fault, slow) for a request.
	bad func(zone string, inst int, sec int) (fault, slow bool)
}

func newTraffic(t *testing.T, profile string) *traffic {
	t.Helper()
	e, err := New(Config{Profile: profile, Zones: zones3})
	if err != nil {
		t.Fatal(err)
	}
	return &traffic{e: e, rng: rand.New(rand.NewPCG(1, 2)), rps: 30, per: 2,
		bad: func(string, int, int) (bool, bool) { return false, false }}
}

func (tr *traffic) run(from, to int) []Assessment {
	var out []Assessment
	for sec := from; sec < to; sec++ {
		for i := 0; i < tr.rps; i++ {
			z := zones3[i%len(zones3)]
			inst := (i / len(zones3)) % tr.per
			fault, slow := tr.bad(z, inst, sec)
			o := observation.Observation{
				At:     t0.Add(time.Duration(sec)*time.Second + time.Duration(i)*time.Second/time.Duration(tr.rps)),
				Source: observation.Server, Zone: z, Instance: fmt.Sprintf("%s-%d", z, inst+1),
				Operation: "ride", Outcome: observation.Success, Latency: 5 * time.Millisecond,
			}
			if fault {
				o.Outcome = observation.Fault
			}
			if slow {
				o.Latency = 400 * time.Millisecond
			}
			tr.e.Observe(o)
		}
		// One zonal canary call per zone per second. It lands on the zone's
		// last instance, as if the load balancer's health checks had taken a
		// failing first instance out of the zonal endpoint.
		for _, z := range zones3 {
			fault, slow := tr.bad(z, tr.per-1, sec)
			o := observation.Observation{At: t0.Add(time.Duration(sec)*time.Second + 500*time.Millisecond), Source: observation.Canary,
				Zone: z, Instance: fmt.Sprintf("%s-%d", z, tr.per), Operation: "home", Latency: 6 * time.Millisecond}
			if fault {
				o.Outcome = observation.Fault
			}
			if slow {
				o.Latency = 400 * time.Millisecond
			}
			tr.e.Observe(o)
		}
		out = append(out, tr.e.Tick(t0.Add(time.Duration(sec+1)*time.Second)))
	}
	return out
}

func firstIsolated(as []Assessment) (int, Assessment) {
	for i, a := range as {
		if a.Isolated != "" {
			return i, a
		}
	}
	return -1, Assessment{}
}

func TestFastDetectsZonalFaultsWithinSeconds(t *testing.T) {
	tr := newTraffic(t, ProfileDefault)
	tr.bad = func(z string, inst, sec int) (bool, bool) {
		return z == "az2" && sec >= 30 && tr.rng.Float64() < 0.3, false
	}
	as := tr.run(0, 60)
	i, a := firstIsolated(as)
	if i < 0 {
		t.Fatalf("no isolated impact detected; last why: %s", as[len(as)-1].Why)
	}
	if a.Isolated != "az2" {
		t.Fatalf("isolated %q, want az2", a.Isolated)
	}
	if delay := i + 1 - 30; delay > 5 {
		t.Errorf("detected %d s after the fault, want ≤ 5 s at 10 req/s/zone and 30%% faults", delay)
	}
	for _, want := range []string{"az2: isolated availability impact", "CUSUM", "2 of 2 instances contributing", "not regional"} {
		if !strings.Contains(a.Why, want) {
			t.Errorf("explanation %q lacks %q", a.Why, want)
		}
	}
	for _, al := range a.Alarms.All() {
		if al.Name == "az2-isolated-impact" && al.State != alarm.Alarm {
			t.Errorf("alarm %s is %s, want ALARM", al.Name, al.State)
		}
	}
	for j := 0; j < 30; j++ {
		if as[j].Isolated != "" || as[j].Zone("az2").Impacted {
			t.Fatalf("impact at %d s, before the fault", j)
		}
	}
}

func TestFastDetectsLatencyOnlyImpact(t *testing.T) {
	tr := newTraffic(t, ProfileDefault)
	tr.bad = func(z string, inst, sec int) (bool, bool) { return false, z == "az3" && sec >= 20 }
	i, a := firstIsolated(tr.run(0, 40))
	if i < 0 || a.Isolated != "az3" || !strings.Contains(a.Why, "latency") {
		t.Fatalf("got isolated=%q at %d (%s), want az3 latency", a.Isolated, i, a.Why)
	}
}

func TestFastIgnoresSingleInstance(t *testing.T) {
	tr := newTraffic(t, ProfileDefault)
	tr.bad = func(z string, inst, sec int) (bool, bool) { return z == "az1" && inst == 0 && sec >= 10, false }
	as := tr.run(0, 120)
	if i, a := firstIsolated(as); i >= 0 {
		t.Fatalf("isolated %s at %d s for a single bad instance: %s", a.Isolated, i, a.Why)
	}
	last := as[len(as)-1]
	if !last.Zone("az1").Impacted || !strings.Contains(last.Why, "only 1 of 2 instances") {
		t.Errorf("want az1 impacted but blocked by contributors, got %+v / %s", last.Zone("az1"), last.Why)
	}
}

func TestFastIgnoresRegionalImpact(t *testing.T) {
	tr := newTraffic(t, ProfileDefault)
	tr.bad = func(z string, inst, sec int) (bool, bool) { return false, sec >= 10 && tr.rng.Float64() < 0.6 }
	as := tr.run(0, 120)
	if i, a := firstIsolated(as); i >= 0 {
		t.Fatalf("isolated %s at %d s under regional impact: %s", a.Isolated, i, a.Why)
	}
	if !as[len(as)-1].Regional {
		t.Error("regional impact not flagged")
	}
}

func TestFastNoFalseAlarmOnHealthyNoise(t *testing.T) {
	// A baseline fault rate of 0.1 % everywhere, for an hour: never a shift.
	tr := newTraffic(t, ProfileDefault)
	tr.bad = func(string, int, int) (bool, bool) { return tr.rng.Float64() < 0.001, tr.rng.Float64() < 0.005 }
	for i, a := range tr.run(0, 3600) {
		if a.Isolated != "" {
			t.Fatalf("false alarm at %d s: %s", i, a.Why)
		}
	}
}

func TestHealthFollowsZonalCanaries(t *testing.T) {
	tr := newTraffic(t, ProfileDefault)
	tr.bad = func(z string, inst, sec int) (bool, bool) { return z == "az1" && sec >= 10 && sec < 20, false }
	as := tr.run(0, 40)
	if !as[9].Zone("az1").Healthy {
		t.Error("az1 unhealthy before the fault")
	}
	if as[15].Zone("az1").Healthy {
		t.Error("az1 healthy during the fault")
	}
	// Healthy again once the health window (10 s) holds no bad canary call.
	if as[28].Zone("az1").Healthy || !as[31].Zone("az1").Healthy {
		t.Errorf("az1 health at 29 s=%v (want false), 32 s=%v (want true)", as[28].Zone("az1").Healthy, as[31].Zone("az1").Healthy)
	}
}

func TestSameInputSameOutput(t *testing.T) {
	run := func() []Assessment {
		tr := newTraffic(t, ProfileDefault)
		tr.bad = func(z string, inst, sec int) (bool, bool) {
			return z == "az2" && sec >= 20 && tr.rng.Float64() < 0.2, false
		}
		return tr.run(0, 60)
	}
	if a, b := run(), run(); !reflect.DeepEqual(a, b) {
		t.Fatal("two runs over the same input differ")
	}
}

func TestLateAndUnknownObservations(t *testing.T) {
	e, err := New(Config{Zones: zones3})
	if err != nil {
		t.Fatal(err)
	}
	e.Observe(observation.Observation{At: t0, Zone: "az1", Instance: "az1-1", Operation: "home"})
	e.Tick(t0.Add(2 * time.Second))
	// Late: its bucket has closed; it counts in the next one rather than vanish.
	e.Observe(observation.Observation{At: t0, Zone: "az1", Instance: "az1-1", Operation: "home"})
	e.Observe(observation.Observation{At: t0, Zone: "nowhere", Operation: "home"})
	a := e.Tick(t0.Add(4 * time.Second))
	if got := a.Zone("az1").Requests; got != 2 {
		t.Errorf("az1 requests = %d, want 2 (late one kept)", got)
	}
	if e.skipped != 1 {
		t.Errorf("skipped = %d, want 1", e.skipped)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Zones: []string{"a"}},
		{Zones: zones3, Profile: "nope"},
		{Zones: zones3, FalseAlarmRate: 1.5},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", c)
		}
	}
}

func TestCloudWatchProfileDetectsInMinutes(t *testing.T) {
	tr := newTraffic(t, ProfileCloudWatch)
	tr.bad = func(z string, inst, sec int) (bool, bool) {
		return z == "az2" && sec >= 120 && tr.rng.Float64() < 0.3, false
	}
	as := tr.run(0, 480)
	i, a := firstIsolated(as)
	if i < 0 {
		t.Fatalf("cloudwatch profile never alarmed; last why: %s", as[len(as)-1].Why)
	}
	if a.Isolated != "az2" {
		t.Fatalf("isolated %s, want az2", a.Isolated)
	}
	// 2 of 3 one-minute datapoints: the second breaching period completes
	// between 2 and 3 minutes after the fault starts.
	if delay := i + 1 - 120; delay < 60 || delay > 180 {
		t.Errorf("cloudwatch detected %d s after the fault, want 1–3 minutes", delay)
	}
	for _, want := range []string{"az2-isolated-impact is ALARM", "az2-ride-server-availability", "Threshold Crossed"} {
		if !strings.Contains(a.Why, want) {
			t.Errorf("explanation lacks %q: %s", want, a.Why)
		}
	}
}

func TestCloudWatchProfileIgnoresSingleInstanceAndRegional(t *testing.T) {
	for name, bad := range map[string]func(tr *traffic) func(string, int, int) (bool, bool){
		"single instance": func(tr *traffic) func(string, int, int) (bool, bool) {
			return func(z string, inst, sec int) (bool, bool) { return z == "az1" && inst == 0 && sec >= 30, false }
		},
		"regional": func(tr *traffic) func(string, int, int) (bool, bool) {
			return func(z string, inst, sec int) (bool, bool) { return sec >= 30 && tr.rng.Float64() < 0.3, false }
		},
	} {
		tr := newTraffic(t, ProfileCloudWatch)
		tr.bad = bad(tr)
		if i, a := firstIsolated(tr.run(0, 400)); i >= 0 {
			t.Errorf("%s: isolated %s at %d s: %s", name, a.Isolated, i, a.Why)
		}
	}
}

// Every outlier method of the outlier package can judge the default
// profile's zones, on fault counts and on latency-over-threshold counts.
func TestFastWithEachOutlierMethod(t *testing.T) {
	for _, m := range []outlier.Method{outlier.Static, outlier.ChiSquared, outlier.ZScore, outlier.IQR, outlier.MAD} {
		for _, latency := range []bool{false, true} {
			e, err := New(Config{Zones: zones3, Outlier: outlier.Config{Method: m}})
			if err != nil {
				t.Fatal(err)
			}
			tr := newTraffic(t, ProfileDefault)
			tr.e = e
			tr.bad = func(z string, inst, sec int) (bool, bool) {
				bad := z == "az2" && sec >= 20 && tr.rng.Float64() < 0.4
				if latency {
					return false, bad
				}
				return bad, false
			}
			i, a := firstIsolated(tr.run(0, 60))
			if i < 0 || a.Isolated != "az2" {
				t.Errorf("%s (latency %v): isolated %q at %d", m, latency, a.Isolated, i)
			}
		}
	}
	if _, err := New(Config{Zones: zones3, Outlier: outlier.Config{Method: "vibes"}}); err == nil {
		t.Error("unknown outlier method accepted")
	}
}

// The record package's pre-resolved series feed the engine the same
// statistics as single observations.
func TestObserveSnapshotFromRecorder(t *testing.T) {
	e, err := New(Config{Zones: zones3})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.New(record.Options{})
	var series []*record.Series
	for _, z := range zones3 {
		for i := 1; i <= 2; i++ {
			series = append(series, rec.Series(observation.Server, z, fmt.Sprintf("%s-%d", z, i), "ride"))
		}
	}
	var first = -1
	for sec := 0; sec < 30 && first < 0; sec++ {
		for i, s := range series {
			for n := 0; n < 10; n++ {
				out := observation.Success
				if sec >= 10 && i/2 == 1 && n < 4 { // az2, both instances, 40 %
					out = observation.Fault
				}
				s.Observe(out, 5*time.Millisecond)
			}
		}
		now := t0.Add(time.Duration(sec) * time.Second)
		rec.Drain(func(k record.SeriesKey, d record.Snapshot) { e.ObserveSnapshot(now, k, d) })
		if a := e.Tick(now.Add(time.Second)); a.Isolated != "" {
			if a.Isolated != "az2" || sec < 10 {
				t.Fatalf("isolated %s at %d s", a.Isolated, sec)
			}
			first = sec
			if z := a.Zone("az2"); z.Requests == 0 || z.P99 < 4 || z.P99 > 6 {
				t.Errorf("az2 from snapshots: %+v (p99 should be about 5 ms)", z)
			}
		}
	}
	if first < 0 {
		t.Fatal("no detection from recorder snapshots")
	}
}
