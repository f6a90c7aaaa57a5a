// Package outlier decides whether one availability zone is an outlier among
// zones, from per-zone counts (faults, or requests slower than a latency
// threshold) and optionally per-zone totals (all requests).
//
// The methods are those of AWS's multi-AZ observability reference code, done
// correctly where that code is not: the chi-squared test can weight expected
// counts by traffic and requires the zone to be the one farthest *above*
// expectation; z-score, IQR and MAD compare the zone with the *other* zones,
// honour the configured threshold, never divide by zero, and MAD is the
// scaled median absolute deviation.
//
// Conventions shared by every method:
//   - Only high outliers count: a zone with fewer faults than its peers is
//     not a gray failure.
//   - The zone must be strictly the highest. Two zones tied at the top, or a
//     zone below another, are never "the" outlier.
//   - With totals, a zone with no traffic (total 0) takes no part, and the
//     value compared is the rate count/total, so a zone that merely serves
//     more traffic is not mistaken for a failing one. Chi-squared instead
//     uses totals for its expected counts.
//   - A difference too small to matter is no outlier. The dispersion
//     methods (z-score, IQR, MAD) never take the other zones' spread to be
//     smaller than sampling noise alone makes it (binomial noise of the
//     pooled rate with totals, Poisson noise of the counts without), so two
//     nearly equal zones cannot make a third one "infinitely" far away; and
//     every method but chi-squared wants the zone above the highest other
//     zone by at least MinDifference (by default one percentage point of
//     rate with totals).
//   - Chi-squared decides only when every expected count is at least 5, the
//     usual condition for its approximation to hold.
//   - Invalid input is reported in Result.Err; Detect never panics.
package outlier

import (
	"fmt"
	"math"
	"strings"
)

// Method is an outlier detection method.
type Method string

const (
	// Static: the zone's share of all zones' counts (of their rates, with
	// totals) is at least Threshold, by default 0.7.
	Static Method = "static"
	// ChiSquared: Pearson's goodness-of-fit test of the counts against
	// expected counts proportional to totals (equal without totals); an
	// outlier when p ≤ Threshold (default 0.05) and the zone has the largest
	// positive Pearson residual (o−e)/√e.
	ChiSquared Method = "chi-squared"
	// ZScore: (x − mean)/sd of the other zones (sample sd) exceeds Threshold,
	// by default 3. Leaving the zone out matters: with the zone included,
	// |z| can never exceed √(k−1) among k zones, so a threshold of 3 could
	// not fire with fewer than 11 zones.
	ZScore Method = "z-score"
	// IQR: the value exceeds Q3 + Threshold·IQR of the other zones (Tukey's
	// fence, default 1.5). Quartiles use linear interpolation between order
	// statistics (Hyndman & Fan type 7, the default of R, NumPy and Excel's
	// QUARTILE.INC). Among 3 zones a fence that includes the zone itself can
	// never be crossed; leaving it out can.
	IQR Method = "iqr"
	// MAD: (x − median)/(1.4826·MAD) of the other zones exceeds Threshold
	// (default 3), MAD being the median absolute deviation from the median;
	// 1.4826 makes it estimate the standard deviation of normal data. When
	// MAD is 0 (most other zones identical) the scale falls back to
	// 1.2533·mean absolute deviation from the median (Iglewicz & Hoaglin).
	MAD Method = "mad"
)

// Methods lists every method.
var Methods = []Method{Static, ChiSquared, ZScore, IQR, MAD}

// ParseMethod accepts the method names above and AWS's spellings
// (STATIC, CHI_SQUARED, Z_SCORE, IQR, MAD).
func ParseMethod(s string) (Method, error) {
	m := Method(strings.ReplaceAll(strings.ToLower(s), "_", "-"))
	if m == "zscore" {
		m = ZScore
	}
	for _, k := range Methods {
		if m == k {
			return k, nil
		}
	}
	return "", fmt.Errorf("outlier: unknown method %q (want static, chi-squared, z-score, iqr or mad)", s)
}

// DefaultThreshold is the threshold used when Config.Threshold is 0.
func (m Method) DefaultThreshold() float64 {
	switch m {
	case Static:
		return 0.7
	case ChiSquared:
		return 0.05
	case ZScore, MAD:
		return 3
	case IQR:
		return 1.5
	}
	return 0
}

