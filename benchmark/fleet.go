package benchmark

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grayzone/grayzone/internal/freeport"
)

// FleetOptions configures RunFleet.
type FleetOptions struct {
	// Resources is how many resources the generated serve configuration has,
	// each shaped like examples/serve.yaml's web (default 10).
	Resources int
	// Duration is how long the load runs after serve is up (default 60s).
	Duration time.Duration
	// Rate is the customer requests per second per resource, sent to its
	// regional front door (default 1).
	Rate float64
	// Exe is the grayzone binary whose workload and serve commands are run
	// (default: this process's executable).
	Exe string
	// Progress receives one line per stage and sample (nil: none).
	Progress io.Writer
	// CPUProfile, when set, is where serve writes a CPU profile of its run
	// (serve --cpuprofile; complete once serve has stopped).
	CPUProfile string
	// BlockProfile, MutexProfile and TraceSlow, when set, are serve's
	// --blockprofile, --mutexprofile and --trace-slow (a file, a file, a
	// prefix): where serve's goroutines wait, and traces of slow passes and
	// status calls.
	BlockProfile, MutexProfile, TraceSlow string
	// MemProfile, when set, is serve's --memprofile: a heap profile written
	// when serve stops (allocations over the run, and what is live).
	MemProfile string
	// TickWorkers, when more than 0, is serve's --tick-workers.
	TickWorkers int
	// HarnessNice, when more than 0, runs the `grayzone workload` process
	// (the targets: a stand-in for other machines, and the harness's largest
	// CPU user, answering the customer requests, health checks and canary
	// calls) at that nice value (nice(1)), so that serve, at its own
	// priority, gets the CPU first and its latencies are less waits for a
	// CPU the workload holds. This process (the load generator and the
	// status sampler) keeps its priority: a niced sampler would time its
	// own waits for a CPU into serve's answers. 0 (the default) runs
	// everything at one priority, as one machine would.
	HarnessNice int
	// GCPercent and MemoryLimitMiB, when more than 0, are serve's
	// --gc-percent and --memory-limit-mib.
	GCPercent, MemoryLimitMiB int
}

// FleetResult is what one fleet run measured of the serve process.
type FleetResult struct {
	Resources  int     `json:"resources"`
	DurationS  float64 `json:"duration_s"`
	RatePerRes float64 `json:"rate_per_resource"`
	CPUPercent float64 `json:"serve_cpu_percent_of_one_core"`
	RSSMiB     float64 `json:"serve_rss_mib"`
	FDs        int     `json:"serve_open_fds"`
	FDsPerRes  float64 `json:"serve_fds_per_resource"`
	Series     int     `json:"metrics_series"`
	// TickP99ms is the upper bound of the grayzone_tick_seconds bucket
	// holding the 99th percentile of the tick loop's passes during the load
	// (-1: no passes).
	TickP99ms   float64 `json:"tick_p99_ms_bucket"`
	TickPasses  int64   `json:"tick_passes"`
	MetricsKB   float64 `json:"metrics_kb"`
	MetricsMs   float64 `json:"metrics_fetch_ms"`
	StatusP50ms float64 `json:"status_p50_ms"`
	StatusP99ms float64 `json:"status_p99_ms"`
	StatusMaxms float64 `json:"status_max_ms"`
	StatusCalls int     `json:"status_calls"`
	Requests    int64   `json:"requests"`
	Failed      int64   `json:"failed_requests"`
	FailStatic  int     `json:"fail_static_entries"`
	// GC is serve's garbage collection over the load, from its /metrics.
	GC FleetGC `json:"serve_gc"`
	// HarnessNice is the nice value the workload ran at (0: serve's own
	// priority).
	HarnessNice int `json:"harness_nice"`
	// Verdicts are issue 24's four conditions for a fleet run, in order.
	Verdicts []FleetVerdict `json:"verdicts"`
}

