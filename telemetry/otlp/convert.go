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
	"errors"
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

	// Scratch space reused from one call to the next (calls are serialised):
	// the points of a request, their bounds and values in two flat slices,
	// and the index of aggregates by key. A request then costs a handful of
	// allocations, not several per data point.
	pts    []point
	durs   []time.Duration
	vals   []float64
	delta  []float64
	counts []uint64
	idx    map[record.SeriesKey]int
}

// point is one validated data point before the cumulative step. Its bounds
// and values live in the converter's flat scratch slices (offsets, not
// slices, so that the scratch slices can grow while points are read).
type point struct {
	key        record.SeriesKey
	seriesID   string
	process    string
	outcome    observation.Outcome
	start, at  time.Time
	cumulative bool
	hist       bool  // a histogram (else a sum: no latency)
	b0, nb     int32 // bounds: durs[b0 : b0+nb]
	v0, nv     int32 // count, then bucket counts: vals[v0 : v0+nv]
}

// Convert validates every data point of md, then turns them into deltas
// and sums them per (zone, instance, operation). A bad point fails the
// whole request with one line naming it; then no cumulative state changes.
func (c *Converter) Convert(md pmetric.Metrics, now time.Time) ([]record.Aggregate, error) {
	defer c.release()
	if err := c.points(md, now); err != nil {
		return nil, err
	}
	if c.idx == nil {
		c.idx = make(map[record.SeriesKey]int, len(c.pts))
	}
	out := make([]record.Aggregate, 0, len(c.pts))
	// The aggregates' latency buckets, carved from one allocation: each
	// aggregate's slice is capped, so merging a second histogram into it
	// reallocates that slice only, never writes into its neighbour's.
	var lat []record.Bucket
	var err error
	for i := range c.pts {
		p := &c.pts[i]
		vals := c.vals[p.v0 : p.v0+p.nv]
		if p.cumulative {
			var ok bool
			known := c.processes[p.process]
			c.delta, ok, err = c.Tracker.Delta(p.seriesID, p.start, p.at, vals, c.delta, known)
			if err != nil {
				return nil, fmt.Errorf("%w (%d tracked)", err, c.Tracker.Len())
			}
			if !ok {
				continue
			}
			vals = c.delta
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
		j, ok := c.idx[p.key]
		if !ok {
			j = len(out)
			c.idx[p.key] = j
			out = append(out, record.Aggregate{Key: p.key, Slow: record.SlowFromLatency})
		}
		a := &out[j]
		a.Count(p.outcome, n)
		if p.at.After(a.At) {
			a.At = p.at
		}
		if !p.hist {
			a.Slow = 0 // a counter says nothing of latency
			continue
		}
		nb := len(vals) - 1
		if a.Latency == nil {
			if len(lat) < nb {
				lat = make([]record.Bucket, max(nb, c.bucketsLeft(i)))
			}
			a.Latency, lat = lat[:0:nb], lat[nb:]
		}
		c.counts = c.counts[:0]
		for _, v := range vals[1:] {
			c.counts = append(c.counts, uint64(math.Round(v)))
		}
		a.AddHistogram(c.durs[p.b0:p.b0+p.nb], c.counts)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// bucketsLeft is the number of bucket counts of the points from i on: what
// the aggregates still to come can need at most.
func (c *Converter) bucketsLeft(i int) int {
	n := 0
	for _, p := range c.pts[i:] {
		if p.hist {
			n += int(p.nv) - 1
		}
	}
	return n
}

// release drops the scratch space's references to the request's strings,
// keeping its capacity.
func (c *Converter) release() {
	clear(c.pts)
	c.pts = c.pts[:0]
	c.durs, c.vals = c.durs[:0], c.vals[:0]
	clear(c.idx)
	if cap(c.pts) > maxScratchPoints {
		c.pts, c.durs, c.vals, c.idx = nil, nil, nil, nil // an outsized request: do not keep its scratch
	}
}

// maxScratchPoints bounds the points whose scratch space the converter keeps between requests.
const maxScratchPoints = 100_000

func (c *Converter) points(md pmetric.Metrics, now time.Time) error {
	hasDuration := false
	n := 0
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		sms := rms.At(i).ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				m := ms.At(k)
				switch m.Type() {
				case pmetric.MetricTypeHistogram:
					n += m.Histogram().DataPoints().Len()
				case pmetric.MetricTypeSum:
					n += m.Sum().DataPoints().Len()
				}
				hasDuration = hasDuration || m.Name() == c.DurationMetric
			}
		}
	}
	c.pts = slices.Grow(c.pts[:0], n)
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
					err = c.histogram(m, res, where, now)
				case m.Name() == c.RequestsMetric && !hasDuration:
					err = c.sum(m, res, where, now)
				}
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (c *Converter) histogram(m pmetric.Metric, res pcommon.Map, where loc, now time.Time) error {
	if m.Type() != pmetric.MetricTypeHistogram {
		return fmt.Errorf("%s: is a %s, want an explicit-bucket histogram", where, m.Type())
	}
	scale := time.Second
	switch m.Unit() {
	case "s", "":
	case "ms":
		scale = time.Millisecond
	case "us":
		scale = time.Microsecond
	default:
		return fmt.Errorf("%s: unit %q is not s, ms or us", where, m.Unit())
	}
	h := m.Histogram()
	cum, err := cumulativeTemporality(h.AggregationTemporality(), where)
	if err != nil {
		return err
	}
	dps := h.DataPoints()
	for d := range dps.Len() {
		dp := dps.At(d)
		w := where.point(d)
		p, err := c.common(dp.Attributes(), res, dp.StartTimestamp(), dp.Timestamp(), w, now)
		if err != nil {
			return err
		}
		bs, bc := dp.ExplicitBounds(), dp.BucketCounts()
		if bc.Len() != bs.Len()+1 {
			return fmt.Errorf("%s: %d bucket counts for %d bounds, want %d", w, bc.Len(), bs.Len(), bs.Len()+1)
		}
		p.cumulative, p.hist = cum, true
		p.b0, p.nb = int32(len(c.durs)), int32(bs.Len())
		prev := math.Inf(-1)
		for b := range bs.Len() {
			v := bs.At(b)
			if math.IsNaN(v) || v <= prev || v < 0 || v*float64(scale) > float64(24*time.Hour) {
				return fmt.Errorf("%s: explicit_bounds[%d] %v is not increasing, non-negative and under 24h", w, b, v)
			}
			prev = v
			c.durs = append(c.durs, time.Duration(v*float64(scale)))
		}
		count := dp.Count()
		p.v0, p.nv = int32(len(c.vals)), int32(bc.Len()+1)
		c.vals = append(c.vals, float64(count))
		var total uint64
		for b := range bc.Len() {
			if bc.At(b) > count {
				return fmt.Errorf("%s: bucket_counts[%d] %d is over count (%d)", w, b, bc.At(b), count)
			}
			total += bc.At(b)
			c.vals = append(c.vals, float64(bc.At(b)))
		}
		if count > maxCount {
			return fmt.Errorf("%s: count %d is over %g", w, count, float64(maxCount))
		}
		if total != count {
			return fmt.Errorf("%s: bucket counts add up to %d, not count (%d)", w, total, count)
		}
		if cum {
			p.seriesID = seriesID(dp.Attributes(), res, m.Name())
			p.process = processID(res, p.start)
		}
		c.pts = append(c.pts, p)
	}
	return nil
}

