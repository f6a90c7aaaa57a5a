package benchmark

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	out := `Running 10s test @ http://127.0.0.1:8080/bench
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms  300.00us   1.02s    90.00%
    Req/Sec    30.00k     1.00k   35.00k    80.00%
  Latency Distribution
     50%  812.00us
     75%    2.20ms
     90%    2.40ms
     99%    1.50s 
  300123 requests in 10.00s, 50.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 5
Requests/sec:  30012.30
Transfer/sec:      5.00MB
`
	r, err := ParseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 300123 || r.RPS != 30012.30 || r.P50 != 812*time.Microsecond || r.P99 != 1500*time.Millisecond || r.Errors != 10 {
		t.Errorf("%+v", r)
	}
	if _, err := ParseWrk("Requests/sec: 1\n"); err == nil {
		t.Error("no latency distribution: no error")
	}
	if _, err := ParseWrk("garbage"); err == nil {
		t.Error("garbage: no error")
	}
}

func TestCPUTicksOfSelf(t *testing.T) {
	if _, err := cpuTicks(1); err != nil {
		t.Skip("no /proc here:", err)
	}
	n, err := cpuTicks(selfPid())
	if err != nil || n < 0 {
		t.Fatalf("%d %v", n, err)
	}
}

func selfPid() int { return os.Getpid() }

