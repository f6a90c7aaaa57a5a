package resource

import (
	"time"

	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Sources of the intake's own offers to the gate (outside sources offer
// under their configured names).
const (
	SourceFrontDoor = "frontdoor" // the front door's per-request counters
	SourceCanary    = "canary"    // grayzone's own synthetic requests
)

// Intake is the one way telemetry reaches a resource's controller: the
// front door's recorder, the canaries and every outside source offer
// record.Aggregates to the ingest gate (its zone check, caps and bounded
// buffer, and the one place a slow count left to the receiver is
// resolved), and Feed drains the gate into the controller before each tick.
type Intake struct {
	Gate *ingest.Gate
	// FrontDoor is the front door's recorder; nil when the front door is
	// not grayzone's (HAProxy, xDS, ARC) or does not record.
	FrontDoor *record.Recorder
	// Drop, when set, discards a front-door series' counts before the gate
	// (the lab's telemetry_loss fault); nil in production.
	Drop func(now time.Time, k record.SeriesKey) bool
	// Took, when set, sees each run of aggregates the controller takes
	// (serve's counters and record_observations, which writes what a
	// tick took as one line after Feed). It must not keep the slice.
	Took func([]record.Aggregate)
	// PerTick bounds the aggregates fed at one tick (≤ 0: all), so a flood
	// never stretches a tick; the gate's buffer bound drops the excess.
	PerTick int

	fd record.Drained // the front door's counts, reused by Feed (the gate copies them)
}

// OfferObservation offers one observation (a canary's call, a log line) to
// the gate from source, as an aggregate of one request.
func (in *Intake) OfferObservation(source string, o observation.Observation) error {
	return in.Gate.Offer(source, []record.Aggregate{record.Single(o)}, o.At)
}

// Feed offers what the front door counted since the last tick to the gate,
// as of now, then hands the gate's queue to ctrl.
func (in *Intake) Feed(now time.Time, ctrl *autoshift.Controller) {
	if in.FrontDoor != nil {
		// What the counters hold was counted before now: stamped a moment
		// earlier, it lands in the engine's bucket that ends at now, which
		// this tick closes, not in the next one a tick later.
		at := now.Add(-time.Nanosecond)
		in.FrontDoor.DrainAggregates(at, &in.fd)
		aggs, ids := in.fd.Aggregates, in.fd.IDs
		if in.Drop != nil {
			n := 0
			for i := range aggs {
				if !in.Drop(now, aggs[i].Key) {
					aggs[n], ids[n] = aggs[i], ids[i]
					n++
				}
			}
			aggs, ids = aggs[:n], ids[:n]
		}
		if len(aggs) > 0 {
			// By series number: the gate checks a series' names once, not at every tick.
			_ = in.Gate.OfferSeries(SourceFrontDoor, aggs, ids, now) // a rejection or drop is counted in the gate's stats
		}
	}
	in.Gate.Drain(now, in.PerTick, func(aggs []record.Aggregate) { // a run of records at a time (a block of the gate's queue)
		ctrl.ObserveAggregates(aggs)
		if in.Took != nil {
			in.Took(aggs)
		}
	})
}
