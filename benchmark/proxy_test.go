package benchmark

import (
	"os"
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
