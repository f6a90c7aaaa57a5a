package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/benchmark"
)

func newBenchIngestCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		o          benchmark.IngestOptions
		output     string
		cpuProfile string
	)
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Telemetry ingestion throughput and memory per source, at fleet scale and under overload",
		Long: `For each source (otlp: the OTLP/HTTP receiver, protobuf; batch: the batch API's
aggregated form), senders on loopback push a fleet's per-interval records
(--instances × --operations, default 10,000 × 50) as fast as they can into an
ingest gate that a real detection engine drains every 250 ms with grayzone
serve's budget. Reports records admitted per second (and per core), the
process's peak resident memory, what was dropped because the buffer was full
(the offered load is far above what the engine takes: the overload case), and
the slowest engine tick.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageErr("--output %q: want text or json", output)
			}
			o.Progress = stderr
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			res, err := benchmark.RunIngest(cmd.Context(), o)
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			if output == "json" {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintln(stdout, "| source | records/s | per CPU-second | peak RSS MiB | dropped | engine records/s | overload | slowest tick ms |")
			fmt.Fprintln(stdout, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
			for _, r := range res {
				fmt.Fprintf(stdout, "| %s | %.0f | %.0f | %.0f | %d | %.0f | %.1f× | %.0f |\n",
					r.Source, r.ObsPerS, r.ObsPerCPUS, r.RSSMiB, r.Dropped, r.EnginePerS, r.Overload, r.MaxTickMs)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Instances, "instances", 10_000, "instances in the fleet")
	f.IntVar(&o.Operations, "operations", 50, "operations per instance")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "sending time per source")
	f.StringSliceVar(&o.Sources, "source", nil, "sources to measure: otlp, batch (default both)")
	f.IntVar(&o.DrainPerTick, "drain-per-tick", 100_000, "aggregates the engine takes per 250 ms tick (serve's budget); lower it to overload the engine")
	f.IntVar(&o.MaxPending, "max-pending", 1_000_000, "the ingest buffer (telemetry.max_pending)")
	f.StringVarP(&output, "output", "o", "text", "text (a markdown table) or json")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	return cmd
}
