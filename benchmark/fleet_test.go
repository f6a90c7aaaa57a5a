package benchmark

import (
	"strings"
	"testing"
	"time"
)

func TestFleetMetricsParsing(t *testing.T) {
	body := []byte(`# HELP grayzone_tick_seconds x
# TYPE grayzone_tick_seconds histogram
grayzone_tick_seconds_bucket{le="0.001"} 50
grayzone_tick_seconds_bucket{le="0.002"} 98
grayzone_tick_seconds_bucket{le="0.004"} 99
grayzone_tick_seconds_bucket{le="+Inf"} 100
grayzone_tick_seconds_sum 0.1
grayzone_tick_seconds_count 100

grayzone_leader 1
`)
	if got, n := tickP99ms(nil, body); got != 4 || n != 100 {
		t.Errorf("tick p99 %g ms over %d passes, want the 4 ms bucket over 100", got, n)
	}
	if got := countSeries(body); got != 7 {
		t.Errorf("%d series, want 7", got)
	}
	if got, n := tickP99ms(nil, []byte("grayzone_leader 1\n")); got != -1 || n != 0 {
		t.Errorf("no histogram: %g, %d", got, n)
	}
	// Only the passes between the two scrapes count: 50 before (all slow),
	// then 100 more of which 99 within 2 ms.
	before := []byte(`grayzone_tick_seconds_bucket{le="0.001"} 0
grayzone_tick_seconds_bucket{le="0.002"} 0
grayzone_tick_seconds_bucket{le="0.004"} 0
grayzone_tick_seconds_bucket{le="+Inf"} 50
grayzone_tick_seconds_count 50
`)
	after := []byte(`grayzone_tick_seconds_bucket{le="0.001"} 60
grayzone_tick_seconds_bucket{le="0.002"} 99
grayzone_tick_seconds_bucket{le="0.004"} 100
grayzone_tick_seconds_bucket{le="+Inf"} 150
grayzone_tick_seconds_count 150
`)
	if got, n := tickP99ms(before, after); got != 2 || n != 100 {
		t.Errorf("tick p99 between scrapes %g ms over %d, want 2 over 100", got, n)
	}
	// Past the largest bucket: no p99, and the verdict fails.
	if got, n := tickP99ms(nil, before); got != -1 || n != 50 {
		t.Errorf("all passes past the buckets: %g over %d, want -1 over 50", got, n)
	}
}

// The four verdicts follow the measurements, and the run passes only with all four.
func TestFleetVerdicts(t *testing.T) {
	ok := FleetResult{Requests: 600, StatusCalls: 60, StatusP50ms: 3, StatusP99ms: 20, StatusMaxms: 150, TickP99ms: 64, TickPasses: 240}
	ok.judge()
	if !ok.Passed() || len(ok.Verdicts) != 4 {
		t.Fatalf("a good run: %+v", ok.Verdicts)
	}
	for name, bad := range map[string]FleetResult{
		"0 failed requests":           {Requests: 600, Failed: 1, StatusCalls: 60, StatusMaxms: 150, TickP99ms: 64, TickPasses: 240},
		"GET /v1/status under 200 ms": {Requests: 600, StatusCalls: 60, StatusMaxms: 200, TickP99ms: 64, TickPasses: 240},
		"tick p99 under 100 ms":       {Requests: 600, StatusCalls: 60, StatusMaxms: 150, TickP99ms: 250, TickPasses: 240},
		"0 fail-static entries":       {Requests: 600, StatusCalls: 60, StatusMaxms: 150, TickP99ms: 64, TickPasses: 240, FailStatic: 1},
	} {
		bad.judge()
		if bad.Passed() {
			t.Errorf("%s: passed", name)
		}
		for _, v := range bad.Verdicts {
			if v.Pass == (v.Check == name) {
				t.Errorf("%s: verdict %+v", name, v)
			}
		}
	}
	var b strings.Builder
	ok.Print(&b)
	for _, want := range []string{"PASS  0 failed requests: 0 of 600 failed", "PASS  GET /v1/status under 200 ms: max 150.0 ms", "PASS  tick p99 under 100 ms: p99 in the ≤ 64 ms bucket", "PASS  0 fail-static entries: 0"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

// serve's GC over the load is the difference of two scrapes, and a runtime
// without the extra series says so (-1) rather than 0.
func TestFleetGC(t *testing.T) {
	before := []byte(`go_gc_duration_seconds{quantile="0.5"} 0.001
go_gc_duration_seconds_sum 0.5
go_gc_duration_seconds_count 10
go_memstats_alloc_bytes_total 1e+09
go_memstats_mallocs_total 1e+06
go_cpu_classes_gc_total_cpu_seconds_total 2
go_goroutines 100
`)
	after := []byte(`go_gc_duration_seconds_sum 0.75
go_gc_duration_seconds_count 14
go_memstats_alloc_bytes_total 3e+09
go_memstats_mallocs_total 5e+06
go_cpu_classes_gc_total_cpu_seconds_total 8
go_gc_heap_live_bytes 1.048576e+09
go_goroutines 5000
go_gc_gogc_percent 400
go_gc_gomemlimit_bytes 9.223372036854776e+18
`)
	g := fleetGC(before, after, 100*time.Second)
	want := FleetGC{Cycles: 4, PauseMs: 250, CPUPercent: 6, AllocMBps: 20, AllocsPerS: 40000, LiveMiB: 1000, Goroutines: 5000, GOGC: 400, MemLimitMiB: -1}
	if g != want {
		t.Errorf("GC %+v, want %+v", g, want)
	}
	if g := fleetGC(nil, []byte("go_goroutines 3\n"), time.Second); g.CPUPercent != -1 || g.LiveMiB != -1 {
		t.Errorf("without the runtime's series: %+v, want -1 for GC CPU and the live heap", g)
	}
}
