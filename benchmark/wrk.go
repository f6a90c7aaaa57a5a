package benchmark

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// WrkResult is what one wrk run printed.
type WrkResult struct {
	Requests int64
	RPS      float64
	P50, P99 time.Duration
	Errors   int64 // non-2xx/3xx responses plus socket errors
}

var (
	wrkPct      = regexp.MustCompile(`(?m)^\s*(\d+(?:\.\d+)?)%\s+([\d.]+)\s*(us|ms|s|m|h)\s*$`)
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// ParseWrk reads the output of `wrk --latency`.
func ParseWrk(out string) (WrkResult, error) {
	var r WrkResult
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk output has no Requests/sec line:\n%s", out)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	if m = wrkRequests.FindStringSubmatch(out); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	unit := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
	var got50, got99 bool
	for _, m := range wrkPct.FindAllStringSubmatch(out, -1) {
		p, _ := strconv.ParseFloat(m[1], 64)
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		d := time.Duration(v * unit[m[3]])
		switch p {
		case 50:
			r.P50, got50 = d, true
		case 99:
			r.P99, got99 = d, true
		}
	}
	if !got50 || !got99 {
		return r, fmt.Errorf("wrk output has no 50%%/99%% latency lines (was --latency given?):\n%s", out)
	}
	if m = wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.Errors += n
	}
	if m = wrkSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.Errors += n
		}
	}
	return r, nil
}
