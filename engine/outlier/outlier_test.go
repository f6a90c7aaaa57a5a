package outlier

import (
	"math"
	"strings"
	"testing"
)

func check(t *testing.T, name string, r Result) {
	t.Helper()
	if math.IsNaN(r.Score) || math.IsNaN(r.Value) || math.IsNaN(r.ChiSquare) {
		t.Errorf("%s: NaN in result %+v", name, r)
	}
	if r.Reason == "" || strings.ContainsAny(r.Reason, "\n\r") {
		t.Errorf("%s: reason not one line: %q", name, r.Reason)
	}
}

// The whitepaper's 4-zone example is not significant at 0.05.
func TestWhitepaperChiSquared(t *testing.T) {
	r := Detect(Config{Method: ChiSquared}, []float64{20, 20, 25, 35}, 3)
	check(t, "whitepaper", r)
	if r.Err != nil || r.Outlier {
		t.Fatalf("got outlier=%v err=%v, want not an outlier", r.Outlier, r.Err)
	}
	if r.ChiSquare != 6.0 || r.DF != 3 {
		t.Errorf("chi-squared %v df %d, want 6.0 df 3", r.ChiSquare, r.DF)
	}
	// Independent closed form for 3 degrees of freedom:
	// P(X > x) = erfc(√(x/2)) + √(2x/π)·e^(−x/2).
	want := math.Erfc(math.Sqrt(3)) + math.Sqrt(12/math.Pi)*math.Exp(-3)
	if math.Abs(r.Score-want) > 1e-12 || math.Abs(r.Score-0.1116) > 5e-5 {
		t.Errorf("p = %.10f, want %.10f (≈ 0.1116)", r.Score, want)
	}
	if r.Threshold != 0.05 || r.Value != 35 {
		t.Errorf("threshold %v value %v", r.Threshold, r.Value)
	}
	wantReason := "zone 3: chi-squared 6 (df 3, expected counts by equal traffic), p 0.1116 above 0.05; zone 3 is farthest above expectation (35 vs 25 expected): not an outlier"
	if r.Reason != wantReason {
		t.Errorf("reason\n got %s\nwant %s", r.Reason, wantReason)
	}
	// At a 0.15 significance level the same data is an outlier in zone 3
	// and only there.
	for z := range 4 {
		r := Detect(Config{Method: ChiSquared, Threshold: 0.15}, []float64{20, 20, 25, 35}, z)
		if r.Outlier != (z == 3) {
			t.Errorf("alpha 0.15 zone %d: outlier=%v (%s)", z, r.Outlier, r.Reason)
		}
	}
}

