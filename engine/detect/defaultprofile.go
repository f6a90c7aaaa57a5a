package detect

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/grayzone/grayzone/engine/alarm"
	"github.com/grayzone/grayzone/engine/outlier"
	"github.com/grayzone/grayzone/telemetry/observation"
)

// defaultProfile is the default profile ("default" in the configuration):
// sequential tests that decide in seconds.
//
// Per zone, per source (server, zonal canary) and per dimension (faults;
// requests over the latency threshold) a bank of Bernoulli CUSUMs tests
// "the zone's bad rate rose above the baseline p0", where p0 is the larger of
// a floor and the rate learned from the whole region while nothing is wrong.
// With h = ln(1/α) + ln(bank size) the delay is close to the optimal
// ln(1/α)/KL(p1‖p0) observations for whatever p1 the fault produces.
//
// A zone has isolated impact when, in one dimension:
//   - impact: its CUSUM reached h;
//   - outlier: over the last 2 s, 10 s or 30 s its bad rate is at least 3×
//     and 1 point above the pooled rate of the other zones (same source,
//     same window);
//   - contributors: at least MinInstances of its instances have had their
//     own CUSUM at h/2 since the zone's change point, and a bad request
//     recently (one bad instance is an instance problem);
//   - others shown healthy: every other zone is shown, by a likelihood
//     ratio test over the span since this zone's change point, not to share
//     its rate (onset.go): not yet impaired is not the same as healthy;
//   - not regional: fewer than two zones have had any CUSUM at h/2 in the
//     last minute.
type defaultProfile struct {
	sizes sizeMemo // the onset test's exact sizes, recently computed
	cfg   *Config

	zones map[zsKey]*zoneSeq
	inst  []*instSeq // by instance index (Engine.insts); nil: not followed
	// byZone lists inst's instances by zone index, in no order: evalZone
	// walks its zone's, not every instance of every zone per zone and
	// dimension at every tick.
	byZone [][]*instSeq
	step_  int64

	base  [2]baseline
	p0    [2]float64
	alts  [2][]float64
	llr   [2]llrs // the banks' ratios for p0 and alts
	h     [2]float64
	alarm bool // some zone above h/2: freeze baseline learning
	decay float64
	// lastLite is the last step each zone had a test at h/2 or above, by
	// zone index (ok false: never).
	lastLite []struct {
		step int64
		ok   bool
	}
	// rec is the recovery test of each zone called isolated (recovery.go).
	rec map[string]*recovery
	// names are each zone's alarm names and evals assess's scratch, both
	// in the order of cfg.Zones.
	names []zoneNames
	evals [][2]zoneEval
	// seqs holds zones' pointers by zone index and source, for the
	// assessment's loops (a map lookup hashes the zone's name).
	seqs [][2]*zoneSeq
}

const (
	outlierRatio = 3.0
	outlierDelta = 0.01
	outlierMinN  = 10
	// outlierMinBad: a zone is no outlier on one or two stray requests.
	outlierMinBad = 3
	// regionalMemory: a zone that was impacted this recently still counts
	// toward regional impact, so the tail of a regional event (zones
	// recovering a few hundred milliseconds apart) cannot look isolated.
	regionalMemory = time.Minute
	// recentWindow: impact needs a bad request this recent.
	recentWindow = 10 * time.Second
	ceilFactor   = 1.5
	// instanceActive: an instance counts as present this long after its last observation.
	instanceActive = time.Minute
	baselineMinN   = 2000
	// baselineHalfLife is the baseline rate's memory.
	baselineHalfLife = 5 * time.Minute
)

// outlierWindows are the spans the outlier test compares zones over: the
// short ones see a fault's onset undiluted, the long one a slow burn.
var outlierWindows = []time.Duration{2 * time.Second, 10 * time.Second, 30 * time.Second}

// buckets converts a span to a whole number of buckets (at least 1).
func buckets(d, res time.Duration) int64 { return max(1, int64((d+res-1)/res)) }

type zoneSeq struct {
	cusum   [2]cusum
	lastBad [2]int64 // bucket of the last bad request, per dimension
	wins    []ring   // one per outlier window
	span    ring     // the onset test's history, isolationSpanMax long
}

type instSeq struct {
	cusum    [2]cusum
	lastBad  [2]int64
	lastSeen int64
	// lastLite is, per dimension, the last step the instance's CUSUM was at
	// h/2 or above (contributing; see evalZone).
	lastLite [2]int64
	name     string // the instance
	zi       int    // its zone's index in cfg.Zones
}

