package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/internal/yamlfield"
	"github.com/grayzone/grayzone/telemetry/emf"
	"github.com/grayzone/grayzone/telemetry/otlp"
	"github.com/grayzone/grayzone/telemetry/prometheus"
)

// Telemetry source types.
const (
	SourceOTLP       = "otlp"
	SourcePrometheus = "prometheus"
	SourceEMF        = "emf"
)

// SourceTypes lists the telemetry source types.
var SourceTypes = []string{SourceOTLP, SourcePrometheus, SourceEMF}

// Defaults of the telemetry section.
const (
	DefaultMaxInstances       = 10_000
	DefaultMaxOperations      = 100
	DefaultMaxPending         = 1_000_000
	DefaultPrometheusInterval = prometheus.DefaultInterval
	DefaultEMFInterval        = time.Second
)

// Telemetry is a resource's telemetry section: caps, and the sources that
// feed its engine beside the front door and the batch API.
type Telemetry struct {
	MaxInstances  int // distinct instances; more are rejected
	MaxOperations int // distinct operations; more are rejected
	MaxPending    int // aggregates queued for the engine; more are dropped
	// RecordObservations: serve appends everything the engine takes, in the
	// batch format, to DATA_DIR/observations-RESOURCE.jsonl, for grayzone replay.
	RecordObservations bool
	Sources            []Source
}

// Source is one telemetry source. Fields apply to the type named.
type Source struct {
	Type string
	Name string // label in /metrics and the dashboard; default the type
	// otlp: listen addresses of OTLP/HTTP (4318) and OTLP/gRPC (4317); at least one.
	HTTP, GRPC string
	// otlp: attribute names, tried in order, on the data point then the resource.
	Attributes Attributes
	// otlp: metric names (histogram of request duration; sum of requests).
	DurationMetric, RequestsMetric string
	// prometheus: the HTTP API's base URL, query interval, queries and labels.
	URL      string
	Interval time.Duration // prometheus, emf: how often counts reach the engine
	Queries  Queries
	Labels   Attributes // prometheus: label names (one each)
	// emf: a file to tail and/or an address to take POSTed lines on.
	File, Listen string
	// emf: dimension and metric names.
	Dimensions Attributes
	Metrics    EMFMetrics
	// otlp, emf (listen): token, TLS and limits of the listener.
	Receiver Receiver
	// prometheus: a file holding the bearer token sent to the server, and
	// how to verify it (https URLs).
	BearerTokenFile string
	ClientTLS       ClientTLS
	// At is where the source is configured ("serve.yaml:27: resources[0].telemetry.sources[1]"), for errors found after parsing.
	At string
}

// Attributes name where zone, instance, operation and status code are found.
type Attributes struct {
	Zone, Instance, Operation, Status []string
}

// Queries are the Prometheus source's PromQL: counters of requests (by
// zone, instance, operation and status) and of the latency histogram's
// buckets (by zone, instance, operation and le).
type Queries struct{ Requests, Latency string }

// EMFMetrics name the EMF metrics: request counts by outcome and latency.
type EMFMetrics struct{ Success, Fault, Error, Latency string }

var (
	telemetryKeys = []string{"max_instances", "max_operations", "max_pending", "record_observations", "sources"}
	sourceKeys    = map[string][]string{
		SourceOTLP:       {"type", "name", "http", "grpc", "attributes", "duration_metric", "requests_metric", "tls", "insecure", "limits"},
		SourcePrometheus: {"type", "name", "url", "interval", "queries", "labels", "selector", "bearer_token_file", "tls"},
		SourceEMF:        {"type", "name", "file", "listen", "interval", "dimensions", "metrics", "tls", "insecure", "limits"},
	}
	attrKeys   = []string{"zone", "instance", "operation", "status"}
	queryKeys  = []string{"requests", "latency"}
	metricKeys = []string{"success", "fault", "error", "latency"}
)

// DefaultOTLPAttributes are OpenTelemetry's semantic conventions (the receiver's defaults).
func DefaultOTLPAttributes() Attributes {
	a := otlp.DefaultAttributes()
	return Attributes{Zone: a.Zone, Instance: a.Instance, Operation: a.Operation, Status: a.Status}
}

// DefaultPrometheusLabels match grayzone's middleware (telemetry/middleware).
func DefaultPrometheusLabels() Attributes {
	l := prometheus.DefaultLabels()
	return Attributes{Zone: []string{l.Zone}, Instance: []string{l.Instance}, Operation: []string{l.Operation}, Status: []string{l.Status}}
}

// DefaultPrometheusQueries read the middleware's shape.
func DefaultPrometheusQueries() Queries {
	return Queries{Requests: prometheus.DefaultRequests, Latency: prometheus.DefaultLatency}
}

