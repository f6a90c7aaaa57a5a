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
func BenchmarkOffer(b *testing.B) {
	zones := []string{"z0", "z1", "z2"}
	g := New("bench", zones, Limits{MaxInstances: 10_000, MaxOperations: 50})
	batches := make([][]record.Aggregate, 100)
	for r := range batches {
		for i := range 100 {
			inst := "i-" + strconv.Itoa(r*100+i)
			for op := range 50 {
				a := agg(zones[i%3], inst, "/op/"+strconv.Itoa(op), 20)
				batches[r] = append(batches[r], a)
			}
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := g.Offer("otlp", batches[i%len(batches)], t0); err != nil {
			b.Fatal(err)
		}
		if i++; i%8 == 0 {
			g.Drain(t0.Add(time.Duration(i)*time.Millisecond), 100_000, func([]record.Aggregate) {})
		}
	}
	b.ReportMetric(float64(b.N*5000)/b.Elapsed().Seconds(), "aggregates/s")
}