// recent reports whether a bad request was seen within the recent window.
func (f *defaultProfile) recent(lastBad int64) bool {
	return lastBad > 0 && f.step_-lastBad < buckets(recentWindow, f.cfg.Resolution)
}

// baseline is an exponentially weighted bad rate.
type baseline struct{ n, bad float64 }

func (b *baseline) add(n, bad int64, decay float64) {
	b.n = b.n*decay + float64(n)
	b.bad = b.bad*decay + float64(bad)
}

func newDefaultProfile(cfg *Config) *defaultProfile {
	f := &defaultProfile{cfg: cfg, zones: map[zsKey]*zoneSeq{},
		decay: math.Pow(0.5, float64(cfg.Resolution)/float64(baselineHalfLife)), rec: map[string]*recovery{}}
	f.lastLite = make([]struct {
		step int64
		ok   bool
	}, len(cfg.Zones))
	for _, z := range cfg.Zones {
		f.names = append(f.names, newZoneNames(z))
		f.seqs = append(f.seqs, [2]*zoneSeq{})
		f.byZone = append(f.byZone, nil)
		for _, s := range []observation.Source{observation.Server, observation.Canary} {
			zs := &zoneSeq{span: *newRing(int(buckets(isolationSpanMax, cfg.Resolution)))}
			for _, w := range outlierWindows {
				zs.wins = append(zs.wins, *newRing(int(buckets(w, cfg.Resolution))))
			}
			f.zones[zsKey{z, s}] = zs
			f.seqs[len(f.seqs)-1][s] = zs
		}
	}
	f.setP0()
	return f
}

func (f *defaultProfile) floor(d Dim) float64 {
	if d == DimLatency {
		return f.cfg.SlowFloor
	}
	return f.cfg.FaultFloor
}

// minEffect is the smallest rise over the baseline worth a shift: 1 point of
// availability, 2 points of requests over the latency threshold.
func (f *defaultProfile) minEffect(d Dim) float64 {
	if d == DimLatency {
		return 0.02
	}
	return 0.01
}

func (f *defaultProfile) setP0() {
	for _, d := range dims {
		p0 := f.floor(d)
		if b := f.base[d]; b.n >= baselineMinN {
			p0 = math.Max(p0, b.bad/b.n)
		}
		p0 = math.Min(p0, 0.5)
		if p0 != f.p0[d] || f.alts[d] == nil {
			f.p0[d] = p0
			f.alts[d] = grid(p0, f.minEffect(d), f.alts[d])
			f.llr[d].set(p0, f.alts[d])
			f.h[d] = math.Log(1/f.cfg.FalseAlarmRate) + math.Log(float64(len(f.alts[d])))
		}
	}
}

func (f *defaultProfile) step(b *bucket) {
	f.step_ = b.idx
	// Learn the baseline from server-side traffic while nothing is wrong.
	if !f.alarm {
		var all Counts
		for zi := range b.zone {
			all.add(b.zone[zi][observation.Server])
		}
		for _, d := range dims {
			n, bad := all.Trials(d)
			f.base[d].add(n, bad, f.decay)
		}
		f.setP0()
	}
	f.alarm = false
	for zi, seqs := range f.seqs {
		for src, zs := range seqs {
			f.stepZone(b, zs, b.zone[zi][src])
		}
	}
	for _, r := range b.insts {
		c := b.inst[r.i]
		var is *instSeq
		if int(r.i) < len(f.inst) {
			is = f.inst[r.i]
		}
		if is == nil {
			is = f.addInst(r, &instSeq{})
		}
		is.lastSeen = b.idx
		for _, d := range dims {
			n, bad := c.Trials(d)
			if bad > 0 {
				is.lastBad[d] = b.idx
			}
			if is.cusum[d].update(b.idx, n, bad, &f.llr[d], ceilFactor*f.h[d]) >= f.h[d]/2 {
				is.lastLite[d] = b.idx
			}
		}
	}
	f.stepRecovery(b)
}

