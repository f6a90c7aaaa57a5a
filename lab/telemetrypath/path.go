// Package telemetrypath carries the lab's server-side observations to the
// ingest gate through one of grayzone's telemetry paths, in sim mode: the
// front door's own counters (direct: grayzone serve's default signal), the Go
// middleware (record counters shipped as aggregated batches), OTLP
// (cumulative histograms encoded to protobuf and read by the receiver's
// converter), Prometheus (counters as a scrape would show them, read by the
// source's converter) or CloudWatch EMF (one JSON line per request, parsed
// and aggregated) — each with its interval, so the detection delay a path
// adds is the real one. Canary observations are offered to the gate as they
// come, as they are in serve.
package telemetrypath

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/grayzone/grayzone/telemetry/batch"
	"github.com/grayzone/grayzone/telemetry/emf"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
	"github.com/grayzone/grayzone/telemetry/otlp"
	"github.com/grayzone/grayzone/telemetry/prometheus"
	"github.com/grayzone/grayzone/telemetry/record"
)

// The paths.
const (
	Direct     = "direct"
	Middleware = "middleware"
	OTLP       = "otlp"
	Prometheus = "prometheus"
	EMF        = "emf"
)

// Names lists the paths.
var Names = []string{Direct, Middleware, OTLP, Prometheus, EMF}

// Interval is every path's export, scrape or flush interval in the lab.
const Interval = time.Second

// Sink is the resource's ingest gate. Offer copies what it takes: the
// path reuses the slice it offers.
type Sink interface {
	Offer(source string, aggs []record.Aggregate, now time.Time) error
}

// SourceCanary is the source canary observations are offered under.
const SourceCanary = "canary"

// Path is one path. Not safe for concurrent use (sim mode is one loop).
type Path struct {
	kind string
	sink Sink
	next time.Time
	// held are server-side observations whose request has not completed
	// yet (the sim reports a request when it starts, stamped with when it
	// ends): an instance can only count a request once it is done.
	held []observation.Observation
	// every and last, once CountEarly is called: the caller's tick
	// interval and its last tick (start before the first); early, then,
	// for the paths that count early, which count a request completed by
	// due (last + every) when it is observed.
	every time.Duration
	last  time.Time
	early bool
	due   time.Time

	rec *record.Recorder // direct (the front door's recorder), middleware
	// series are the resolved series by instance: a lookup by one
	// string, then a short scan of the instance's few series (a map keyed
	// by the whole SeriesKey hashed four fields per request).
	series map[string][]*record.Series

	start time.Time // otlp, prometheus: the processes' start
	cum   map[cumKey]*cumulative
	conv  *otlp.Converter
	prom  *prometheus.Source

	names emf.Names // emf
	agg   emf.Aggregator
	line  []byte

	// one carries a canary observation to the sink, which copies it: one
	// slice for the run rather than one per canary call.
	one []record.Aggregate
}

type cumKey struct {
	zone, instance, op string
	code               int
}

type cumulative struct {
	count   uint64
	buckets []uint64 // len(bounds)+1
}

// bounds are the OTLP and Prometheus histograms' bucket bounds, in seconds.
var bounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// New returns the named path feeding sink, starting at start. frontDoor is
// the front door's recorder, which the direct path counts customer requests
// in (the resource's intake drains it into the gate at each tick).
func New(kind string, sink Sink, frontDoor *record.Recorder, start time.Time) (*Path, error) {
	p := &Path{kind: kind, sink: sink, next: start.Add(Interval), start: start, last: start, series: map[string][]*record.Series{}, one: make([]record.Aggregate, 1)}
	switch kind {
	case Direct:
		p.rec = frontDoor
	case Middleware:
		p.rec = record.New(record.Options{Thresholds: operation.Thresholds()})
	case OTLP:
		p.cum = map[cumKey]*cumulative{}
		p.conv = &otlp.Converter{Attributes: otlp.DefaultAttributes(), DurationMetric: otlp.DefaultDurationMetric, RequestsMetric: otlp.DefaultRequestsMetric}
		p.conv.Tracker.Since = start
	case Prometheus:
		p.cum = map[cumKey]*cumulative{}
		src, err := prometheus.New(prometheus.Config{URL: "http://sim.invalid"})
		if err != nil {
			return nil, err
		}
		p.prom = src
	case EMF:
		p.names = emf.WorkshopNames()
		p.agg = emf.Aggregator{Interval: Interval}
	default:
		return nil, fmt.Errorf("--telemetry %q: want one of %v", kind, Names)
	}
	return p, nil
}

