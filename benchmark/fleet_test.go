package benchmark

import "testing"

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
	if got := tickP99ms(body); got != 4 {
		t.Errorf("tick p99 %g ms, want the 4 ms bucket", got)
	}
	if got := countSeries(body); got != 7 {
		t.Errorf("%d series, want 7", got)
	}
	if got := tickP99ms([]byte("grayzone_leader 1\n")); got != -1 {
		t.Errorf("no histogram: %g", got)
	}
}
