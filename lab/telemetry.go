package lab

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"

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
	feed(now time.Time, c *autoshift.Controller)
	close() error
}

// startRealTelemetry starts real mode's telemetry path; nil for direct.
func startRealTelemetry(ctx context.Context, o Options) (realTelemetry, error) {
	switch o.Telemetry {
	case telemetrypath.OTLP:
		return startRealOTLP(ctx, o.Scenario)
	case telemetrypath.Prometheus:
		return startRealProm(ctx, o.Scenario)
	case telemetrypath.EMF:
		return startRealEMF(ctx, o.Scenario)
	case telemetrypath.Middleware:
		return startRealMiddleware(ctx, o.Scenario)
	}
	return nil, nil
}

// gated is the part every real telemetry path shares: the ingest gate its
// source feeds, which feed hands to the controller before each tick, as
// grayzone serve's resource loop does.
type gated struct{ gate *ingest.Gate }

func newGated(sc *scenario.Scenario) gated {
	return gated{ingest.New(Resource, sc.Topology.Zones, ingest.Limits{})}
}

func (g gated) feed(now time.Time, c *autoshift.Controller) {
	g.gate.Drain(now, 0, func(aggs []record.Aggregate) { c.ObserveAggregates(aggs) })
}

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