// DefaultEMFDimensions are the workshop application's dimension names.
func DefaultEMFDimensions() Attributes {
	n := emf.WorkshopNames()
	return Attributes{Zone: []string{n.Zone}, Instance: []string{n.Instance}, Operation: []string{n.Operation}}
}

// DefaultEMFMetrics are the workshop application's metric names.
func DefaultEMFMetrics() EMFMetrics {
	n := emf.WorkshopNames()
	return EMFMetrics{Success: n.Success, Fault: n.Fault, Error: n.Error, Latency: n.Latency}
}

func defaultTelemetry() Telemetry {
	return Telemetry{MaxInstances: DefaultMaxInstances, MaxOperations: DefaultMaxOperations, MaxPending: DefaultMaxPending}
}

// telemetry parses a resource's telemetry section.
func (p *parser) telemetry(f yamlfield.Field) Telemetry {
	t := defaultTelemetry()
	m, ok := p.Mapping(f, telemetryKeys)
	if !ok {
		return t
	}
	if v, ok := m.Get("max_instances"); ok {
		t.MaxInstances, _ = p.IntIn(v, 1, 10_000_000)
	}
	if v, ok := m.Get("max_operations"); ok {
		t.MaxOperations, _ = p.IntIn(v, 1, 100_000)
	}
	if v, ok := m.Get("max_pending"); ok {
		t.MaxPending, _ = p.IntIn(v, 1000, 100_000_000)
	}
	if v, ok := m.Get("record_observations"); ok {
		t.RecordObservations, _ = p.Boolean(v)
	}
	sf, ok := m.Get("sources")
	if !ok {
		return t
	}
	items, ok := p.List(sf, "a list of sources ({type: otlp|prometheus|emf, ...})")
	if !ok {
		return t
	}
	names := map[string]int{}
	for _, it := range items {
		if s, ok := p.source(it, names); ok {
			t.Sources = append(t.Sources, s)
		}
	}
	return t
}