// Config selects a method and its threshold; Threshold 0 means the method's
// default.
type Config struct {
	Method    Method
	Threshold float64
	// MinDifference is how far the zone's value must be above every other
	// zone's for static, z-score, IQR and MAD to call it an outlier: a rate
	// difference with totals, a count difference without. 0 means the
	// default: DefaultMinRateDifference with totals, none without (the
	// Poisson noise floor of the spread then does the work).
	MinDifference float64
}

// DefaultMinRateDifference is the default MinDifference with totals: one
// percentage point, the smallest rise of a bad rate worth a zonal shift.
const DefaultMinRateDifference = 0.01

// MinExpected is the smallest expected count in any zone for which
// chi-squared decides.
const MinExpected = 5

// iqrPerSD is the interquartile range of a normal distribution in standard
// deviations (2·0.6745): the IQR that sampling noise alone gives.
const iqrPerSD = 1.349

// Validate reports an unknown method or a threshold outside its meaning.
func (c Config) Validate() error {
	if c.Method.DefaultThreshold() == 0 {
		return fmt.Errorf("outlier: unknown Method %q (want static, chi-squared, z-score, iqr or mad)", c.Method)
	}
	t := c.Threshold
	switch {
	case math.IsNaN(t) || math.IsInf(t, 0) || t < 0:
		return fmt.Errorf("outlier: %s Threshold %v must be a finite positive number (0 for the default)", c.Method, t)
	case c.Method == Static && t > 1:
		return fmt.Errorf("outlier: static Threshold %v is a share and must be at most 1", t)
	case c.Method == ChiSquared && t >= 1:
		return fmt.Errorf("outlier: chi-squared Threshold %v is a significance level and must be below 1", t)
	case math.IsNaN(c.MinDifference) || math.IsInf(c.MinDifference, 0) || c.MinDifference < 0:
		return fmt.Errorf("outlier: MinDifference %v must be a finite non-negative number (0 for the default)", c.MinDifference)
	}
	return nil
}

func (c Config) minDifference(totals bool) float64 {
	switch {
	case c.MinDifference > 0:
		return c.MinDifference
	case totals:
		return DefaultMinRateDifference
	}
	return 0
}

func (c Config) threshold() float64 {
	if c.Threshold == 0 {
		return c.Method.DefaultThreshold()
	}
	return c.Threshold
}

// Result is one decision.
type Result struct {
	Outlier bool
	// Value is the zone's value as compared: its count, or its rate
	// count/total when totals are given (chi-squared: always its count).
	Value float64
	// Score is what is compared with Threshold: the share (static), the
	// p-value (chi-squared, outlier when ≤), z, IQRs above Q3, or the robust
	// z (MAD), each an outlier when above. The spread it is measured in is
	// never below sampling noise, so it is always finite.
	Score     float64
	Threshold float64
	// ChiSquare and DF are the test statistic and its degrees of freedom
	// (chi-squared only).
	ChiSquare float64
	DF        int
	Reason    string // one line, with the numbers
	Err       error  // invalid configuration or input; Outlier is then false
}

// Detect decides whether zone is an outlier given per-zone counts.
func Detect(cfg Config, counts []float64, zone int) Result {
	return DetectWithTotals(cfg, counts, nil, zone)
}

// DetectWithTotals is Detect with per-zone totals (nil for none).
func DetectWithTotals(cfg Config, counts, totals []float64, zone int) Result {
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	in, err := prepare(counts, totals, zone)
	if err != nil {
		return fail(err)
	}
	in.minDiff = cfg.minDifference(in.tot != nil)
	r := Result{Threshold: cfg.threshold(), Value: in.val[in.self]}
	if in.noTraffic {
		r.Value = 0
		r.Reason = fmt.Sprintf("zone %d had no requests, so it cannot be an outlier", zone)
		return r
	}
	switch cfg.Method {
	case Static:
		static(&r, in, zone)
	case ChiSquared:
		chiSquared(&r, in, zone)
	default:
		dispersion(&r, cfg.Method, in, zone)
	}
	return r
}

func fail(err error) Result { return Result{Err: err, Reason: err.Error()} }

// input is the validated data: the zones taking part, in order.
type input struct {
	zone      []int     // original index of each zone taking part
	cnt, tot  []float64 // tot is nil without totals
	val       []float64 // cnt, or cnt/tot
	self      int       // position of the zone under test in zone
	noTraffic bool      // the zone under test has total 0
	minDiff   float64   // Config.MinDifference in force
}

