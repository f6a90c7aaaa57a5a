package detect

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestRingLastIsTheSumOfTheNewest: last(k) and total from the marks equal
// adding up the newest k (n) buckets, before the ring is full and long after
// it wrapped, for every k, with buckets of data dense (the marks fill the
// window), sparse and absent for long stretches (marks expire, the marks'
// buffer grows and wraps).
func TestRingLastIsTheSumOfTheNewest(t *testing.T) {
	for _, n := range []int{1, 7, 50} {
		for _, empty := range []float64{0, 0.6, 0.97} {
			t.Run(fmt.Sprintf("n=%d,empty=%g", n, empty), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, 2))
				r := newRing(n)
				var pushed []Counts
				for step := range 40 * n {
					for k := -1; k <= n+2; k++ {
						var want Counts
						for i := 1; i <= min(k, n, len(pushed)); i++ {
							want.add(pushed[len(pushed)-i])
						}
						if got := r.last(k); got != want {
							t.Fatalf("after %d pushes: last(%d) = %+v, want %+v", step, k, got, want)
						}
						if k == n && r.total != want {
							t.Fatalf("after %d pushes: total = %+v, want %+v", step, r.total, want)
						}
					}
					var c Counts
					if rng.Float64() >= empty {
						c = Counts{N: rng.Int64N(100), Faults: rng.Int64N(10), Errors: rng.Int64N(5), Slow: rng.Int64N(20)}
					}
					r.push(c)
					pushed = append(pushed, c)
				}
				if r.size > n || len(r.marks) > n+1 {
					t.Errorf("%d marks in a buffer of %d for a window of %d", r.size, len(r.marks), n)
				}
			})
		}
	}
}
