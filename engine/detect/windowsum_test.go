package detect

import (
	"math/rand/v2"
	"testing"

	"github.com/DataDog/sketches-go/ddsketch"
)

// TestWindowSumIsTheMerge: the running sum's quantiles are the ones a fresh
// merge of the ring gives, second after second, through quiet seconds (the
// sum empties), bursts far apart in latency, and zero values (no bins: the
// sum is merged afresh while one is in the ring).
func TestWindowSumIsTheMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 10
	ring := make([]*ddsketch.DDSketch, n)
	for i := range ring {
		ring[i] = newSketch()
	}
	w := &windowSum{sk: newSketch(), exact: true}
	exact := 0
	for sec := 1; sec < 600; sec++ {
		fresh := newSketch()
		for _, s := range ring {
			_ = fresh.MergeWith(s)
		}
		if got, want := w.quantile(ring, (sec-1)%n, 0.99), quantile(fresh, 0.99); got != want {
			t.Fatalf("second %d: p99 %v, want %v (exact %v)", sec, got, want, w.exact)
		}
		if w.exact {
			exact++
		}
		w.remove(ring[sec%n])
		ring[sec%n].Clear()
		switch k := rng.IntN(10); {
		case k < 3: // quiet
		case k == 3:
			_ = ring[sec%n].AddWithCount(0, 2) // a zero value: no bin
		default:
			for range rng.IntN(50) {
				i := rng.IntN(192)
				if k == 9 {
					i = 150 + rng.IntN(42) // slow
				}
				addBucket(ring[sec%n], i, uint64(1+rng.IntN(5)))
			}
		}
	}
	if exact < 100 {
		t.Errorf("the running sum was exact at %d of 599 seconds: the test hardly ran it", exact)
	}
}
