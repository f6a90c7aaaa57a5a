package detect

import "math"

// cusum is a bank of one-sided Bernoulli CUSUM tests of "rate rose above p0",
// one per alternative p1 on a geometric grid, so a small and a large change
// are each detected near the optimal delay ln(1/α)/KL(p1‖p0) without knowing
// the change's size in advance. The statistic is the largest of the bank.
type cusum struct {
	s []float64 // one per alternative
	// zero is, per alternative, the last step its statistic was 0: the
	// change-point estimate (Page's), where the evidence now held began.
	zero []int64
	// max is the largest of s (value), kept by update: the detector reads
	// every zone's and instance's statistic at every bucket and tick,
	// mostly unchanged (no trials), and walking the bank for it was a
	// tenth of an idle tick.
	max float64
}

// grid is the alternatives for baseline p0: from the smallest change worth
// acting on (minEffect above p0, at least 2·p0) doubling up to pmax. Leaving
// out tinier alternatives matters: their statistics rise and fall so slowly
// that they would keep a zone "impacted" long after a fault ended.
func grid(p0, minEffect float64, out []float64) []float64 {
	const pmax = 0.95
	out = out[:0]
	for p := math.Max(2*p0, p0+minEffect); p < pmax; p *= 2 {
		out = append(out, p)
	}
	return append(out, pmax)
}

// llrs are a bank's per-trial log-likelihood ratios, alternative against
// baseline, for a bad and for a good trial: they change only with the
// baseline, so they are computed then, not on every update of every
// statistic (two logarithms per alternative, per zone and instance, per
// bucket, were a tenth of a simulated day).
type llrs struct {
	bad, good []float64
}

// set computes the ratios of alternatives alts against baseline p0.
func (l *llrs) set(p0 float64, alts []float64) {
	l.bad, l.good = l.bad[:0], l.good[:0]
	for _, p1 := range alts {
		l.bad = append(l.bad, math.Log(p1/p0))
		l.good = append(l.good, math.Log((1-p1)/(1-p0)))
	}
}

// update adds n trials with bad failures against the bank's ratios l, and
// returns the new statistic (builtin max: math.Max's result, NaN and ±0
// alike, without its call). Each statistic is capped at ceil so that, once
// the evidence stops, it falls back below the threshold in bounded time.
func (c *cusum) update(idx, n, bad int64, l *llrs, ceil float64) float64 {
	if len(c.s) != len(l.bad) {
		c.s = make([]float64, len(l.bad))
		c.zero = make([]int64, len(l.bad))
		for i := range c.zero {
			c.zero[i] = idx - 1
		}
		c.max = 0
	}
	if n == 0 {
		return c.max
	}
	good := float64(n - bad)
	b := float64(bad)
	best := 0.0
	// Slices of one length, so that the loop's index checks go.
	lb := l.bad
	lg, s, zero := l.good[:len(lb)], c.s[:len(lb)], c.zero[:len(lb)]
	for i, lbi := range lb {
		v := min(ceil, max(0, s[i]+(b*lbi+good*lg[i])))
		s[i] = v
		if v == 0 {
			zero[i] = idx
		}
		best = max(best, v)
	}
	c.max = best
	return best
}

// since is the change-point estimate of the largest statistic: the last
// step it was 0 (the evidence it holds came after).
func (c *cusum) since() int64 {
	best, at := 0.0, int64(0)
	for i, v := range c.s {
		if v > best || i == 0 {
			best, at = v, c.zero[i]
		}
	}
	return at
}

// value is the statistic: the largest of the bank.
func (c *cusum) value() float64 { return c.max }

// KL is the Kullback-Leibler divergence of Bernoulli(p1) from Bernoulli(p0), in nats.
func KL(p1, p0 float64) float64 {
	kl := 0.0
	if p1 > 0 {
		kl += p1 * math.Log(p1/p0)
	}
	if p1 < 1 {
		kl += (1 - p1) * math.Log((1-p1)/(1-p0))
	}
	return kl
}
