package batch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/grayzone/grayzone/internal/strictjson"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// MaxAggregates bounds the aggregated records of one batch.
const MaxAggregates = 10_000

// AggregateIn is one series' counts over an interval on the wire: the
// aggregated form of POST /v1/observations, beside single observations. A
// fleet's traffic then costs grayzone one record per series and interval,
// not one per request; the engine treats both alike.
type AggregateIn struct {
	// At is the end of the interval (RFC 3339); omitted: when received.
	At        *time.Time `json:"at,omitempty"`
	Source    string     `json:"source"` // server | canary
	Zone      string     `json:"zone"`
	Instance  string     `json:"instance,omitempty"`
	Operation string     `json:"operation"`
	Requests  uint64     `json:"requests"`
	Faults    uint64     `json:"faults,omitempty"` // 5xx or no answer
	Errors    uint64     `json:"errors,omitempty"` // 4xx
	// Slow is how many took longer than the operation's threshold; omitted:
	// grayzone counts it from LatencyMs with its own threshold.
	Slow *uint64 `json:"slow,omitempty"`
	// LatencyMs is the latency histogram as [latency_ms, count] pairs; the
	// counts add up to at most Requests (a source may time only some
	// requests, e.g. EMF's SuccessLatency), or it is empty: no latency data.
	LatencyMs [][2]float64 `json:"latency_ms,omitempty"`
}

// convertAggregates validates and converts the batch's n aggregated
// records, decode(i) reading record i; the first problem fails the batch
// with one line naming index and field.
func convertAggregates(n int, decode func(i int) (AggregateIn, error), now time.Time) ([]record.Aggregate, error) {
	if n > MaxAggregates {
		return nil, fmt.Errorf("aggregates: %d is over the limit of %d per batch", n, MaxAggregates)
	}
	now = now.UTC()
	out := make([]record.Aggregate, 0, n)
	for i := range n {
		in, err := decode(i)
		if err != nil {
			return nil, strictjson.Error(fmt.Sprintf("aggregates[%d]", i), err)
		}
		a, field, msg := ConvertAggregate(in, now)
		if msg != "" {
			return nil, fmt.Errorf("aggregates[%d].%s: %s", i, field, msg)
		}
		out = append(out, a)
	}
	return out, nil
}

// strictRecords decodes raw aggregated records with encoding/json,
// unknown fields refused.
func strictRecords(raws []json.RawMessage) func(i int) (AggregateIn, error) {
	return func(i int) (AggregateIn, error) {
		var in AggregateIn
		dec := json.NewDecoder(bytes.NewReader(raws[i]))
		dec.DisallowUnknownFields()
		err := dec.Decode(&in)
		return in, err
	}
}

// Decode reads one batch (a POST /v1/observations body: single
// observations and aggregated records), validated; now stands in for records
// without at. The first problem fails the whole batch with one line naming
// index and field. The fast path takes a batch of plain aggregated records
// (scan.go), anything else goes through encoding/json. The API's endpoint and
// replay (over serve's recordings) read batches with it.
func Decode(data []byte, now time.Time) (resource string, obs []observation.Observation, aggs []record.Aggregate, err error) {
	s := getScanner()
	defer s.put()
	if resource, ok := s.scan(data); ok {
		resource, obs, err := (rawBatch{Resource: resource}).convert(now)
		if err != nil {
			return "", nil, nil, err
		}
		aggs, err := convertAggregates(len(s.ins), func(i int) (AggregateIn, error) { return s.ins[i], nil }, now)
		if err != nil {
			return "", nil, nil, err
		}
		return resource, obs, aggs, nil
	}
	return decodeStrict(data, now)
}

// decodeStrict is Decode's encoding/json path.
func decodeStrict(data []byte, now time.Time) (resource string, obs []observation.Observation, aggs []record.Aggregate, err error) {
	var raw rawBatch
	if err := strictjson.Decode(bytes.NewReader(data), &raw); err != nil {
		return "", nil, nil, strictjson.Error("", err)
	}
	resource, obs, err = raw.convert(now)
	if err != nil {
		return "", nil, nil, err
	}
	if len(raw.Aggregates) > 0 {
		if aggs, err = convertAggregates(len(raw.Aggregates), strictRecords(raw.Aggregates), now); err != nil {
			return "", nil, nil, err
		}
	}
	return resource, obs, aggs, nil
}

