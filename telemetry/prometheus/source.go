// Package prometheus is grayzone's Prometheus source: at an interval it runs
// two PromQL queries against a Prometheus-compatible HTTP API (Prometheus,
// Thanos, Mimir, VictoriaMetrics) — request counters by zone, instance,
// operation and status code, and the latency histogram's bucket counters by
// zone, instance, operation and le — turns the counters into per-interval
// deltas (per series, resets handled, like OTLP's cumulative points) and
// hands the engine one aggregate per zone, instance and operation. The
// default queries read the shape grayzone's Go middleware exposes
// (http_requests_total, http_request_duration_seconds).
package prometheus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/grayzone/grayzone/telemetry/cumulative"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Defaults: the middleware's shape, read only from the scrape job named
// DefaultSelector. Prometheus sets job from its scrape configuration, and a
// target of another job (honor_labels false, the default) cannot override
// it, so an arbitrary scraped workload cannot publish zone-labelled 5xx
// counts into the engine; only the application's own job (honor_labels:
// true, for its instance label) is read.
const (
	DefaultSelector = `job="grayzone"`
	DefaultRequests = `sum by (zone, instance, route, code) (http_requests_total{` + DefaultSelector + `})`
	DefaultLatency  = `sum by (zone, instance, route, le) (http_request_duration_seconds_bucket{` + DefaultSelector + `})`
	DefaultInterval = 5 * time.Second
)

// DefaultQueries are the default queries with another label selector
// (e.g. job="checkout", or a label a metric_relabel_configs rule adds).
func DefaultQueries(selector string) (requests, latency string) {
	return `sum by (zone, instance, route, code) (http_requests_total{` + selector + `})`,
		`sum by (zone, instance, route, le) (http_request_duration_seconds_bucket{` + selector + `})`
}

// Labels name the labels the queries' results carry.
type Labels struct{ Zone, Instance, Operation, Status string }

// DefaultLabels match the default queries.
func DefaultLabels() Labels {
	return Labels{Zone: "zone", Instance: "instance", Operation: "route", Status: "code"}
}

// Config configures a Source.
type Config struct {
	Name     string // source name in the counters (default prometheus)
	URL      string // the HTTP API's base URL (http://127.0.0.1:9090)
	Interval time.Duration
	Requests string // PromQL: request counters
	Latency  string // PromQL: latency bucket counters (empty: none)
	Labels   Labels
	Sink     ingest.Sink
	Now      func() time.Time
	Log      *slog.Logger
	// BearerTokenFile holds a token sent as "Authorization: Bearer" on
	// every query (re-read when the file changes); empty: none.
	BearerTokenFile string
	// TLS verifies an https URL's server (RootCAs, ServerName) and may
	// present a client certificate; nil: the system's roots.
	TLS *tls.Config
}

// Source queries Prometheus at an interval.
type Source struct {
	cfg     Config
	api     v1.API
	tracker cumulative.Tracker
	// polled: a series first seen after the first poll began while we were
	// watching (a counter appears with its first increment, e.g. the first
	// 5xx), so it counts from zero; at the first poll it is a baseline.
	polled bool
}

