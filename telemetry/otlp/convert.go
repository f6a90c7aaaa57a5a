// Package otlp is grayzone's OpenTelemetry metrics receiver: OTLP over
// HTTP (protobuf or JSON, POST /v1/metrics) and gRPC. Protobuf is read
// straight off the wire (wire.go); JSON and gRPC requests, decoded by the
// Collector's pdata, are read through the same decoder. It takes the HTTP server duration histogram
// (http.server.request.duration) and, where a service only counts, a
// request counter, with OpenTelemetry's semantic-convention attributes for
// zone, instance, route and status code (names configurable), in delta or
// cumulative temporality (turned into deltas per series, resets handled),
// and hands the engine one aggregate per zone, instance and route.
package otlp

import (
	"bytes"
	"fmt"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"math"
	"slices"
	"strings"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/encoding/protowire"

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
	maxFuture = ingest.MaxFuture
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
	// the points of a request, their bucket places and values in flat
	// slices, the index of aggregates by key, and the aggregates with their
	// buckets. A request then costs a handful of allocations, not several
	// per data point.
	pts  []point
	durs []time.Duration // the current bounds, as durations
	// mids are each histogram bucket's place in record's mapping, for every
	// distinct run of bounds; m0 is the current bounds' first, prevBounds
	// and boundsScale what they were mapped from (boundsScale 0: nothing
	// mapped yet in this request).
	mids        []int
	m0          int32
	prevBounds  []uint64
	boundsScale time.Duration
	vals        []float64
	delta       []float64
	counts      []uint64
	idx         map[keyID]int
	out         []record.Aggregate
	lat         []record.Bucket

	// The wire decoder's scratch space: the current resource's and data
	// point's attributes and the point's bounds and bucket counts, read in
	// place (they alias the body until release), and the interned names.
	res, attrs, sorted []attr
	data               [][]byte
	bounds, buckets    []uint64
	scratch            []byte
	names              map[string]string
	last               [3]string // the last zone, instance and route read
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
	m0         int32 // the buckets' places: mids[m0 : m0+nv-1]
	v0, nv     int32 // count, then bucket counts: vals[v0 : v0+nv]
}

// Convert reads an OTLP ExportMetricsServiceRequest in protobuf (an
// OTLP/HTTP body), validates every data point of the metrics it takes, then
// turns them into deltas and sums them per (zone, instance, operation). A
// bad point fails the whole request with one line naming it; then no
// cumulative state changes. The converter keeps no reference to body. The
// aggregates, their latency buckets included, are the converter's scratch
// space: valid until the next call (the ingest gate copies what it admits).
func (c *Converter) Convert(body []byte, now time.Time) ([]record.Aggregate, error) {
	defer c.release()
	if len(c.names) >= maxInterned {
		// Start the interned names over between requests, never within
		// one: the aggregation below tells names apart by address.
		c.names, c.last = nil, [3]string{}
	}
	if err := c.points(body, now); err != nil {
		return nil, err
	}
	if c.idx == nil {
		c.idx = make(map[keyID]int, len(c.pts))
	}
	out := c.out[:0]
	// The aggregates' latency buckets, carved from one array: each
	// aggregate's slice is capped, so merging a second histogram into it
	// reallocates that slice only, never writes into its neighbour's.
	c.lat = slices.Grow(c.lat[:0], c.bucketsLeft(0))
	lat := c.lat[:cap(c.lat)]
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
		id := keyID{unsafe.StringData(p.key.Zone), unsafe.StringData(p.key.Instance), unsafe.StringData(p.key.Operation)}
		j, ok := c.idx[id]
		if !ok {
			j = len(out)
			c.idx[id] = j
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
			a.Latency, lat = lat[:0:nb], lat[nb:]
		}
		c.counts = c.counts[:0]
		for _, v := range vals[1:] {
			c.counts = append(c.counts, uint64(math.Round(v)))
		}
		a.AddBuckets(c.mids[p.m0:p.m0+p.nv-1], c.counts)
	}
	c.out = out
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// keyID identifies a series key within one request by the addresses of its
// interned names: equal names are one string, so this is the key's
// identity, hashed without reading the names.
type keyID struct{ zone, instance, op *byte }

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
	c.durs, c.vals, c.mids, c.boundsScale = c.durs[:0], c.vals[:0], c.mids[:0], 0
	clear(c.idx)
	clear(c.res)
	clear(c.attrs)
	clear(c.sorted)
	clear(c.data)
	c.res, c.attrs, c.sorted, c.data = c.res[:0], c.attrs[:0], c.sorted[:0], c.data[:0]
	if cap(c.pts) > maxScratchPoints {
		c.pts, c.durs, c.vals, c.mids, c.idx, c.out, c.lat = nil, nil, nil, nil, nil, nil, nil // an outsized request: do not keep its scratch
	}
}