// stepZone adds one zone's and source's counts c of bucket b to its tests.
func (f *defaultProfile) stepZone(b *bucket, zs *zoneSeq, c Counts) {
	for i := range zs.wins {
		zs.wins[i].push(c)
	}
	zs.span.push(c)
	for _, d := range dims {
		n, bad := c.Trials(d)
		if bad > 0 {
			zs.lastBad[d] = b.idx
		}
		if zs.cusum[d].update(b.idx, n, bad, &f.llr[d], ceilFactor*f.h[d]) >= f.h[d]/2 {
			f.alarm = true
		}
	}
}

// addInst starts following instance r with is.
func (f *defaultProfile) addInst(r instRef, is *instSeq) *instSeq {
	is.name, is.zi = r.name, int(r.zi)
	if int(r.i) >= len(f.inst) {
		f.inst = append(f.inst, make([]*instSeq, int(r.i)+1-len(f.inst))...)
	}
	f.inst[r.i] = is
	f.byZone[is.zi] = append(f.byZone[is.zi], is)
	return is
}

// forget stops following instance i, gone for good (the engine says when).
func (f *defaultProfile) forget(i int32) {
	if int(i) >= len(f.inst) || f.inst[i] == nil {
		return
	}
	is := f.inst[i]
	f.inst[i] = nil
	f.byZone[is.zi] = slices.DeleteFunc(f.byZone[is.zi], func(o *instSeq) bool { return o == is })
}

// zoneEval is the detector's view of one zone in one dimension.
type zoneEval struct {
	zone            string
	dim             Dim
	score           float64 // max CUSUM over sources
	src             observation.Source
	rate, otherRate float64
	n, otherN       int64
	outlier, thin   bool
	window          time.Duration
	contributors    []string
	instances       int
	impacted, lite  bool
	iso             isolation // the onset test, when impacted
}

func (f *defaultProfile) evalZone(zi int, d Dim, silent bool) zoneEval {
	z := f.cfg.Zones[zi]
	ev := zoneEval{zone: z, dim: d}
	for _, s := range []observation.Source{observation.Server, observation.Canary} {
		zs := f.seqs[zi][s]
		v := zs.cusum[d].value()
		if !f.recent(zs.lastBad[d]) {
			v = 0 // no fresh evidence: whatever the statistic says is history
		}
		if v > ev.score || (v == ev.score && s == observation.Server) {
			ev.score, ev.src = v, s
		}
	}
	ev.impacted = ev.score >= f.h[d]
	ev.lite = ev.score >= f.h[d]/2
	if ev.impacted {
		ev.iso = f.isolated(z, d, ev.src)
	}
	// Outlier test on the source that carries the impact, over each window;
	// the zone is an outlier if it stands out over any of them.
	ev.thin = true
	for i := range outlierWindows {
		own := f.seqs[zi][ev.src].wins[i].total
		var others Counts
		for oi := range f.cfg.Zones {
			if oi != zi {
				others.add(f.seqs[oi][ev.src].wins[i].total)
			}
		}
		n, bad := own.Trials(d)
		on, _ := others.Trials(d)
		rate, orate := own.Rate(d), others.Rate(d)
		if n < outlierMinN || on < outlierMinN {
			continue
		}
		out := bad >= outlierMinBad && f.isOutlier(z, ev.src, d, i, rate, orate)
		// Report the window that decided, else the longest with data.
		ev.n, ev.otherN, ev.rate, ev.otherRate, ev.window = n, on, rate, orate, outlierWindows[i]
		ev.thin = false
		if out {
			ev.outlier = true
			break
		}
	}
	// An instance contributes when its own CUSUM has reached h/2 since the
	// zone's change point (within the onset test's span), not only when it
	// is there at this step: a CUSUM that crossed has detected its change,
	// and dipping back under the line after a few good requests (as half a
	// zone's traffic at a 10-20 % fault rate does every few seconds) is the
	// statistic re-arming, not evidence that the instance is well. Requiring
	// both instances over the line at the same step made the decision wait
	// for a coincidence. An instance that never crossed since the change
	// (the healthy one beside a single bad instance) still never contributes.
	from, fromSet := int64(0), false // the change point, found when first needed
	for _, is := range f.byZone[zi] {
		if silent {
			// The zone's server-side telemetry stopped while other zones
			// report (when every zone stops, the engine fails static): every
			// instance it had went quiet at once, which no single bad
			// instance explains. Each counts as contributing; the impact
			// itself must still come from the canaries.
			ev.instances++
			ev.contributors = append(ev.contributors, is.name+" (silent)")
			continue
		}
		if f.step_-is.lastSeen > buckets(instanceActive, f.cfg.Resolution) {
			continue
		}
		ev.instances++
		if !f.recent(is.lastBad[d]) || is.lastLite[d] <= 0 {
			continue
		}
		if !fromSet {
			from, fromSet = f.changePoint(z, d, ev.src), true
		}
		if is.lastLite[d] >= from {
			ev.contributors = append(ev.contributors, is.name)
		}
	}
	sort.Strings(ev.contributors)
	return ev
}