func TestMethods(t *testing.T) {
	type want map[Method]bool // outlier per method; a method absent means false
	all := func(v bool) want {
		return want{Static: v, ChiSquared: v, ZScore: v, IQR: v, MAD: v}
	}
	tests := []struct {
		name   string
		counts []float64
		zone   int
		want   want
	}{
		{"clear outlier", []float64{2, 1, 3, 60}, 3, all(true)},
		{"clear outlier, asking about a healthy zone", []float64{2, 1, 3, 60}, 0, all(false)},
		{"no outlier", []float64{10, 12, 11, 13}, 3, all(false)},
		{"all zero", []float64{0, 0, 0}, 1, all(false)},
		{"sigma zero, all equal", []float64{5, 5, 5}, 2, all(false)},
		// The others are identical, but their zero spread is luck: Poisson
		// noise alone gives counts of 5 a spread of √5, and 9 is within it.
		// Static: 9/19 < 0.7; chi-squared: p 0.55.
		{"sigma zero, one above", []float64{5, 5, 9}, 2, all(false)},
		// Far beyond the noise: 20 is 6.7 noise sds above 5. Static 20/30 < 0.7.
		{"sigma zero, far above", []float64{5, 5, 20}, 2, want{ChiSquared: true, ZScore: true, IQR: true, MAD: true}},
		{"sigma zero, one below", []float64{5, 5, 1}, 2, all(false)},
		{"tie at the top", []float64{10, 50, 50}, 1, all(false)},
		{"tie at the top, other tied zone", []float64{10, 50, 50}, 2, all(false)},
		{"tie at the top, low zone", []float64{10, 50, 50}, 0, all(false)},
		// Dispersion methods need two other zones to measure spread.
		{"two zones", []float64{0, 100}, 1, want{Static: true, ChiSquared: true}},
		{"two zones, low one", []float64{0, 100}, 0, all(false)},
		{"two equal zones", []float64{7, 7}, 0, all(false)},
		{"one zone", []float64{7}, 0, all(false)},
		// Three zones, healthy ones zero: the common gray failure. Chi-squared
		// needs enough counts to be significant.
		{"three zones, one failing", []float64{0, 0, 40}, 2, all(true)},
		// One stray fault is within noise; chi-squared expects a third of a
		// fault per zone, far too few to decide.
		{"three zones, single fault", []float64{0, 0, 1}, 2, want{Static: true}},
		// Three zones with spread: z = (30−11)/1.41 = 13.4, IQR fence 13.
		{"three zones with spread", []float64{10, 12, 30}, 2, want{ZScore: true, IQR: true, MAD: true, ChiSquared: true}},
		{"three zones, mild", []float64{10, 12, 12.9}, 2, all(false)},
		// A zone above the others but below the threshold of every method.
		{"moderate", []float64{100, 110, 105, 95, 115}, 4, all(false)},
		// The others' IQR 7.5 is below the noise IQR 1.349·√102.5 = 13.66,
		// so Tukey's fence is 106.25 + 1.5·13.66 = 126.7, not 117.5.
		{"within the IQR noise fence", []float64{100, 110, 105, 95, 120}, 4, all(false)},
		{"just over the IQR noise fence", []float64{100, 110, 105, 95, 130}, 4, want{IQR: true}},
		// A second zone is worse: the first is not the outlier.
		{"not the highest", []float64{0, 0, 0, 30, 60}, 3, all(false)},
		{"many zones", []float64{3, 4, 5, 3, 4, 5, 4, 100}, 7, all(true)},
	}
	for _, tt := range tests {
		for _, m := range Methods {
			r := Detect(Config{Method: m}, tt.counts, tt.zone)
			check(t, tt.name+"/"+string(m), r)
			if r.Err != nil {
				t.Errorf("%s/%s: error %v", tt.name, m, r.Err)
				continue
			}
			if r.Outlier != tt.want[m] {
				t.Errorf("%s/%s: %v zone %d outlier=%v, want %v (%s)", tt.name, m, tt.counts, tt.zone, r.Outlier, tt.want[m], r.Reason)
			}
			if r.Threshold != m.DefaultThreshold() {
				t.Errorf("%s/%s: threshold %v, want default %v", tt.name, m, r.Threshold, m.DefaultThreshold())
			}
		}
	}
}