// maxScratchPoints bounds the points whose scratch space the converter keeps between requests.
const maxScratchPoints = 100_000

// maxInterned bounds the interned names (zones, instances, routes); past
// it the table starts over (at the next request), so a flood of one-off
// names cannot grow it without bound.
const maxInterned = 200_000

// intern returns b as a string, copying it only the first time it is seen:
// a fleet has a few zones, thousands of instances and tens of routes, and
// sends them again every interval.
func (c *Converter) intern(b []byte) string {
	if s, ok := c.names[string(b)]; ok {
		return s
	}
	if c.names == nil {
		c.names = make(map[string]string, 1024)
	}
	s := string(b)
	c.names[s] = s
	return s
}

// ConvertMetrics converts metrics decoded elsewhere (OTLP/JSON, gRPC, the
// lab's simulated exporter): they are encoded to protobuf and read as an
// OTLP/HTTP body is, so that every transport goes through one decoder.
func (c *Converter) ConvertMetrics(md pmetric.Metrics, now time.Time) ([]record.Aggregate, error) {
	var m pmetric.ProtoMarshaler
	body, err := m.MarshalMetrics(md)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the request: %w", err)
	}
	return c.Convert(body, now)
}

// points reads every data point of the metrics grayzone takes from an
// ExportMetricsServiceRequest body into c.pts.
func (c *Converter) points(body []byte, now time.Time) error {
	// The request counter counts only when the request has no duration
	// histogram (a service that has both counts each request in both).
	hasDuration := false
	err := c.metrics(body, func(_ loc, name []byte, _ []byte, _ metricType, _ [][]byte) error {
		hasDuration = hasDuration || string(name) == c.DurationMetric
		return nil
	})
	if err != nil {
		return err
	}
	return c.metrics(body, func(where loc, name, unit []byte, typ metricType, data [][]byte) error {
		switch {
		case string(name) == c.DurationMetric:
			return c.histogram(where, unit, typ, data, now)
		case string(name) == c.RequestsMetric && !hasDuration:
			return c.sum(where, typ, data, now)
		}
		return nil
	})
}

// metrics calls f for each metric of the request, in order, with the
// resource's attributes read into c.res.
func (c *Converter) metrics(body []byte, f func(where loc, name, unit []byte, typ metricType, data [][]byte) error) error {
	where := loc{s: -1, m: -1, dp: -1}
	return each(body, fieldResourceMetrics, where, func(rm []byte) error {
		defer func() { where.r++ }()
		// The resource first, wherever it is on the wire.
		c.res = c.res[:0]
		res := where.in(".resource")
		err := each(rm, fieldResource, where, func(r []byte) error {
			return each(r, fieldResourceAttributes, res, func(kv []byte) (err error) {
				c.res, err = appendAttrs(c.res, kv)
				return wrap(res, err)
			})
		})
		if err != nil {
			return err
		}
		where := where
		where.s = 0
		return each(rm, fieldScopeMetrics, where, func(sm []byte) error {
			defer func() { where.s++ }()
			where := where
			where.m = 0
			return each(sm, fieldMetrics, where, func(m []byte) error {
				defer func() { where.m++ }()
				return c.metric(where, m, f)
			})
		})
	})
}

// metric reads a Metric's name, unit and data and hands them to f. The
// data is a oneof: a field of another kind replaces what came before, one
// of the same kind merges with it (protobuf's rule), so f gets every
// occurrence of the last kind.
func (c *Converter) metric(where loc, mb []byte, f func(where loc, name, unit []byte, typ metricType, data [][]byte) error) error {
	var name, unit []byte
	typ := typeEmpty
	c.data = c.data[:0]
	for b := mb; len(b) > 0; {
		fd, rest, err := next(b)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		b = rest
		t := typeEmpty
		switch fd.num {
		case fieldMetricName, fieldMetricUnit:
		case fieldMetricGauge:
			t = typeGauge
		case fieldMetricSum:
			t = typeSum
		case fieldMetricHistogram:
			t = typeHistogram
		case fieldMetricExpHist:
			t = typeExponentialHistogram
		case fieldMetricSummary:
			t = typeSummary
		default:
			continue
		}
		if err := fd.want(protowire.BytesType); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		switch fd.num {
		case fieldMetricName:
			name = fd.b
		case fieldMetricUnit:
			unit = fd.b
		default:
			if t != typ {
				c.data = c.data[:0]
			}
			typ, c.data = t, append(c.data, fd.b)
		}
	}
	where.name = name
	return f(where, name, unit, typ, c.data)
}