// isOutlier applies the configured outlier test to zone z over window i.
func (f *defaultProfile) isOutlier(z string, src observation.Source, d Dim, i int, rate, orate float64) bool {
	if f.cfg.Outlier.Method == "" {
		return rate >= outlierRatio*orate && rate-orate >= outlierDelta
	}
	counts := make([]float64, len(f.cfg.Zones))
	totals := make([]float64, len(f.cfg.Zones))
	idx := 0
	for j, oz := range f.cfg.Zones {
		n, bad := f.zones[zsKey{oz, src}].wins[i].total.Trials(d)
		counts[j], totals[j] = float64(bad), float64(n)
		if oz == z {
			idx = j
		}
	}
	res := outlier.DetectWithTotals(f.cfg.Outlier, counts, totals, idx)
	return res.Err == nil && res.Outlier
}

// zoneNames are the names of one zone's alarms, made once (naming them
// every tick was an allocation per alarm per tick).
type zoneNames struct {
	impact, outlier, multi [2]string
	isolated, recovered    string
}

func newZoneNames(z string) zoneNames {
	n := zoneNames{isolated: IsolatedAlarmName(z), recovered: z + "-recovered"}
	for _, d := range dims {
		n.impact[d] = fmt.Sprintf("%s-%s-impact", z, d)
		n.outlier[d] = fmt.Sprintf("%s-%s-outlier", z, d)
		n.multi[d] = fmt.Sprintf("%s-%s-multiple-instances", z, d)
	}
	return n
}

// The texts of the default profile's alarm reasons, formatted when read (Reason).
func regionalReason(r *Reason) string {
	return fmt.Sprintf("%d zone(s) with a sequential test at h/2 or above in the last %s (2 make it regional)", int(r.num[0]), regionalMemory)
}

func impactReason(r *Reason) string {
	return fmt.Sprintf("CUSUM %.1f vs h %.1f (%s, baseline %.3g)", r.num[0], r.num[1], observation.Source(r.num[2]), r.num[3])
}

func outlierReason(r *Reason) string {
	return fmt.Sprintf("%.1f%% of %d vs %.1f%% of %d in the other zones over %s", 100*r.num[0], int64(r.num[1]), 100*r.num[2], int64(r.num[3]), time.Duration(r.num[4]))
}

func instancesReason(r *Reason) string {
	return fmt.Sprintf("%d of %d instances contributing %v (need %d)", len(r.strs), int(r.num[0]), r.strs, int(r.num[1]))
}

