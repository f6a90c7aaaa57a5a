package cli

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/benchmark"
	"github.com/grayzone/grayzone/lab/scenario"
)

// benchTelemetryPaths is bench detect --telemetry: the workshop scenario
// through each path.
func benchTelemetryPaths(cmd *cobra.Command, stdout, stderr io.Writer, paths []string, seeds int, output output) error {
	sc, err := scenario.Builtin("workshop-db-packet-loss")
	if err != nil {
		return &exitError{code: exitUnknown, err: err}
	}
	rows, err := benchmark.DetectTelemetry(cmd.Context(), sc, paths, seeds, stderr)
	if err != nil {
		return &exitError{code: ExitUsage, err: err}
	}
	return output.write(stdout, rows, func() { benchmark.PrintPaths(stdout, sc.Name, rows) })
}
