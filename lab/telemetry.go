package lab

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/grayzone/grayzone/lab/telemetrypath"
)

func (o *Options) validateTelemetry() error {
	if o.Telemetry == "" {
		o.Telemetry = telemetrypath.Direct
	}
	if !slices.Contains(telemetrypath.Names, o.Telemetry) {
		return fmt.Errorf("%w: --telemetry %q: want one of %s", ErrUsage, o.Telemetry, strings.Join(telemetrypath.Names, ", "))
	}
	if o.Mode == ModeReal && o.Telemetry != telemetrypath.Direct && o.Telemetry != telemetrypath.OTLP {
		return fmt.Errorf("%w: --telemetry %s runs in sim mode only (--mode sim); real mode takes direct or otlp", ErrUsage, o.Telemetry)
	}
	return nil
}

// startRealTelemetry starts real mode's telemetry path; nil for direct.
func startRealTelemetry(ctx context.Context, o Options) (*realOTLP, error) {
	if o.Telemetry != telemetrypath.OTLP {
		return nil, nil
	}
	return startRealOTLP(ctx, o.Scenario)
}