func (c *Converter) sum(m pmetric.Metric, res pcommon.Map, where loc, now time.Time) error {
	if m.Type() != pmetric.MetricTypeSum || !m.Sum().IsMonotonic() {
		return fmt.Errorf("%s: is a %s, want a monotonic sum (a counter)", where, m.Type())
	}
	s := m.Sum()
	cum, err := cumulativeTemporality(s.AggregationTemporality(), where)
	if err != nil {
		return err
	}
	dps := s.DataPoints()
	for d := range dps.Len() {
		dp := dps.At(d)
		w := where.point(d)
		p, err := c.common(dp.Attributes(), res, dp.StartTimestamp(), dp.Timestamp(), w, now)
		if err != nil {
			return err
		}
		v := float64(dp.IntValue())
		if dp.ValueType() == pmetric.NumberDataPointValueTypeDouble {
			v = dp.DoubleValue()
		}
		if math.IsNaN(v) || v < 0 || v > maxCount {
			return fmt.Errorf("%s: value %v is not a number from 0 to %g", w, v, float64(maxCount))
		}
		p.cumulative = cum
		p.v0, p.nv = int32(len(c.vals)), 1
		c.vals = append(c.vals, v)
		if cum {
			p.seriesID = seriesID(dp.Attributes(), res, m.Name())
			p.process = processID(res, p.start)
		}
		c.pts = append(c.pts, p)
	}
	return nil
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
	if st, ok := lookupValue(c.Attributes.Status, attrs, res); ok {
		code, err := statusCode(st)
		if err != nil {
			return p, fmt.Errorf("%s: status %q is not an HTTP status code", w, st.AsString())
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
	v, ok := lookupValue(names, attrs, res)
	if !ok {
		return "", false
	}
	return v.AsString(), true
}

func lookupValue(names []string, attrs, res pcommon.Map) (pcommon.Value, bool) {
	for _, n := range names {
		if v, ok := attrs.Get(n); ok {
			return v, true
		}
	}
	for _, n := range names {
		if v, ok := res.Get(n); ok {
			return v, true
		}
	}
	return pcommon.Value{}, false
}

// statusCode reads an HTTP status code attribute: an integer (the semantic
// conventions' type, read without formatting it) or its decimal string.
func statusCode(v pcommon.Value) (int, error) {
	code := int64(-1)
	if v.Type() == pcommon.ValueTypeInt {
		code = v.Int()
	} else if n, err := strconv.Atoi(v.AsString()); err == nil {
		code = int64(n)
	}
	if code < 0 || code > 599 {
		return 0, errors.New("not an HTTP status code")
	}
	return int(code), nil
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
	return seriesID(pcommon.NewMap(), res, start.Format(time.RFC3339Nano))
}

// seriesID names a cumulative series: the metric, the resource's and the
// point's attributes (every one, not only those grayzone reads: two
// processes on one instance are two series).
func seriesID(attrs, res pcommon.Map, metric string) string {
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