// ConvertAggregate checks one aggregated record; on a problem it returns
// the field concerned and what is wrong with it.
func ConvertAggregate(in AggregateIn, now time.Time) (a record.Aggregate, field, msg string) {
	src, err := observation.ParseSource(in.Source)
	switch {
	case in.Source == "":
		return a, "source", "is required (server or canary)"
	case err != nil:
		return a, "source", fmt.Sprintf("%q is not server or canary", in.Source)
	case in.Zone == "":
		return a, "zone", "is required"
	case in.Operation == "":
		return a, "operation", "is required"
	case in.Requests == 0:
		return a, "requests", "must be at least 1"
	case in.Faults > in.Requests:
		return a, "faults", fmt.Sprintf("%d is more than requests (%d)", in.Faults, in.Requests)
	case in.Errors > in.Requests-in.Faults:
		return a, "errors", fmt.Sprintf("faults + errors (%d) is more than requests (%d)", in.Faults+in.Errors, in.Requests)
	case in.Slow != nil && *in.Slow > in.Requests:
		return a, "slow", fmt.Sprintf("%d is more than requests (%d)", *in.Slow, in.Requests)
	}
	at := now
	if in.At != nil {
		at = in.At.UTC()
		if ahead := at.Sub(now); ahead > MaxFuture {
			return a, "at", fmt.Sprintf("%s is %s in the future (limit %s)",
				at.Format(time.RFC3339Nano), ahead.Round(time.Second), shortDur(MaxFuture))
		}
	}
	a = record.Aggregate{At: at, Key: record.SeriesKey{Source: src, Zone: in.Zone, Instance: in.Instance, Operation: in.Operation},
		Requests: in.Requests, Faults: in.Faults, Errors: in.Errors, Slow: record.SlowFromLatency}
	if in.Slow != nil {
		a.Slow = *in.Slow
	}
	var total uint64
	if len(in.LatencyMs) > 0 {
		a.Latency = make([]record.Bucket, 0, len(in.LatencyMs))
	}
	for j, p := range in.LatencyMs {
		ms, n := p[0], p[1]
		f := func() string { return fmt.Sprintf("latency_ms[%d]", j) } // named only on an error
		switch {
		case math.IsNaN(ms) || ms < 0 || ms > float64(maxLatency/time.Millisecond):
			return a, f(), fmt.Sprintf("latency %s is not a number from 0 to %d (24h)", fmtFloat(ms), maxLatency/time.Millisecond)
		case math.IsNaN(n) || n < 0 || n != math.Trunc(n) || n > float64(in.Requests):
			return a, f(), fmt.Sprintf("count %s is not a whole number from 0 to requests (%d)", fmtFloat(n), in.Requests)
		}
		total += uint64(n)
		a.AddLatency(time.Duration(ms*float64(time.Millisecond)), uint64(n))
	}
	switch {
	case total > in.Requests:
		return a, "latency_ms", fmt.Sprintf("counts add up to %d, more than requests (%d)", total, in.Requests)
	case len(in.LatencyMs) == 0 && in.Slow == nil:
		return a, "slow", "is required when latency_ms is empty"
	}
	return a, "", ""
}

// EncodeAggregate is the wire form of an aggregate (Decode's inverse
// up to the histogram's bucket midpoints).
func EncodeAggregate(a record.Aggregate) AggregateIn {
	at := a.At.UTC()
	in := AggregateIn{At: &at, Source: a.Key.Source.String(), Zone: a.Key.Zone, Instance: a.Key.Instance, Operation: a.Key.Operation,
		Requests: a.Requests, Faults: a.Faults, Errors: a.Errors}
	if a.Slow != record.SlowFromLatency || len(a.Latency) == 0 {
		slow := a.Slow
		if slow == record.SlowFromLatency {
			slow = 0 // no histogram to count it from
		}
		in.Slow = &slow
	}
	for _, b := range a.Latency {
		in.LatencyMs = append(in.LatencyMs, [2]float64{float64(record.BucketMid(b.Index)) / float64(time.Millisecond), float64(b.Count)})
	}
	return in
}

// EncodeObservation is the wire form of a single observation.
func EncodeObservation(o observation.Observation) ObservationIn {
	at := o.At.UTC()
	return ObservationIn{At: &at, Source: o.Source.String(), Zone: o.Zone, Instance: o.Instance, Operation: o.Operation,
		Outcome: o.Outcome.String(), LatencyMs: float64(o.Latency) / float64(time.Millisecond), Regional: o.Regional}
}

// SourceHeader names the sender of a batch in the telemetry counters
// (e.g. "middleware"); default "batch".
const SourceHeader = "X-Grayzone-Source"
