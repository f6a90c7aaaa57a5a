package ingest

import (
	"strconv"
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/record"
)

// BenchmarkOffer is the gate's cost per batch of 5,000 aggregates (100
// instances × 50 operations, all known after the first round), drained every
// eight batches as an engine tick would; b.N batches.
//
//	go test -run '^$' -bench Offer -benchmem ./telemetry/ingest/
func BenchmarkOffer(b *testing.B) { benchOffer(b, 100, false) }

// BenchmarkOfferSeries is the front door's form (Gate.OfferSeries): a
// recorder's 50,000 series (1,000 instances × 50 operations, numbered),
// 5,000 of them per batch; after the first round no key is looked up by
// name.
func BenchmarkOfferSeries(b *testing.B) { benchOffer(b, 10, true) }

// benchOffer offers rounds batches of 5,000 aggregates in turn.
func benchOffer(b *testing.B, rounds int, numbered bool) {
	zones := []string{"z0", "z1", "z2"}
	g := New("bench", zones, Limits{MaxInstances: 10_000, MaxOperations: 50})
	batches := make([][]record.Aggregate, rounds)
	ids := make([][]int, len(batches))
	for r := range batches {
		for i := range 100 {
			inst := "i-" + strconv.Itoa(r*100+i)
			for op := range 50 {
				a := agg(zones[i%3], inst, "/op/"+strconv.Itoa(op), 20)
				ids[r] = append(ids[r], r*5000+len(batches[r]))
				batches[r] = append(batches[r], a)
			}
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var err error
		if k := i % len(batches); numbered {
			err = g.OfferSeries("frontdoor", batches[k], ids[k], t0)
		} else {
			err = g.Offer("otlp", batches[k], t0)
		}
		if err != nil {
			b.Fatal(err)
		}
		if i++; i%8 == 0 {
			g.Drain(t0.Add(time.Duration(i)*time.Millisecond), 100_000, func([]record.Aggregate) {})
		}
	}
	b.ReportMetric(float64(b.N*5000)/b.Elapsed().Seconds(), "aggregates/s")
}
