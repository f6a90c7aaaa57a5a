package telemetrypath

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// TestCountEarlyDrainsTheSame: with CountEarly, the direct path's recorder
// drains, tick after tick, exactly what it drains when every request is held
// until its tick (the same aggregates, in the same series order), requests
// completing within the tick, at its very end, and ticks later included;
// and so it does when they come through Counters rather than Observe.
func TestCountEarlyDrainsTheSame(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const every = 250 * time.Millisecond
	var drains [3][]string
	for i, early := range []bool{false, true, true} {
		counters := map[[3]string]*Counter{} // i == 2: through counters
		rec := record.New(record.Options{Thresholds: operation.Thresholds()})
		p, err := New(Direct, nil, rec, start)
		if err != nil {
			t.Fatal(err)
		}
		if early {
			p.CountEarly(every)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		now := start
		for tick := range 40 {
			for range 30 {
				at := now.Add(time.Duration(rng.Int64N(int64(every))))
				lat := []time.Duration{time.Millisecond, 120 * time.Millisecond, every, 2 * time.Second}[rng.IntN(4)]
				if tick == 0 && rng.IntN(2) == 0 {
					lat = now.Add(every).Sub(at) // completes exactly at the next tick
				}
				o := observation.Observation{At: at.Add(lat), Source: observation.Server, Zone: fmt.Sprintf("z%d", rng.IntN(2)),
					Operation: operation.Catalog[rng.IntN(len(operation.Catalog))].Name, Outcome: observation.Outcome(rng.IntN(3)), Latency: lat}
				o.Instance = o.Zone + fmt.Sprint("-", rng.IntN(3))
				if i == 2 {
					k := [3]string{o.Zone, o.Instance, o.Operation}
					if counters[k] == nil {
						counters[k] = p.Counter(o.Zone, o.Instance, o.Operation)
					}
					counters[k].Observe(o.At, o.Outcome, o.Latency)
				} else if err := p.Observe(o); err != nil {
					t.Fatal(err)
				}
			}
			now = now.Add(every)
			if err := p.Tick(now); err != nil {
				t.Fatal(err)
			}
			rec.Drain(func(k record.SeriesKey, d record.Snapshot) {
				drains[i] = append(drains[i], fmt.Sprintf("%d %+v %+v", tick, k, d))
			})
		}
	}
	if len(drains[0]) == 0 || !reflect.DeepEqual(drains[0], drains[1]) {
		t.Errorf("held: %d drains, counted early: %d, or they differ\nheld:  %v\nearly: %v", len(drains[0]), len(drains[1]), drains[0], drains[1])
	}
	if !reflect.DeepEqual(drains[0], drains[2]) {
		t.Errorf("held: %d drains, through counters: %d, or they differ\nheld:     %v\ncounters: %v", len(drains[0]), len(drains[2]), drains[0], drains[2])
	}
}
