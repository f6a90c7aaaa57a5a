package cli

import (
	"errors"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/benchmark"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/lab/telemetrypath"
)

func newBenchCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure grayzone: detection delay, false shifts, throughput",
	}
	cmd.AddCommand(newBenchDetectCmd(stdout, stderr), newBenchProxyCmd(stdout, stderr),
		newBenchBackendCmd(stdout), newBenchFrontDoorCmd(stdout), newBenchDataplaneCmd(stdout, stderr), newBenchIngestCmd(stdout, stderr), newBenchIngestSenderCmd(stdout), newBenchFleetCmd(stdout, stderr))
	return cmd
}

func newBenchProxyCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		o      benchmark.ProxyOptions
		output string
	)
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Front door throughput, latency, CPU and drain time against HAProxy",
		Long: `Starts three backend processes (100-byte answers), HAProxy (nbthread 1,
round-robin, keep-alive to the backends) and grayzone's front door (a process
of its own, recording every request's outcome), pins them to CPU 0 and wrk to
CPU 1, and drives each with wrk in interleaved rounds: direct to one backend,
through HAProxy, through the front door. Prints medians of req/s, p50 and p99
latency and the proxy's CPU per request, with ratios to HAProxy; then the
drain propagation time of a zonal shift under a paced load.

Needs haproxy and wrk (apt-get install -y haproxy wrk) and taskset (util-linux).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageErr("--output %q: want text or json", output)
			}
			o.Progress = stderr
			res, err := benchmark.RunProxy(cmd.Context(), o)
			if errors.Is(err, benchmark.ErrProxyToolsMissing) {
				return &exitError{code: ExitUsage, err: err}
			}
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			return writeBench(stdout, output, res, func() { res.Print(stdout) })
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Rounds, "rounds", 5, "interleaved rounds (direct, haproxy, grayzone in each)")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "wrk duration of each run")
	f.IntVar(&o.Connections, "connections", 64, "wrk connections")
	f.Float64Var(&o.DrainRate, "drain-rate", 2000, "paced load during the drain measurement, req/s")
	f.IntVar(&o.DrainTrials, "drain-trials", 10, "zonal shifts measured per proxy (negative: skip)")
	f.StringVarP(&output, "output", "o", "text", "text (markdown tables) or json")
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

func newBenchDetectCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		seeds, negSeeds int
		output          string
		files, paths    []string
	)
	cmd := &cobra.Command{
		Use:   "detect",
		Short: "Detection delay and false shifts of the default and cloudwatch profiles, in sim mode",
		Long: `Runs, in sim mode, every built-in scenario (or those given) under both detection
profiles for many seeds, and a sweep of fault size × traffic level × seeds, and
prints detection delays (median, p90), the ratio of the default profile's delay
to the CUSUM bound, missed detections, false shifts on the negative scenarios,
customer failures relative to --baseline, and simulated minutes per second.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageErr("--output %q: want text or json", output)
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
			if len(paths) > 0 {
				return benchTelemetryPaths(cmd, stdout, stderr, paths, seeds, output)
			}
			res, err := benchmark.Detect(cmd.Context(), benchmark.DetectOptions{Scenarios: scs, Seeds: seeds, NegativeSeeds: negSeeds, Progress: stderr})
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			return writeBench(stdout, output, res, func() { res.Print(stdout) })
		},
	}
	f := cmd.Flags()
	f.IntVar(&seeds, "seeds", 20, "seeds per sweep cell and per positive scenario")
	f.IntVar(&negSeeds, "negative-seeds", 50, "seeds per negative scenario (expect shift: none)")
	f.StringVarP(&output, "output", "o", "text", "text (markdown tables) or json")
	f.StringSliceVar(&files, "scenario", nil, "scenario files or built-in names (default: every built-in scenario)")
	f.StringSliceVar(&paths, "telemetry", nil, "instead: detection delay on the workshop scenario through each telemetry path given ("+strings.Join(telemetrypath.Names, ", ")+"), against the CUSUM bound plus the path's own delay")
	return cmd
}