// FleetGC is serve's garbage collection during the load, the difference
// of two scrapes of its /metrics (the Go collector's series): whether GC is
// what makes a status call or a pass slow.
type FleetGC struct {
	Cycles int64 `json:"cycles"` // go_gc_duration_seconds_count
	// PauseMs is the stop-the-world pauses' total (go_gc_duration_seconds_sum);
	// the concurrent mark is not in it, but in CPUPercent.
	PauseMs float64 `json:"pause_total_ms"`
	// CPUPercent is the CPU the collector took, share of one core
	// (go_cpu_classes_gc_total_cpu_seconds_total; -1: not exposed).
	CPUPercent float64 `json:"cpu_percent_of_one_core"`
	// AllocMBps is the allocation rate (go_memstats_alloc_bytes_total), the
	// pace of the collections; AllocsPerS the objects a second
	// (go_memstats_mallocs_total).
	AllocMBps  float64 `json:"alloc_mb_per_s"`
	AllocsPerS float64 `json:"allocs_per_s"`
	// LiveMiB is the heap live after the last collection at the end
	// (go_gc_heap_live_bytes; -1: not exposed), what every cycle marks.
	LiveMiB float64 `json:"live_heap_mib"`
	// Goroutines at the end (go_goroutines): stacks every cycle scans.
	Goroutines int64 `json:"goroutines"`
	// GOGC is serve's GC target, percent (go_gc_gogc_percent; -1: off or
	// not exposed), MemLimitMiB its soft memory limit (go_gc_gomemlimit_bytes;
	// -1: none or not exposed).
	GOGC        float64 `json:"gogc_percent"`
	MemLimitMiB float64 `json:"memory_limit_mib"`
}

// fleetGC reads serve's GC over the load from a scrape before it and one
// after, elapsed apart.
func fleetGC(before, after []byte, elapsed time.Duration) FleetGC {
	b, a := metricSamples(before), metricSamples(after)
	d := func(name string) float64 { return a[name] - b[name] }
	g := FleetGC{
		Cycles:      int64(d("go_gc_duration_seconds_count")),
		PauseMs:     round3(d("go_gc_duration_seconds_sum") * 1000),
		CPUPercent:  -1,
		AllocMBps:   round3(d("go_memstats_alloc_bytes_total") / 1e6 / elapsed.Seconds()),
		AllocsPerS:  round3(d("go_memstats_mallocs_total") / elapsed.Seconds()),
		LiveMiB:     -1,
		Goroutines:  int64(a["go_goroutines"]),
		GOGC:        -1,
		MemLimitMiB: -1,
	}
	if v, ok := a["go_gc_gogc_percent"]; ok && v >= 0 {
		g.GOGC = v
	}
	if v, ok := a["go_gc_gomemlimit_bytes"]; ok && v < math.MaxInt64/2 { // math.MaxInt64: no limit
		g.MemLimitMiB = round3(v / (1 << 20))
	}
	if _, ok := a["go_cpu_classes_gc_total_cpu_seconds_total"]; ok {
		g.CPUPercent = round3(d("go_cpu_classes_gc_total_cpu_seconds_total") / elapsed.Seconds() * 100)
	}
	if v, ok := a["go_gc_heap_live_bytes"]; ok {
		g.LiveMiB = round3(v / (1 << 20))
	}
	return g
}

// metricSamples are the unlabelled samples of a Prometheus text exposition.
func metricSamples(body []byte) map[string]float64 {
	m := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		name, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || name == "" || name[0] == '#' || strings.ContainsRune(name, '{') {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			m[name] = f
		}
	}
	return m
}

