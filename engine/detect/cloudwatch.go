package detect

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/grayzone/grayzone/engine/alarm"
	"github.com/grayzone/grayzone/engine/composite"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
)

// cloudWatch is the workshop's alarm set, evaluated with CloudWatch's own
// semantics: 60 s periods, 2 of 3 datapoints, per zone, operation and source.
//
// Metric alarms, per zone Z, operation O and source S (server, canary):
//   - Z-O-S-availability: availability % < 99
//   - Z-O-S-latency: p99 latency > the operation's threshold (ms)
//   - Z-O-S-fault-outlier: Z's share of the faults of O in all zones ≥ 0.7
//   - Z-O-S-latency-outlier: Z's share of the requests over threshold ≥ 0.7
//   - Z-O-server-faulting-instances / -slow-instances: instances of Z with a
//     fault / a slow request in the period ≥ 2 (Contributor Insights' count)
//
// Composite alarms, in CloudWatch's rule syntax as the workshop writes them:
//   - Z-O-S-isolated-impact: (outlier AND availability AND instances) OR
//     (latency outlier AND latency AND slow instances); canaries have no
//     instance count
//   - Z-impact: any availability or latency alarm of the zone
//   - regional-impact: AT_LEAST(2, ALARM, (Z-impact ...))
//   - Z-isolated-impact: any Z-O-S-isolated-impact AND NOT regional-impact
type cloudWatch struct {
	cfg     *Config
	period  time.Duration
	metrics map[string]*alarm.Metric
	order   []string // metric names in a fixed order
	set     *composite.Set
	names   []string // composite names
	// ruleTexts are the names' rules as text (the rules never change).
	ruleTexts []string

	cur    int64 // period index being accumulated
	curSet bool
	acc    map[opKey]*opAgg
	bad    map[opKey]map[string][2]bool // instances with a fault / a slow request
	last   map[string]alarm.Evaluation
	states map[string]alarm.State
	// view is the assessment part computed at the last evaluation: states
	// change only then, so ticks in between reuse it.
	view *assessing
}

var sources = []observation.Source{observation.Server, observation.Canary}

func cwName(parts ...string) string { return strings.Join(parts, "-") }

