package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/benchmark"
)

func newBenchFleetCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		o      benchmark.FleetOptions
		output output
	)
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Cost of one serve watching N resources: CPU, memory, descriptors, /metrics, API latency",
		Long: `Generates a serve configuration of --resources resources, each shaped like
examples/serve.yaml's web (3 zones, 6 targets, embedded front door, canaries
every 10s, autoshift in dry run) on free loopback ports, starts this binary's
"grayzone workload" for the targets and "grayzone serve" as processes, sends
--rate requests a second per resource to the regional front doors for
--duration, and reports of the serve process: CPU (share of one core), RSS,
open file descriptors (/proc/PID/fd, also per resource), /metrics series,
size and fetch time, GET /v1/status latency (sampled every second, p50, p99
and max), the tick loop's p99 (grayzone_tick_seconds over the passes made
during the load), failed customer requests (connection errors and 5xx) and
fail-static entries in the audit log. Progress goes to stderr.

It ends with four verdicts, PASS or FAIL, and exits 1 if any fails:
0 failed requests, every GET /v1/status under 200 ms, tick p99 under 100 ms,
0 fail-static entries (issue 24's bar for 1,000 resources over 10 minutes:
grayzone bench fleet --resources 1000 --duration 10m).

It also reports serve's garbage collection over the load (cycles, total
stop-the-world pause, GC CPU, allocation rate, live heap, goroutines), read
from serve's /metrics, so a run says whether GC is what makes it slow.

The whole fleet runs on this machine: on a small or busy one, the workload
and the load compete with serve for the CPU; say so with the numbers.
--harness-nice N runs the workload (the targets, the harness's largest CPU
user) at a lower priority (nice N) so that serve's latencies are more its own;
the load generator and the status sampler keep theirs (a niced sampler would
count its own waits for a CPU in serve's answers). The output says which
was used.`,
		Example: `  grayzone bench fleet --resources 1000 --duration 10m
  grayzone bench fleet --resources 50 --duration 2m
  grayzone bench fleet --resources 200 --rate 5 --output json
  grayzone bench fleet --resources 200 --cpuprofile serve.prof   # then: go tool pprof serve.prof
  grayzone bench fleet --resources 1000 --duration 10m --harness-nice 10   # the workload after serve on the CPU
  grayzone bench fleet --resources 200 --memprofile heap.prof    # then: go tool pprof -sample_index=alloc_space heap.prof
  grayzone bench fleet --resources 1000 --duration 2m --trace-slow slow --blockprofile block.prof`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.check(); err != nil {
				return err
			}
			if o.Resources < 1 {
				return usageErr("--resources %d: want at least 1", o.Resources)
			}
			if o.Rate <= 0 {
				return usageErr("--rate %g: want more than 0", o.Rate)
			}
			if o.HarnessNice < 0 || o.HarnessNice > 19 {
				return usageErr("--harness-nice %d: want 0 (everything at one priority) to 19", o.HarnessNice)
			}
			if o.GCPercent < 0 || o.GCPercent > 0 && o.GCPercent < 10 {
				return usageErr("--gc-percent %d: want 10 or more (0: serve's default)", o.GCPercent)
			}
			if o.MemoryLimitMiB < 0 {
				return usageErr("--memory-limit-mib %d: want 0 (none) or more", o.MemoryLimitMiB)
			}
			if o.TickWorkers < 0 {
				return usageErr("--tick-workers %d: want 0 (serve's default) or more", o.TickWorkers)
			}
			if o.Duration < time.Second {
				return usageErr("--duration %s: want at least 1s", o.Duration)
			}
			o.Progress = stderr
			res, err := benchmark.RunFleet(cmd.Context(), o)
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			if err := output.write(stdout, res, func() { res.Print(stdout) }); err != nil {
				return err
			}
			if !res.Passed() {
				failed := 0
				for _, v := range res.Verdicts {
					if !v.Pass {
						failed++
					}
				}
				return &exitError{code: ExitFailed, err: fmt.Errorf("bench fleet: %d of %d checks failed (the FAIL lines above)", failed, len(res.Verdicts))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Resources, "resources", 10, "resources in the generated configuration")
	f.DurationVar(&o.Duration, "duration", time.Minute, "how long the load runs once serve is up")
	f.Float64Var(&o.Rate, "rate", 1, "customer requests per second per resource")
	f.IntVar(&o.TickWorkers, "tick-workers", 0, "serve --tick-workers: resources its tick loop ticks at once (0: serve's default, GOMAXPROCS)")
	f.IntVar(&o.HarnessNice, "harness-nice", 0, "run the workload (the targets: stand-ins for other machines, the harness's largest CPU user) at this nice value, 1-19 (nice(1)), so serve gets the CPU first; 0: everything at one priority, as on one machine. The load generator and status sampler keep their priority. The output says which")
	f.IntVar(&o.GCPercent, "gc-percent", 0, "serve --gc-percent: its garbage collector's target (0: serve's default, 100 or $GOGC)")
	f.IntVar(&o.MemoryLimitMiB, "memory-limit-mib", 0, "serve --memory-limit-mib: its soft memory limit (0: none, or $GOMEMLIMIT)")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the serve process to this file (serve --cpuprofile; go tool pprof)")
	f.StringVar(&o.MemProfile, "memprofile", "", "write a heap profile of the serve process to this file: what it allocated over the run and what is live at the end (serve --memprofile; go tool pprof -sample_index=alloc_space)")
	f.StringVar(&o.BlockProfile, "blockprofile", "", "write where serve's goroutines waited to this file (serve --blockprofile; go tool pprof)")
	f.StringVar(&o.MutexProfile, "mutexprofile", "", "write serve's contended locks to this file (serve --mutexprofile; go tool pprof)")
	f.StringVar(&o.TraceSlow, "trace-slow", "", "traces of serve's slow tick passes and status calls, to PREFIX.tick.N.trace and PREFIX.status.N.trace (serve --trace-slow; go tool trace)")
	output.flag(cmd, "text (a markdown table)")
	return cmd
}
