package otlp

import (
	"fmt"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/grayzone/grayzone/telemetry/cumulative"
	"github.com/grayzone/grayzone/telemetry/record"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// request builds an export with a counter and a histogram in ms.
func request(temp pmetric.AggregationTemporality, start time.Time, count uint64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("cloud.zone", "az1")
	rm.Resource().Attributes().PutStr("host.name", "h1")
	sm := rm.ScopeMetrics().AppendEmpty()
	m := sm.Metrics().AppendEmpty()
	m.SetName("legacy.duration")
	m.SetUnit("ms")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(temp)
	dp := h.DataPoints().AppendEmpty()
	dp.Attributes().PutStr("route", "get")
	dp.Attributes().PutStr("code", "500")
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
	dp.ExplicitBounds().FromRaw([]float64{50, 100, 200})
	dp.BucketCounts().FromRaw([]uint64{count - 1, 0, 1, 0})
	dp.SetCount(count)
	return md
}

func converter() *Converter {
	return &Converter{Attributes: Attributes{Zone: []string{"cloud.zone"}, Instance: []string{"host.name"}, Operation: []string{"route"}, Status: []string{"code"}},
		DurationMetric: "legacy.duration", Tracker: cumulativeSince(t0)}
}

func TestConvertCustomAttributesAndMs(t *testing.T) {
	c := converter()
	aggs, err := c.ConvertMetrics(request(pmetric.AggregationTemporalityDelta, time.Time{}, 10), t0)
	if err != nil || len(aggs) != 1 {
		t.Fatalf("%v %+v", err, aggs)
	}
	a := aggs[0]
	if a.Key.Zone != "az1" || a.Key.Instance != "h1" || a.Key.Operation != "get" || a.Requests != 10 || a.Faults != 10 || !a.At.Equal(t0) {
		t.Errorf("%+v", a)
	}
	a.FillSlow(100 * time.Millisecond)
	if a.Slow != 1 {
		t.Errorf("slow %d, want 1 (the one in (100ms, 200ms])", a.Slow)
	}
}

func TestCumulativeBaselineWhenStartedBeforeUs(t *testing.T) {
	c := converter()
	early := t0.Add(-time.Hour)
	if aggs, _ := c.ConvertMetrics(request(pmetric.AggregationTemporalityCumulative, early, 100), t0); len(aggs) != 0 {
		t.Errorf("first point of a series older than the receiver counted: %+v", aggs)
	}
	aggs, _ := c.ConvertMetrics(request(pmetric.AggregationTemporalityCumulative, early, 130), t0)
	if len(aggs) != 1 || aggs[0].Requests != 30 {
		t.Errorf("delta: %+v", aggs)
	}
}

// The first 5xx of a process already followed is a new series: it counts
// from zero, not as a baseline, or the first interval of faults would be lost.
func TestNewSeriesOfKnownProcessCountsFromZero(t *testing.T) {
	c := converter()
	early := t0.Add(-time.Hour)
	ok := request(pmetric.AggregationTemporalityCumulative, early, 100)
	dp(ok).Attributes().PutStr("code", "200")
	if aggs, _ := c.ConvertMetrics(ok, t0); len(aggs) != 0 {
		t.Fatalf("baseline produced %+v", aggs)
	}
	next := request(pmetric.AggregationTemporalityCumulative, early, 110)
	dp(next).Attributes().PutStr("code", "200")
	fault := next.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().AppendEmpty()
	dp(next).CopyTo(fault)
	fault.Attributes().PutStr("code", "503")
	fault.BucketCounts().FromRaw([]uint64{4, 0, 0, 0})
	fault.SetCount(4)
	aggs, err := c.ConvertMetrics(next, t0)
	if err != nil || len(aggs) != 1 || aggs[0].Requests != 14 || aggs[0].Faults != 4 {
		t.Fatalf("%v %+v, want 10 new successes and the 4 first faults", err, aggs)
	}
}

func TestConvertErrors(t *testing.T) {
	for _, tc := range []struct {
		edit func(pmetric.Metrics)
		want string
	}{
		{func(md pmetric.Metrics) { md.ResourceMetrics().At(0).Resource().Attributes().Remove("host.name") }, "data_points[0]: no instance attribute (looked for host.name)"},
		{func(md pmetric.Metrics) { dp(md).SetCount(3) }, "bucket_counts[0] 9 is over count (3)"},
		{func(md pmetric.Metrics) { dp(md).ExplicitBounds().FromRaw([]float64{100, 50, 200}) }, "explicit_bounds[1] 50 is not increasing"},
		{func(md pmetric.Metrics) { dp(md).Attributes().PutStr("code", "teapot") }, `status "teapot" is not an HTTP status code`},
		{func(md pmetric.Metrics) { dp(md).SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Hour))) }, "is 1h0m0s in the future"},
		{func(md pmetric.Metrics) { md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).SetUnit("h") }, `unit "h" is not s, ms or us`},
	} {
		md := request(pmetric.AggregationTemporalityDelta, time.Time{}, 10)
		tc.edit(md)
		_, err := converter().ConvertMetrics(md, t0)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "resource_metrics[0].scope_metrics[0].metrics[0] (legacy.duration)") {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

func dp(md pmetric.Metrics) pmetric.HistogramDataPoint {
	return md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().At(0)
}

// FuzzDecodeConvert runs the wire decoder and the conversion over
// arbitrary bytes: it errors, never panics. Where the reference protobuf
// implementation (google.golang.org/protobuf with OTLP's generated types)
// reads the bytes, the result must be what the decoder makes of the
// reference's deterministic re-encoding of them (canonical field order,
// packed fields, repeated messages merged, unknown fields dropped): reading
// the wire in place must agree with protobuf on every encoding a sender may
// choose. JSON goes through pdata first, as the receiver does.
func FuzzDecodeConvert(f *testing.F) {
	req := pmetricotlp.NewExportRequestFromMetrics(request(pmetric.AggregationTemporalityCumulative, t0.Add(-time.Minute), 10))
	pb, _ := req.MarshalProto()
	js, _ := req.MarshalJSON()
	f.Add(pb, false)
	f.Add(js, true)
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"legacy.duration","histogram":{"dataPoints":[{"count":"1"}]}}]}]}]}`), true)
	delta, _ := pmetricotlp.NewExportRequestFromMetrics(request(pmetric.AggregationTemporalityDelta, time.Time{}, 10)).MarshalProto()
	f.Add(delta, false)
	f.Fuzz(func(t *testing.T, data []byte, json bool) {
		if json {
			ex := pmetricotlp.NewExportRequest()
			if ex.UnmarshalJSON(data) != nil {
				return
			}
			var err error
			if data, err = ex.MarshalProto(); err != nil {
				return
			}
		}
		c := converter()
		var first []record.Aggregate
		var firstErr error
		for i := range 2 { // twice: the cumulative path too
			aggs, err := c.Convert(data, t0)
			if i == 0 {
				first, firstErr = aggs, err
			}
			for _, a := range aggs {
				if a.Faults+a.Errors > a.Requests {
					t.Fatalf("inconsistent aggregate %+v", a)
				}
				// The time window: nothing dated past the tolerated skew
				// is ever taken (it would hold a place that never flushes).
				if a.At.Sub(t0) > ingest.MaxFuture {
					t.Fatalf("aggregate %s ahead of now: %+v", a.At.Sub(t0), a)
				}
			}
		}
		ref := &colmetricpb.ExportMetricsServiceRequest{}
		if proto.Unmarshal(data, ref) != nil {
			return
		}
		canon, err := proto.MarshalOptions{Deterministic: true}.Marshal(ref)
		if err != nil {
			return
		}
		want, wantErr := converter().Convert(canon, t0)
		if (firstErr != nil) != (wantErr != nil) || !reflect.DeepEqual(first, want) {
			t.Fatalf("the wire as sent and pdata's reference's re-encoding of it convert differently:\nsent:      %v %+v\nre-encoded: %v %+v", firstErr, first, wantErr, want)
		}
	})
}

func cumulativeSince(t time.Time) cumulative.Tracker { return cumulative.Tracker{Since: t} }

// The converter reuses its scratch space from one request to the next: a
// request converts the same after others, failed ones included, as on a
// fresh converter, and its aggregates do not share latency buckets.
func TestScratchReuseChangesNothing(t *testing.T) {
	big := func() pmetric.Metrics {
		md := request(pmetric.AggregationTemporalityDelta, time.Time{}, 10)
		dps := dp(md)
		for i := range 30 {
			p := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().AppendEmpty()
			dps.CopyTo(p)
			p.Attributes().PutStr("route", fmt.Sprint("op-", i%7))
			p.Attributes().PutStr("code", fmt.Sprint(200+100*(i%4)))
		}
		return md
	}
	bad := request(pmetric.AggregationTemporalityDelta, time.Time{}, 10)
	dp(bad).SetCount(3)
	want, err := converter().ConvertMetrics(big(), t0)
	if err != nil || len(want) != 8 { // "get" and op-0 … op-6
		t.Fatalf("%v %d aggregates", err, len(want))
	}
	c := converter()
	for range 3 {
		if _, err := c.ConvertMetrics(bad, t0); err == nil {
			t.Fatal("bad request converted")
		}
		got, err := c.ConvertMetrics(big(), t0)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("after reuse: %v\n%+v\nwant %+v", err, got, want)
		}
		for i := range got {
			got[i].Latency = append(got[i].Latency, record.Bucket{Index: 1000 + i, Count: 1})
		}
		for i := range got {
			if l := got[i].Latency; l[len(l)-1].Index != 1000+i {
				t.Fatalf("aggregate %d's buckets overwritten by a neighbour's: %+v", i, l)
			}
		}
	}
}

// Points that share their bounds reuse the mapping of the point before;
// a point with other bounds (or another unit) is mapped afresh.
func TestBoundsOfEachPointAreItsOwn(t *testing.T) {
	md := request(pmetric.AggregationTemporalityDelta, time.Time{}, 10) // bounds 50, 100, 200 ms: 9 in (0, 50], 1 in (100, 200]
	dps := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints()
	for i, bounds := range [][]float64{{50, 100, 200}, {1000, 2000, 4000}, {1000, 2000, 4000}, {50, 100, 200}} {
		p := dps.AppendEmpty()
		dp(md).CopyTo(p)
		p.Attributes().PutStr("route", fmt.Sprint("op-", i))
		p.ExplicitBounds().FromRaw(bounds)
	}
	aggs, err := converter().ConvertMetrics(md, t0)
	if err != nil || len(aggs) != 5 {
		t.Fatalf("%v %+v", err, aggs)
	}
	for _, a := range aggs {
		bounds := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
		if a.Key.Operation == "op-1" || a.Key.Operation == "op-2" {
			bounds = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
		}
		var want record.Aggregate
		want.AddHistogram(bounds, []uint64{9, 0, 1, 0})
		if !reflect.DeepEqual(a.Latency, want.Latency) {
			t.Errorf("%s: buckets %+v, want %+v", a.Key.Operation, a.Latency, want.Latency)
		}
	}
}
