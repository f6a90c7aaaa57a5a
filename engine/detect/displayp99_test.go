package detect

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// The display p99 is the p99 of every latency of the last 10 s merged
// afresh, to the bit: latencies collected per second (by record bucket, or
// as values from Observe) and put into the ring when the second ends make
// the same bins as adding each one to a sketch of the window.
func TestDisplayP99IsTheWindowsMerge(t *testing.T) {
	e, err := New(Config{Zones: zones3})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	type lat struct {
		bucket int     // a record bucket, or -1: ms is a value
		n      uint64  // how many
		ms     float64 // Observe's value
	}
	var bySec [][]lat // az1's server-side latencies, by second
	for s := 0; s < 40; s++ {
		var got []lat
		for k := 0; k < 1+rng.IntN(6); k++ {
			at := t0.Add(time.Duration(s)*time.Second + time.Duration(rng.IntN(4))*250*time.Millisecond + time.Millisecond)
			var bs []record.Bucket
			for range 1 + rng.IntN(4) {
				b := record.Bucket{Index: 20 + rng.IntN(record.NumBuckets-40), Count: uint64(1 + rng.IntN(9))}
				bs = append(bs, b)
				got = append(got, lat{bucket: b.Index, n: b.Count})
			}
			var n uint64
			for _, b := range bs {
				n += b.Count
			}
			e.ObserveAggregate(record.Aggregate{At: at, Key: record.SeriesKey{Source: observation.Server, Zone: "az1", Instance: "az1-1", Operation: "ride"},
				Requests: n, Latency: bs})
			// Other zones and the canaries: not in az1's server-side p99.
			e.ObserveAggregate(record.Aggregate{At: at, Key: record.SeriesKey{Source: observation.Canary, Zone: "az1", Operation: "ride"},
				Requests: 1, Latency: []record.Bucket{{Index: 150, Count: 1}}})
			e.ObserveAggregate(record.Aggregate{At: at, Key: record.SeriesKey{Source: observation.Server, Zone: "az2", Instance: "az2-1", Operation: "ride"},
				Requests: 1, Latency: []record.Bucket{{Index: 160, Count: 1}}})
			if rng.IntN(3) == 0 {
				ms := 0.5 + 500*rng.Float64()
				e.Observe(observation.Observation{At: at, Source: observation.Server, Zone: "az1", Instance: "az1-2", Operation: "ride",
					Latency: time.Duration(ms * float64(time.Millisecond))})
				got = append(got, lat{bucket: -1, ms: float64(time.Duration(ms*float64(time.Millisecond))) / float64(time.Millisecond)})
			}
		}
		bySec = append(bySec, got)
		// The first bucket of second s+1 closes: seconds s-9..s are shown.
		a := e.Tick(t0.Add(time.Duration(s+1)*time.Second + 250*time.Millisecond))
		ref := newSketch()
		for u := max(0, s-9); u <= s; u++ {
			for _, l := range bySec[u] {
				if l.bucket >= 0 {
					addBucket(ref, l.bucket, l.n)
				} else {
					_ = ref.Add(l.ms)
				}
			}
		}
		if want, got := quantileOf(ref), a.Zone("az1").P99; got != want {
			t.Fatalf("second %d: az1 p99 %v, want the window's merge %v", s, got, want)
		}
	}
}

func quantileOf(s *ddsketch.DDSketch) float64 { return quantile(s, 0.99) }
