// Package otlp is grayzone's OpenTelemetry metrics receiver: OTLP over
// HTTP (protobuf or JSON, POST /v1/metrics) and gRPC, decoded with the
// Collector's pdata. It takes the HTTP server duration histogram
// (http.server.request.duration) and, where a service only counts, a
// request counter, with OpenTelemetry's semantic-convention attributes for
// zone, instance, route and status code (names configurable), in delta or
// cumulative temporality (turned into deltas per series, resets handled),
// and hands the engine one aggregate per zone, instance and route.
package otlp

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/grayzone/grayzone/telemetry/cumulative"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Attributes name the attributes grayzone reads, each tried in order on the
// data point, then on the resource.
type Attributes struct {
	Zone, Instance, Operation, Status []string
}

// DefaultAttributes are the semantic conventions'.
func DefaultAttributes() Attributes {
	return Attributes{
		Zone:      []string{"cloud.availability_zone", "cloud.zone"},
		Instance:  []string{"service.instance.id", "host.name"},
		Operation: []string{"http.route"},
		Status:    []string{"http.response.status_code", "http.status_code"},
	}
}

// Default metric names.
const (
	DefaultDurationMetric = "http.server.request.duration"
	DefaultRequestsMetric = "http.server.request.count"
	// Unmatched is the operation of points without a route attribute.
	Unmatched = "unmatched"
	// maxFuture is the clock skew tolerated on a data point's time.
	maxFuture = 5 * time.Minute
	// maxCount bounds a point's count, far above any real counter, so sums
	// of counts cannot overflow.
	maxCount = 1e15
)

// Converter turns OTLP metrics into aggregates. Not safe for concurrent
// use (its cumulative tracker is state); the receiver serialises calls.
type Converter struct {
	Attributes     Attributes
	DurationMetric string
	RequestsMetric string
	Tracker        cumulative.Tracker
	// processes are the (resource, start time) pairs seen: a new series of
	// a process already followed began while we watched it (a counter or
	// attribute set appears with its first increment, e.g. the first 5xx),
	// so its first point counts from zero.
	processes map[string]bool
}

// point is one validated data point before the cumulative step.
type point struct {
	key        record.SeriesKey
	seriesID   string
	process    string
	outcome    observation.Outcome
	start, at  time.Time
	cumulative bool
	bounds     []time.Duration // nil for a sum
	vals       []float64       // count, then bucket counts
}

// Convert validates every data point of md, then turns them into deltas
// and sums them per (zone, instance, operation). A bad point fails the
// whole request with one line naming it; then no cumulative state changes.
func (c *Converter) Convert(md pmetric.Metrics, now time.Time) ([]record.Aggregate, error) {
	pts, err := c.points(md, now)
	if err != nil {
		return nil, err
	}
	idx := map[record.SeriesKey]int{}
	var out []record.Aggregate
	var delta []float64
	for _, p := range pts {
		vals := p.vals
		if p.cumulative {
			var ok bool
			known := c.processes[p.process]
			delta, ok, err = c.Tracker.Delta(p.seriesID, p.start, p.at, p.vals, delta, known)
			if err != nil {
				return nil, fmt.Errorf("%w (%d tracked)", err, c.Tracker.Len())
			}
			if !ok {
				continue
			}
			vals = delta
		}
		if p.cumulative && !c.processes[p.process] {
			if c.processes == nil || len(c.processes) >= max(c.Tracker.Max, 1_000_000) {
				c.processes = map[string]bool{}
			}
			c.processes[p.process] = true
		}
		n := uint64(math.Round(vals[0]))
		if n == 0 {
			continue
		}
		i, ok := idx[p.key]
		if !ok {
			i = len(out)
			idx[p.key] = i
			out = append(out, record.Aggregate{Key: p.key, Slow: record.SlowFromLatency})
		}
		a := &out[i]
		a.Count(p.outcome, n)
		if p.at.After(a.At) {
			a.At = p.at
		}
		if p.bounds == nil {
			a.Slow = 0 // a counter says nothing of latency
			continue
		}
		counts := make([]uint64, len(vals)-1)
		for j, v := range vals[1:] {
			counts[j] = uint64(math.Round(v))
		}
		a.AddHistogram(p.bounds, counts)
	}
	return out, nil
}