// gapCheck returns "" when the zone under test is at least minDiff above
// every other zone, else why not.
func (in *input) gapCheck() string {
	if in.minDiff <= 0 {
		return ""
	}
	x := in.val[in.self]
	for k, v := range in.val {
		if k != in.self && x-v < in.minDiff {
			return fmt.Sprintf("it is only %s above zone %d (minimum difference %s)", num(x-v), in.zone[k], num(in.minDiff))
		}
	}
	return ""
}

// noise is the standard deviation that sampling alone gives a healthy
// zone's value, estimated from the other zones: binomial for a rate (their
// pooled rate, shrunk off 0 and 1 by one bad and one good request, over
// their mean traffic), Poisson for a count (at least 1).
func (in *input) noise() float64 {
	var c, t float64
	n := 0
	for k := range in.val {
		if k == in.self {
			continue
		}
		n++
		c += in.cnt[k]
		if in.tot != nil {
			t += in.tot[k]
		}
	}
	if n == 0 {
		return 0
	}
	if in.tot != nil {
		p := (c + 1) / (t + 2)
		return math.Sqrt(p * (1 - p) / (t / float64(n)))
	}
	return math.Sqrt(max(c/float64(n), 1))
}

func prepare(counts, totals []float64, zone int) (*input, error) {
	switch {
	case len(counts) == 0:
		return nil, fmt.Errorf("outlier: no zones")
	case zone < 0 || zone >= len(counts):
		return nil, fmt.Errorf("outlier: zone %d out of range for %d zones", zone, len(counts))
	case totals != nil && len(totals) != len(counts):
		return nil, fmt.Errorf("outlier: %d totals for %d zones", len(totals), len(counts))
	}
	in := &input{}
	for i, c := range counts {
		if math.IsNaN(c) || math.IsInf(c, 0) || c < 0 {
			return nil, fmt.Errorf("outlier: count %v of zone %d must be finite and non-negative", c, i)
		}
		if totals == nil {
			if i == zone {
				in.self = len(in.zone)
			}
			in.zone, in.cnt, in.val = append(in.zone, i), append(in.cnt, c), append(in.val, c)
			continue
		}
		t := totals[i]
		switch {
		case math.IsNaN(t) || math.IsInf(t, 0) || t < 0:
			return nil, fmt.Errorf("outlier: total %v of zone %d must be finite and non-negative", t, i)
		case t == 0 && c > 0:
			return nil, fmt.Errorf("outlier: zone %d has count %v but total 0", i, c)
		case t == 0:
			if i == zone {
				in.noTraffic = true
				in.self = len(in.zone)
				in.zone, in.cnt, in.tot, in.val = append(in.zone, i), append(in.cnt, 0), append(in.tot, 0), append(in.val, 0)
			}
			continue
		}
		if i == zone {
			in.self = len(in.zone)
		}
		in.zone, in.cnt, in.tot, in.val = append(in.zone, i), append(in.cnt, c), append(in.tot, t), append(in.val, c/t)
	}
	return in, nil
}

// topCheck returns "" when the zone under test is strictly the highest of
// xs, else why not.
func topCheck(in *input, xs []float64, what string) string {
	for k, x := range xs {
		if k == in.self {
			continue
		}
		if x > xs[in.self] {
			return fmt.Sprintf("zone %d has a higher %s (%s)", in.zone[k], what, num(x))
		}
		if x == xs[in.self] {
			return fmt.Sprintf("zone %d ties it for the highest %s", in.zone[k], what)
		}
	}
	return ""
}

func (in *input) valueName() string {
	if in.tot != nil {
		return "rate"
	}
	return "count"
}

func verdict(outlier bool) string {
	if outlier {
		return "outlier"
	}
	return "not an outlier"
}