// temporality reads a Sum's or Histogram's aggregation temporality and
// whether it is monotonic, before its points (they may come first).
func temporality(data [][]byte, where loc) (temporality uint64, monotonic bool, err error) {
	for _, chunk := range data {
		for b := chunk; len(b) > 0; {
			fd, rest, err := next(b)
			if err != nil {
				return 0, false, fmt.Errorf("%s: %w", where, err)
			}
			b = rest
			switch fd.num {
			case fieldTemporality, fieldMonotonic:
				if err := fd.want(protowire.VarintType); err != nil {
					return 0, false, fmt.Errorf("%s: %w", where, err)
				}
				if fd.num == fieldTemporality {
					temporality = fd.v
				} else {
					monotonic = fd.v != 0
				}
			}
		}
	}
	return temporality, monotonic, nil
}

// cumulativeTemporality says whether points are cumulative (else delta).
func cumulativeTemporality(t uint64, where loc) (bool, error) {
	switch int32(t) {
	case 2: // AGGREGATION_TEMPORALITY_CUMULATIVE
		return true, nil
	case 1: // AGGREGATION_TEMPORALITY_DELTA
		return false, nil
	}
	return false, fmt.Errorf("%s: aggregation temporality is unspecified", where)
}

// dataPoints calls f with each data point's message.
func dataPoints(data [][]byte, where loc, f func(w loc, dp []byte) error) error {
	w := where.point(0)
	for _, chunk := range data {
		err := each(chunk, fieldDataPoints, where, func(dp []byte) error {
			defer func() { w.dp++ }()
			return f(w, dp)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *Converter) histogram(where loc, unit []byte, typ metricType, data [][]byte, now time.Time) error {
	if typ != typeHistogram {
		return fmt.Errorf("%s: is a %s, want an explicit-bucket histogram", where, typ)
	}
	scale := time.Second
	switch string(unit) {
	case "s", "":
	case "ms":
		scale = time.Millisecond
	case "us":
		scale = time.Microsecond
	default:
		return fmt.Errorf("%s: unit %q is not s, ms or us", where, unit)
	}
	t, _, err := temporality(data, where)
	if err != nil {
		return err
	}
	cum, err := cumulativeTemporality(t, where)
	if err != nil {
		return err
	}
	return dataPoints(data, where, func(w loc, dp []byte) error {
		var count uint64
		c.bounds, c.buckets = c.bounds[:0], c.buckets[:0]
		start, ts, err := c.readPoint(dp, fieldHistAttrs, w, func(fd field) (err error) {
			switch fd.num {
			case fieldHistCount:
				if err = fd.want(protowire.Fixed64Type); err == nil {
					count = fd.v
				}
			case fieldHistBuckets:
				c.buckets, err = fd.fixed64s(c.buckets)
			case fieldHistBounds:
				c.bounds, err = fd.fixed64s(c.bounds)
			}
			return err
		})
		if err != nil {
			return err
		}
		p, err := c.common(start, ts, w, now)
		if err != nil {
			return err
		}
		bs, bc := c.bounds, c.buckets
		if len(bc) != len(bs)+1 {
			return fmt.Errorf("%s: %d bucket counts for %d bounds, want %d", w, len(bc), len(bs), len(bs)+1)
		}
		p.cumulative, p.hist = cum, true
		// A fleet's points share their bounds: those of the point before,
		// checked and mapped already, are not read again.
		if scale != c.boundsScale || !slices.Equal(bs, c.prevBounds) {
			c.durs = c.durs[:0]
			prev := math.Inf(-1)
			for i, bits := range bs {
				v := math.Float64frombits(bits)
				if math.IsNaN(v) || v <= prev || v < 0 || v*float64(scale) > float64(24*time.Hour) {
					return fmt.Errorf("%s: explicit_bounds[%d] %v is not increasing, non-negative and under 24h", w, i, v)
				}
				prev = v
				c.durs = append(c.durs, time.Duration(v*float64(scale)))
			}
			c.m0 = int32(len(c.mids))
			c.mids = record.HistogramBuckets(c.mids, c.durs)
			c.prevBounds = append(c.prevBounds[:0], bs...)
			c.boundsScale = scale
		}
		p.m0 = c.m0
		p.v0, p.nv = int32(len(c.vals)), int32(len(bc)+1)
		c.vals = append(c.vals, float64(count))
		var total uint64
		for i, n := range bc {
			if n > count {
				return fmt.Errorf("%s: bucket_counts[%d] %d is over count (%d)", w, i, n, count)
			}
			total += n
			c.vals = append(c.vals, float64(n))
		}
		if count > maxCount {
			return fmt.Errorf("%s: count %d is over %g", w, count, float64(maxCount))
		}
		if total != count {
			return fmt.Errorf("%s: bucket counts add up to %d, not count (%d)", w, total, count)
		}
		if cum {
			p.seriesID = c.seriesID(where.name)
			p.process = c.processID(p.start)
		}
		c.pts = append(c.pts, p)
		return nil
	})
}

func (c *Converter) sum(where loc, typ metricType, data [][]byte, now time.Time) error {
	if typ != typeSum {
		return fmt.Errorf("%s: is a %s, want a monotonic sum (a counter)", where, typ)
	}
	t, monotonic, err := temporality(data, where)
	if err != nil {
		return err
	}
	if !monotonic {
		return fmt.Errorf("%s: is a %s, want a monotonic sum (a counter)", where, typ)
	}
	cum, err := cumulativeTemporality(t, where)
	if err != nil {
		return err
	}
	return dataPoints(data, where, func(w loc, dp []byte) error {
		var bits uint64
		isDouble := false
		start, ts, err := c.readPoint(dp, fieldNumberAttrs, w, func(fd field) error {
			if fd.num != fieldNumberDouble && fd.num != fieldNumberInt {
				return nil
			}
			bits, isDouble = fd.v, fd.num == fieldNumberDouble
			return fd.want(protowire.Fixed64Type)
		})
		if err != nil {
			return err
		}
		p, err := c.common(start, ts, w, now)
		if err != nil {
			return err
		}
		v := float64(int64(bits))
		if isDouble {
			v = math.Float64frombits(bits)
		}
		if math.IsNaN(v) || v < 0 || v > maxCount {
			return fmt.Errorf("%s: value %v is not a number from 0 to %g", w, v, float64(maxCount))
		}
		p.cumulative = cum
		p.v0, p.nv = int32(len(c.vals)), 1
		c.vals = append(c.vals, v)
		if cum {
			p.seriesID = c.seriesID(where.name)
			p.process = c.processID(p.start)
		}
		c.pts = append(c.pts, p)
		return nil
	})
}

// readPoint reads a data point's start and end times and its attributes
// (attrs: their field number) into c.attrs, and hands f its other fields.
func (c *Converter) readPoint(dp []byte, attrs protowire.Number, w loc, f func(fd field) error) (start, ts uint64, err error) {
	c.attrs = c.attrs[:0]
	for b := dp; len(b) > 0; {
		fd, rest, err := next(b)
		if err != nil {
			return 0, 0, wrap(w, err)
		}
		b = rest
		switch fd.num {
		case fieldPointStart, fieldPointTime:
			err = fd.want(protowire.Fixed64Type)
			if fd.num == fieldPointStart {
				start = fd.v
			} else {
				ts = fd.v
			}
		case attrs:
			if err = fd.want(protowire.BytesType); err == nil {
				c.attrs, err = appendAttrs(c.attrs, fd.b)
			}
		default:
			err = f(fd)
		}
		if err != nil {
			return 0, 0, wrap(w, err)
		}
	}
	return start, ts, nil
}

// common reads the current point's zone, instance, operation, outcome and
// times (its attributes are in c.attrs, its resource's in c.res).
func (c *Converter) common(start, ts uint64, w loc, now time.Time) (point, error) {
	var p point
	var err error
	if p.key.Zone, err = c.text(c.Attributes.Zone, slotZone, w); err != nil {
		return p, err
	}
	if p.key.Instance, err = c.text(c.Attributes.Instance, slotInstance, w); err != nil {
		return p, err
	}
	if p.key.Operation, err = c.text(c.Attributes.Operation, slotOperation, w); err != nil {
		return p, err
	}
	if p.key.Operation == "" {
		p.key.Operation = Unmatched
	}
	p.key.Source = observation.Server
	p.outcome = observation.Success
	if st, ok := c.lookup(c.Attributes.Status); ok {
		code, ok := st.statusCode()
		if !ok {
			return p, fmt.Errorf("%s: status %q is not an HTTP status code", w, st.appendText(nil))
		}
		p.outcome = observation.FromStatus(code)
	} else if _, failed := find(c.attrs, "error.type"); failed {
		p.outcome = observation.Fault // no answer at all
	}
	p.at = now
	if ts != 0 {
		p.at = time.Unix(0, int64(ts)).UTC()
		if ahead := p.at.Sub(now); ahead > maxFuture {
			return p, fmt.Errorf("%s: time %s is %s in the future (limit 5m): %w", w, p.at.Format(time.RFC3339Nano), ahead.Round(time.Second), ingest.ErrOutOfWindow)
		}
	}
	if start != 0 {
		p.start = time.Unix(0, int64(start)).UTC()
	}
	return p, nil
}

// lookup finds the first of names on the point, then on its resource.
func (c *Converter) lookup(names []string) (attr, bool) {
	for _, n := range names {
		if a, ok := find(c.attrs, n); ok {
			return a, true
		}
	}
	for _, n := range names {
		if a, ok := find(c.res, n); ok {
			return a, true
		}
	}
	return attr{}, false
}

// The names a point carries, each with its last value remembered: points
// come grouped by resource, so a point's zone and instance are nearly
// always the previous point's.
const (
	slotZone = iota
	slotInstance
	slotOperation
)

// text reads a name (zone, instance, route) as an interned string. A
// missing or empty zone or instance is an error.
func (c *Converter) text(names []string, slot int, w loc) (string, error) {
	a, ok := c.lookup(names)
	if ok && (a.kind == kindArray || a.kind == kindMap) {
		return "", fmt.Errorf("%s: attribute %s is an array or a map, want a string", w, a.key)
	}
	var s string
	switch {
	case !ok:
	case a.kind == kindString:
		if s = c.last[slot]; s != string(a.s) {
			s = c.intern(a.s)
			c.last[slot] = s
		}
	default:
		c.scratch = a.appendText(c.scratch[:0])
		s = c.intern(c.scratch)
	}
	if s == "" && slot != slotOperation {
		return "", fmt.Errorf("%s: no %s attribute (looked for %s)", w, [...]string{"zone", "instance"}[slot], strings.Join(names, ", "))
	}
	return s, nil
}

// processID names the process behind a point: its resource and start time.
func (c *Converter) processID(start time.Time) string {
	return c.identity(start.Format(time.RFC3339Nano), c.res, nil)
}

// seriesID names a cumulative series: the metric, the resource's and the
// point's attributes (every one, not only those grayzone reads: two
// processes on one instance are two series).
func (c *Converter) seriesID(metric []byte) string {
	return c.identity(string(metric), c.res, c.attrs)
}

func (c *Converter) identity(head string, sets ...[]attr) string {
	b := append(c.scratch[:0], head...)
	for _, set := range sets {
		b = append(b, '|')
		c.sorted = append(c.sorted[:0], set...)
		slices.SortStableFunc(c.sorted, func(x, y attr) int { return bytes.Compare(x.key, y.key) })
		for _, a := range c.sorted {
			b = append(b, a.key...)
			b = append(b, '=')
			b = a.appendText(b)
			b = append(b, ';')
		}
	}
	c.scratch = b
	return string(b)
}

// loc names a metric or data point in an export, formatted only for an error.
type loc struct {
	r, s, m int
	name    []byte
	dp      int    // -1: the metric itself
	sub     string // a part of what the rest names (".resource")
}

func (l loc) point(d int) loc { l.dp = d; return l }

func (l loc) in(sub string) loc { l.sub = sub; return l }

func (l loc) String() string {
	s := fmt.Sprintf("resource_metrics[%d]", l.r)
	if l.s >= 0 {
		s += fmt.Sprintf(".scope_metrics[%d]", l.s)
	}
	if l.m >= 0 {
		s += fmt.Sprintf(".metrics[%d] (%s)", l.m, l.name)
	}
	if l.dp >= 0 {
		s += fmt.Sprintf(".data_points[%d]", l.dp)
	}
	return s + l.sub
}
