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
		c := sc.OTLPConfig()
		c.Sink, c.Now, c.Log = gate, s.clock.Now, log
		r, err := otlp.New(c)
		if err != nil {
			return nil, err
		}
		return r.Run, nil
	case config.SourcePrometheus:
		c := sc.PrometheusConfig()
		c.Sink, c.Now, c.Log = gate, s.clock.Now, log
		p, err := prometheus.New(c)
		if err != nil {
			return nil, err
		}
		return p.Run, nil
	case config.SourceEMF:
		c := sc.EMFConfig()
		c.Sink, c.Now, c.Log = gate, s.clock.Now, log
		e, err := emf.New(c)
		if err != nil {
			return nil, err
		}
		return e.Run, nil
	}
	return nil, fmt.Errorf("type %q is not supported by this build", sc.Type)
}
