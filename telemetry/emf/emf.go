// Package emf reads CloudWatch Embedded Metric Format: JSON log lines whose
// _aws.CloudWatchMetrics names the metrics (values at the top level, a
// number or an array) and their dimensions, as the workshop's application
// writes one per request (dimensions AZ-ID, InstanceId, Operation; metrics
// Success, Fault, Error and SuccessLatency in milliseconds). Lines come from
// a tailed file or from POSTs to an HTTP endpoint; an Aggregator sums them
// per zone, instance, operation and interval, so the engine receives one
// aggregate per series and interval however many lines there were.
package emf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Names say which dimensions and metrics carry what grayzone needs.
type Names struct {
	Zone, Instance, Operation string // dimension names
	Success, Fault, Error     string // count metrics
	Latency                   string // latency metric (Milliseconds unless its Unit says otherwise)
}

// WorkshopNames are the workshop application's.
func WorkshopNames() Names {
	return Names{Zone: "AZ-ID", Instance: "InstanceId", Operation: "Operation",
		Success: "Success", Fault: "Fault", Error: "Error", Latency: "SuccessLatency"}
}

// Line is one parsed EMF line: counts by outcome and latencies.
type Line struct {
	At                     time.Time
	Zone, Instance, Op     string
	Success, Fault, Errors uint64
	Latencies              []time.Duration
}

