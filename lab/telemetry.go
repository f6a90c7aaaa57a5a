package lab

import (
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
	if o.Mode == ModeReal && o.Telemetry != telemetrypath.Direct {
		return fmt.Errorf("%w: --telemetry %s runs in sim mode only (--mode sim); real mode reports directly", ErrUsage, o.Telemetry)
	}
	return nil
}