func (c *Converter) points(md pmetric.Metrics, now time.Time) ([]point, error) {
	var pts []point
	hasDuration := false
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				hasDuration = hasDuration || ms.At(k).Name() == c.DurationMetric
			}
		}
	}
	for i := range rms.Len() {
		rm := rms.At(i)
		res := rm.Resource().Attributes()
		sms := rm.ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				where := loc{i, j, k, m.Name(), -1}
				var err error
				switch {
				case m.Name() == c.DurationMetric:
					pts, err = c.histogram(pts, m, res, where, now)
				case m.Name() == c.RequestsMetric && !hasDuration:
					pts, err = c.sum(pts, m, res, where, now)
				}
				if err != nil {
					return nil, err
				}
			}
		}
	}
	return pts, nil
}

func (c *Converter) histogram(pts []point, m pmetric.Metric, res pcommon.Map, where loc, now time.Time) ([]point, error) {
	if m.Type() != pmetric.MetricTypeHistogram {
		return pts, fmt.Errorf("%s: is a %s, want an explicit-bucket histogram", where, m.Type())
	}
	scale := time.Second
	switch m.Unit() {
	case "s", "":
	case "ms":
		scale = time.Millisecond
	case "us":
		scale = time.Microsecond
	default:
		return pts, fmt.Errorf("%s: unit %q is not s, ms or us", where, m.Unit())
	}
	h := m.Histogram()
	cum, err := cumulativeTemporality(h.AggregationTemporality(), where)
	if err != nil {
		return pts, err
	}
	dps := h.DataPoints()
	for d := range dps.Len() {
		dp := dps.At(d)
		w := where.point(d)
		p, err := c.common(dp.Attributes(), res, dp.StartTimestamp(), dp.Timestamp(), w, now)
		if err != nil {
			return pts, err
		}
		bs, bc := dp.ExplicitBounds(), dp.BucketCounts()
		if bc.Len() != bs.Len()+1 {
			return pts, fmt.Errorf("%s: %d bucket counts for %d bounds, want %d", w, bc.Len(), bs.Len(), bs.Len()+1)
		}
		p.cumulative = cum
		p.bounds = make([]time.Duration, bs.Len())
		prev := math.Inf(-1)
		for b := range bs.Len() {
			v := bs.At(b)
			if math.IsNaN(v) || v <= prev || v < 0 || v*float64(scale) > float64(24*time.Hour) {
				return pts, fmt.Errorf("%s: explicit_bounds[%d] %v is not increasing, non-negative and under 24h", w, b, v)
			}
			prev = v
			p.bounds[b] = time.Duration(v * float64(scale))
		}
		p.vals = make([]float64, 1, bc.Len()+1)
		var total uint64
		for b := range bc.Len() {
			if bc.At(b) > dp.Count() {
				return pts, fmt.Errorf("%s: bucket_counts[%d] %d is over count (%d)", w, b, bc.At(b), dp.Count())
			}
			total += bc.At(b)
			p.vals = append(p.vals, float64(bc.At(b)))
		}
		if dp.Count() > maxCount {
			return pts, fmt.Errorf("%s: count %d is over %g", w, dp.Count(), float64(maxCount))
		}
		if total != dp.Count() {
			return pts, fmt.Errorf("%s: bucket counts add up to %d, not count (%d)", w, total, dp.Count())
		}
		p.vals[0] = float64(dp.Count())
		if cum {
			p.seriesID = seriesID(p, dp.Attributes(), res, m.Name())
			p.process = processID(res, p.start)
		}
		pts = append(pts, p)
	}
	return pts, nil
}

func (c *Converter) sum(pts []point, m pmetric.Metric, res pcommon.Map, where loc, now time.Time) ([]point, error) {
	if m.Type() != pmetric.MetricTypeSum || !m.Sum().IsMonotonic() {
		return pts, fmt.Errorf("%s: is a %s, want a monotonic sum (a counter)", where, m.Type())
	}
	s := m.Sum()
	cum, err := cumulativeTemporality(s.AggregationTemporality(), where)
	if err != nil {
		return pts, err
	}
	dps := s.DataPoints()
	for d := range dps.Len() {
		dp := dps.At(d)
		w := where.point(d)
		p, err := c.common(dp.Attributes(), res, dp.StartTimestamp(), dp.Timestamp(), w, now)
		if err != nil {
			return pts, err
		}
		v := float64(dp.IntValue())
		if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
			v = dp.DoubleValue()
		}
		if math.IsNaN(v) || v < 0 || v > maxCount {
			return pts, fmt.Errorf("%s: value %v is not a number from 0 to %g", w, v, float64(maxCount))
		}
		p.cumulative, p.vals = cum, []float64{v}
		if cum {
			p.seriesID = seriesID(p, dp.Attributes(), res, m.Name())
			p.process = processID(res, p.start)
		}
		pts = append(pts, p)
	}
	return pts, nil
}