// FleetVerdict is one condition a fleet run must meet.
type FleetVerdict struct {
	Check  string `json:"check"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// The conditions a fleet run must meet (issue 24's "done when").
const (
	FleetStatusLimit = 200 * time.Millisecond // every GET /v1/status sample
	FleetTickP99     = 100 * time.Millisecond // the tick loop's p99, by its own histogram
)

// Passed reports whether every verdict passed.
func (r *FleetResult) Passed() bool {
	for _, v := range r.Verdicts {
		if !v.Pass {
			return false
		}
	}
	return len(r.Verdicts) > 0
}

// judge sets the verdicts from the measurements.
func (r *FleetResult) judge() {
	tick := fmt.Sprintf("p99 in the ≤ %g ms bucket of grayzone_tick_seconds over %d passes", r.TickP99ms, r.TickPasses)
	switch {
	case r.TickPasses == 0:
		tick = "no passes of the tick loop during the load"
	case r.TickP99ms < 0:
		tick = fmt.Sprintf("p99 past the largest bucket of grayzone_tick_seconds over %d passes", r.TickPasses)
	}
	r.Verdicts = []FleetVerdict{
		{"0 failed requests", r.Failed == 0, fmt.Sprintf("%d of %d failed (connection errors and 5xx)", r.Failed, r.Requests)},
		{fmt.Sprintf("GET /v1/status under %d ms", FleetStatusLimit.Milliseconds()), r.StatusCalls > 0 && r.StatusMaxms < float64(FleetStatusLimit.Milliseconds()),
			fmt.Sprintf("max %.1f ms, p99 %.1f ms, p50 %.1f ms over %d calls", r.StatusMaxms, r.StatusP99ms, r.StatusP50ms, r.StatusCalls)},
		{fmt.Sprintf("tick p99 under %d ms", FleetTickP99.Milliseconds()), r.TickP99ms >= 0 && r.TickP99ms <= float64(FleetTickP99.Milliseconds()), tick},
		{"0 fail-static entries", r.FailStatic == 0, fmt.Sprintf("%d in the audit log", r.FailStatic)},
	}
}

// Print writes the result as a markdown table row with its header.
func (r *FleetResult) Print(w io.Writer) {
	fmt.Fprintln(w, "| N | serve CPU (one core) | RSS | open fds (per resource) | /metrics | `GET /v1/status` p50 / max | tick p99 (bucket) | failed requests | fail-static entries |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	fmt.Fprintf(w, "| %d | %.1f %% | %.0f MiB | %d (%.1f) | %d series, %.0f KB, %.0f ms | %.1f / %.1f ms | ≤ %g ms | %d of %d | %d |\n",
		r.Resources, r.CPUPercent, r.RSSMiB, r.FDs, r.FDsPerRes, r.Series, r.MetricsKB, r.MetricsMs,
		r.StatusP50ms, r.StatusMaxms, r.TickP99ms, r.Failed, r.Requests, r.FailStatic)
	fmt.Fprintln(w)
	g := r.GC
	fmt.Fprintf(w, "serve's GC over the load: %d cycles, %.1f ms stop-the-world in total, GC CPU %s of one core, allocation %.1f MB/s (%.0f objects/s), live heap %s after the last cycle, %d goroutines; GOGC %s, memory limit %s\n",
		g.Cycles, g.PauseMs, orNA(g.CPUPercent, "%.1f %%"), g.AllocMBps, g.AllocsPerS, orNA(g.LiveMiB, "%.0f MiB"), g.Goroutines, orNA(g.GOGC, "%.0f"), orNA(g.MemLimitMiB, "%.0f MiB"))
	if r.HarnessNice > 0 {
		fmt.Fprintf(w, "harness: the workload at nice %d (--harness-nice), serve, the load generator and the status sampler at their own priority: serve's latencies leave out most waits for a CPU the workload holds\n", r.HarnessNice)
	} else {
		fmt.Fprintln(w, "harness: the workload, the load generator and serve at one priority (--harness-nice 0): on a small machine serve's latencies include waits for a CPU the harness holds")
	}
	fmt.Fprintln(w)
	for _, v := range r.Verdicts {
		verdict := "PASS"
		if !v.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%s  %s: %s\n", verdict, v.Check, v.Detail)
	}
}

// orNA formats v, or "n/a" for -1 (not exposed).
func orNA(v float64, format string) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf(format, v)
}

// fleetPortsPerResource: regional, three zonal, six targets.
const fleetPortsPerResource = 10

// fleetZones are the zones of every generated resource.
var fleetZones = []string{"use2-az1", "use2-az2", "use2-az3"}

// fleetToken is the generated tokens file's one token; reads need none
// (open_reads), but serve wants a tokens file.
const fleetToken = "bench:fleet-bench-token-0123456789abcdef"

// fleetConfig writes a serve configuration of n resources on free loopback
// ports into dir and returns its path, the API address and each resource's
// regional front door address.
func fleetConfig(dir string, n int) (path, api string, regional []string, err error) {
	addrs, err := fleetPorts(1 + n*fleetPortsPerResource)
	if err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens.txt"), []byte(fleetToken+"\n"), 0o600); err != nil {
		return "", "", nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\ndata_dir: %s\nauth: {tokens_file: tokens.txt, open_reads: true}\nresources:\n", addrs[0], filepath.Join(dir, "data"))
	for i := range n {
		p := addrs[1+i*fleetPortsPerResource:][:fleetPortsPerResource]
		regional = append(regional, p[0])
		fmt.Fprintf(&b, "  - name: web-%d\n    zones: [%s]\n    min_capacity: 2\n", i, strings.Join(fleetZones, ", "))
		fmt.Fprintf(&b, "    frontdoor:\n      type: embedded\n      regional: %s\n      zonal: {", p[0])
		for z, zone := range fleetZones {
			if z > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %s", zone, p[1+z])
		}
		b.WriteString("}\n      record: true\n      targets:\n")
		for t := range 6 {
			fmt.Fprintf(&b, "        - {id: web-%d-%d, zone: %s, addr: %s}\n", i, t+1, fleetZones[t/2], p[4+t])
		}
		b.WriteString("      health_check: {path: /health, interval: 5s, timeout: 2s, healthy_threshold: 2, unhealthy_threshold: 2}\n")
		b.WriteString("    canaries:\n")
		for z, zone := range fleetZones {
			fmt.Fprintf(&b, "      - {zone: %s, url: http://%s, interval: 10s}\n", zone, p[1+z])
		}
		b.WriteString("    autoshift: {enabled: true, dry_run: true}\n")
	}
	path = filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", "", nil, err
	}
	return path, addrs[0], regional, nil
}

// fleetPorts finds n free loopback addresses (freeport: below the
// ephemeral range, where serve's own outgoing connections cannot take them
// before the workload or serve binds them).
func fleetPorts(n int) ([]string, error) {
	ps, err := freeport.Ports(n)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	addrs := make([]string, len(ps))
	for i, p := range ps {
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return addrs, nil
}

// RunFleet starts `grayzone workload` and `grayzone serve` on a generated
// configuration of opts.Resources resources, sends light load to every
// regional front door for opts.Duration, and measures the serve process.
func RunFleet(ctx context.Context, o FleetOptions) (*FleetResult, error) {
	if o.Resources <= 0 {
		o.Resources = 10
	}
	if o.Duration <= 0 {
		o.Duration = time.Minute
	}
	if o.Rate <= 0 {
		o.Rate = 1
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Exe = exe
	}
	progress := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "fleet: "+format+"\n", a...)
		}
	}
	dir, err := os.MkdirTemp("", "gzbench-fleet")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path, api, regional, err := fleetConfig(dir, o.Resources)
	if err != nil {
		return nil, err
	}
	base := "http://" + api

	progress("starting the workload (%d targets)", 6*o.Resources)
	workArgs := []string{o.Exe, "workload", "--config", path}
	if o.HarnessNice > 0 {
		// nice(1) sets the priority before the workload starts, so every
		// thread it makes has it.
		workArgs = append([]string{"nice", "-n", strconv.Itoa(o.HarnessNice)}, workArgs...)
	}
	work, err := startFleetProcess(workArgs[0], dir, "instances up", workArgs[1:]...)
	if err != nil {
		return nil, err
	}
	defer work.stop()
	// The workload prints once every instance listens.
	if err := work.waitReady(ctx, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("workload: %w", err)
	}

	progress("starting serve (%d resources)", o.Resources)
	serveArgs := []string{"serve", "--config", path, "--log-level", "warn"}
	for _, p := range []struct{ flag, path string }{{"--cpuprofile", o.CPUProfile}, {"--memprofile", o.MemProfile}, {"--blockprofile", o.BlockProfile}, {"--mutexprofile", o.MutexProfile}, {"--trace-slow", o.TraceSlow}} {
		if p.path == "" {
			continue
		}
		abs, err := filepath.Abs(p.path) // serve runs in dir
		if err != nil {
			return nil, err
		}
		serveArgs = append(serveArgs, p.flag, abs)
	}
	if o.TickWorkers > 0 {
		serveArgs = append(serveArgs, "--tick-workers", strconv.Itoa(o.TickWorkers))
	}
	if o.GCPercent > 0 {
		serveArgs = append(serveArgs, "--gc-percent", strconv.Itoa(o.GCPercent))
	}
	if o.MemoryLimitMiB > 0 {
		serveArgs = append(serveArgs, "--memory-limit-mib", strconv.Itoa(o.MemoryLimitMiB))
	}
	serve, err := startFleetProcess(o.Exe, dir, "", serveArgs...)
	if err != nil {
		return nil, err
	}
	defer serve.stop()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	if err := waitFor(ctx, 2*time.Minute, func() bool {
		resp, err := client.Get(base + "/v1/status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		return nil, fmt.Errorf("serve is not answering /v1/status: %w", err)
	}
	// Let the front doors' health checks put the targets in rotation.
	time.Sleep(12 * time.Second)

	res := &FleetResult{Resources: o.Resources, DurationS: o.Duration.Seconds(), RatePerRes: o.Rate, HarnessNice: o.HarnessNice}
	// The tick loop's histogram now, so that its passes during the load
	// are judged, not those of serve's start.
	tick0, err := fetchMetrics(ctx, client, base)
	if err != nil {
		return nil, err
	}
	cpu0, err := cpuTicks(serve.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	loadCtx, stopLoad := context.WithTimeout(ctx, o.Duration)
	defer stopLoad()
	var sent, failed atomic.Int64
	var load sync.WaitGroup
	ops := []string{"ride", "pay", "signin", "home"}
	gap := time.Duration(float64(time.Second) / o.Rate)
	for i, addr := range regional {
		load.Go(func() {
			// Each resource's sender starts at its own offset in the gap,
			// so the fleet's load is even rather than in bursts.
			offset := gap * time.Duration(i) / time.Duration(len(regional))
			next := time.Now().Add(offset)
			for n := 0; ; n++ {
				select {
				case <-loadCtx.Done():
					return
				case <-time.After(time.Until(next)):
				}
				next = next.Add(gap)
				sent.Add(1)
				resp, err := client.Get("http://" + addr + "/" + ops[n%len(ops)])
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					failed.Add(1)
				}
			}
		})
	}
	var status []time.Duration
	tick := time.NewTicker(time.Second)
	lastReport := time.Now()
	for loadCtx.Err() == nil {
		select {
		case <-loadCtx.Done():
		case <-tick.C:
			start := time.Now()
			resp, err := client.Get(base + "/v1/status")
			if err != nil || resp.StatusCode != http.StatusOK {
				res.StatusCalls++
				status = append(status, client.Timeout) // a failed read counts as the timeout
				if err == nil {
					resp.Body.Close()
				}
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = append(status, time.Since(start))
			res.StatusCalls++
			if time.Since(lastReport) >= 10*time.Second {
				lastReport = time.Now()
				progress("%s: %d requests, %d failed, status %s", time.Since(t0).Round(time.Second), sent.Load(), failed.Load(), status[len(status)-1].Round(time.Millisecond))
			}
		}
	}
	tick.Stop()
	load.Wait()
	elapsed := time.Since(t0)
	cpu1, err := cpuTicks(serve.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	pid := serve.cmd.Process.Pid
	res.CPUPercent = round3(float64(cpu1-cpu0) / clockTicksPerSecond / elapsed.Seconds() * 100)
	if res.RSSMiB, err = rssMiB(pid); err != nil {
		return nil, err
	}
	if res.FDs, err = openFDs(pid); err != nil {
		return nil, err
	}
	res.FDsPerRes = round3(float64(res.FDs) / float64(o.Resources))
	res.Requests, res.Failed = sent.Load(), failed.Load()
	if len(status) > 0 {
		slices.Sort(status)
		res.StatusP50ms = round3(float64(status[len(status)/2]) / 1e6)
		res.StatusP99ms = round3(float64(status[len(status)*99/100]) / 1e6)
		res.StatusMaxms = round3(float64(status[len(status)-1]) / 1e6)
	}
	start := time.Now()
	body, err := fetchMetrics(ctx, client, base)
	if err != nil {
		return nil, err
	}
	res.MetricsMs = round3(float64(time.Since(start)) / 1e6)
	res.MetricsKB = round3(float64(len(body)) / 1000)
	res.Series = countSeries(body)
	res.TickP99ms, res.TickPasses = tickP99ms(tick0, body)
	res.GC = fleetGC(tick0, body, time.Since(t0))
	if res.FailStatic, err = countFailStatic(ctx, client, base); err != nil {
		return nil, err
	}
	res.judge()
	progress("done: %d requests, %d failed", res.Requests, res.Failed)
	return res, nil
}

// fetchMetrics reads serve's /metrics.
func fetchMetrics(ctx context.Context, client *http.Client, base string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("/metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("/metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: HTTP %d", resp.StatusCode)
	}
	return body, nil
}

// countSeries counts the sample lines of a Prometheus text exposition.
func countSeries(body []byte) int {
	n := 0
	for line := range strings.Lines(string(body)) {
		if line = strings.TrimSpace(line); line != "" && line[0] != '#' {
			n++
		}
	}
	return n
}

// tickP99ms reads the tick loop's p99 off two scrapes of the
// grayzone_tick_seconds histogram: the upper bound of the first bucket
// holding 99 % of the passes made between them (-1: no passes, or the p99
// past the largest bucket), and how many passes that was.
func tickP99ms(before, after []byte) (float64, int64) {
	b0, n0 := tickBuckets(before)
	b1, n1 := tickBuckets(after)
	count := n1 - n0
	if count <= 0 {
		return -1, 0
	}
	for i, b := range b1 {
		n := b.n
		if i < len(b0) && b0[i].le == b.le {
			n -= b0[i].n
		}
		if n >= 0.99*count {
			return round3(b.le * 1000), int64(count)
		}
	}
	return -1, int64(count)
}

type tickBucket struct{ le, n float64 }

// tickBuckets parses grayzone_tick_seconds' cumulative buckets (+Inf left
// out) and count from a Prometheus text exposition.
func tickBuckets(body []byte) ([]tickBucket, float64) {
	var bs []tickBucket
	var count float64
	for line := range strings.Lines(string(body)) {
		if rest, ok := strings.CutPrefix(line, `grayzone_tick_seconds_bucket{le="`); ok {
			le, n, ok := strings.Cut(rest, `"} `)
			if !ok {
				continue
			}
			l, err1 := strconv.ParseFloat(le, 64)
			c, err2 := strconv.ParseFloat(strings.TrimSpace(n), 64)
			if err1 == nil && err2 == nil && !math.IsInf(l, 1) {
				bs = append(bs, tickBucket{l, c})
			}
		} else if rest, ok := strings.CutPrefix(line, "grayzone_tick_seconds_count "); ok {
			count, _ = strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return bs, count
}

// countFailStatic counts the audit log's fail-static starts (not their
// ends) over every resource, paging through GET /v1/audit.
func countFailStatic(ctx context.Context, client *http.Client, base string) (int, error) {
	n := 0
	var after int64
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/audit?after=%d&limit=1000", base, after), nil)
		if err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, fmt.Errorf("audit log: %w", err)
		}
		var es []struct {
			Seq     int64  `json:"seq"`
			Kind    string `json:"kind"`
			Message string `json:"message"`
		}
		err = json.NewDecoder(resp.Body).Decode(&es)
		resp.Body.Close()
		if err != nil {
			return 0, fmt.Errorf("audit log: %w", err)
		}
		if len(es) == 0 {
			return n, nil
		}
		for _, e := range es {
			if e.Kind == "fail_static" && !strings.Contains(e.Message, ") ended after") {
				n++
			}
			after = max(after, e.Seq)
		}
	}
}

// rssMiB is the resident set of a process, from /proc/PID/status.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: VmRSS: %w", pid, err)
			}
			return round3(kb / 1024), nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// openFDs counts a process's open file descriptors.
func openFDs(pid int) (int, error) {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	return len(es), nil
}

// fleetProcess is a grayzone process of the fleet benchmark; ready is
// closed once its stdout has printed a line containing the ready text.
type fleetProcess struct {
	cmd   *exec.Cmd
	ready chan struct{}
	done  chan struct{}
}

func startFleetProcess(exe, dir, ready string, args ...string) (*fleetProcess, error) {
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", exe, args[0], err)
	}
	p := &fleetProcess{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if !seen && ready != "" && strings.Contains(sc.Text(), ready) {
				seen = true
				close(p.ready)
			}
		}
	}()
	return p, nil
}

// waitReady waits for the ready line.
func (p *fleetProcess) waitReady(ctx context.Context, limit time.Duration) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		return errors.New("exited before it was ready")
	case <-timer.C:
		return fmt.Errorf("not ready within %s", limit)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *fleetProcess) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
	}
	_ = p.cmd.Wait()
}
