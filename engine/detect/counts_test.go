package detect

import (
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/record"
)

// Adding a record bucket by its precomputed sketch index is adding its
// midpoint: the same sketch, bucket for bucket, for every bucket.
func TestAddBucketIsAddingItsMidpoint(t *testing.T) {
	fast, slow := newSketch(), newSketch()
	for i := range record.NumBuckets + 1 {
		addBucket(fast, i, uint64(i+1))
		_ = slow.AddWithCount(float64(record.BucketMid(i))/float64(time.Millisecond), float64(i+1))
	}
	for _, q := range []float64{0, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
		a, _ := fast.GetValueAtQuantile(q)
		b, _ := slow.GetValueAtQuantile(q)
		if a != b {
			t.Fatalf("q%v: %v by index, %v by value", q, a, b)
		}
	}
	if fast.GetCount() != slow.GetCount() || fast.GetZeroCount() != slow.GetZeroCount() {
		t.Fatalf("counts %v/%v, zero counts %v/%v", fast.GetCount(), slow.GetCount(), fast.GetZeroCount(), slow.GetZeroCount())
	}
}