func TestScores(t *testing.T) {
	tests := []struct {
		m      Method
		counts []float64
		zone   int
		score  float64
		reason string
	}{
		{Static, []float64{10, 10, 80}, 2, 0.8,
			"zone 2 has 80.0% of the total (80 of 100 across 3 zones), at or above the 70.0% threshold: outlier"},
		{Static, []float64{35, 35, 30}, 0, 0.35,
			"zone 0 has 35.0% of the total (35 of 100 across 3 zones), below the 70.0% threshold: not an outlier"},
		{ZScore, []float64{100, 120, 300}, 2, 190 / math.Sqrt(200),
			"zone 2: count 300 vs the other zones' mean 110 and sd 14.14: score 13.44 above 3: outlier"},
		// Peers 10 and 12: sd 1.414 is below the Poisson noise √11 = 3.317.
		{ZScore, []float64{10, 12, 30}, 2, 19 / math.Sqrt(11),
			"zone 2: count 30 vs the other zones' mean 11 and sd 1.414, spread raised to sampling noise 3.317: score 5.729 above 3: outlier"},
		{ZScore, []float64{5, 5, 9}, 2, 4 / math.Sqrt(5),
			"zone 2: count 9 vs the other zones' mean 5 and sd 0, spread raised to sampling noise 2.236: score 1.789 not above 3: not an outlier"},
		{ZScore, []float64{5, 5, 5}, 2, 0,
			"zone 2: count 5 vs the other zones' mean 5 and sd 0, spread raised to sampling noise 2.236: score 0 not above 3: not an outlier"},
		{ZScore, []float64{5, 5, 1}, 2, math.Inf(-1), ""},
		// Peers 100, 120, 140: Q1 110, Q3 130 (type 7), IQR 20 (above the
		// noise IQR 1.349·√120 = 14.78).
		{IQR, []float64{100, 120, 140, 600}, 3, 23.5,
			"zone 3: count 600 vs the other zones' Q1 110, Q3 130, IQR 20 (fence Q3 + 1.5·IQR = 160): score 23.5 above 1.5: outlier"},
		{IQR, []float64{100, 120, 140, 160}, 3, 1.5,
			"zone 3: count 160 vs the other zones' Q1 110, Q3 130, IQR 20 (fence Q3 + 1.5·IQR = 160): score 1.5 not above 1.5: not an outlier"},
		// Peers 10, 11, 12: IQR 1, raised to the noise IQR 1.349·√11 = 4.474.
		{IQR, []float64{10, 11, 12, 13}, 3, 1.5 / (1.349 * math.Sqrt(11)),
			"zone 3: count 13 vs the other zones' Q1 10.5, Q3 11.5, IQR raised to sampling noise 4.474 (fence Q3 + 1.5·IQR = 18.21): score 0.3353 not above 1.5: not an outlier"},
		// Peers 100, 110, 120: median 110, MAD 10, scaled 14.83 (noise √110 = 10.49).
		{MAD, []float64{100, 110, 120, 200}, 3, 90 / 14.826,
			"zone 3: count 200 vs the other zones' median 110 and MAD 10 (scaled 14.83): score 6.07 above 3: outlier"},
		{MAD, []float64{10, 11, 12, 20}, 3, 9 / math.Sqrt(11),
			"zone 3: count 20 vs the other zones' median 11 and MAD 1 (scaled 1.483), spread raised to sampling noise 3.317: score 2.714 not above 3: not an outlier"},
		// Peers 0, 0, 4: MAD 0, mean absolute deviation 4/3, scaled 1.671.
		{MAD, []float64{0, 0, 4, 5}, 3, 5 / (1.2533 * 4 / 3),
			"zone 3: count 5 vs the other zones' median 0, MAD 0, so mean absolute deviation 1.333 (scaled 1.671): score 2.992 not above 3: not an outlier"},
		{MAD, []float64{0, 0, 1, 5}, 3, 5 / (1.2533 / 3), ""},
		{ZScore, []float64{0, 100}, 1, 0,
			"zone 1: z-score needs at least 3 zones with traffic to measure the others' spread, have 2: not an outlier"},
		{ZScore, []float64{10, 50, 50}, 1, 20 / math.Sqrt(800),
			"zone 1: count 50 vs the other zones' mean 30 and sd 28.28: score 0.7071 not above 3: not an outlier"},
		{IQR, []float64{0, 0, 0, 30, 60}, 3, 1,
			"zone 3: count 30 vs the other zones' Q1 0, Q3 15, IQR 15 (fence Q3 + 1.5·IQR = 37.5): score 1 not above 1.5: not an outlier"},
		{MAD, []float64{0, 0, 0, 30, 60}, 3, math.Inf(1), ""},
		{ZScore, []float64{60, 0, 0, 0, 60}, 0, math.Inf(1), ""},
	}
	for _, tt := range tests {
		r := Detect(Config{Method: tt.m}, tt.counts, tt.zone)
		check(t, string(tt.m), r)
		if tt.reason != "" && r.Reason != tt.reason {
			t.Errorf("%s %v zone %d reason\n got %s\nwant %s", tt.m, tt.counts, tt.zone, r.Reason, tt.reason)
		}
		if tt.reason != "" && math.Abs(r.Score-tt.score) > 1e-9 && r.Score != tt.score {
			t.Errorf("%s %v zone %d: score %v, want %v", tt.m, tt.counts, tt.zone, r.Score, tt.score)
		}
	}
}

func TestTiesAreNamed(t *testing.T) {
	for _, m := range Methods {
		r := Detect(Config{Method: m, Threshold: m.DefaultThreshold() / 100}, []float64{10, 50, 50}, 1)
		if r.Outlier {
			t.Errorf("%s: tie reported as outlier", m)
		}
		if m != ChiSquared && m != ZScore && !strings.Contains(r.Reason, "zone 2 ties it for the highest count") {
			t.Errorf("%s: reason does not name the tie: %s", m, r.Reason)
		}
	}
	r := Detect(Config{Method: ChiSquared, Threshold: 0.5}, []float64{10, 50, 50}, 1)
	if !strings.Contains(r.Reason, "2 zones tie for farthest above expectation") {
		t.Errorf("chi-squared tie: %s", r.Reason)
	}
	r = Detect(Config{Method: ChiSquared}, []float64{0, 40, 60}, 1)
	if r.Outlier || !strings.Contains(r.Reason, "zone 2, not zone 1, is farthest above expectation") {
		t.Errorf("chi-squared other zone: %+v", r)
	}
	r = Detect(Config{Method: Static, Threshold: 0.3}, []float64{10, 60, 30}, 2)
	if r.Outlier || !strings.HasSuffix(r.Reason, "at or above the 30.0% threshold, but zone 1 has a higher count (60): not an outlier") {
		t.Errorf("static not highest: %s", r.Reason)
	}
}

