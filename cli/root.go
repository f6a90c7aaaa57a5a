// Package cli is grayzone's command line: cobra commands that parse flags and
// hand over to the packages that do the work.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit statuses shared by every command.
const (
	ExitOK      = 0
	ExitFailed  = 1 // the command ran but its outcome is negative (e.g. an expect not met)
	ExitUsage   = 2 // bad command line, scenario, config or input
	exitUnknown = 1
)

// exitError carries an exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// Main runs the command line and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "grayzone:", ee.err)
		}
		return ee.code
	}
	// cobra's own errors (unknown flag, bad arguments) are usage errors.
	fmt.Fprintln(stderr, "grayzone:", err)
	return ExitUsage
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "grayzone",
		Short: "Detect zonal gray failures and shift traffic away from the impaired zone",
		Long: `grayzone watches a multi-zone service from its own point of view (server-side
outcomes and canaries per zone, operation and instance), decides in seconds
when one zone is impaired while health checks stay green, and evacuates it:
data plane first (a zonal shift), control plane second (no new capacity there),
and back again when the zone is healthy.

Start with the lab, which reproduces AWS's multi-AZ gray-failure workshop on
this machine:

  grayzone lab                 # the workshop scenario, real servers on loopback
  grayzone lab --mode sim      # the same on a virtual clock, in well under a second`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newLabCmd(stdout, stderr), newBenchCmd(stdout, stderr), newServeCmd(stdout, stderr), newWorkloadCmd(stdout, stderr))
	root.AddCommand(newFrontDoorCmd(stdout, stderr))
	root.AddCommand(apiCommands(stdout, stderr)...)
	root.AddCommand(newReplayCmd(stdout, stderr))
	root.AddCommand(newVersionCmd(stdout))
	return root
}
