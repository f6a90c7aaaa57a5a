package config

import (
	"github.com/grayzone/grayzone/telemetry/emf"
	"github.com/grayzone/grayzone/telemetry/otlp"
	"github.com/grayzone/grayzone/telemetry/prometheus"
)

// The adapters' configuration of a source, from its section: serve starts
// the sources with it, replay reads recordings with it. The caller adds
// what only it knows (Sink, Now, Log; a listener's Security and Limits, a
// client's TLS: certificates it loads and reloads).

// OTLPConfig is an otlp source's receiver configuration.
func (sc Source) OTLPConfig() otlp.Config {
	a := sc.Attributes
	return otlp.Config{Name: sc.Name, HTTP: sc.HTTP, GRPC: sc.GRPC,
		Attributes:     otlp.Attributes{Zone: a.Zone, Instance: a.Instance, Operation: a.Operation, Status: a.Status},
		DurationMetric: sc.DurationMetric, RequestsMetric: sc.RequestsMetric}
}

// PrometheusConfig is a prometheus source's configuration.
func (sc Source) PrometheusConfig() prometheus.Config {
	l := sc.Labels
	return prometheus.Config{Name: sc.Name, URL: sc.URL, Interval: sc.Interval, Requests: sc.Queries.Requests, Latency: sc.Queries.Latency,
		Labels:          prometheus.Labels{Zone: first(l.Zone), Instance: first(l.Instance), Operation: first(l.Operation), Status: first(l.Status)},
		BearerTokenFile: sc.BearerTokenFile}
}

// EMFConfig is an emf source's configuration.
func (sc Source) EMFConfig() emf.Config {
	d, m := sc.Dimensions, sc.Metrics
	return emf.Config{Name: sc.Name, File: sc.File, Listen: sc.Listen, Interval: sc.Interval,
		Names: emf.Names{Zone: first(d.Zone), Instance: first(d.Instance), Operation: first(d.Operation),
			Success: m.Success, Fault: m.Fault, Error: m.Error, Latency: m.Latency}}
}

// first is a name list's first name: prometheus and emf take one each.
func first(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}
