package detect

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// The recovery test: "is this zone good again?"
//
// "No fault in the last N calls" ends a shift by chance while the fault goes
// on: at 15 % failures and N = 12 that is 0.85^12 = 14 % per window. Instead,
// from the moment a zone is called isolated, a one-sided sequential test
// (Page's CUSUM of Wald's likelihood ratio) accumulates
//
//	S = max(0, S + bad·ln(p_g/p_b) + good·ln((1−p_g)/(1−p_b)))
//
// between H_good: rate p_g (the learned baseline p0) and H_bad: rate p_b, on
// the dimension that shifted the zone. The zone counts as recovered when
// S ≥ A = ln(1/β) (β: Config.RecoveryErrorRate, default 1e-3) and no dimension
// of the zone is impacted. Under H_bad the statistic is a random walk whose
// chance of ever climbing from 0 to A is at most e^{−A} = β per excursion
// (Wald's identity); at a rate above p_b it is smaller still.
//
// p_b is half the rate the zone showed when it was called isolated (the
// estimate is taken when the CUSUM crosses, which selects a bad stretch, so it
// runs high), but never below p_×, the p_b whose decision point (the rate at
// which S drifts neither up nor down) is the CUSUM's smallest alternative
// p0+1 point (faults) or +2 points (slow): so a zone still failing at a rate
// the detector would act on never drifts toward "recovered". Capped at 25 %
// (decision point ≈ 5 % faults, 8 % slow).
//
// Every source counts: per bucket the evidence is the larger of the server
// side's and the canaries' request counts, and the larger of their bad
// counts, so a canary call that is also seen server-side is not counted twice
// and a failure seen by either counts.
//
// Back-off: a zone called isolated again within RelapseWindow of passing the
// test relapsed (the end was premature). Each relapse doubles A and halves p_b
// (down to p_×), up to maxRelapses: the next recovery needs more evidence,
// against a smaller rate.

const (
	defaultRecoveryErrorRate = 1e-3
	// RelapseWindow: a new isolated call this soon after the test passed is
	// the same episode continuing (min_interval's default).
	RelapseWindow = 10 * time.Minute
	maxRelapses   = 3
	recoveryPBMax = 0.25
)

type recovery struct {
	dim      Dim
	pb       float64
	s        float64
	start    int64 // first bucket of the current excursion
	passed   bool
	passedAt int64 // bucket the test last passed (0: never)
	relapses int
}