func TestTotals(t *testing.T) {
	// Zone 0 serves ten times the traffic at the same fault rate: not an
	// outlier once traffic is accounted for, although it has 83% of faults.
	counts, totals := []float64{100, 10, 10}, []float64{10000, 1000, 1000}
	for _, m := range []Method{Static, ChiSquared} {
		if r := Detect(Config{Method: m}, counts, 0); !r.Outlier {
			t.Errorf("%s without totals: expected the (misleading) outlier, got %s", m, r.Reason)
		}
	}
	for _, m := range Methods {
		r := DetectWithTotals(Config{Method: m}, counts, totals, 0)
		check(t, "totals/"+string(m), r)
		if r.Outlier || r.Err != nil {
			t.Errorf("%s with totals: outlier=%v err=%v (%s)", m, r.Outlier, r.Err, r.Reason)
		}
	}
	r := DetectWithTotals(Config{Method: ChiSquared}, counts, totals, 0)
	if r.ChiSquare != 0 || r.Score != 1 {
		t.Errorf("equal rates: chi-squared %v p %v, want 0 and 1", r.ChiSquare, r.Score)
	}

	// Zone 2 has a tenth of the traffic and the same count: ten times the
	// rate. With 30 faults in all it expects 1.4 of them: too few to test.
	counts, totals = []float64{10, 10, 10}, []float64{1000, 1000, 100}
	r = DetectWithTotals(Config{Method: ChiSquared}, counts, totals, 2)
	want := "zone 2: chi-squared 54 (df 2), but zone 2 expects only 1.429 (fewer than 5): too few counts for the test, no decision: not an outlier"
	if r.Outlier || r.Reason != want || r.Value != 10 {
		t.Errorf("got %+v\nwant reason %s", r, want)
	}
	// Ten times the counts: 14.3 expected, enough.
	r = DetectWithTotals(Config{Method: ChiSquared}, []float64{100, 100, 100}, []float64{10000, 10000, 1000}, 2)
	want = "zone 2: chi-squared 540 (df 2, expected counts by traffic), p 5.502e-118 at or below 0.05; zone 2 is farthest above expectation (100 vs 14.29 expected): outlier"
	if !r.Outlier || r.Reason != want {
		t.Errorf("got %+v\nwant reason %s", r, want)
	}
	if r := Detect(Config{Method: ChiSquared}, counts, 2); r.Outlier {
		t.Errorf("without totals equal counts must not be an outlier: %s", r.Reason)
	}
	r = DetectWithTotals(Config{Method: Static}, counts, totals, 2)
	if !r.Outlier || r.Value != 0.1 || math.Abs(r.Score-0.1/0.12) > 1e-12 {
		t.Errorf("static with totals: %+v", r)
	}
	if want := "zone 2 has 83.3% of the total (rate 0.1 of the zones' summed rates 0.12), at or above the 70.0% threshold: outlier"; r.Reason != want {
		t.Errorf("static reason\n got %s\nwant %s", r.Reason, want)
	}

	// A zone without traffic takes no part; asking about it is not an error.
	counts, totals = []float64{1, 1, 0, 30}, []float64{1000, 1000, 0, 1000}
	r = DetectWithTotals(Config{Method: ZScore}, counts, totals, 2)
	if r.Outlier || r.Err != nil || r.Reason != "zone 2 had no requests, so it cannot be an outlier" {
		t.Errorf("no-traffic zone: %+v", r)
	}
	r = DetectWithTotals(Config{Method: ZScore}, counts, totals, 3)
	if !r.Outlier || !strings.Contains(r.Reason, "mean 0.001 and sd 0") {
		t.Errorf("zone 3 among the zones with traffic: %+v", r)
	}
	r = DetectWithTotals(Config{Method: ChiSquared}, counts, totals, 3)
	if !r.Outlier || r.DF != 2 {
		t.Errorf("chi-squared must ignore the zone without traffic (df 2): %+v", r)
	}
	r = DetectWithTotals(Config{Method: ChiSquared}, []float64{5, 0}, []float64{100, 0}, 0)
	if r.Outlier || r.Err != nil || !strings.Contains(r.Reason, "needs at least 2 zones with traffic, have 1") {
		t.Errorf("one zone with traffic: %+v", r)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name           string
		cfg            Config
		counts, totals []float64
		zone           int
		err            string
	}{
		{"no method", Config{}, []float64{1, 2}, nil, 0, `outlier: unknown Method "" (want static, chi-squared, z-score, iqr or mad)`},
		{"bad method", Config{Method: "grubbs"}, []float64{1, 2}, nil, 0, `outlier: unknown Method "grubbs"`},
		{"negative threshold", Config{Method: ZScore, Threshold: -1}, []float64{1, 2}, nil, 0, "outlier: z-score Threshold -1 must be a finite positive number (0 for the default)"},
		{"NaN threshold", Config{Method: MAD, Threshold: math.NaN()}, []float64{1, 2}, nil, 0, "outlier: mad Threshold NaN must be"},
		{"share above 1", Config{Method: Static, Threshold: 70}, []float64{1, 2}, nil, 0, "outlier: static Threshold 70 is a share and must be at most 1"},
		{"alpha 1", Config{Method: ChiSquared, Threshold: 1}, []float64{1, 2}, nil, 0, "outlier: chi-squared Threshold 1 is a significance level and must be below 1"},
		{"no zones", Config{Method: Static}, nil, nil, 0, "outlier: no zones"},
		{"zone range", Config{Method: Static}, []float64{1, 2}, nil, 2, "outlier: zone 2 out of range for 2 zones"},
		{"negative zone", Config{Method: Static}, []float64{1, 2}, nil, -1, "outlier: zone -1 out of range for 2 zones"},
		{"negative count", Config{Method: Static}, []float64{1, -2}, nil, 0, "outlier: count -2 of zone 1 must be finite and non-negative"},
		{"NaN count", Config{Method: Static}, []float64{math.NaN(), 2}, nil, 0, "outlier: count NaN of zone 0 must be finite and non-negative"},
		{"Inf count", Config{Method: Static}, []float64{1, math.Inf(1)}, nil, 0, "outlier: count +Inf of zone 1"},
		{"totals length", Config{Method: Static}, []float64{1, 2}, []float64{1}, 0, "outlier: 1 totals for 2 zones"},
		{"negative total", Config{Method: Static}, []float64{1, 2}, []float64{10, -1}, 0, "outlier: total -1 of zone 1 must be finite and non-negative"},
		{"count without total", Config{Method: Static}, []float64{1, 2}, []float64{10, 0}, 0, "outlier: zone 1 has count 2 but total 0"},
	}
	for _, tt := range tests {
		r := DetectWithTotals(tt.cfg, tt.counts, tt.totals, tt.zone)
		if r.Err == nil || !strings.HasPrefix(r.Err.Error(), tt.err) || r.Outlier || r.Reason != r.Err.Error() {
			t.Errorf("%s: got %+v, want error %q", tt.name, r, tt.err)
		}
		if r.Err != nil && strings.Contains(r.Err.Error(), "\n") {
			t.Errorf("%s: multi-line error", tt.name)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, m := range Methods {
		if err := (Config{Method: m}).Validate(); err != nil {
			t.Errorf("%s default: %v", m, err)
		}
		r := Detect(Config{Method: m, Threshold: 0.5}, []float64{1, 2, 3}, 0)
		if r.Threshold != 0.5 {
			t.Errorf("%s: explicit threshold not used: %v", m, r.Threshold)
		}
	}
	for s, want := range map[string]Method{"static": Static, "STATIC": Static, "CHI_SQUARED": ChiSquared, "chi-squared": ChiSquared,
		"Z_SCORE": ZScore, "zscore": ZScore, "z-score": ZScore, "IQR": IQR, "mad": MAD} {
		if got, err := ParseMethod(s); err != nil || got != want {
			t.Errorf("ParseMethod(%q) = %q, %v", s, got, err)
		}
	}
	if _, err := ParseMethod("grubbs"); err == nil {
		t.Error("ParseMethod(grubbs) succeeded")
	}
	if Method("x").DefaultThreshold() != 0 {
		t.Error("unknown method has a default threshold")
	}
}

func TestQuantile(t *testing.T) {
	s := []float64{1, 2, 3, 4}
	for p, want := range map[float64]float64{0: 1, 0.25: 1.75, 0.5: 2.5, 0.75: 3.25, 1: 4} {
		if got := quantile(s, p); got != want {
			t.Errorf("quantile(%v, %v) = %v, want %v (type 7)", s, p, got, want)
		}
	}
	if got := quantile([]float64{7}, 0.75); got != 7 {
		t.Errorf("single value quantile = %v", got)
	}
	if got := median([]float64{1, 3, 100}); got != 3 {
		t.Errorf("median = %v", got)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{30: "30", 0.11161: "0.1116", 1.48261: "1.483", -2: "-2", 1e20: "1e+20", math.Inf(1): "+Inf", 3.6e-12: "3.6e-12"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}
