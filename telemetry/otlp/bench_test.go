package otlp

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// BenchmarkDecodeConvert is the receiver's per-request work for 100
// instances × 50 routes (5,000 delta histogram points); b.N requests.
//
//	go test -run '^$' -bench . -benchmem ./telemetry/otlp/
func BenchmarkDecodeConvert(b *testing.B) {
	md := pmetric.NewMetrics()
	for i := range 100 {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("cloud.availability_zone", "z"+strconv.Itoa(i%3))
		rm.Resource().Attributes().PutStr("service.instance.id", "i-"+strconv.Itoa(i))
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName(DefaultDurationMetric)
		m.SetUnit("s")
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		for op := range 50 {
			dp := h.DataPoints().AppendEmpty()
			dp.Attributes().PutStr("http.route", "/op/"+strconv.Itoa(op))
			dp.Attributes().PutInt("http.response.status_code", 200)
			dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
			dp.ExplicitBounds().FromRaw([]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1})
			dp.BucketCounts().FromRaw([]uint64{3, 10, 5, 1, 1, 0, 0, 0, 0})
			dp.SetCount(20)
		}
	}
	body, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	c := &Converter{Attributes: DefaultAttributes(), DurationMetric: DefaultDurationMetric}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	cpu0 := cpuSeconds()
	for b.Loop() {
		aggs, err := c.Convert(body, t0.Add(time.Second))
		if err != nil || len(aggs) != 5000 {
			b.Fatal(err, len(aggs))
		}
	}
	b.ReportMetric(float64(b.N*5000)/b.Elapsed().Seconds(), "points/s")
	// Per CPU-second of the process (the decoding, the conversion and the
	// garbage collector): what a core does, whatever else the machine runs.
	b.ReportMetric(float64(b.N*5000)/(cpuSeconds()-cpu0), "points/cpu-s")
}

// cpuSeconds is the process's user and system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