// cumulativeTemporality says whether points are cumulative (else delta).
func cumulativeTemporality(t pmetric.AggregationTemporality, where loc) (bool, error) {
	switch t {
	case pmetric.AggregationTemporalityCumulative:
		return true, nil
	case pmetric.AggregationTemporalityDelta:
		return false, nil
	}
	return false, fmt.Errorf("%s: aggregation temporality is unspecified", where)
}

// common reads a point's zone, instance, operation, outcome and times.
func (c *Converter) common(attrs, res pcommon.Map, start, ts pcommon.Timestamp, w loc, now time.Time) (point, error) {
	var p point
	zone, ok := lookup(c.Attributes.Zone, attrs, res)
	if !ok || zone == "" {
		return p, fmt.Errorf("%s: no zone attribute (looked for %s)", w, strings.Join(c.Attributes.Zone, ", "))
	}
	inst, ok := lookup(c.Attributes.Instance, attrs, res)
	if !ok || inst == "" {
		return p, fmt.Errorf("%s: no instance attribute (looked for %s)", w, strings.Join(c.Attributes.Instance, ", "))
	}
	op, _ := lookup(c.Attributes.Operation, attrs, res)
	if op == "" {
		op = Unmatched
	}
	p.outcome = observation.Success
	if st, ok := lookup(c.Attributes.Status, attrs, res); ok {
		code, err := strconv.Atoi(st)
		if err != nil || code < 0 || code > 599 {
			return p, fmt.Errorf("%s: status %q is not an HTTP status code", w, st)
		}
		p.outcome = observation.FromStatus(code)
	} else if _, failed := attrs.Get("error.type"); failed {
		p.outcome = observation.Fault // no answer at all
	}
	p.key = record.SeriesKey{Source: observation.Server, Zone: zone, Instance: inst, Operation: op}
	p.at = now
	if ts != 0 {
		p.at = ts.AsTime().UTC()
		if ahead := p.at.Sub(now); ahead > maxFuture {
			return p, fmt.Errorf("%s: time %s is %s in the future (limit 5m)", w, p.at.Format(time.RFC3339Nano), ahead.Round(time.Second))
		}
	}
	if start != 0 {
		p.start = start.AsTime().UTC()
	}
	return p, nil
}

func lookup(names []string, attrs, res pcommon.Map) (string, bool) {
	for _, m := range []pcommon.Map{attrs, res} {
		for _, n := range names {
			if v, ok := m.Get(n); ok {
				return v.AsString(), true
			}
		}
	}
	return "", false
}

// loc names a metric or data point in an export, formatted only for an error.
type loc struct {
	r, s, m int
	name    string
	dp      int // -1: the metric itself
}

func (l loc) point(d int) loc { l.dp = d; return l }

func (l loc) String() string {
	s := fmt.Sprintf("resource_metrics[%d].scope_metrics[%d].metrics[%d] (%s)", l.r, l.s, l.m, l.name)
	if l.dp >= 0 {
		s += fmt.Sprintf(".data_points[%d]", l.dp)
	}
	return s
}

// processID names the process behind a point: its resource and start time.
func processID(res pcommon.Map, start time.Time) string {
	return seriesID(point{}, pcommon.NewMap(), res, start.Format(time.RFC3339Nano))
}

// seriesID names a cumulative series: the metric, the resource's and the
// point's attributes (every one, not only those grayzone reads: two
// processes on one instance are two series).
func seriesID(p point, attrs, res pcommon.Map, metric string) string {
	var b strings.Builder
	b.WriteString(metric)
	for _, m := range []pcommon.Map{res, attrs} {
		b.WriteByte('|')
		keys := make([]string, 0, m.Len())
		m.Range(func(k string, _ pcommon.Value) bool { keys = append(keys, k); return true })
		slices.Sort(keys)
		for _, k := range keys {
			v, _ := m.Get(k)
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(v.AsString())
			b.WriteByte(';')
		}
	}
	return b.String()
}