func (f *defaultProfile) assess(a *assessing) {
	if len(f.evals) != len(f.cfg.Zones) {
		f.evals = make([][2]zoneEval, len(f.cfg.Zones))
	}
	evals := f.evals // by zone, in the order of cfg.Zones and a.Zones
	liteZones := 0
	for i := range f.cfg.Zones {
		e := &evals[i]
		lite := false
		for _, d := range dims {
			e[d] = f.evalZone(i, d, a.Zones[i].Silent)
			lite = lite || e[d].lite
		}
		last := &f.lastLite[i]
		if lite {
			last.step, last.ok = f.step_, true
		}
		if last.ok && f.step_-last.step < buckets(regionalMemory, f.cfg.Resolution) {
			liteZones++
		}
	}
	a.Regional = liteZones >= 2
	a.alarms = append(a.alarms, AlarmStatus{Name: "regional-impact", State: stateOf(a.Regional),
		Reason: Reason{form: reasonRegional, num: [6]float64{float64(liteZones)}}})

	var best *zoneEval
	var whys []string
	for i := range a.Zones {
		zs := &a.Zones[i]
		e := &evals[i]
		names := &f.names[i]
		for _, d := range dims {
			ev := &e[d] // not copied: a zoneEval is 240 bytes
			a.alarms = append(a.alarms, AlarmStatus{Name: names.impact[d], State: stateOf(ev.impacted),
				Reason: Reason{form: reasonImpact, num: [6]float64{ev.score, f.h[d], float64(ev.src), f.p0[d]}}})
			oState := stateOf(ev.outlier)
			if ev.thin {
				oState = alarm.InsufficientData
			}
			a.alarms = append(a.alarms, AlarmStatus{Name: names.outlier[d], State: oState,
				Reason: Reason{form: reasonOutlier, num: [6]float64{ev.rate, float64(ev.n), ev.otherRate, float64(ev.otherN), float64(ev.window)}}})
			multi := len(ev.contributors) >= f.cfg.MinInstances
			a.alarms = append(a.alarms, AlarmStatus{Name: names.multi[d], State: stateOf(multi),
				Reason: Reason{form: reasonInstances, num: [6]float64{float64(ev.instances), float64(f.cfg.MinInstances)}, strs: ev.contributors}})
			if ev.impacted {
				zs.Impacted = true
				zs.Outlier = zs.Outlier || ev.outlier
				zs.Contributors = max(zs.Contributors, len(ev.contributors))
				zs.Instances = ev.instances
				if !(ev.outlier && multi && !a.Regional && ev.iso.ok) {
					whys = append(whys, f.partial(*ev, a.Regional))
				}
			}
			if ev.impacted && ev.outlier && multi && !a.Regional && ev.iso.ok {
				if best == nil || ev.score/f.h[d] > best.score/f.h[best.dim] {
					best = ev // f.evals is not written again in this assess
				}
			}
		}
	}
	for i := range a.Zones {
		zs := &a.Zones[i]
		iso := best != nil && best.zone == zs.Zone
		zs.Isolated = iso
		a.alarms = append(a.alarms, AlarmStatus{Name: f.names[i].isolated, State: stateOf(iso),
			Reason: Because("impact AND outlier AND multiple instances AND others shown healthy AND NOT regional-impact")})
	}
	if best != nil {
		f.startRecovery(*best)
	}
	f.assessRecovery(a)
	if best != nil {
		a.Isolated = best.zone
		a.Why = fmt.Sprintf("%s: isolated %s impact: %s; %.1f%% bad (%d requests, %s, last %s) vs %.1f%% in the other zones; %d of %d instances contributing (%s); %s; not regional",
			best.zone, best.dim, f.cusumText(*best), 100*best.rate, best.n, best.src, best.window, 100*best.otherRate,
			len(best.contributors), best.instances, strings.Join(best.contributors, ", "), best.iso.text())
		return
	}
	if len(whys) > 0 {
		a.Why = strings.Join(whys, "; ")
	} else {
		a.Why = "no zone impacted"
	}
}

func (f *defaultProfile) cusumText(ev zoneEval) string {
	return fmt.Sprintf("CUSUM %.1f ≥ h %.1f (α %.0e, baseline %.3g)", ev.score, f.h[ev.dim], f.cfg.FalseAlarmRate, f.p0[ev.dim])
}

// partial explains why an impacted zone is not isolated.
func (f *defaultProfile) partial(ev zoneEval, regional bool) string {
	var not []string
	if !ev.outlier {
		if ev.thin {
			not = append(not, "too little data to compare zones")
		} else {
			not = append(not, fmt.Sprintf("not an outlier (%.1f%% vs %.1f%%)", 100*ev.rate, 100*ev.otherRate))
		}
	}
	if len(ev.contributors) < f.cfg.MinInstances {
		not = append(not, fmt.Sprintf("only %d of %d instances contributing %v", len(ev.contributors), ev.instances, ev.contributors))
	}
	if !ev.iso.ok {
		not = append(not, ev.iso.text())
	}
	if regional {
		not = append(not, "impact is regional")
	}
	return fmt.Sprintf("%s %s impacted (%s) but %s", ev.zone, ev.dim, f.cusumText(ev), strings.Join(not, ", "))
}

func stateOf(b bool) alarm.State {
	if b {
		return alarm.Alarm
	}
	return alarm.OK
}

// Threshold is the default profile's alarm threshold h for a dimension at
// its floor baseline: ln(1/α) plus the Bonferroni term of the CUSUM bank.
func Threshold(cfg Config, d Dim) float64 {
	f := newDefaultProfile(&cfg)
	return f.h[d]
}

// Floor is the lowest baseline rate the default profile assumes for a dimension.
func Floor(cfg Config, d Dim) float64 {
	f := newDefaultProfile(&cfg)
	return f.floor(d)
}
