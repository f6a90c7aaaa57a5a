package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/benchmark"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/lab/telemetrypath"
)

func newBenchCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure grayzone: detection delay, false shifts, throughput",
	}
	cmd.AddCommand(newBenchDetectCmd(stdout, stderr), newBenchProxyCmd(stdout, stderr),
		newBenchBackendCmd(stdout), newBenchFrontDoorCmd(stdout), newBenchFloorProxyCmd(stdout), newBenchDataplaneCmd(stdout, stderr), newBenchIngestCmd(stdout, stderr), newBenchIngestSenderCmd(stdout), newBenchFleetCmd(stdout, stderr))
	return cmd
}

func newBenchProxyCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		o      benchmark.ProxyOptions
		output output
	)
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Front door throughput, latency, CPU and drain time against HAProxy",
		Long: `Starts three backend processes (100-byte answers), HAProxy (nbthread 1,
round-robin, keep-alive to the backends), grayzone's embedded front door (a
process of its own, recording every request's outcome, as in serve) and
` + "`grayzone frontdoor`" + ` (fed over xDS with mutual TLS by an xDS server in this
process, as users deploy it), and drives each with wrk in interleaved rounds:
direct to one backend, through HAProxy, through each front door.

Placement (taskset): the proxy under test alone on CPU 0 (the proxies take
turns), wrk on CPU 1, the backends on CPUs 2-4 when there are any, else beside
wrk. The first --warmup rounds are discarded; each round rotates the order.
CPU per request is the proxy process's own utime+stime over the round divided
by wrk's requests. Prints medians of req/s, p50 and p99 latency and CPU per
request, and each one's ratio to HAProxy in the same round as the median
(min-max) over the rounds, against issue 23's targets (>= 1.2x req/s, <= 1.0x
p99, <= 0.8x CPU per request); the load average and CPU steal during the
rounds; then the drain propagation time of a zonal shift under a paced load.
With the defaults one run takes about 6 minutes.

--floor adds a fifth configuration, placed and measured as the others: the
floor proxy (` + "`grayzone bench floorproxy`" + `), one thread running a
level-triggered epoll loop on raw sockets with no protections at all. It is
not a product but a measuring stick: what a Go proxy could cost per request
at best on this machine, to tell whether issue 23's targets are within reach
of a Go front door. A run with it takes about a quarter longer.

Needs haproxy and wrk (apt-get install -y haproxy wrk) and taskset (util-linux).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.check(); err != nil {
				return err
			}
			o.Progress = stderr
			if o.Warmup == 0 {
				o.Warmup = -1 // ProxyOptions: 0 is the default, negative none
			}
			res, err := benchmark.RunProxy(cmd.Context(), o)
			if errors.Is(err, benchmark.ErrProxyToolsMissing) {
				return &exitError{code: ExitUsage, err: err}
			}
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			return output.write(stdout, res, func() { res.Print(stdout) })
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Rounds, "rounds", 7, "measured interleaved rounds (direct, haproxy, embedded front door, grayzone frontdoor, and with --floor the floor proxy in each)")
	f.IntVar(&o.Warmup, "warmup", 1, "whole rounds run first and discarded (0: none)")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "wrk duration of each run")
	f.IntVar(&o.Connections, "connections", 64, "wrk connections")
	f.IntVar(&o.GoMaxProcs, "gomaxprocs", 0, "GOMAXPROCS of the two Go front doors (0: Go's choice, 1 on the one CPU they are pinned to)")
	f.Float64Var(&o.DrainRate, "drain-rate", 2000, "paced load during the drain measurement, req/s")
	f.BoolVar(&o.Floor, "floor", false, "also measure the floor proxy (bench floorproxy): the cheapest Go proxy, no protections, not a product")
	f.IntVar(&o.DrainTrials, "drain-trials", 10, "zonal shifts measured per proxy (negative: skip)")
	output.flag(cmd, "text (markdown tables)")
	return cmd
}

// newBenchBackendCmd is the backend process `bench proxy` starts.
func newBenchBackendCmd(stdout io.Writer) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:    "backend",
		Short:  "A benchmark backend (started by bench proxy)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return benchmark.RunBackend(cmd.Context(), listen, stdout)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address to listen on; the address bound is printed")
	return cmd
}

// newBenchFrontDoorCmd is the front door process `bench proxy` starts.
func newBenchFrontDoorCmd(stdout io.Writer) *cobra.Command {
	var backends []string
	cmd := &cobra.Command{
		Use:    "frontdoor",
		Short:  "grayzone's front door over benchmark backends (started by bench proxy)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(backends) == 0 {
				return usageErr("--backends is required")
			}
			return benchmark.RunFrontDoor(cmd.Context(), backends, stdout)
		},
	}
	cmd.Flags().StringSliceVar(&backends, "backends", nil, "backend addresses (host:port), one zone each")
	return cmd
}

// newBenchFloorProxyCmd is the floor proxy `bench proxy --floor` starts: a
// measuring stick with no protections, not a product (benchmark/floorproxy.go).
func newBenchFloorProxyCmd(stdout io.Writer) *cobra.Command {
	var (
		listen   string
		backends []string
	)
	cmd := &cobra.Command{
		Use:   "floorproxy",
		Short: "The cheapest Go HTTP/1.1 proxy, a measuring stick with no protections (started by bench proxy --floor)",
		Long: `One thread, a level-triggered epoll loop on raw sockets, one kept-alive
backend connection per client connection (round-robin): what a Go front door
could cost per request at best. No limits, no timeouts, no checks; requests
without bodies, answers framed by Content-Length. Not a product: never deploy it.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(backends) == 0 {
				return usageErr("--backends is required")
			}
			return benchmark.RunFloorProxy(cmd.Context(), listen, backends, stdout)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address to listen on; the address bound is printed")
	cmd.Flags().StringSliceVar(&backends, "backends", nil, "backend addresses (host:port)")
	return cmd
}

func newBenchDetectCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		seeds, negSeeds int
		output          output
		files, paths    []string
		corpus          string
		days, parallel  int
		firstSeed       int64
		profiles        []string
		noBaseline      bool
		dayLen          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "detect",
		Short: "Detection delay and false shifts of the default and cloudwatch profiles, in sim mode",
		Long: `Runs, in sim mode, every built-in scenario (or those given) under both detection
profiles for many seeds, and a sweep of fault size × traffic level × seeds, and
prints detection delays (median, p90), the ratio of the default profile's delay
to the CUSUM bound, missed detections, false shifts on the negative scenarios,
customer failures relative to --baseline, and simulated minutes per second.

With --corpus day it runs the day corpus instead: --days 24-hour sim
scenarios generated from seeds --first-seed.. (benchmark.DayYAML; the first
ones are kept in benchmark/corpus/day/), or with --corpus DIR every *.yaml
of DIR, each under both profiles and once without mitigation, --parallel at
a time, and prints per profile: false shifts per day, real zonal faults
missed, shift episodes per real fault, delay p50/p90 and its ratio to the
CUSUM bound, when traffic was given back, and customer requests failed
against no mitigation. Progress goes to stderr. What counts as a false shift
and a missed fault: BENCHMARKS.md, "A simulated production day". The runs
are handed out costliest first (busiest days first), and, being a batch job,
the corpus collects garbage rarely: GOGC 1600, with a soft memory limit of
1 GiB per --parallel worker unless GOMEMLIMIT sets one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.check(); err != nil {
				return err
			}
			if len(files) == 0 {
				files = scenario.BuiltinNames()
			}
			var scs []*scenario.Scenario
			for _, f := range files {
				sc, err := scenario.Open(f)
				if err != nil {
					return &exitError{code: ExitUsage, err: err}
				}
				scs = append(scs, sc)
			}
			if corpus != "" {
				return benchCorpus(cmd, stdout, stderr, corpus, firstSeed, days, dayLen, parallel, profiles, noBaseline, output)
			}
			if len(paths) > 0 {
				return benchTelemetryPaths(cmd, stdout, stderr, paths, seeds, output)
			}
			res, err := benchmark.Detect(cmd.Context(), benchmark.DetectOptions{Scenarios: scs, Seeds: seeds, NegativeSeeds: negSeeds, Progress: stderr})
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			return output.write(stdout, res, func() { res.Print(stdout) })
		},
	}
	f := cmd.Flags()
	f.IntVar(&seeds, "seeds", 20, "seeds per sweep cell and per positive scenario")
	f.IntVar(&negSeeds, "negative-seeds", 50, "seeds per negative scenario (expect shift: none)")
	output.flag(cmd, "text (markdown tables)")
	f.StringSliceVar(&files, "scenario", nil, "scenario files or built-in names (default: every built-in scenario)")
	f.StringVar(&corpus, "corpus", "", "instead: run a corpus of day-long scenarios: day (generated from seeds) or a directory of *.yaml")
	f.IntVar(&days, "days", 50, "with --corpus day: how many days")
	f.Int64Var(&firstSeed, "first-seed", 1, "with --corpus day: the first day's seed")
	f.DurationVar(&dayLen, "day-length", 24*time.Hour, "with --corpus day: each day's simulated length (shorter days scale every fault's time and duration)")
	f.IntVar(&parallel, "parallel", 0, "with --corpus: runs at a time (default: one per CPU)")
	f.StringSliceVar(&profiles, "profile", detect.Profiles, "with --corpus: the detection profiles to run each day under")
	f.BoolVar(&noBaseline, "no-baseline", false, "with --corpus: skip each day's run without mitigation (no failed-requests comparison)")
	f.StringSliceVar(&paths, "telemetry", nil, "instead: detection delay on the workshop scenario through each telemetry path given ("+strings.Join(telemetrypath.Names, ", ")+"), against the CUSUM bound plus the path's own delay")
	return cmd
}

// benchCorpus runs `bench detect --corpus`.
func benchCorpus(cmd *cobra.Command, stdout, stderr io.Writer, corpus string, first int64, days int, dayLen time.Duration, parallel int, profiles []string, noBaseline bool, output output) error {
	var (
		scs []*scenario.Scenario
		err error
	)
	switch {
	case days < 1:
		return usageErr("--days %d: want at least 1", days)
	case dayLen < scenario.MinDuration || dayLen > scenario.MaxDuration:
		return usageErr("--day-length %s: want %s to %s", dayLen, scenario.MinDuration, scenario.MaxDuration)
	case len(profiles) == 0:
		return usageErr("--profile: name at least one of %v", detect.Profiles)
	}
	for _, p := range profiles {
		if !slices.Contains(detect.Profiles, p) {
			return usageErr("--profile %s: want one of %v", p, detect.Profiles)
		}
	}
	switch {
	case corpus == "day":
		scs, err = benchmark.DayCorpus(first, days, dayLen)
	default:
		scs, err = benchmark.CorpusDir(corpus)
	}
	if err != nil {
		return &exitError{code: ExitUsage, err: fmt.Errorf("--corpus %s: %w", corpus, err)}
	}
	res, err := benchmark.Corpus(cmd.Context(), benchmark.CorpusOptions{Days: scs, Parallel: parallel, Profiles: profiles, NoBaseline: noBaseline, Progress: stderr})
	if err != nil {
		return &exitError{code: exitUnknown, err: err}
	}
	return output.write(stdout, res, func() { res.Print(stdout) })
}
