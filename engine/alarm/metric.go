package alarm

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Metric evaluates one metric alarm. It is not safe for concurrent use; the
// engine that owns it serialises calls.
type Metric struct {
	cfg    Config
	points map[int64]float64 // period index (since the Unix epoch) -> datapoint
	hi     int64             // newest period index seen by Put or Evaluate
	hasHi  bool
	state  State
}

// Evaluation is the outcome of one evaluation.
type Evaluation struct {
	State    State
	Previous State // the state before this evaluation
	// Breaching is how many of the N evaluated datapoints breached, counting
	// missing datapoints substituted as breaching.
	Breaching int
	// Present is how many real datapoints the evaluation range holds.
	Present int
	// Filled is how many missing datapoints were substituted according to
	// TreatMissing (breaching or notBreaching only).
	Filled int
	// Datapoints is the whole evaluation range (Config.EvaluationRange
	// periods), oldest first, NaN where a datapoint is missing.
	Datapoints []float64
	Start      time.Time // start of the period of Datapoints[0]
	Reason     string    // one line, in the style of CloudWatch's StateReason
}

// New returns an evaluator in INSUFFICIENT_DATA, as a new CloudWatch alarm is.
func New(cfg Config) (*Metric, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Metric{cfg: cfg.normalized(), points: map[int64]float64{}, state: InsufficientData}, nil
}

// Config returns the configuration with defaults applied.
func (m *Metric) Config() Config { return m.cfg }

// State is the state set by the last Evaluate.
func (m *Metric) State() State { return m.state }

// Put records value as the datapoint of the period containing periodStart
// (periods are aligned to Period from the Unix epoch), replacing any earlier
// value for that period. NaN removes the datapoint. Periods are expected to
// arrive roughly in time order: a datapoint more than EvaluationRange periods
// older than the newest period seen can never be evaluated and is dropped, so
// memory stays bounded by EvaluationRange+1 datapoints.
func (m *Metric) Put(periodStart time.Time, value float64) {
	i := m.index(periodStart)
	if math.IsNaN(value) {
		delete(m.points, i)
		return
	}
	if m.hasHi && i < m.hi-int64(m.cfg.EvaluationRange()) {
		return
	}
	m.points[i] = value
	m.advance(i)
}

// advance moves the newest period seen to i and forgets what can no longer be
// in an evaluation range. One period of slack keeps the previous period while
// the current, incomplete one is already being written.
func (m *Metric) advance(i int64) {
	if m.hasHi && i <= m.hi {
		return
	}
	m.hi, m.hasHi = i, true
	floor := i - int64(m.cfg.EvaluationRange())
	for k := range m.points {
		if k < floor {
			delete(m.points, k)
		}
	}
}

// index is the number of whole periods between the epoch and t (floored, so
// times before 1970 work too).
func (m *Metric) index(t time.Time) int64 {
	ns, p := t.UnixNano(), int64(m.cfg.Period)
	q := ns / p
	if ns%p != 0 && ns < 0 {
		q--
	}
	return q
}

func (m *Metric) start(i int64) time.Time { return time.Unix(0, i*int64(m.cfg.Period)).UTC() }

// slot is one datapoint taking part in an evaluation: a position in the
// evaluation range, and whether it is a substituted missing datapoint.
type slot struct {
	i      int
	filled bool
}

