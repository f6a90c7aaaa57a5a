package service

import (
	"context"
	"fmt"

	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/emf"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/otlp"
	"github.com/grayzone/grayzone/telemetry/prometheus"
)

// newSource builds one configured telemetry source, binding its listeners
// now so a busy address fails serve at start; the returned function runs it
// until ctx ends.
func newSource(sc config.Source, gate *ingest.Gate, s *Service) (func(context.Context) error, error) {
	log := s.log.With("source", sc.Name)
	switch sc.Type {
	case config.SourceOTLP:
		a := sc.Attributes
		r, err := otlp.New(otlp.Config{Name: sc.Name, HTTP: sc.HTTP, GRPC: sc.GRPC, Sink: gate, Now: s.clock.Now, Log: log,
			Attributes:     otlp.Attributes{Zone: a.Zone, Instance: a.Instance, Operation: a.Operation, Status: a.Status},
			DurationMetric: sc.DurationMetric, RequestsMetric: sc.RequestsMetric})
		if err != nil {
			return nil, err
		}
		return r.Run, nil
	case config.SourcePrometheus:
		l := sc.Labels
		p, err := prometheus.New(prometheus.Config{Name: sc.Name, URL: sc.URL, Interval: sc.Interval, Requests: sc.Queries.Requests, Latency: sc.Queries.Latency,
			Labels: prometheus.Labels{Zone: first(l.Zone), Instance: first(l.Instance), Operation: first(l.Operation), Status: first(l.Status)},
			Sink:   gate, Now: s.clock.Now, Log: log})
		if err != nil {
			return nil, err
		}
		return p.Run, nil
	case config.SourceEMF:
		d, m := sc.Dimensions, sc.Metrics
		e, err := emf.New(emf.Config{Name: sc.Name, File: sc.File, Listen: sc.Listen, Interval: sc.Interval, Sink: gate, Now: s.clock.Now, Log: log,
			Names: emf.Names{Zone: first(d.Zone), Instance: first(d.Instance), Operation: first(d.Operation),
				Success: m.Success, Fault: m.Fault, Error: m.Error, Latency: m.Latency}})
		if err != nil {
			return nil, err
		}
		return e.Run, nil
	}
	return nil, fmt.Errorf("type %q is not supported by this build", sc.Type)
}

func first(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}