// CountEarly says the caller calls Tick every d from the start, no more
// and no less often (sim mode's loop): the direct and middleware paths then
// count a request that completes by the next tick when it is observed,
// rather than holding it until that tick. Nothing reads their counters
// between the two (the intake and the middleware drain them in or after a
// tick), and counting commutes, so the numbers are the same. A series'
// first request still waits for its tick, so the recorder creates its
// series, and drains them, in the same order.
func (p *Path) CountEarly(d time.Duration) {
	p.every = d
	p.early = d > 0 && (p.kind == Direct || p.kind == Middleware)
	p.due = p.last.Add(d)
}

// Observe takes one observation.
func (p *Path) Observe(o observation.Observation) error {
	if o.Source != observation.Server {
		p.one[0] = record.Single(o)
		err := p.sink.Offer(SourceCanary, p.one, o.At)
		p.one[0] = record.Aggregate{}
		return err
	}
	// A server-side observation takes the one way its Counter does.
	c := Counter{p: p, zone: o.Zone, instance: o.Instance, op: o.Operation}
	c.Observe(o.At, o.Outcome, o.Latency)
	return nil
}

// Counter is one instance's operation's way into the path for its
// server-side observations: Observe of each, without building it, nor
// (once the path has counted in the series) looking the series up by name.
// Sim mode takes one per instance and operation and counts through it at
// every request.
type Counter struct {
	p                  *Path
	zone, instance, op string
	s                  *record.Series // once known
}

// Counter returns the counter of the operation op of instance in zone.
func (p *Path) Counter(zone, instance, op string) *Counter {
	return &Counter{p: p, zone: zone, instance: instance, op: op}
}

// Observe is Path.Observe of the server-side observation of a request
// completed at at.
func (c *Counter) Observe(at time.Time, outcome observation.Outcome, latency time.Duration) {
	p := c.p
	if p.early && !at.After(p.due) {
		if c.s == nil {
			c.s = p.known(c.zone, c.instance, c.op)
		}
		if c.s != nil {
			c.s.Observe(outcome, latency)
			return
		}
	}
	p.held = append(p.held, observation.Observation{At: at, Source: observation.Server, Zone: c.zone, Instance: c.instance,
		Operation: c.op, Outcome: outcome, Latency: latency})
}

// count records a completed request in the path's instrumentation.
func (p *Path) count(o observation.Observation) {
	switch p.kind {
	case Direct, Middleware:
		p.seriesOf(o).Observe(o.Outcome, o.Latency)
	case OTLP, Prometheus:
		code := map[observation.Outcome]int{observation.Success: 200, observation.Error: 400, observation.Fault: 500}[o.Outcome]
		k := cumKey{o.Zone, o.Instance, o.Operation, code}
		c := p.cum[k]
		if c == nil {
			c = &cumulative{buckets: make([]uint64, len(bounds)+1)}
			p.cum[k] = c
		}
		c.count++
		v := o.Latency.Seconds()
		i, _ := slices.BinarySearch(bounds, v)
		c.buckets[i]++
	case EMF:
		// The workshop application's line for one request.
		p.line = emf.AppendRequest(p.line[:0], "lab", o.At, o.Zone, o.Instance, o.Operation, o.Outcome, o.Latency)
		if l, ok, err := p.names.Parse(p.line); err == nil && ok {
			p.agg.Add(l)
		}
	}
}

// seriesOf returns the recorder's series of o.
func (p *Path) seriesOf(o observation.Observation) *record.Series {
	if s := p.known(o.Zone, o.Instance, o.Operation); s != nil {
		return s
	}
	s := p.rec.Series(o.Source, o.Zone, o.Instance, o.Operation)
	p.series[o.Instance] = append(p.series[o.Instance], s)
	return s
}

// known returns the server-side series of the instance's operation if the
// path has counted in it before, else nil.
func (p *Path) known(zone, instance, op string) *record.Series {
	for _, s := range p.series[instance] {
		// The instance is the map's: the operation first, the field that
		// tells an instance's series apart.
		if k := s.Key(); k.Operation == op && k.Zone == zone && k.Source == observation.Server {
			return s
		}
	}
	return nil
}

// Tick counts the requests completed by now and exports at each interval
// boundary.
func (p *Path) Tick(now time.Time) error {
	p.last, p.due = now, now.Add(p.every)
	kept := p.held[:0]
	for _, o := range p.held {
		if o.At.After(now) {
			kept = append(kept, o)
			continue
		}
		p.count(o)
	}
	clear(p.held[len(kept):])
	p.held = kept
	if p.kind == Direct || now.Before(p.next) { // the front door's counters are drained by the intake
		return nil
	}
	p.next = now.Truncate(Interval).Add(Interval)
	var aggs []record.Aggregate
	var err error
	switch p.kind {
	case Middleware:
		aggs, err = p.middleware(now)
	case OTLP:
		aggs, err = p.otlp(now)
	case Prometheus:
		aggs, err = p.prometheus(now)
	case EMF:
		aggs = p.agg.Flush(now)
	}
	if err != nil {
		return fmt.Errorf("telemetry path %s: %w", p.kind, err)
	}
	if len(aggs) > 0 {
		return p.sink.Offer(p.kind, aggs, now)
	}
	return nil
}

