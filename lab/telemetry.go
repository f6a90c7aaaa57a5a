package lab

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grayzone/grayzone/engine/autoshift"
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
	if o.Mode == ModeReal && !slices.Contains([]string{telemetrypath.Direct, telemetrypath.OTLP, telemetrypath.Prometheus}, o.Telemetry) {
		return fmt.Errorf("%w: --telemetry %s runs in sim mode only (--mode sim); real mode takes direct, otlp or prometheus", ErrUsage, o.Telemetry)
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
	}
	return nil, nil
}