// crossRate is p_×: the p_b for which the test's decision point is the
// CUSUM's smallest alternative for dimension d.
func (f *defaultProfile) crossRate(d Dim) float64 {
	p0, pt := f.p0[d], f.alts[d][0]
	drift := func(pb float64) float64 {
		return pt*math.Log(p0/pb) + (1-pt)*math.Log((1-p0)/(1-pb))
	}
	lo, hi := pt, 0.99 // drift(lo) < 0, increasing in pb
	for range 50 {
		mid := (lo + hi) / 2
		if drift(mid) < 0 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

func (f *defaultProfile) recoveryThreshold(r *recovery) float64 {
	return math.Log(1/f.cfg.RecoveryErrorRate) * float64(int(1)<<r.relapses)
}

// startRecovery is called at every isolated call of zone z.
func (f *defaultProfile) startRecovery(ev zoneEval) {
	r := f.rec[ev.zone]
	if r != nil && !r.passed && r.passedAt == 0 {
		return // the episode goes on; its test keeps running
	}
	relapses := 0
	if r != nil && r.passedAt > 0 && f.step_-r.passedAt < buckets(RelapseWindow, f.cfg.Resolution) {
		relapses = min(r.relapses+1, maxRelapses)
	}
	pb := math.Min(ev.iso.zRate/2, recoveryPBMax) / float64(int(1)<<relapses)
	pb = math.Max(pb, f.crossRate(ev.dim))
	f.rec[ev.zone] = &recovery{dim: ev.dim, pb: pb, start: f.step_ + 1, relapses: relapses}
}

// stepRecovery adds one closed bucket to every running test.
func (f *defaultProfile) stepRecovery(b *bucket) {
	for z, r := range f.rec {
		var n, bad int64
		for _, c := range b.zone[slices.Index(f.cfg.Zones, z)] { // by source
			if c.N > 0 {
				sn, sb := c.Trials(r.dim)
				n, bad = max(n, sn), max(bad, sb)
			}
		}
		bad = min(bad, n)
		if n > 0 {
			pg := math.Min(f.p0[r.dim], r.pb/2)
			llr := float64(bad)*math.Log(pg/r.pb) + float64(n-bad)*math.Log((1-pg)/(1-r.pb))
			a := f.recoveryThreshold(r)
			if r.s == 0 {
				r.start = b.idx
			}
			r.s = math.Min(ceilFactor*a, math.Max(0, r.s+llr))
		}
		if r.passedAt > 0 && b.idx-r.passedAt > buckets(RelapseWindow, f.cfg.Resolution) {
			delete(f.rec, z) // passed long ago: a fresh failure later is a new episode
		}
	}
}

// assessRecovery fills the zones' recovery status; impacted zones never
// count as recovered.
func (f *defaultProfile) assessRecovery(a *assessing) {
	for i := range a.Zones {
		zs := &a.Zones[i]
		r := f.rec[zs.Zone]
		if r == nil {
			zs.Recovered = zs.Healthy
			continue
		}
		need := f.recoveryThreshold(r)
		pass := r.s >= need && !zs.Impacted
		if pass && !r.passed {
			r.passedAt = f.step_
		}
		r.passed = pass
		zs.UnderTest, zs.Recovered = true, pass
		// A test started by a relapse (startRecovery ran first, this very
		// tick) has not passed yet: the zone is relapsing all the same, and
		// the runbook reads it at this tick's isolated call.
		zs.Relapsing = (r.passedAt > 0 && f.step_-r.passedAt < buckets(RelapseWindow, f.cfg.Resolution)) || (r.relapses > 0 && r.passedAt == 0)
		if pass {
			zs.RecoveredSince = time.Unix(0, r.start*int64(f.cfg.Resolution)).UTC()
		}
		state := stateOf(pass)
		a.alarms = append(a.alarms, AlarmStatus{Name: f.names[i].recovered, State: state,
			Reason: Reason{form: reasonRecovery, text: r.dim.String(), flag: zs.Impacted,
				num: [6]float64{r.s, need, f.cfg.RecoveryErrorRate, float64(r.relapses), math.Min(f.p0[r.dim], r.pb/2), r.pb}}})
	}
}

func recoveryReason(r *Reason) string {
	impacted := ""
	if r.flag {
		impacted = "; zone impacted"
	}
	return fmt.Sprintf("sequential test %.1f of %.1f (β %.0e×%d relapses) that the %s rate is back to %.3g rather than %.3g%s",
		r.num[0], r.num[1], r.num[2], int(r.num[3]), r.text, r.num[4], r.num[5], impacted)
}

// doubted: while the engine's view is in doubt nothing counts toward
// recovery; every running test starts over once the doubt clears.
func (f *defaultProfile) doubted(a *assessing) {
	for _, r := range f.rec {
		r.s = 0
	}
	for i := range a.Zones {
		a.Zones[i].Recovered, a.Zones[i].RecoveredSince = false, time.Time{}
	}
}

// Watch starts a recovery test for a zone that is shifted without this
// engine having called it isolated (a restarted service resuming a shift):
// the rate that shifted it is unknown, so the test is against p_× on faults,
// the strictest. No-op when a test runs, or for the cloudwatch profile.
func (e *Engine) Watch(zone string) {
	f, ok := e.det.(*defaultProfile)
	if !ok || f.rec[zone] != nil {
		return
	}
	f.rec[zone] = &recovery{dim: DimFault, pb: f.crossRate(DimFault), start: f.step_ + 1}
}

// Regressed tells the engine that the zone's gradual return was aborted
// (impact during a ramp step: runbook.RampAborted): the recovery it passed
// proved premature, like a relapse, so its test starts over with the
// relapse back-off (A doubled, p_b halved, not below p_×). A test already
// started over by a new isolated call (which counted the relapse itself) is
// left alone. No-op for the cloudwatch profile.
func (e *Engine) Regressed(zone string) {
	f, ok := e.det.(*defaultProfile)
	if !ok {
		return
	}
	r := f.rec[zone]
	if r == nil {
		f.rec[zone] = &recovery{dim: DimFault, pb: f.crossRate(DimFault), start: f.step_ + 1, relapses: 1}
		return
	}
	if !r.passed && r.passedAt == 0 {
		return
	}
	r.relapses = min(r.relapses+1, maxRelapses)
	r.pb = math.Max(r.pb/2, f.crossRate(r.dim))
	r.s, r.passed, r.passedAt, r.start = 0, false, 0, f.step_+1
}