// middleware drains the counters and sends them through the batch API's
// wire format, as the middleware ships them.
func (p *Path) middleware(now time.Time) ([]record.Aggregate, error) {
	var w []batch.AggregateIn
	p.rec.Drain(func(k record.SeriesKey, d record.Snapshot) { w = append(w, batch.EncodeAggregate(d.Aggregate(now, k))) })
	if len(w) == 0 {
		return nil, nil
	}
	body, err := json.Marshal(map[string]any{"resource": "lab", "aggregates": w})
	if err != nil {
		return nil, err
	}
	_, _, aggs, err := batch.Decode(body, now)
	return aggs, err
}

func (p *Path) keys() []cumKey {
	ks := make([]cumKey, 0, len(p.cum))
	for k := range p.cum {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b cumKey) int {
		return cmpKey(a, b)
	})
	return ks
}

func cmpKey(a, b cumKey) int {
	for _, c := range [][2]string{{a.zone, b.zone}, {a.instance, b.instance}, {a.op, b.op}} {
		if c[0] != c[1] {
			if c[0] < c[1] {
				return -1
			}
			return 1
		}
	}
	return a.code - b.code
}

// otlp exports every series' cumulative histogram, as an SDK with
// cumulative temporality would, through protobuf and the receiver's converter.
func (p *Path) otlp(now time.Time) ([]record.Aggregate, error) {
	md := pmetric.NewMetrics()
	byInst := map[[2]string]pmetric.HistogramDataPointSlice{}
	for _, k := range p.keys() {
		c := p.cum[k]
		dps, ok := byInst[[2]string{k.zone, k.instance}]
		if !ok {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("cloud.availability_zone", k.zone)
			rm.Resource().Attributes().PutStr("service.instance.id", k.instance)
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName(otlp.DefaultDurationMetric)
			m.SetUnit("s")
			h := m.SetEmptyHistogram()
			h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			dps = h.DataPoints()
			byInst[[2]string{k.zone, k.instance}] = dps
		}
		dp := dps.AppendEmpty()
		dp.Attributes().PutStr("http.route", k.op)
		dp.Attributes().PutInt("http.response.status_code", int64(k.code))
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(p.start))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(now))
		dp.ExplicitBounds().FromRaw(bounds)
		dp.BucketCounts().FromRaw(c.buckets)
		dp.SetCount(c.count)
	}
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		return nil, err
	}
	return p.conv.Convert(body, now)
}

// prometheus shows the counters as the default queries' results would, and
// reads them with the source's converter.
func (p *Path) prometheus(now time.Time) ([]record.Aggregate, error) {
	ts := model.TimeFromUnixNano(now.UnixNano())
	var req, lat model.Vector
	les := map[[3]string][]uint64{}
	for _, k := range p.keys() {
		c := p.cum[k]
		req = append(req, &model.Sample{Metric: model.Metric{"zone": model.LabelValue(k.zone), "instance": model.LabelValue(k.instance),
			"route": model.LabelValue(k.op), "code": model.LabelValue(strconv.Itoa(k.code/100) + "xx")}, Value: model.SampleValue(c.count), Timestamp: ts})
		g := [3]string{k.zone, k.instance, k.op}
		if les[g] == nil {
			les[g] = make([]uint64, len(bounds)+1)
		}
		for i, n := range c.buckets {
			les[g][i] += n
		}
	}
	groups := make([][3]string, 0, len(les))
	for g := range les {
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b [3]string) int { return cmpKey(cumKey{a[0], a[1], a[2], 0}, cumKey{b[0], b[1], b[2], 0}) })
	for _, g := range groups {
		var run uint64
		for i, n := range les[g] {
			run += n
			le := "+Inf"
			if i < len(bounds) {
				le = strconv.FormatFloat(bounds[i], 'g', -1, 64)
			}
			lat = append(lat, &model.Sample{Metric: model.Metric{"zone": model.LabelValue(g[0]), "instance": model.LabelValue(g[1]),
				"route": model.LabelValue(g[2]), "le": model.LabelValue(le)}, Value: model.SampleValue(run), Timestamp: ts})
		}
	}
	return p.prom.Convert(req, lat, now)
}