// Evaluate sets and returns the alarm's state at now, judged on the complete
// periods that ended at or before now. It implements "How alarm state is
// evaluated when data is missing" from the CloudWatch user guide:
//
//   - With at least N real datapoints in the evaluation range, the most recent
//     N of them are evaluated and TreatMissing is not consulted.
//   - With fewer, breaching and notBreaching substitute the most recent
//     missing datapoints, just enough of them to make N, and evaluate them
//     with every real datapoint in the range.
//   - missing and ignore substitute nothing. The alarm goes to ALARM if at
//     least M real datapoints breach, or if every real datapoint in the range
//     breaches and the oldest is at least M periods old (the documented
//     "premature alarm" case, - - X - - with M=3); under ignore that second
//     case keeps the current state instead. Otherwise it goes to OK.
//   - With no real datapoint at all: missing gives INSUFFICIENT_DATA, ignore
//     keeps the current state, breaching gives ALARM, notBreaching gives OK.
//
// These rules reproduce every cell of the guide's two example tables (3 of 3
// and 2 of 3, evaluation range 5). The guide's prose for M of N ("at least as
// old as Evaluation Periods") contradicts its own table; the table wins.
func (m *Metric) Evaluate(now time.Time) Evaluation {
	c := m.cfg
	n, need, r := c.EvaluationPeriods, c.DatapointsToAlarm, c.EvaluationRange()
	last := m.index(now) - 1 // the period containing now is not complete
	first := last - int64(r) + 1
	m.advance(last + 1)

	ev := Evaluation{Previous: m.state, Datapoints: make([]float64, r), Start: m.start(first)}
	var present []int
	for i := range r {
		if v, ok := m.points[first+int64(i)]; ok {
			ev.Datapoints[i] = v
			present = append(present, i)
		} else {
			ev.Datapoints[i] = math.NaN()
		}
	}
	ev.Present = len(present)
	breaches := func(i int) bool { return c.Comparison.Breaches(ev.Datapoints[i], c.Threshold) }
	realBreaching := 0
	for _, i := range present {
		if breaches(i) {
			realBreaching++
		}
	}

	switch {
	case len(present) >= n:
		use := present[len(present)-n:]
		var pts []slot
		for _, i := range use {
			pts = append(pts, slot{i: i})
			if breaches(i) {
				ev.Breaching++
			}
		}
		ev.State, ev.Reason = m.crossed(ev, pts, "")

	case c.TreatMissing == Breaching || c.TreatMissing == NotBreaching:
		// Fill the most recent missing periods, as few as make N.
		fill := n - len(present)
		filled := map[int]bool{}
		for i := r - 1; i >= 0 && len(filled) < fill; i-- {
			if math.IsNaN(ev.Datapoints[i]) {
				filled[i] = true
			}
		}
		var pts []slot
		for i := range r {
			if filled[i] || !math.IsNaN(ev.Datapoints[i]) {
				pts = append(pts, slot{i: i, filled: filled[i]})
			}
		}
		ev.Filled = fill
		ev.Breaching = realBreaching
		as := "not breaching"
		if c.TreatMissing == Breaching {
			ev.Breaching += fill
			as = "breaching"
		}
		if len(present) == 0 {
			ev.State = OK
			prefix := "Within threshold"
			if ev.Breaching >= need {
				ev.State, prefix = Alarm, "Threshold Crossed"
			}
			ev.Reason = fmt.Sprintf("%s: no datapoints were received for %d periods and %d missing datapoint%s %s treated as %s (minimum %d datapoint%s for ALARM)",
				prefix, r, fill, plural(fill), wasWere(fill), as, need, plural(need))
			break
		}
		ev.State, ev.Reason = m.crossed(ev, pts, fmt.Sprintf(" (%d missing datapoint%s treated as %s)", fill, plural(fill), as))

	case len(present) == 0: // missing or ignore, nothing to go on
		if c.TreatMissing == Ignore {
			ev.State = m.state
			ev.Reason = fmt.Sprintf("Missing data ignored: no datapoints were received for %d periods; state stays %s", r, m.state)
		} else {
			ev.State = InsufficientData
			ev.Reason = fmt.Sprintf("Insufficient Data: no datapoints were received for %d periods", r)
		}

	default: // missing or ignore, some but fewer than N real datapoints
		ev.Breaching = realBreaching
		pts := make([]slot, len(present))
		for k, i := range present {
			pts[k] = slot{i: i}
		}
		op, thr := comparisonPhrases[c.Comparison], cwFloat(c.Threshold)
		head := fmt.Sprintf("%d out of the %d datapoint%s present in the last %d periods", realBreaching, len(present), plural(len(present)), r)
		oldestAge := r - present[0] // 1 is the most recent complete period
		switch {
		case realBreaching >= need:
			ev.State = Alarm
			ev.Reason = fmt.Sprintf("Threshold Crossed: %s %s %s %s the threshold (%s) (minimum %d datapoint%s for ALARM)",
				head, m.list(ev, pts, true), wasWere(realBreaching), op, thr, need, plural(need))
		case realBreaching == len(present) && oldestAge >= need:
			// The guide's "premature alarm" rule: all real data breaches and
			// has done so for at least M periods.
			if c.TreatMissing == Ignore {
				ev.State = m.state
				ev.Reason = fmt.Sprintf("Missing data ignored: %s %s %s %s the threshold (%s), fewer than %d present; state stays %s",
					head, m.list(ev, pts, false), wasWere(realBreaching), op, thr, n, m.state)
			} else {
				ev.State = Alarm
				ev.Reason = fmt.Sprintf("Threshold Crossed: %s %s %s %s the threshold (%s) and the oldest is %d periods old, at least the %d datapoint%s to alarm (CloudWatch's premature-alarm rule; missing data treated as missing)",
					head, m.list(ev, pts, false), wasWere(realBreaching), op, thr, oldestAge, need, plural(need))
			}
		default:
			ev.State = OK
			ev.Reason = fmt.Sprintf("Within threshold: %s %s %s the threshold (%s) (minimum %d datapoint%s for ALARM; missing data treated as %s) %s",
				head, wasWere(realBreaching), op, thr, need, plural(need), c.TreatMissing, m.list(ev, pts, false))
		}
	}
	m.state = ev.State
	return ev
}