// TestProxyRowRatiosPairRounds: a row's ratios to HAProxy are taken round by
// round (each against HAProxy's in the same round) and reported as median,
// min and max; an unmeasured CPU is null in JSON.
func TestProxyRowRatiosPairRounds(t *testing.T) {
	ha := &ProxyRow{Rounds: []ProxyRound{{RPS: 100, P99ms: 2, CPU: 10}, {RPS: 50, P99ms: 4, CPU: 20}, {RPS: 100, P99ms: 2, CPU: 10}}}
	fd := &ProxyRow{Rounds: []ProxyRound{{RPS: 120, P99ms: 2, CPU: 8}, {RPS: 65, P99ms: 2, CPU: 14}, {RPS: 110, P99ms: 3, CPU: 9}}}
	ha.summarise(true, ha)
	fd.summarise(true, ha)
	if got, want := *fd.RPSRatio, (Spread{Min: 1.1, Median: 1.2, Max: 1.3}); math.Abs(got.Min-want.Min) > 1e-9 || math.Abs(got.Median-want.Median) > 1e-9 || math.Abs(got.Max-want.Max) > 1e-9 {
		t.Errorf("req/s ratio %+v, want %+v (paired by round, not medians over rounds: %v/%v)", got, want, fd.RPS, ha.RPS)
	}
	if got := *fd.CPURatio; got.Median != 0.8 || got.Min != 0.7 || got.Max != 0.9 {
		t.Errorf("CPU ratio %+v", got)
	}
	if got := *fd.P99Ratio; got.Median != 1 || got.Min != 0.5 || got.Max != 1.5 {
		t.Errorf("p99 ratio %+v", got)
	}
	if got := fd.meets(); got != "met" { // the bounds are inclusive
		t.Errorf("meets: %q", got)
	}
	fd.P99Ratio.Median, fd.CPURatio.Median = 1.01, 0.81
	if got := fd.meets(); got != "missed: p99, CPU" {
		t.Errorf("meets: %q", got)
	}
	direct := &ProxyRow{Rounds: []ProxyRound{{RPS: 300, P99ms: 1, CPU: math.NaN()}}}
	direct.summarise(false, ha)
	b, err := json.Marshal(direct)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"cpu_us_per_req":null`) || direct.CPURatio != nil {
		t.Errorf("unmeasured CPU: %s", b)
	}
}

// TestProcCountsPerRequest: the kernel's counts for a process are read
// (this one: it has read and written, and switched), and a row's counts
// per request are the medians over the rounds that have them.
func TestProcCountsPerRequest(t *testing.T) {
	before := readProcCounts(selfPid())
	f, err := os.CreateTemp(t.TempDir(), "counts")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("x")
	f.Close()
	os.ReadFile(f.Name())
	after := readProcCounts(selfPid())
	if !after.io || after.reads <= before.reads || after.writes <= before.writes || after.switches == 0 {
		t.Errorf("counts before %+v, after %+v", before, after)
	}
	v := func(x float64) *float64 { return &x }
	row := &ProxyRow{Rounds: []ProxyRound{{Reads: v(4), Switches: v(0.5)}, {Reads: v(2), Switches: v(0.3)}, {Reads: v(3)}}}
	row.summarise(true, row)
	if *row.ReadsPerReq != 3 || *row.SwitchesPerReq != 0.4 || row.WritesPerReq != nil {
		t.Errorf("per request: reads %v, switches %v, writes %v", *row.ReadsPerReq, *row.SwitchesPerReq, row.WritesPerReq)
	}
}

// TestOthersOnProxyCPU: the share of a CPU that other processes used is its
// busy time less the proxy's own, of the elapsed time.
func TestOthersOnProxyCPU(t *testing.T) {
	s, e := cpuBusy{busy: 100, total: 1000}, cpuBusy{busy: 180, total: 1100}
	if got, ok := s.othersPct(e, 50); !ok || got != 30 {
		t.Errorf("othersPct = %v, %v; want 30", got, ok)
	}
	if got, ok := s.othersPct(e, 90); !ok || got != 0 { // ticks are coarse: never below 0
		t.Errorf("othersPct = %v, %v; want 0", got, ok)
	}
	if _, ok := s.othersPct(s, 0); ok {
		t.Error("no time elapsed: no share")
	}
	if c := readCPUBusy(0); c.total == 0 || c.busy > c.total {
		t.Errorf("readCPUBusy(0) = %+v", c)
	}
}

// TestProxyFloorRow: with --floor the floor proxy is a fifth row, with its
// ratios to HAProxy in the same round, in both tables and in JSON (a
// "floor" object); without it, neither the row nor the JSON field is there.
// Each proxy's kernel share of its CPU is in the counts table and in JSON.
func TestProxyFloorRow(t *testing.T) {
	v := func(x float64) *float64 { return &x }
	row := func(rps, p99, cpu float64, reads, writes *float64, kernel float64) *ProxyRow {
		return &ProxyRow{Rounds: []ProxyRound{{RPS: rps, P99ms: p99, CPU: cpu, Reads: reads, Writes: writes, Switches: v(0.1), Kernel: v(kernel)}}}
	}
	build := func(floor bool) *ProxyResult {
		r := &ProxyResult{Direct: &ProxyRow{Rounds: []ProxyRound{{RPS: 500, P99ms: 1, CPU: math.NaN()}}},
			HAProxy: row(100, 2, 20, nil, nil, 62), Grayzone: row(100, 2, 21, v(4), v(2), 77), Process: row(90, 2, 22, v(4), v(2), 80)}
		if floor {
			r.Floor = row(130, 1.8, 12, v(2), v(2), 95)
		}
		r.Direct.summarise(false, r.HAProxy)
		for _, x := range []*ProxyRow{r.HAProxy, r.Grayzone, r.Process, r.Floor} {
			if x != nil {
				x.summarise(true, r.HAProxy)
			}
		}
		return r
	}
	var out strings.Builder
	build(true).Print(&out)
	text := out.String()
	for _, want := range []string{
		"| " + floorRowName + " | 130 | 0.000 | 1.800 | 12.00 | 1.30× (1.30–1.30) | 0.90× (0.90–0.90) | 0.60× (0.60–0.60) | met |",
		"| " + floorRowName + " | 2.00 | 2.00 | 0.10 | 95 | – |",
		"| HAProxy | – | – | 0.10 | 62 | – |",
		"- floor: 130/1.800/12.00",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no line %q in\n%s", want, text)
		}
	}
	b, err := json.Marshal(build(true))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]any
	json.Unmarshal(b, &got)
	if f := got["floor"]; f == nil || f["cpu_us_per_req"] != 12.0 || f["kernel_pct"] != 95.0 || got["haproxy"]["kernel_pct"] != 62.0 {
		t.Errorf("JSON: %s", b)
	}
	out.Reset()
	build(false).Print(&out)
	if b, _ := json.Marshal(build(false)); strings.Contains(out.String(), floorRowName) || strings.Contains(string(b), `"floor"`) {
		t.Errorf("without --floor, a floor row: %s\n%s", out.String(), b)
	}
}