func (p *parser) source(f yamlfield.Field, names map[string]int) (Source, bool) {
	var s Source
	if f.Val == nil || f.Val.Kind != yaml.MappingNode {
		p.TypeErr(f, "a mapping ({type: otlp|prometheus|emf, ...})")
		return s, false
	}
	// The type decides which keys are known; read it first.
	var typ string
	for i := 0; i+1 < len(f.Val.Content); i += 2 {
		if f.Val.Content[i].Value == "type" {
			typ = f.Val.Content[i+1].Value
		}
	}
	known, ok := sourceKeys[typ]
	if !ok {
		known = []string{"type"}
	}
	m, ok := p.Mapping(f, known)
	if !ok {
		return s, false
	}
	tf, ok := p.Require(m, "type")
	if !ok {
		return s, false
	}
	if !slices.Contains(SourceTypes, typ) {
		p.Errorf(tf, "unknown source type %s (want one of %s)", yamlfield.Quote(typ), strings.Join(SourceTypes, ", "))
		return s, false
	}
	s.Type, s.Name = typ, typ
	if nf, ok := m.Get("name"); ok {
		if v, ok := p.Str(nf); ok {
			if !opRe.MatchString(v) {
				p.Errorf(nf, "%s is not a valid name ([a-z0-9_-]{1,63})", yamlfield.Quote(v))
			}
			s.Name = v
		}
	}
	if l, dup := names[s.Name]; dup {
		p.Errorf(tf, "a second source named %s (first at line %d); give each a distinct name", yamlfield.Quote(s.Name), l)
		return s, false
	}
	names[s.Name] = f.Line
	s.At = fmt.Sprintf("%s:%d: %s", p.File, f.Line, f.Path)
	switch typ {
	case SourceOTLP:
		s.Attributes = DefaultOTLPAttributes()
		s.DurationMetric, s.RequestsMetric = otlp.DefaultDurationMetric, otlp.DefaultRequestsMetric
		h, hasH := m.Get("http")
		g, hasG := m.Get("grpc")
		if !hasH && !hasG {
			p.Errorf(tf, "an otlp source needs http or grpc (listen addresses, e.g. 127.0.0.1:4318 and 127.0.0.1:4317)")
		}
		if hasH {
			s.HTTP, _ = p.listenAddr(h)
		}
		if hasG {
			s.GRPC, _ = p.listenAddr(g)
		}
		if af, ok := m.Get("attributes"); ok {
			p.attributes(af, &s.Attributes, false)
		}
		if v, ok := m.Get("duration_metric"); ok {
			s.DurationMetric, _ = p.Str(v)
		}
		if v, ok := m.Get("requests_metric"); ok {
			s.RequestsMetric, _ = p.Str(v)
		}
		p.receiver(m, &s.Receiver)
	case SourcePrometheus:
		s.Interval, s.Queries, s.Labels = DefaultPrometheusInterval, DefaultPrometheusQueries(), DefaultPrometheusLabels()
		if uf, ok := p.Require(m, "url"); ok {
			if v, ok := p.Str(uf); ok {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					p.Errorf(uf, "%s is not an http(s) URL (e.g. http://127.0.0.1:9090)", yamlfield.Quote(v))
				}
				s.URL = v
			}
		}
		if v, ok := m.Get("interval"); ok {
			s.Interval, _ = p.DurationIn(v, 100*time.Millisecond, 10*time.Minute)
		}
		if sf, ok := m.Get("selector"); ok {
			if v, ok := p.Str(sf); ok {
				if strings.TrimSpace(v) == "" || strings.ContainsAny(v, "{}") {
					p.Errorf(sf, "%s is not a label selector without braces (e.g. job=\"checkout\")", yamlfield.Quote(v))
				}
				s.Queries.Requests, s.Queries.Latency = prometheus.DefaultQueries(v)
			}
		}
		if qf, ok := m.Get("queries"); ok {
			if qm, ok := p.Mapping(qf, queryKeys); ok {
				if v, ok := qm.Get("requests"); ok {
					s.Queries.Requests, _ = p.Str(v)
				}
				if v, ok := qm.Get("latency"); ok {
					s.Queries.Latency, _ = p.Str(v)
				}
			}
		}
		if lf, ok := m.Get("labels"); ok {
			p.attributes(lf, &s.Labels, true)
		}
		p.promAuth(m, &s)
	case SourceEMF:
		s.Interval, s.Dimensions, s.Metrics = DefaultEMFInterval, DefaultEMFDimensions(), DefaultEMFMetrics()
		ff, hasF := m.Get("file")
		lf, hasL := m.Get("listen")
		if !hasF && !hasL {
			p.Errorf(tf, "an emf source needs file (a log to tail) or listen (an address taking POSTed lines)")
		}
		if hasF {
			if v, ok := p.Str(ff); ok {
				if !filepath.IsAbs(v) {
					v = filepath.Join(filepath.Dir(p.File), v)
				}
				s.File = v
			}
		}
		if hasL {
			s.Listen, _ = p.listenAddr(lf)
		}
		p.receiver(m, &s.Receiver)
		if !hasL {
			for _, k := range receiverKeys {
				if kf, ok := m.Get(k); ok {
					p.Errorf(kf, "applies to listen only (a tailed file needs no credentials)")
				}
			}
		}
		if v, ok := m.Get("interval"); ok {
			s.Interval, _ = p.DurationIn(v, 100*time.Millisecond, time.Minute)
		}
		if df, ok := m.Get("dimensions"); ok {
			p.attributes(df, &s.Dimensions, true)
		}
		if mf, ok := m.Get("metrics"); ok {
			if mm, ok := p.Mapping(mf, metricKeys); ok {
				for key, dst := range map[string]*string{"success": &s.Metrics.Success, "fault": &s.Metrics.Fault, "error": &s.Metrics.Error, "latency": &s.Metrics.Latency} {
					if v, ok := mm.Get(key); ok {
						*dst, _ = p.Str(v)
					}
				}
			}
		}
	}
	return s, true
}

// attributes reads {zone, instance, operation, status}: each a name or a
// list of names tried in order (one name only when single).
func (p *parser) attributes(f yamlfield.Field, a *Attributes, single bool) {
	m, ok := p.Mapping(f, attrKeys)
	if !ok {
		return
	}
	for key, dst := range map[string]*[]string{"zone": &a.Zone, "instance": &a.Instance, "operation": &a.Operation, "status": &a.Status} {
		v, ok := m.Get(key)
		if !ok {
			continue
		}
		if v.Val != nil && v.Val.Kind == yaml.SequenceNode && !single {
			items, _ := p.List(v, "a list of attribute names")
			var names []string
			for _, it := range items {
				if s, ok := p.Str(it); ok && s != "" {
					names = append(names, s)
				}
			}
			if len(names) > 0 {
				*dst = names
			}
			continue
		}
		if s, ok := p.Str(v); ok && s != "" {
			*dst = []string{s}
		}
	}
}

// RunbookPolicy is the runbook's policy for r, as grayzone serve runs it
// (replay uses it too).
func (r *Resource) RunbookPolicy() runbook.Policy {
	return runbook.Policy{Resource: r.Name, ControlPlaneAfter: r.Autoshift.ControlPlaneAfter,
		RecoveryHold: r.Autoshift.RecoveryHold, NoControlPlane: r.ControlPlane.Type == ControlPlaneNone,
		Ramp: r.Autoshift.Ramp, StepHold: r.Autoshift.StepHold}
}
