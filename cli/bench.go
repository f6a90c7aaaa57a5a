package cli

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/benchmark"
	"github.com/grayzone/grayzone/scenario"
)

func newBenchCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure grayzone: detection delay, false shifts, throughput",
	}
	cmd.AddCommand(newBenchDetectCmd(stdout, stderr))
	return cmd
}

func newBenchDetectCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		seeds, negSeeds int
		output          string
		files           []string
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
			res, err := benchmark.Detect(cmd.Context(), benchmark.DetectOptions{Scenarios: scs, Seeds: seeds, NegativeSeeds: negSeeds, Progress: stderr})
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			if output == "json" {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			res.Print(stdout)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&seeds, "seeds", 20, "seeds per sweep cell and per positive scenario")
	f.IntVar(&negSeeds, "negative-seeds", 50, "seeds per negative scenario (expect shift: none)")
	f.StringVarP(&output, "output", "o", "text", "text (markdown tables) or json")
	f.StringSliceVar(&files, "scenario", nil, "scenario files or built-in names (default: every built-in scenario)")
	return cmd
}