func static(r *Result, in *input, zone int) {
	if len(in.val) < 2 {
		r.Reason = fmt.Sprintf("zone %d: static needs at least 2 zones with traffic, have %d: not an outlier", zone, len(in.val))
		return
	}
	sum := 0.0
	for _, v := range in.val {
		sum += v
	}
	if sum == 0 {
		r.Reason = fmt.Sprintf("zone %d: every zone's %s is 0, so no zone is an outlier", zone, in.valueName())
		return
	}
	r.Score = in.val[in.self] / sum
	of := fmt.Sprintf("%s of %s across %d zones", num(in.val[in.self]), num(sum), len(in.val))
	if in.tot != nil {
		of = fmt.Sprintf("rate %s of the zones' summed rates %s", num(in.val[in.self]), num(sum))
	}
	top := topCheck(in, in.val, in.valueName())
	if top == "" {
		top = in.gapCheck()
	}
	r.Outlier = r.Score >= r.Threshold && top == ""
	cmp := "below"
	if r.Score >= r.Threshold {
		cmp = "at or above"
	}
	r.Reason = fmt.Sprintf("zone %d has %s%% of the total (%s), %s the %s%% threshold%s: %s",
		zone, pct(r.Score), of, cmp, pct(r.Threshold), butNot(top, r.Score >= r.Threshold), verdict(r.Outlier))
}

// butNot words the "strictly highest" rule when it is what decided.
func butNot(top string, passed bool) string {
	if top == "" || !passed {
		return ""
	}
	return ", but " + top
}

func dispersion(r *Result, m Method, in *input, zone int) {
	if len(in.val) < 3 {
		r.Reason = fmt.Sprintf("zone %d: %s needs at least 3 zones with traffic to measure the others' spread, have %d: not an outlier", zone, m, len(in.val))
		return
	}
	x := in.val[in.self]
	peers := make([]float64, 0, len(in.val)-1)
	for k, v := range in.val {
		if k != in.self {
			peers = append(peers, v)
		}
	}
	var center, spread float64
	var desc string
	switch m {
	case ZScore:
		center = mean(peers)
		spread = sampleSD(peers, center)
		desc = fmt.Sprintf("the other zones' mean %s and sd %s", num(center), num(spread))
	case IQR:
		s := sorted(peers)
		q1, q3 := quantile(s, 0.25), quantile(s, 0.75)
		center, spread = q3, q3-q1
		desc = fmt.Sprintf("the other zones' Q1 %s, Q3 %s, IQR %s (fence Q3 + %s·IQR = %s)", num(q1), num(q3), num(spread), num(r.Threshold), num(q3+r.Threshold*spread))
	case MAD:
		center = median(sorted(peers))
		dev := make([]float64, len(peers))
		for k, p := range peers {
			dev[k] = math.Abs(p - center)
		}
		mad := median(sorted(dev))
		spread = 1.4826 * mad
		desc = fmt.Sprintf("the other zones' median %s and MAD %s (scaled %s)", num(center), num(mad), num(spread))
		if spread == 0 {
			meanAD := mean(dev)
			spread = 1.2533 * meanAD
			desc = fmt.Sprintf("the other zones' median %s, MAD 0, so mean absolute deviation %s (scaled %s)", num(center), num(meanAD), num(spread))
		}
	}
	// Two nearly equal zones have almost no spread; sampling noise alone
	// would give them more, and a difference within noise is no outlier.
	floor := in.noise()
	if m == IQR {
		floor *= iqrPerSD
	}
	if spread < floor {
		spread = floor
		if m == IQR {
			desc = fmt.Sprintf("the other zones' Q1 %s, Q3 %s, IQR raised to sampling noise %s (fence Q3 + %s·IQR = %s)", num(quantile(sorted(peers), 0.25)), num(center), num(spread), num(r.Threshold), num(center+r.Threshold*spread))
		} else {
			desc += fmt.Sprintf(", spread raised to sampling noise %s", num(spread))
		}
	}
	r.Score = ratio(x-center, spread)
	top := topCheck(in, in.val, in.valueName())
	if top == "" {
		top = in.gapCheck()
	}
	r.Outlier = r.Score > r.Threshold && top == ""
	cmp := "not above"
	if r.Score > r.Threshold {
		cmp = "above"
	}
	r.Reason = fmt.Sprintf("zone %d: %s %s vs %s: score %s %s %s%s: %s",
		zone, in.valueName(), num(x), desc, num(r.Score), cmp, num(r.Threshold), butNot(top, r.Score > r.Threshold), verdict(r.Outlier))
}

// ratio is a/b, defined as ±Inf or 0 when b is 0, never NaN.
func ratio(a, b float64) float64 {
	switch {
	case b != 0:
		return a / b
	case a > 0:
		return math.Inf(1)
	case a < 0:
		return math.Inf(-1)
	}
	return 0
}