// crossed decides between ALARM and OK once exactly N datapoints (real or
// substituted) have been chosen, and words the reason.
func (m *Metric) crossed(ev Evaluation, pts []slot, suffix string) (State, string) {
	c := m.cfg
	op, thr, n, need := comparisonPhrases[c.Comparison], cwFloat(c.Threshold), c.EvaluationPeriods, c.DatapointsToAlarm
	if ev.Breaching >= need {
		return Alarm, fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoint%s %s %s %s the threshold (%s) (minimum %d datapoint%s for ALARM)%s",
			ev.Breaching, n, plural(n), m.list(ev, pts, true), wasWere(ev.Breaching), op, thr, need, plural(need), suffix)
	}
	return OK, fmt.Sprintf("Within threshold: %d out of the last %d datapoint%s %s %s the threshold (%s) (minimum %d datapoint%s for ALARM)%s %s",
		ev.Breaching, n, plural(n), wasWere(ev.Breaching), op, thr, need, plural(need), suffix, m.list(ev, pts, false))
}

// maxListed keeps a reason readable when N is large; the most recent
// datapoints are the ones worth showing.
const maxListed = 10

// list formats datapoints as "[12.0 (10:01), missing (10:03)]", oldest first;
// onlyBreaching keeps the breaching ones (substitutes for missing data count
// as breaching when TreatMissing is breaching).
func (m *Metric) list(ev Evaluation, pts []slot, onlyBreaching bool) string {
	var items []string
	for _, p := range pts {
		v := ev.Datapoints[p.i]
		if onlyBreaching {
			b := m.cfg.Comparison.Breaches(v, m.cfg.Threshold)
			if p.filled {
				b = m.cfg.TreatMissing == Breaching
			}
			if !b {
				continue
			}
		}
		at := m.clock(ev.Start.Add(time.Duration(p.i) * m.cfg.Period))
		if p.filled {
			items = append(items, "missing ("+at+")")
		} else {
			items = append(items, cwFloat(v)+" ("+at+")")
		}
	}
	if len(items) > maxListed {
		items = append([]string{fmt.Sprintf("%d earlier...", len(items)-maxListed)}, items[len(items)-maxListed:]...)
	}
	return "[" + strings.Join(items, ", ") + "]"
}

// clock formats a period start as briefly as the period allows.
func (m *Metric) clock(t time.Time) string {
	switch p := m.cfg.Period; {
	case p%time.Minute == 0:
		return t.Format("15:04")
	case p%time.Second == 0:
		return t.Format("15:04:05")
	}
	return t.Format("15:04:05.000")
}

// cwFloat formats a number as CloudWatch's reasons do (Java's
// Double.toString): shortest exact form, always with a decimal point.
func cwFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(s, ".IN") { // not NaN or ±Inf
		s += ".0"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func wasWere(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}
