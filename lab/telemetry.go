package lab

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/observation"

	"github.com/grayzone/grayzone/lab/telemetrypath"
)

func (o *Options) validateTelemetry() error {
	if o.Telemetry == "" {
		o.Telemetry = telemetrypath.Direct
	}
	if !slices.Contains(telemetrypath.Names, o.Telemetry) {
		return fmt.Errorf("%w: --telemetry %q: want one of %s", ErrUsage, o.Telemetry, strings.Join(telemetrypath.Names, ", "))
	}
	return nil
}

// realTelemetry is real mode's path from the instances to the controller.
type realTelemetry interface {
	observe(observation.Observation) error
	close() error
}

// startRealTelemetry starts real mode's telemetry path; nil for direct.
func startRealTelemetry(ctx context.Context, o Options, gate *ingest.Gate) (realTelemetry, error) {
	g := gated{gate}
	switch o.Telemetry {
	case telemetrypath.OTLP:
		return startRealOTLP(ctx, g)
	case telemetrypath.Prometheus:
		return startRealProm(ctx, g)
	case telemetrypath.EMF:
		return startRealEMF(ctx, g)
	case telemetrypath.Middleware:
		return startRealMiddleware(ctx, g)
	}
	return nil, nil
}

// gated is the part every real telemetry path shares: the resource's ingest
// gate its source feeds, which the intake hands to the controller before
// each tick, as grayzone serve's resource loop does.
type gated struct{ gate *ingest.Gate }

// statusOf is the HTTP status an instance answers with for the outcome.
func statusOf(o observation.Outcome) int {
	switch o {
	case observation.Fault:
		return http.StatusInternalServerError
	case observation.Error:
		return http.StatusBadRequest
	}
	return http.StatusOK
}