// New checks the configuration.
func New(cfg Config) (*Source, error) {
	if cfg.Name == "" {
		cfg.Name = "prometheus"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Requests == "" {
		cfg.Requests, cfg.Latency = DefaultRequests, DefaultLatency
	}
	if cfg.Labels.Zone == "" {
		cfg.Labels = DefaultLabels()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	var rt http.RoundTripper = promapi.DefaultRoundTripper
	if cfg.TLS != nil {
		t := promapi.DefaultRoundTripper.(*http.Transport).Clone()
		t.TLSClientConfig = cfg.TLS
		rt = t
	}
	if cfg.BearerTokenFile != "" {
		if _, err := readToken(cfg.BearerTokenFile); err != nil {
			return nil, fmt.Errorf("prometheus: bearer_token_file: %w", err)
		}
		rt = &bearerRT{file: cfg.BearerTokenFile, next: rt}
	}
	c, err := promapi.NewClient(promapi.Config{Address: cfg.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	return &Source{cfg: cfg, api: v1.NewAPI(c)}, nil
}

// Run polls every interval until ctx ends. Prometheus being down costs
// only freshness: the engine keeps deciding on what it has.
func (s *Source) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.Poll(ctx, s.cfg.Now()); err != nil && ctx.Err() == nil {
				s.cfg.Log.Warn("prometheus: poll failed", "source", s.cfg.Name, "err", err)
			}
		}
	}
}

// Poll runs the queries at time at and offers the deltas since the last poll.
func (s *Source) Poll(ctx context.Context, at time.Time) error {
	qctx, cancel := context.WithTimeout(ctx, max(s.cfg.Interval, 2*time.Second))
	defer cancel()
	req, err := s.query(qctx, s.cfg.Requests, at)
	if err != nil {
		return err
	}
	var lat model.Vector
	if s.cfg.Latency != "" {
		if lat, err = s.query(qctx, s.cfg.Latency, at); err != nil {
			return err
		}
	}
	aggs, err := s.convert(req, lat, at)
	if err == nil {
		s.polled = true
	}
	if err != nil {
		err = fmt.Errorf("prometheus: %w", err)
		s.cfg.Sink.Reject(s.cfg.Name, err)
		return err
	}
	if len(aggs) == 0 {
		return nil
	}
	if err := s.cfg.Sink.Offer(s.cfg.Name, aggs, at); err != nil && !errors.Is(err, ingest.ErrFull) {
		return err
	}
	return nil
}

func (s *Source) query(ctx context.Context, q string, at time.Time) (model.Vector, error) {
	v, _, _, err := s.api.Query(ctx, q, at)
	if err != nil {
		return nil, fmt.Errorf("prometheus: query %q: %w", q, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		err := fmt.Errorf("prometheus: query %q returned a %s, want an instant vector", q, v.Type())
		s.cfg.Sink.Reject(s.cfg.Name, err)
		return nil, err
	}
	return vec, nil
}

type groupKey = record.SeriesKey

// convert validates both results, then turns them into deltas per series.
func (s *Source) convert(req, lat model.Vector, at time.Time) ([]record.Aggregate, error) {
	l := s.cfg.Labels
	key := func(m model.Metric, i int, what string) (groupKey, error) {
		z, inst, op := string(m[model.LabelName(l.Zone)]), string(m[model.LabelName(l.Instance)]), string(m[model.LabelName(l.Operation)])
		switch {
		case z == "":
			return groupKey{}, fmt.Errorf("%s result %d (%s): no %q label", what, i, m, l.Zone)
		case inst == "":
			return groupKey{}, fmt.Errorf("%s result %d (%s): no %q label", what, i, m, l.Instance)
		case op == "":
			op = "unmatched"
		}
		return groupKey{Source: observation.Server, Zone: z, Instance: inst, Operation: op}, nil
	}
	type reqPt struct {
		k       groupKey
		outcome observation.Outcome
		id      string
		v       float64
	}
	type latPt struct {
		k  groupKey
		le float64
		id string
		v  float64
	}
	var reqs []reqPt
	var lats []latPt
	for i, smp := range req {
		k, err := key(smp.Metric, i, "requests")
		if err != nil {
			return nil, err
		}
		v := float64(smp.Value)
		if math.IsNaN(v) || v < 0 || v > 1e15 {
			return nil, fmt.Errorf("requests result %d (%s): %v is not a counter value", i, smp.Metric, v)
		}
		o := observation.Success
		if code := string(smp.Metric[model.LabelName(l.Status)]); code != "" {
			switch code[0] {
			case '5':
				o = observation.Fault
			case '4':
				o = observation.Error
			case '1', '2', '3':
			default:
				return nil, fmt.Errorf("requests result %d (%s): %s %q is not an HTTP status", i, smp.Metric, l.Status, code)
			}
		}
		reqs = append(reqs, reqPt{k, o, "r|" + smp.Metric.String(), v})
	}
	for i, smp := range lat {
		k, err := key(smp.Metric, i, "latency")
		if err != nil {
			return nil, err
		}
		les := string(smp.Metric["le"])
		le, err := strconv.ParseFloat(les, 64)
		if err != nil || le < 0 || math.IsNaN(le) {
			return nil, fmt.Errorf("latency result %d (%s): le %q is not a bucket bound", i, smp.Metric, les)
		}
		v := float64(smp.Value)
		if math.IsNaN(v) || v < 0 || v > 1e15 {
			return nil, fmt.Errorf("latency result %d (%s): %v is not a counter value", i, smp.Metric, v)
		}
		lats = append(lats, latPt{k, le, "l|" + smp.Metric.String(), v})
	}

	idx := map[groupKey]int{}
	var out []record.Aggregate
	var d []float64
	for _, p := range reqs {
		var ok bool
		var err error
		if d, ok, err = s.tracker.Delta(p.id, time.Time{}, at, []float64{p.v}, d, s.polled); err != nil {
			return nil, err
		}
		n := uint64(math.Round(d[0]))
		if !ok || n == 0 {
			continue
		}
		i, seen := idx[p.k]
		if !seen {
			i = len(out)
			idx[p.k] = i
			out = append(out, record.Aggregate{At: at, Key: p.k, Slow: record.SlowFromLatency})
		}
		a := &out[i]
		a.Count(p.outcome, n)
	}
	// Latency: per group, the cumulative-by-le deltas become per-bucket counts.
	byGroup := map[groupKey][][2]float64{} // le, delta
	for _, p := range lats {
		var ok bool
		var err error
		if d, ok, err = s.tracker.Delta(p.id, time.Time{}, at, []float64{p.v}, d, s.polled); err != nil {
			return nil, err
		}
		if ok {
			byGroup[p.k] = append(byGroup[p.k], [2]float64{p.le, d[0]})
		}
	}
	for k, bs := range byGroup {
		i, ok := idx[k]
		if !ok {
			continue // no new requests
		}
		slices.SortFunc(bs, func(x, y [2]float64) int { return cmpFloat(x[0], y[0]) })
		var bounds []time.Duration
		var counts []uint64
		prev := 0.0
		for _, b := range bs {
			c := max(0, math.Round(b[1]-prev))
			prev = max(prev, b[1])
			if math.IsInf(b[0], 1) {
				counts = append(counts, uint64(c))
				continue
			}
			bounds = append(bounds, time.Duration(b[0]*float64(time.Second)))
			counts = append(counts, uint64(c))
		}
		if len(counts) == len(bounds) { // no +Inf bucket
			counts = append(counts, 0)
		}
		out[i].AddHistogram(bounds, counts)
	}
	for i := range out {
		if len(out[i].Latency) == 0 {
			out[i].Slow = 0 // counters without a histogram say nothing of latency
		}
	}
	slices.SortFunc(out, func(x, y record.Aggregate) int {
		return strings.Compare(x.Key.Zone+"\x00"+x.Key.Instance+"\x00"+x.Key.Operation, y.Key.Zone+"\x00"+y.Key.Instance+"\x00"+y.Key.Operation)
	})
	return out, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Convert turns one pair of query results at time at into aggregates, as a
// poll does (the first call is the baseline). The lab's sim mode feeds it
// scrape results it models.
func (s *Source) Convert(req, lat model.Vector, at time.Time) ([]record.Aggregate, error) {
	aggs, err := s.convert(req, lat, at)
	if err == nil {
		s.polled = true
	}
	return aggs, err
}

// Range runs both queries over [start, end] at step (query_range) and
// returns the per-step deltas, as Poll would have produced them live: the
// first step is the baseline. Replay reads a past incident with it.
func (s *Source) Range(ctx context.Context, start, end time.Time, step time.Duration) ([]record.Aggregate, error) {
	r := v1.Range{Start: start, End: end, Step: step}
	at := func(q string) (map[int64]model.Vector, error) {
		v, _, _, err := s.api.QueryRange(ctx, q, r)
		if err != nil {
			return nil, fmt.Errorf("prometheus: query_range %q: %w", q, err)
		}
		m, ok := v.(model.Matrix)
		if !ok {
			return nil, fmt.Errorf("prometheus: query_range %q returned a %s, want a matrix", q, v.Type())
		}
		out := map[int64]model.Vector{}
		for _, ss := range m {
			for _, p := range ss.Values {
				t := int64(p.Timestamp)
				out[t] = append(out[t], &model.Sample{Metric: ss.Metric, Value: p.Value, Timestamp: p.Timestamp})
			}
		}
		return out, nil
	}
	req, err := at(s.cfg.Requests)
	if err != nil {
		return nil, err
	}
	lat := map[int64]model.Vector{}
	if s.cfg.Latency != "" {
		if lat, err = at(s.cfg.Latency); err != nil {
			return nil, err
		}
	}
	var steps []int64
	for t := range req {
		steps = append(steps, t)
	}
	slices.Sort(steps)
	var out []record.Aggregate
	for i, t := range steps {
		aggs, err := s.convert(req[t], lat[t], time.UnixMilli(t).UTC())
		if err != nil {
			return nil, fmt.Errorf("prometheus: step %d: %w", i, err)
		}
		s.polled = true
		out = append(out, aggs...)
	}
	return out, nil
}

// bearerRT adds the token of a file to each query, reading the file again
// for each (a query a few seconds is nothing; a rotated token just works).
type bearerRT struct {
	file string
	next http.RoundTripper
}

func (b *bearerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := readToken(b.file)
	if err != nil {
		return nil, fmt.Errorf("bearer_token_file: %w", err)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return b.next.RoundTrip(r)
}

func readToken(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s: want one token on one line", file)
	}
	return tok, nil
}
