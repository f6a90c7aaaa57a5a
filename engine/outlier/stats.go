package outlier

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/gonum/stat/distuv"
)

func chiSquared(r *Result, in *input, zone int) {
	k := len(in.cnt)
	r.Value = in.cnt[in.self] // the test is on counts even when totals are given
	if k < 2 {
		r.Reason = fmt.Sprintf("zone %d: chi-squared needs at least 2 zones with traffic, have %d: not an outlier", zone, k)
		return
	}
	obs, tot := 0.0, 0.0
	for i, c := range in.cnt {
		obs += c
		if in.tot != nil {
			tot += in.tot[i]
		}
	}
	if obs == 0 {
		r.Reason = fmt.Sprintf("zone %d: every zone's count is 0, so no zone is an outlier", zone)
		return
	}
	exp := make([]float64, k)
	resid := make([]float64, k)
	for i, c := range in.cnt {
		exp[i] = obs / float64(k)
		if in.tot != nil {
			exp[i] = obs * in.tot[i] / tot
		}
		d := c - exp[i]
		r.ChiSquare += d * d / exp[i]
		resid[i] = d / math.Sqrt(exp[i])
	}
	r.DF = k - 1
	r.Score = distuv.ChiSquared{K: float64(r.DF)}.Survival(r.ChiSquare)
	// The statistic follows the chi-squared distribution only when every
	// expected count is large enough; below that its p-value means nothing.
	low := 0
	for i := range exp {
		if exp[i] < exp[low] {
			low = i
		}
	}
	if exp[low] < MinExpected {
		r.Reason = fmt.Sprintf("zone %d: chi-squared %s (df %d), but zone %d expects only %s (fewer than %d): too few counts for the test, no decision: not an outlier",
			zone, num(r.ChiSquare), r.DF, in.zone[low], num(exp[low]), MinExpected)
		return
	}

	// The zone farthest above expectation, by Pearson residual so that
	// zones of different traffic compare fairly.
	far, ties := 0, 0
	for i := range resid {
		switch {
		case resid[i] > resid[far]:
			far, ties = i, 0
		case i != far && resid[i] == resid[far]:
			ties++
		}
	}
	significant := r.Score <= r.Threshold
	r.Outlier = significant && far == in.self && ties == 0 && resid[far] > 0
	cmp := "above"
	if significant {
		cmp = "at or below"
	}
	var who string
	switch {
	case resid[far] <= 0:
		who = "no zone is above expectation"
	case ties > 0:
		who = fmt.Sprintf("%d zones tie for farthest above expectation", ties+1)
	case far == in.self:
		who = fmt.Sprintf("zone %d is farthest above expectation (%s vs %s expected)", zone, num(in.cnt[far]), num(exp[far]))
	default:
		who = fmt.Sprintf("zone %d, not zone %d, is farthest above expectation (%s vs %s expected)", in.zone[far], zone, num(in.cnt[far]), num(exp[far]))
	}
	basis := "equal traffic"
	if in.tot != nil {
		basis = "traffic"
	}
	r.Reason = fmt.Sprintf("zone %d: chi-squared %s (df %d, expected counts by %s), p %s %s %s; %s: %s",
		zone, num(r.ChiSquare), r.DF, basis, num(r.Score), cmp, num(r.Threshold), who, verdict(r.Outlier))
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// sampleSD is the n−1 standard deviation: the peers are a sample of how a
// healthy zone behaves.
func sampleSD(xs []float64, m float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(xs)-1))
}

func sorted(xs []float64) []float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s
}

// quantile of sorted xs by linear interpolation between order statistics
// (Hyndman & Fan type 7).
func quantile(s []float64, p float64) float64 {
	h := float64(len(s)-1) * p
	lo := int(math.Floor(h))
	if lo+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

func median(s []float64) float64 { return quantile(s, 0.5) }

// num formats a number briefly: whole numbers exactly, others to 4
// significant digits.
func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// pct formats a share as a percentage with one decimal.
func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) }
