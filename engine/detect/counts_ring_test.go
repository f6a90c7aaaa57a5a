package detect

import (
	"math/rand/v2"
	"testing"
)

// TestRingLastIsTheSumOfTheNewest: last(k) from the running sums equals
// adding up the newest k buckets, before the ring is full and long after
// it wrapped, for every k.
func TestRingLastIsTheSumOfTheNewest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 7
	r := newRing(n)
	var pushed []Counts
	for step := range 40 {
		for k := -1; k <= n+2; k++ {
			var want Counts
			for i := 1; i <= min(k, n, len(pushed)); i++ {
				want.add(pushed[len(pushed)-i])
			}
			if got := r.last(k); got != want {
				t.Fatalf("after %d pushes: last(%d) = %+v, want %+v", step, k, got, want)
			}
		}
		c := Counts{N: rng.Int64N(100), Faults: rng.Int64N(10), Errors: rng.Int64N(5), Slow: rng.Int64N(20)}
		r.push(c)
		pushed = append(pushed, c)
	}
}
