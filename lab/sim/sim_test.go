package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/lab/instancegroup"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// run simulates the scenario (faults appended to a 3-zone, 2-instance base)
// and returns everything the world reported.
type result struct {
	obs       []observation.Observation
	customers int
	failed    int
	ticks     int
	end       time.Duration
	table     *frontdoor.Table
}

func simulate(t *testing.T, seed int64, faults string, setup func(*World, *frontdoor.Table)) result {
	t.Helper()
	src := fmt.Sprintf(`version: 1
name: sim
seed: %d
duration: 60s
topology: {zones: [a, b, c], instances_per_zone: 2}
load: {rps: 50}
canary: {interval: 5s}
%s`, seed, faults)
	sc, err := scenario.Parse("sim.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var r result
	r.table = frontdoor.NewTable(sc.Topology.Zones, frontdoor.DefaultHealthPolicy)
	w := New(Config{
		Scenario: sc, Table: r.table, Start: start,
		Observe: func(o observation.Observation) { r.obs = append(r.obs, o) },
		Tick:    func(time.Time) { r.ticks++ },
		Customer: func(failed, _ bool) {
			r.customers++
			if failed {
				r.failed++
			}
		},
	})
	for _, z := range sc.Topology.Zones {
		for _, id := range sc.Topology.InstanceIDs(z) {
			if err := w.Launch(context.Background(), instancegroup.Instance{ID: id, Zone: z}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if setup != nil {
		setup(w, r.table)
	}
	r.end = w.Run(context.Background())
	return r
}

// beforeEnd reports whether the request started before the run's end (60 s),
// where every fault stops.
func beforeEnd(o observation.Observation) bool {
	return o.At.Add(-o.Latency).Sub(start) < 60*time.Second
}

func digest(obs []observation.Observation) uint64 {
	h := fnv.New64a()
	for _, o := range obs {
		fmt.Fprintf(h, "%d|%d|%s|%s|%s|%d|%d|%v\n", o.At.UnixNano(), o.Source, o.Zone, o.Instance, o.Operation, o.Outcome, o.Latency, o.Regional)
	}
	return h.Sum64()
}

func TestSameSeedSameWorld(t *testing.T) {
	a, b := simulate(t, 7, "", nil), simulate(t, 7, "", nil)
	if digest(a.obs) != digest(b.obs) || a.customers != b.customers {
		t.Fatal("two runs with seed 7 differ")
	}
	if c := simulate(t, 8, "", nil); digest(c.obs) == digest(a.obs) {
		t.Fatal("seeds 7 and 8 give the same run")
	}
}

func TestHealthyRunShape(t *testing.T) {
	r := simulate(t, 1, "", nil)
	if r.end != 60*time.Second || r.ticks != 60 {
		t.Errorf("ran %s with %d ticks, want 60s and one tick a second", r.end, r.ticks)
	}
	// Poisson arrivals at 50/s for 60 s: 3000 ± a few standard deviations (√3000 ≈ 55).
	if math.Abs(float64(r.customers)-3000) > 250 || r.failed != 0 {
		t.Errorf("%d customers, %d failed; want about 3000, none failed", r.customers, r.failed)
	}
	perZone := map[string]int{}
	canaries := 0
	for _, o := range r.obs {
		if o.Outcome != observation.Success {
			t.Fatalf("healthy run produced %+v", o)
		}
		switch {
		case o.Source == observation.Server:
			perZone[o.Zone]++
		case !o.Regional:
			canaries++
		}
	}
	// Every zone serves a third of the customers (plus the canaries' calls).
	for _, z := range []string{"a", "b", "c"} {
		if n := perZone[z]; n < 850 || n > 1200 {
			t.Errorf("zone %s served %d requests, want about a third", z, n)
		}
	}
	// 13 canary rounds (0s, 5s, ... 60s: the end is included) × 3 zones × 4 operations.
	if canaries != 13*3*4 {
		t.Errorf("%d zonal canary observations, want %d", canaries, 13*3*4)
	}
}

// A database blackhole on one zone fails exactly the database operations
// of that zone's instances, after the app's database timeout.
func TestBlackholeFailsDatabaseCallsOfItsZone(t *testing.T) {
	r := simulate(t, 1, "faults: [{at: 0s, kind: blackhole, zone: a}]\n", nil)
	for _, o := range r.obs {
		if o.Source != observation.Server || !beforeEnd(o) {
			continue
		}
		db := o.Operation == "ride" || o.Operation == "pay"
		if wantFault := o.Zone == "a" && db; (o.Outcome == observation.Fault) != wantFault {
			t.Fatalf("%+v: fault=%v, want %v", o, o.Outcome == observation.Fault, wantFault)
		}
		if o.Outcome == observation.Fault && o.Latency < DBTimeout {
			t.Fatalf("%+v: failed before the database timeout", o)
		}
	}
	if r.failed == 0 {
		t.Error("no customer saw the failure")
	}
}

func TestHTTPErrorOnOneInstance(t *testing.T) {
	r := simulate(t, 1, "faults: [{at: 0s, kind: http_error, instance: b-2, percent: 100}]\n", nil)
	for _, o := range r.obs {
		if o.Source == observation.Server && (o.Outcome == observation.Fault) != (o.Instance == "b-2") {
			t.Fatalf("%+v", o)
		}
	}
}

// telemetry_loss: the instances still serve (customers are fine), but their
// own reports never arrive; canaries still see the zone.
func TestTelemetryLossSilencesServerObservations(t *testing.T) {
	r := simulate(t, 1, "faults: [{at: 20s, duration: 20s, kind: telemetry_loss, zone: a}]\n", nil)
	var during, canaryDuring int
	for _, o := range r.obs {
		off := o.At.Sub(start)
		if o.Zone != "a" || off < 20*time.Second || off >= 40*time.Second {
			continue
		}
		if o.Source == observation.Server {
			during++
		} else {
			canaryDuring++
		}
	}
	if during > 5 { // requests started just before 20 s complete after it
		t.Errorf("%d server observations from zone a during the loss", during)
	}
	if canaryDuring == 0 || r.failed != 0 {
		t.Errorf("%d canary observations of zone a during the loss, %d customers failed", canaryDuring, r.failed)
	}
}

// canary_failure: grayzone's zonal canary calls to the zone fail at once
// without reaching an instance; customers and the other zones are untouched.
func TestCanaryFailureFailsOnlyTheZonesCanaries(t *testing.T) {
	r := simulate(t, 1, "faults: [{at: 0s, kind: canary_failure, zone: c}]\n", nil)
	n := 0
	for _, o := range r.obs {
		if o.Source != observation.Canary || o.Regional || !beforeEnd(o) {
			if o.Outcome != observation.Success {
				t.Fatalf("%+v failed", o)
			}
			continue
		}
		failed := o.Outcome == observation.Fault
		if failed != (o.Zone == "c") {
			t.Fatalf("zonal canary %+v: failed=%v", o, failed)
		}
		if failed {
			n++
			if o.Instance != "" || o.Latency != 0 {
				t.Fatalf("cut canary call reached %q after %v", o.Instance, o.Latency)
			}
		}
	}
	if n != 12*4 || r.failed != 0 {
		t.Errorf("%d failed canary calls (want 48), %d customers failed", n, r.failed)
	}
}

// A shifted zone gets no customers, but its zonal canaries still reach it.
func TestShiftedZoneKeepsItsCanaries(t *testing.T) {
	r := simulate(t, 1, "", func(_ *World, tb *frontdoor.Table) {
		if err := tb.SetShifted("b", true); err != nil {
			t.Fatal(err)
		}
	})
	server, canary := 0, 0
	for _, o := range r.obs {
		if o.Zone != "b" {
			continue
		}
		if o.Source == observation.Server {
			server++
		} else if !o.Regional {
			canary++
		}
	}
	// Its instances serve only the canaries' calls, which probe it harder
	// while it is shifted (canary.ProbeSteps rounds per interval): 12
	// intervals of 5 probe rounds and the first round, 4 operations each.
	if server != canary || canary != (12*5+1)*4 {
		t.Errorf("zone b served %d requests for %d canary calls; want only the canaries' %d", server, canary, (12*5+1)*4)
	}
}

func TestTerminateRemovesTheTarget(t *testing.T) {
	simulate(t, 1, "", func(w *World, tb *frontdoor.Table) {
		if err := w.Terminate(context.Background(), instancegroup.Instance{ID: "a-1", Zone: "a"}); err != nil {
			t.Fatal(err)
		}
		for _, ts := range tb.Targets() {
			if ts.ID == "a-1" {
				t.Fatal("a-1 still a target")
			}
		}
	})
}

// BenchmarkModelHourAt200 is the workload model's own cost: one simulated
// hour at 200 req/s over 3 zones of 2 instances, server-side observations
// summed into aggregates, with nothing consuming them (no engine). Compare
// with a full `grayzone lab --mode sim` run to see the engine's share.
func BenchmarkModelHourAt200(b *testing.B) {
	sc, err := scenario.Parse("b.yaml", []byte(`version: 1
name: b
duration: 1h
topology: {zones: [a, b, c], instances_per_zone: 2}
load: {rps: 200}
faults: [{at: 10m, duration: 10m, kind: packet_loss, zone: a, percent: 10}]
`))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		table := frontdoor.NewTable(sc.Topology.Zones, frontdoor.DefaultHealthPolicy)
		n := 0
		w := New(Config{
			Scenario: sc, Table: table, Start: start, TickEvery: 250 * time.Millisecond,
			Observe:           func(observation.Observation) {},
			ObserveAggregates: func(a []record.Aggregate) { n += len(a) },
			Tick:              func(time.Time) {},
			Customer:          func(bool, bool) {},
		})
		for _, z := range sc.Topology.Zones {
			for _, id := range sc.Topology.InstanceIDs(z) {
				_ = w.Launch(context.Background(), instancegroup.Instance{ID: id, Zone: z})
			}
		}
		w.Run(context.Background())
		if n == 0 {
			b.Fatal("no aggregates")
		}
	}
}

// With ObserveAggregates set, the engine gets the same counts per bucket
// and series as it would from the single observations.
func TestAggregatesCountLikeObservations(t *testing.T) {
	type key struct {
		bucket       int64
		instance, op string
	}
	type counts struct{ n, faults, slow uint64 }
	const every = 250 * time.Millisecond
	faults := "faults: [{at: 10s, duration: 30s, kind: packet_loss, zone: a, percent: 30}, {at: 20s, kind: slow, instance: b-1, latency: 150ms}]\n"
	single := map[key]counts{}
	r := simulate(t, 5, faults, func(w *World, _ *frontdoor.Table) { w.SetTickEvery(every) })
	for _, o := range r.obs {
		if o.Source != observation.Server {
			continue
		}
		k := key{o.At.UnixNano() / int64(every), o.Instance, o.Operation}
		c := single[k]
		c.n++
		if o.Outcome == observation.Fault {
			c.faults++
		}
		if o.Latency > 100*time.Millisecond {
			c.slow++
		}
		single[k] = c
	}
	summed := map[key]counts{}
	simulate(t, 5, faults, func(w *World, _ *frontdoor.Table) {
		w.SetTickEvery(every)
		w.cfg.ObserveAggregates = func(aggs []record.Aggregate) {
			for _, a := range aggs {
				k := key{a.At.UnixNano() / int64(every), a.Key.Instance, a.Key.Operation}
				c := summed[k]
				c.n, c.faults, c.slow = c.n+a.Requests, c.faults+a.Faults, c.slow+a.Slow
				summed[k] = c
			}
		}
	})
	if len(single) == 0 || !reflect.DeepEqual(single, summed) {
		t.Fatalf("aggregates differ from single observations: %d vs %d series-buckets", len(summed), len(single))
	}
}
