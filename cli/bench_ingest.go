package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/benchmark"
	"github.com/grayzone/grayzone/telemetry/ingest"
)

// newBenchIngestSenderCmd is the sender process bench ingest starts.
func newBenchIngestSenderCmd(stdout io.Writer) *cobra.Command {
	var o benchmark.SenderOptions
	cmd := &cobra.Command{
		Use:    "ingest-sender",
		Short:  "Sends a fleet's telemetry to a receiver (started by bench ingest)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.URL == "" {
				return usageErr("--url is required")
			}
			if o.Instances <= 0 || o.Operations <= 0 || o.Duration <= 0 {
				return usageErr("--instances, --operations and --duration must be positive")
			}
			return benchmark.RunSender(cmd.Context(), o, stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.URL, "url", "", "the receiver's URL")
	f.StringVar(&o.Source, "source", "otlp", "otlp or batch")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "sending time")
	f.IntVar(&o.Instances, "instances", 10_000, "instances in the fleet")
	f.IntVar(&o.Operations, "operations", 50, "operations per instance")
	return cmd
}

func newBenchIngestCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		o          benchmark.IngestOptions
		output     output
		cpuProfile string
		senders    string
	)
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Telemetry ingestion throughput and memory per source, at fleet scale and under overload",
		Long: `For each source (otlp: the OTLP/HTTP receiver, protobuf; batch: the batch API's
aggregated form), senders on loopback push a fleet's per-interval records
(--instances × --operations, default 10,000 × 50) as fast as they can into an
ingest gate that a real detection engine drains every 250 ms with grayzone
serve's budget. Reports records admitted per second, per core and per
CPU-second of the receiving process, its peak resident memory, what was
dropped because the buffer was full (lower --drain-per-tick to offer far more
than the engine takes: the overload case), and the slowest engine tick.

The senders run in a process of their own by default (--senders apart, this
binary's hidden "bench ingest-sender"), so the CPU measured is the receiving
side's alone, as in production; --senders inprocess runs them as goroutines
of the measured process, their CPU included.`,
		Example: `  grayzone bench ingest --output json
  grayzone bench ingest --source otlp --duration 10s --drain-per-tick 500 --max-pending 200000   # overload
  grayzone bench ingest --source otlp --cpuprofile ingest.prof   # then: go tool pprof ingest.prof`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.check(); err != nil {
				return err
			}
			o.Progress = stderr
			switch senders {
			case "apart":
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("--senders apart: %w", err)
				}
				o.Sender = []string{exe, "bench", "ingest-sender"}
			case "inprocess":
			default:
				return usageErr("--senders %q: want apart or inprocess", senders)
			}
			for _, src := range o.Sources {
				if src != "otlp" && src != "batch" {
					return usageErr("--source %q: want otlp or batch", src)
				}
			}
			stopProfile, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stopProfile()
			res, err := benchmark.RunIngest(cmd.Context(), o)
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			return output.write(stdout, res, func() {
				fmt.Fprintln(stdout, "| source | records/s | per CPU-second | peak RSS MiB | dropped | engine records/s | overload | slowest tick ms |")
				fmt.Fprintln(stdout, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
				for _, r := range res {
					fmt.Fprintf(stdout, "| %s | %.0f | %.0f | %.0f | %d | %.0f | %.1f× | %.0f |\n",
						r.Source, r.ObsPerS, r.ObsPerCPUS, r.RSSMiB, r.Dropped, r.EnginePerS, r.Overload, r.MaxTickMs)
				}
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Instances, "instances", 10_000, "instances in the fleet")
	f.IntVar(&o.Operations, "operations", 50, "operations per instance")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "sending time per source")
	f.StringSliceVar(&o.Sources, "source", nil, "sources to measure: otlp, batch (default both)")
	f.IntVar(&o.DrainPerTick, "drain-per-tick", ingest.DefaultDrainPerTick, "aggregates the engine takes per 250 ms tick (serve's budget); lower it to overload the engine")
	f.StringVar(&senders, "senders", "apart", "apart (a sender process of its own) or inprocess (goroutines of the measured process)")
	f.IntVar(&o.MaxPending, "max-pending", 1_000_000, "the ingest buffer (telemetry.max_pending)")
	output.flag(cmd, "text (a markdown table)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}