func newCloudWatch(cfg *Config) (detector, error) {
	cw := &cloudWatch{cfg: cfg, period: time.Minute, metrics: map[string]*alarm.Metric{}, set: &composite.Set{},
		acc: map[opKey]*opAgg{}, bad: map[opKey]map[string][2]bool{}, last: map[string]alarm.Evaluation{}}
	add := func(name string, cmp alarm.Comparison, threshold float64) error {
		m, err := alarm.New(alarm.Config{Name: name, Period: cw.period, EvaluationPeriods: 3, DatapointsToAlarm: 2,
			Comparison: cmp, Threshold: threshold, TreatMissing: alarm.NotBreaching})
		if err != nil {
			return fmt.Errorf("detect: cloudwatch alarm %s: %w", name, err)
		}
		cw.metrics[name] = m
		cw.order = append(cw.order, name)
		return nil
	}
	addRule := func(name, rule string) error {
		if err := cw.set.Add(name, rule); err != nil {
			return fmt.Errorf("detect: cloudwatch composite %s: %w", name, err)
		}
		cw.names = append(cw.names, name)
		return nil
	}
	ops := cw.operations()
	var impacts []string
	var isolated [][2]string // zone, rule: added after regional-impact, which they name
	for _, z := range cfg.Zones {
		var zoneIso, zoneImpact []string
		for _, op := range ops {
			ms := float64(cfg.threshold(op)) / float64(time.Millisecond)
			for _, s := range sources {
				base := cwName(z, op, s.String())
				if err := firstErr(
					add(base+"-availability", alarm.LessThanThreshold, 99),
					add(base+"-latency", alarm.GreaterThanThreshold, ms),
					add(base+"-fault-outlier", alarm.GreaterThanOrEqualToThreshold, 0.7),
					add(base+"-latency-outlier", alarm.GreaterThanOrEqualToThreshold, 0.7),
				); err != nil {
					return nil, err
				}
				avail := fmt.Sprintf("ALARM(%q) AND ALARM(%q)", base+"-fault-outlier", base+"-availability")
				lat := fmt.Sprintf("ALARM(%q) AND ALARM(%q)", base+"-latency-outlier", base+"-latency")
				if s == observation.Server {
					if err := firstErr(
						add(cwName(z, op, "server-faulting-instances"), alarm.GreaterThanOrEqualToThreshold, float64(cfg.MinInstances)),
						add(cwName(z, op, "server-slow-instances"), alarm.GreaterThanOrEqualToThreshold, float64(cfg.MinInstances)),
					); err != nil {
						return nil, err
					}
					avail += fmt.Sprintf(" AND ALARM(%q)", cwName(z, op, "server-faulting-instances"))
					lat += fmt.Sprintf(" AND ALARM(%q)", cwName(z, op, "server-slow-instances"))
				}
				if err := addRule(base+"-isolated-impact", "("+avail+") OR ("+lat+")"); err != nil {
					return nil, err
				}
				zoneIso = append(zoneIso, fmt.Sprintf("ALARM(%q)", base+"-isolated-impact"))
				zoneImpact = append(zoneImpact, fmt.Sprintf("ALARM(%q) OR ALARM(%q)", base+"-availability", base+"-latency"))
			}
		}
		if err := addRule(z+"-impact", strings.Join(zoneImpact, " OR ")); err != nil {
			return nil, err
		}
		impacts = append(impacts, fmt.Sprintf("%q", z+"-impact"))
		isolated = append(isolated, [2]string{z, "(" + strings.Join(zoneIso, " OR ") + ") AND NOT ALARM(\"regional-impact\")"})
	}
	if err := addRule("regional-impact", fmt.Sprintf("AT_LEAST(2, ALARM, (%s))", strings.Join(impacts, ", "))); err != nil {
		return nil, err
	}
	for _, p := range isolated {
		if err := addRule(IsolatedAlarmName(p[0]), p[1]); err != nil {
			return nil, err
		}
	}
	if err := cw.set.Check(func(n string) bool { _, ok := cw.metrics[n]; return ok }); err != nil {
		return nil, fmt.Errorf("detect: cloudwatch rules: %w", err)
	}
	return cw, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// operations are the ones with thresholds configured, in catalogue order
// first, then the others sorted.
func (cw *cloudWatch) operations() []string {
	var out []string
	seen := map[string]bool{}
	for _, op := range operation.Catalog {
		if _, ok := cw.cfg.Thresholds[op.Name]; ok || len(cw.cfg.Thresholds) == 0 {
			out = append(out, op.Name)
			seen[op.Name] = true
		}
	}
	var rest []string
	for op := range cw.cfg.Thresholds {
		if !seen[op] {
			rest = append(rest, op)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func (cw *cloudWatch) step(b *bucket) {
	idx := b.idx * int64(cw.cfg.Resolution) / int64(cw.period)
	if !cw.curSet {
		cw.cur, cw.curSet = idx, true
	}
	if idx != cw.cur {
		cw.closePeriod()
		cw.cur = idx
		// CloudWatch evaluates an alarm once a period, when its datapoint lands.
		cw.evaluate(time.Unix(0, idx*int64(cw.period)).UTC())
	}
	for k, a := range b.op {
		acc := cw.acc[k]
		if acc == nil {
			acc = &opAgg{lat: newSketch()}
			cw.acc[k] = acc
		}
		acc.add(a.Counts)
		_ = acc.lat.MergeWith(a.lat)
	}
	for k, c := range b.instOp {
		m := cw.bad[k.opKey]
		if m == nil {
			m = map[string][2]bool{}
			cw.bad[k.opKey] = m
		}
		v := m[k.instance]
		v[0] = v[0] || c.Faults > 0
		v[1] = v[1] || c.Slow > 0
		m[k.instance] = v
	}
}

// forget: the profile keeps instances a period at a time, by name.
func (cw *cloudWatch) forget(int32) {}

// closePeriod turns the finished period's sums into datapoints.
func (cw *cloudWatch) closePeriod() {
	start := time.Unix(0, cw.cur*int64(cw.period)).UTC()
	for _, op := range cw.operations() {
		for _, s := range sources {
			var totalFaults, totalSlow int64
			for _, z := range cw.cfg.Zones {
				if a := cw.acc[opKey{z, op, s}]; a != nil {
					totalFaults += a.Faults
					totalSlow += a.Slow
				}
			}
			for _, z := range cw.cfg.Zones {
				base := cwName(z, op, s.String())
				a := cw.acc[opKey{z, op, s}]
				if a == nil || a.N == 0 {
					continue // missing datapoints: notBreaching
				}
				if n, bad := a.Trials(DimFault); n > 0 {
					cw.metrics[base+"-availability"].Put(start, 100*(1-float64(bad)/float64(n)))
				}
				cw.metrics[base+"-latency"].Put(start, quantile(a.lat, 0.99))
				if totalFaults > 0 {
					cw.metrics[base+"-fault-outlier"].Put(start, float64(a.Faults)/float64(totalFaults))
				}
				if totalSlow > 0 {
					cw.metrics[base+"-latency-outlier"].Put(start, float64(a.Slow)/float64(totalSlow))
				}
				if s == observation.Server {
					var faulting, slow int
					for _, v := range cw.bad[opKey{z, op, s}] {
						if v[0] {
							faulting++
						}
						if v[1] {
							slow++
						}
					}
					cw.metrics[cwName(z, op, "server-faulting-instances")].Put(start, float64(faulting))
					cw.metrics[cwName(z, op, "server-slow-instances")].Put(start, float64(slow))
				}
			}
		}
	}
	clear(cw.acc)
	clear(cw.bad)
}

func (cw *cloudWatch) evaluate(now time.Time) {
	states := make(map[string]alarm.State, len(cw.metrics))
	for _, name := range cw.order {
		ev := cw.metrics[name].Evaluate(now)
		cw.last[name] = ev
		states[name] = ev.State
	}
	for name, st := range cw.set.Evaluate(states) {
		states[name] = st
	}
	cw.states = states
	v := &assessing{}
	for _, z := range cw.cfg.Zones {
		v.Zones = append(v.Zones, ZoneStatus{Zone: z})
	}
	cw.build(v)
	cw.view = v
}

func (cw *cloudWatch) assess(a *assessing) {
	if cw.view == nil {
		cw.build(a)
		return
	}
	v := cw.view
	a.alarms = append(a.alarms, v.alarms...)
	a.Regional, a.Isolated, a.Why = v.Regional, v.Isolated, v.Why
	for i := range a.Zones {
		z := v.Zone(a.Zones[i].Zone)
		a.Zones[i].Impacted, a.Zones[i].Outlier, a.Zones[i].Contributors, a.Zones[i].Isolated = z.Impacted, z.Outlier, z.Contributors, z.Isolated
	}
}

// build fills the detector's part of an assessment from the current states.
func (cw *cloudWatch) build(a *assessing) {
	if cw.states == nil {
		for _, z := range cw.cfg.Zones {
			a.alarms = append(a.alarms, AlarmStatus{Name: IsolatedAlarmName(z), State: alarm.InsufficientData})
		}
		a.Why = "no complete period yet"
		return
	}
	for _, name := range cw.order {
		ev := cw.last[name]
		a.alarms = append(a.alarms, AlarmStatus{Name: name, State: ev.State, Reason: Because(ev.Reason)})
	}
	// The explanation is read only for a why that names an alarm in ALARM:
	// worked out then, not at every evaluation (with the rules' texts, made
	// once, it was most of the profile's allocations).
	var explain map[string]composite.Explanation
	explained := func() map[string]composite.Explanation {
		if explain == nil {
			metric := make(map[string]alarm.State, len(cw.metrics))
			for n := range cw.metrics {
				metric[n] = cw.states[n]
			}
			explain = cw.set.Explain(metric)
		}
		return explain
	}
	if cw.ruleTexts == nil {
		for _, name := range cw.names {
			cw.ruleTexts = append(cw.ruleTexts, cw.set.Rule(name).String())
		}
	}
	for i, name := range cw.names {
		a.alarms = append(a.alarms, AlarmStatus{Name: name, State: cw.states[name], Reason: Because(cw.ruleTexts[i])})
	}
	a.Regional = cw.states["regional-impact"] == alarm.Alarm
	var whys []string
	for i := range a.Zones {
		zs := &a.Zones[i]
		zs.Impacted = cw.states[zs.Zone+"-impact"] == alarm.Alarm
		for _, op := range cw.operations() {
			for _, s := range sources {
				base := cwName(zs.Zone, op, s.String())
				if cw.states[base+"-fault-outlier"] == alarm.Alarm || cw.states[base+"-latency-outlier"] == alarm.Alarm {
					zs.Outlier = true
				}
			}
			if ev, ok := cw.last[cwName(zs.Zone, op, "server-faulting-instances")]; ok {
				for _, v := range ev.Datapoints {
					if !math.IsNaN(v) {
						zs.Contributors = max(zs.Contributors, int(v))
					}
				}
			}
		}
		iso := IsolatedAlarmName(zs.Zone)
		if cw.states[iso] == alarm.Alarm {
			zs.Isolated = true
			if a.Isolated == "" {
				a.Isolated = zs.Zone
				whys = append(whys, cw.why(iso, explained()))
			}
		}
	}
	if a.Isolated == "" {
		a.Why = "no zone's isolated-impact composite alarm is in ALARM"
		if a.Regional {
			a.Why = "regional-impact is in ALARM: " + explained()["regional-impact"].String()
		}
		return
	}
	a.Why = strings.Join(whys, "; ")
}

// why explains a zone's isolated-impact alarm: which per-operation
// isolated-impact composites are in ALARM, and the metric alarms beneath them
// with CloudWatch's own state reasons.
func (cw *cloudWatch) why(name string, explain map[string]composite.Explanation) string {
	zone := strings.TrimSuffix(name, "-isolated-impact")
	var children, reasons []string
	for _, n := range cw.names {
		if n != name && strings.HasPrefix(n, zone+"-") && strings.HasSuffix(n, "-isolated-impact") && cw.states[n] == alarm.Alarm {
			children = append(children, n+" = "+strings.Join(texts(explain[n].TrueChildren()), " OR "))
		}
	}
	for _, n := range cw.order {
		if strings.HasPrefix(n, zone+"-") && cw.states[n] == alarm.Alarm {
			reasons = append(reasons, n+": "+cw.last[n].Reason)
		}
	}
	return fmt.Sprintf("%s is ALARM (rule: %s) because %s, and regional-impact is not in ALARM; %s",
		name, cw.set.Rule(name), strings.Join(children, "; "), strings.Join(reasons, "; "))
}

func texts(es []composite.Explanation) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Text
	}
	return out
}
