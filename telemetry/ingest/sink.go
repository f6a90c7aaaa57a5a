package ingest

import (
	"time"

	"github.com/grayzone/grayzone/telemetry/record"
)

// Sink is where an outside source (OTLP, Prometheus, EMF) hands what it
// converted: the Gate in serve and the lab, something else in a test or a
// replay's range read.
type Sink interface {
	// Offer hands over a batch received at now (see Gate.Offer).
	Offer(source string, aggs []record.Aggregate, now time.Time) error
	// Reject counts a batch the source could not decode.
	Reject(source string, err error)
}

var _ Sink = (*Gate)(nil)