type envelope struct {
	AWS *struct {
		Timestamp         *int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
}

// maxValues bounds the values of one metric in one line.
const maxValues = 100_000

// Parse reads one EMF line. A line that is valid EMF but carries none of
// the configured metrics returns ok=false (another metric of the app).
func (n Names) Parse(line []byte) (l Line, ok bool, err error) {
	var env envelope
	if err := json.Unmarshal(line, &env); err != nil {
		return l, false, fmt.Errorf("not a JSON object: %s", shorten(err.Error()))
	}
	if env.AWS == nil || env.AWS.Timestamp == nil {
		return l, false, fmt.Errorf("_aws.Timestamp: is required (EMF)")
	}
	units := map[string]string{}
	for _, d := range env.AWS.CloudWatchMetrics {
		for _, m := range d.Metrics {
			units[m.Name] = m.Unit
		}
	}
	_, hasS := units[n.Success]
	_, hasF := units[n.Fault]
	_, hasE := units[n.Error]
	_, hasL := units[n.Latency]
	if !hasS && !hasF && !hasE && !hasL {
		return l, false, nil
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		return l, false, fmt.Errorf("not a JSON object: %s", shorten(err.Error()))
	}
	ts := *env.AWS.Timestamp
	if ts <= 0 || ts > 1e14 {
		return l, false, fmt.Errorf("_aws.Timestamp: %d is not milliseconds since 1970", ts)
	}
	l.At = time.UnixMilli(ts).UTC()
	for _, d := range []struct {
		name string
		dst  *string
	}{{n.Zone, &l.Zone}, {n.Instance, &l.Instance}, {n.Operation, &l.Op}} {
		raw, ok := root[d.name]
		if !ok {
			return l, false, fmt.Errorf("%s: dimension is missing", d.name)
		}
		if err := json.Unmarshal(raw, d.dst); err != nil || *d.dst == "" {
			return l, false, fmt.Errorf("%s: want a non-empty string", d.name)
		}
	}
	for _, c := range []struct {
		name string
		dst  *uint64
	}{{n.Success, &l.Success}, {n.Fault, &l.Fault}, {n.Error, &l.Errors}} {
		if _, ok := units[c.name]; !ok {
			continue
		}
		vals, err := values(root, c.name)
		if err != nil {
			return l, false, err
		}
		for _, v := range vals {
			if v < 0 || v != math.Trunc(v) || v > 1e9 {
				return l, false, fmt.Errorf("%s: %g is not a count (a whole number from 0 to 1e9)", c.name, v)
			}
			*c.dst += uint64(v)
		}
	}
	if hasL {
		vals, err := values(root, n.Latency)
		if err != nil {
			return l, false, err
		}
		scale, err := unitScale(units[n.Latency])
		if err != nil {
			return l, false, fmt.Errorf("%s: %w", n.Latency, err)
		}
		for _, v := range vals {
			d := v * float64(scale)
			if v < 0 || d > float64(24*time.Hour) {
				return l, false, fmt.Errorf("%s: %g is not a latency from 0 to 24h", n.Latency, v)
			}
			l.Latencies = append(l.Latencies, time.Duration(d))
		}
	}
	if uint64(len(l.Latencies)) > l.Success+l.Fault+l.Errors && (hasS || hasF || hasE) {
		return l, false, fmt.Errorf("%s: %d latencies for %d requests", n.Latency, len(l.Latencies), l.Success+l.Fault+l.Errors)
	}
	if !hasS && !hasF && !hasE {
		l.Success = uint64(len(l.Latencies)) // latency only: each value is one request
	}
	return l, true, nil
}

func values(root map[string]json.RawMessage, name string) ([]float64, error) {
	raw, ok := root[name]
	if !ok {
		return nil, fmt.Errorf("%s: declared in _aws.CloudWatchMetrics but has no value", name)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var vs []float64
		if err := json.Unmarshal(raw, &vs); err != nil {
			return nil, fmt.Errorf("%s: want a number or an array of numbers", name)
		}
		if len(vs) > maxValues {
			return nil, fmt.Errorf("%s: %d values, over %d", name, len(vs), maxValues)
		}
		return vs, nil
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s: want a number or an array of numbers", name)
	}
	return []float64{v}, nil
}

func unitScale(u string) (time.Duration, error) {
	switch u {
	case "", "Milliseconds", "None":
		return time.Millisecond, nil
	case "Seconds":
		return time.Second, nil
	case "Microseconds":
		return time.Microsecond, nil
	}
	return 0, fmt.Errorf("unit %q is not Milliseconds, Seconds or Microseconds", u)
}

func shorten(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// Aggregator sums lines per series and interval. Not safe for concurrent use.
type Aggregator struct {
	Interval time.Duration // bucket width (default 1s)
	// MaxSeries bounds the open (series, interval) buckets (default 100,000);
	// lines for new ones beyond it are dropped and counted.
	MaxSeries int
	Dropped   uint64

	open map[bucketKey]*record.Aggregate
}

type bucketKey struct {
	key record.SeriesKey
	end int64
}

// need says how many new buckets lines would open, and how many the cap
// leaves room for.
func (a *Aggregator) need(lines []Line) (need, room int) {
	a.init()
	seen := map[bucketKey]bool{}
	for _, l := range lines {
		k := a.bucket(l)
		if _, open := a.open[k]; !open && !seen[k] {
			seen[k] = true
		}
	}
	return len(seen), a.MaxSeries - len(a.open)
}

func (a *Aggregator) bucket(l Line) bucketKey {
	end := l.At.Truncate(a.Interval).Add(a.Interval)
	return bucketKey{record.SeriesKey{Source: observation.Server, Zone: l.Zone, Instance: l.Instance, Operation: l.Op}, end.UnixNano()}
}

func (a *Aggregator) init() {
	if a.open == nil {
		a.open = map[bucketKey]*record.Aggregate{}
		if a.Interval <= 0 {
			a.Interval = time.Second
		}
		if a.MaxSeries <= 0 {
			a.MaxSeries = 100_000
		}
	}
}

// Add counts one line.
func (a *Aggregator) Add(l Line) bool {
	a.init()
	k := a.bucket(l)
	g := a.open[k]
	if g == nil {
		if len(a.open) >= a.MaxSeries {
			a.Dropped++
			return false
		}
		g = &record.Aggregate{At: time.Unix(0, k.end).UTC(), Key: k.key, Slow: record.SlowFromLatency}
		a.open[k] = g
	}
	g.Requests += l.Success + l.Fault + l.Errors
	g.Faults += l.Fault
	g.Errors += l.Errors
	for _, d := range l.Latencies {
		g.AddLatency(d, 1)
	}
	return true
}

// Flush returns the aggregates of intervals that ended at or before now
// (all of them when now is zero), oldest first, and forgets them.
func (a *Aggregator) Flush(now time.Time) []record.Aggregate {
	var out []record.Aggregate
	for k, g := range a.open {
		if now.IsZero() || k.end <= now.UnixNano() {
			if g.Requests > 0 {
				out = append(out, *g)
			}
			delete(a.open, k)
		}
	}
	sortAggregates(out)
	return out
}

// AppendRequest appends the EMF line the workshop's application writes for
// one request (dimensions Operation and AZ-ID, and with InstanceId; metrics
// Success, Fault, Error and SuccessLatency in milliseconds), without a
// newline. Parse with WorkshopNames reads it back. The lab's instances write
// it; a service can use it to emit the same shape.
func AppendRequest(dst []byte, namespace string, at time.Time, zone, instance, op string, outcome observation.Outcome, latency time.Duration) []byte {
	s, f, e := 0, 0, 0
	switch outcome {
	case observation.Fault:
		f = 1
	case observation.Error:
		e = 1
	default:
		s = 1
	}
	dst = append(dst, `{"_aws":{"Timestamp":`...)
	dst = strconv.AppendInt(dst, at.UnixMilli(), 10)
	dst = append(dst, `,"CloudWatchMetrics":[{"Namespace":`...)
	dst = appendString(dst, namespace)
	dst = append(dst, `,"Dimensions":[["Operation","AZ-ID"],["Operation","AZ-ID","InstanceId"]],"Metrics":[{"Name":"SuccessLatency","Unit":"Milliseconds"},{"Name":"Success","Unit":"Count"},{"Name":"Fault","Unit":"Count"},{"Name":"Error","Unit":"Count"}]}]},"Operation":`...)
	dst = appendString(dst, op)
	dst = append(dst, `,"AZ-ID":`...)
	dst = appendString(dst, zone)
	dst = append(dst, `,"InstanceId":`...)
	dst = appendString(dst, instance)
	dst = append(dst, `,"Success":`...)
	dst = strconv.AppendInt(dst, int64(s), 10)
	dst = append(dst, `,"Fault":`...)
	dst = strconv.AppendInt(dst, int64(f), 10)
	dst = append(dst, `,"Error":`...)
	dst = strconv.AppendInt(dst, int64(e), 10)
	if s == 1 {
		dst = append(dst, `,"SuccessLatency":`...)
		dst = strconv.AppendFloat(dst, float64(latency)/float64(time.Millisecond), 'f', 3, 64)
	} else {
		dst = append(dst, `,"SuccessLatency":[]`...)
	}
	return append(dst, '}')
}

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}
