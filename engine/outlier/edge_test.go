package outlier

import (
	"math"
	"strings"
	"testing"
)

// Three zones, two nearly equal peers: their spread is almost zero, so
// without a floor any zone a hair above them scores in the hundreds. The
// spread never drops below sampling noise, and the rate must be at least
// MinDifference above every other zone's.
func TestNearlyEqualPeersNeedARealDifference(t *testing.T) {
	tests := []struct {
		name           string
		counts, totals []float64
		want           bool // z-score, IQR and MAD alike
	}{
		// Rates 1.00 %, 1.01 %, 1.05 %: peers' sd 0.007 points; noise 0.31 points.
		{"rates a hair apart", []float64{100, 101, 105}, []float64{10000, 10000, 10000}, false},
		// 1.00 %, 1.00 %, 1.30 %: 3 noise sds, but below the 1 point minimum difference.
		{"rates within the minimum difference", []float64{100, 100, 130}, []float64{10000, 10000, 10000}, false},
		// 1.0 %, 1.0 %, 2.5 %: 15 noise sds and 1.5 points above.
		{"rates clearly apart", []float64{100, 100, 250}, []float64{10000, 10000, 10000}, true},
		// Healthy peers at exactly 0 %: no spread at all; 0.5 % is a real
		// excess statistically (4 noise sds) but less than 1 point.
		{"zero peers, tiny rate", []float64{0, 0, 5}, []float64{1000, 1000, 1000}, false},
		{"zero peers, 5 % rate", []float64{0, 0, 50}, []float64{1000, 1000, 1000}, true},
		// Few requests: 1 of 20 (5 %) is within the noise of peers with 0 of 20.
		{"thin traffic", []float64{0, 0, 1}, []float64{20, 20, 20}, false},
		{"thin traffic, clear", []float64{0, 0, 12}, []float64{20, 20, 20}, true},
		// Counts without totals: Poisson noise of the peers' mean.
		{"counts a hair apart", []float64{1000, 1001, 1010}, nil, false},
		{"counts far apart", []float64{1000, 1001, 1200}, nil, true},
	}
	for _, tt := range tests {
		for _, m := range []Method{ZScore, IQR, MAD} {
			r := DetectWithTotals(Config{Method: m}, tt.counts, tt.totals, 2)
			check(t, tt.name+"/"+string(m), r)
			if r.Err != nil || r.Outlier != tt.want {
				t.Errorf("%s/%s: outlier=%v err=%v, want %v (%s)", tt.name, m, r.Outlier, r.Err, tt.want, r.Reason)
			}
			if math.IsInf(r.Score, 0) {
				t.Errorf("%s/%s: infinite score %v", tt.name, m, r.Score)
			}
		}
	}
	// The reason says which rule decided.
	r := DetectWithTotals(Config{Method: ZScore}, []float64{100, 100, 130}, []float64{10000, 10000, 10000}, 2)
	if !strings.Contains(r.Reason, "but it is only 0.003 above zone 0 (minimum difference 0.01)") {
		t.Errorf("reason does not name the minimum difference: %s", r.Reason)
	}
	r = DetectWithTotals(Config{Method: MAD}, []float64{100, 101, 105}, []float64{10000, 10000, 10000}, 2)
	if !strings.Contains(r.Reason, "spread raised to sampling noise") {
		t.Errorf("reason does not name the noise floor: %s", r.Reason)
	}
}

func TestMinDifferenceIsConfigurable(t *testing.T) {
	counts, totals := []float64{100, 100, 130}, []float64{10000, 10000, 10000}
	r := DetectWithTotals(Config{Method: ZScore, MinDifference: 0.002}, counts, totals, 2)
	if !r.Outlier {
		t.Errorf("minimum difference 0.002: %s", r.Reason)
	}
	// Static applies it too: 1.3 % has 39 % of the summed rates.
	r = DetectWithTotals(Config{Method: Static, Threshold: 0.3}, counts, totals, 2)
	if r.Outlier || !strings.Contains(r.Reason, "minimum difference 0.01") {
		t.Errorf("static with a tiny difference: %s", r.Reason)
	}
	// Counts: a minimum of 50 more faults than any other zone.
	r = Detect(Config{Method: ZScore, MinDifference: 50}, []float64{0, 0, 40}, 2)
	if r.Outlier || !strings.Contains(r.Reason, "only 40 above zone 0 (minimum difference 50)") {
		t.Errorf("count minimum difference: %s", r.Reason)
	}
	for _, bad := range []float64{-0.1, math.NaN(), math.Inf(1)} {
		if err := (Config{Method: MAD, MinDifference: bad}).Validate(); err == nil {
			t.Errorf("MinDifference %v accepted", bad)
		}
	}
}

// Chi-squared decides only when every zone's expected count is at least 5.
func TestChiSquaredNeedsExpectedCountsOfFive(t *testing.T) {
	tests := []struct {
		name           string
		counts, totals []float64
		zone           int
		decided, want  bool
	}{
		// 12 faults over 3 equal zones: 4 expected each.
		{"4 expected per zone", []float64{0, 0, 12}, nil, 2, false, false},
		// 15 faults: exactly 5 expected: the test runs (and it is significant).
		{"5 expected per zone", []float64{0, 0, 15}, nil, 2, true, true},
		// Plenty overall, but the small zone expects only 2.
		{"small zone expects too few", []float64{100, 100, 10}, []float64{10000, 10000, 200}, 2, false, false},
		{"small zone expects enough", []float64{500, 500, 50}, []float64{10000, 10000, 200}, 2, true, true},
		// Whitepaper numbers: all expected 25, not significant: decided, no outlier.
		{"decided, not significant", []float64{20, 20, 25, 35}, nil, 3, true, false},
	}
	for _, tt := range tests {
		r := DetectWithTotals(Config{Method: ChiSquared}, tt.counts, tt.totals, tt.zone)
		check(t, tt.name, r)
		undecided := strings.Contains(r.Reason, "no decision")
		if r.Err != nil || r.Outlier != tt.want || undecided == tt.decided {
			t.Errorf("%s: outlier=%v undecided=%v err=%v, want outlier=%v decided=%v (%s)", tt.name, r.Outlier, undecided, r.Err, tt.want, tt.decided, r.Reason)
		}
	}
}
