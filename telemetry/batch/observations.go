// Package batch is grayzone's batch wire format: the body of
// POST /v1/observations (single observations and aggregated records), its
// validating decoder and its encoders. The API's endpoint decodes with it,
// serve records its input in it (record_observations), replay reads those
// recordings, and the Go middleware ships with it. It imports nothing of the
// server, so a service can take it with the middleware.
package batch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/grayzone/grayzone/internal/strictjson"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/observation"
)

// Limits of one batch.
const (
	MaxObservations = 10_000
	MaxFuture       = ingest.MaxFuture // clock skew tolerated on a record's at: one window for every source
)

// ObservationIn is one observation on the wire (POST /v1/observations).
type ObservationIn struct {
	// At is RFC 3339; omitted means when the server received the batch.
	At        *time.Time `json:"at,omitempty"`
	Source    string     `json:"source"` // server | canary
	Zone      string     `json:"zone"`
	Instance  string     `json:"instance,omitempty"`
	Operation string     `json:"operation"`
	// Outcome is success | error | fault; or give Status, the HTTP status code (0: no response).
	Outcome   string  `json:"outcome,omitempty"`
	Status    *int    `json:"status,omitempty"`
	LatencyMs float64 `json:"latency_ms"`
	// Regional marks a canary call made through the regional endpoint rather
	// than a zonal one (observation.Observation.Regional).
	Regional bool `json:"regional,omitempty"`
}

// ObservationBatch is the body of POST /v1/observations: single
// observations, aggregated records, or both.
type ObservationBatch struct {
	Resource     string          `json:"resource"`
	Observations []ObservationIn `json:"observations,omitempty"`
	Aggregates   []AggregateIn   `json:"aggregates,omitempty"`
}

// maxLatency bounds latency_ms so the conversion to time.Duration cannot
// overflow; no request grayzone measures takes a day.
const maxLatency = 24 * time.Hour

// rawBatch is ObservationBatch with each observation left undecoded, so a
// decoding error can name the observation's index (encoding/json's own
// errors say "observations.latency_ms" without it).
type rawBatch struct {
	Resource     string            `json:"resource"`
	Observations []json.RawMessage `json:"observations"`
	Aggregates   []json.RawMessage `json:"aggregates"` // see aggregates.go
}

// convert validates every observation and converts the batch; the first
// problem fails the whole batch with one line naming index and field, so a
// sender never has half a batch ingested.
func (b rawBatch) convert(now time.Time) (string, []observation.Observation, error) {
	if b.Resource == "" {
		return "", nil, fmt.Errorf("resource: is required")
	}
	if n := len(b.Observations); n > MaxObservations {
		return "", nil, fmt.Errorf("observations: %d is over the limit of %d per batch", n, MaxObservations)
	}
	now = now.UTC()
	out := make([]observation.Observation, 0, len(b.Observations))
	for i, raw := range b.Observations {
		prefix := fmt.Sprintf("observations[%d]", i)
		var in ObservationIn
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return "", nil, strictjson.Error(prefix, err)
		}
		o, field, msg := convertObservation(in, now)
		if msg != "" {
			if field != "" {
				prefix += "." + field
			}
			return "", nil, fmt.Errorf("%s: %s", prefix, msg)
		}
		out = append(out, o)
	}
	return b.Resource, out, nil
}

// convertObservation checks one observation; on a problem it returns the
// field concerned and what is wrong with it.
func convertObservation(in ObservationIn, now time.Time) (o observation.Observation, field, msg string) {
	src, err := observation.ParseSource(in.Source)
	switch {
	case in.Source == "":
		return o, "source", "is required (server or canary)"
	case err != nil:
		return o, "source", fmt.Sprintf("%q is not server or canary", in.Source)
	case in.Zone == "":
		return o, "zone", "is required"
	case in.Operation == "":
		return o, "operation", "is required"
	case in.Regional && src != observation.Canary:
		return o, "regional", "only canary observations can be regional"
	}

	var outcome observation.Outcome
	switch {
	case in.Outcome != "" && in.Status != nil:
		return o, "outcome", "give outcome or status, not both"
	case in.Outcome == "" && in.Status == nil:
		return o, "outcome", "is required (or give status)"
	case in.Status != nil:
		if s := *in.Status; s != 0 && (s < 100 || s > 599) {
			return o, "status", fmt.Sprintf("%d is not 0 (no response) or 100..599", s)
		}
		outcome = observation.FromStatus(*in.Status)
	default:
		if outcome, err = observation.ParseOutcome(in.Outcome); err != nil {
			return o, "outcome", fmt.Sprintf("%q is not success, error or fault", in.Outcome)
		}
	}

	ms := in.LatencyMs
	switch {
	case math.IsNaN(ms) || math.IsInf(ms, 0):
		return o, "latency_ms", fmt.Sprintf("%s is not a finite number", fmtFloat(ms))
	case ms < 0:
		return o, "latency_ms", fmt.Sprintf("%s is negative", fmtFloat(ms))
	case ms > float64(maxLatency/time.Millisecond):
		return o, "latency_ms", fmt.Sprintf("%s is over the limit of %d (24h)", fmtFloat(ms), maxLatency/time.Millisecond)
	}

	at := now
	if in.At != nil {
		at = in.At.UTC()
		// A little skew is normal; more means a broken clock whose samples
		// would sit in the detector's windows long after they should expire.
		if ahead := at.Sub(now); ahead > MaxFuture {
			return o, "at", fmt.Sprintf("%s is %s in the future (limit %s)",
				at.Format(time.RFC3339Nano), ahead.Round(time.Second), shortDur(MaxFuture))
		}
	}

	return observation.Observation{
		At:        at,
		Source:    src,
		Zone:      in.Zone,
		Instance:  in.Instance,
		Operation: in.Operation,
		Outcome:   outcome,
		Latency:   time.Duration(ms * float64(time.Millisecond)),
		Regional:  in.Regional,
	}, "", ""
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// shortDur prints 5m rather than 5m0s.
func shortDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return s
}
