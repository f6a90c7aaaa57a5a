package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/lab"
	"github.com/grayzone/grayzone/lab/console"
	labreport "github.com/grayzone/grayzone/lab/report"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/lab/telemetrypath"
)

func newLabCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		file, mode, detector, reportPath, database string
		listen, htmlPath                           string
		frontDoor, controlPlane, telemetry         string
		baseline, verbose, quiet                   bool
		seed                                       int64
	)
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Reproduce a zonal gray failure on this machine and watch grayzone mitigate it",
		Long: `Runs a scenario (default: the workshop's, built in) end to end: app instances per
zone on loopback, one database, a fault-injecting link per zone, a zone-aware
front door, an instance group, customer load and canaries. grayzone detects the
isolated zonal impact, shifts the zone away, excludes it from the instance
group, and brings it back once it is healthy.

While it runs: on a terminal, a status block redrawn in place (a line per
zone with availability, p99 and state; the shift, the instance group and the
customers; elapsed / total with a progress bar), each event (fault, detection,
shift, exclusion, recovery) printed above it as it happens. In a pipe or a CI
log: a plain line every 10 s of the scenario, at most 100 characters, and each
event on its own line. Sim mode, over in well under a second, prints the
events alone on a terminal, and the plain form in a pipe. --quiet prints only
the summary. The summary starts with the outcome in one line ("mitigated: 8
of 7,200 customer requests failed (0.11 %)", with --baseline the unmitigated
count beside it), then the timeline.

Exit status: 0 when every expect of the scenario held, 1 when one did not,
2 when the scenario or the command is invalid.

Built-in scenarios: ` + strings.Join(scenario.BuiltinNames(), ", "),
		Example: `  grayzone lab
  grayzone lab --scenario smoke --report r.json --html r.html
  grayzone lab --scenario smoke --quiet --baseline
  grayzone lab --scenario my.yaml --mode sim --detector cloudwatch --baseline

  grayzone lab --frontdoor arc --control-plane autoscaling   # through the AWS SDK, against a stand-in for AWS`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				file = scenario.DefaultName
			}
			sc, err := scenario.Open(file)
			if err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			if cmd.Flags().Changed("seed") {
				sc.Seed = seed
			}
			level := slog.LevelWarn
			if verbose {
				level = slog.LevelInfo
			}
			con := labConsole(stdout, mode, quiet)
			logOut := stderr
			if con.Mode() == console.Live && terminalWidth(stderr) != nil {
				logOut = con // on the same screen: log lines go above the block, not through it
			}
			log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
			opts := lab.Options{
				Scenario: sc, Mode: mode, Detector: detector, Baseline: baseline,
				Database: database, Progress: con, Log: log, Listen: listen,
				Dashboard: labDashboard(log),
				FrontDoor: frontDoor, ControlPlane: controlPlane,
			}
			opts.Telemetry = telemetry
			r, err := lab.Run(cmd.Context(), opts)
			if errors.Is(err, lab.ErrUsage) {
				return &exitError{code: ExitUsage, err: err}
			}
			if r != nil {
				if !quiet {
					fmt.Fprintln(stdout) // apart from the progress above
				}
				r.Summary(stdout)
				if reportPath != "" {
					if werr := r.WriteFile(reportPath); werr != nil {
						return &exitError{code: exitUnknown, err: werr}
					}
					fmt.Fprintf(stdout, "  report     %s\n", reportPath)
				}
				if htmlPath != "" {
					if werr := writeHTMLReport(htmlPath, r, labreport.Scene(r, sc)); werr != nil {
						return &exitError{code: exitUnknown, err: werr}
					}
					fmt.Fprintf(stdout, "  html       %s\n", htmlPath)
				}
			}
			if err != nil {
				if cmd.Context().Err() != nil {
					return &exitError{code: ExitFailed, err: errors.New("interrupted")}
				}
				return &exitError{code: exitUnknown, err: err}
			}
			if !r.Expect.Met {
				return &exitError{code: ExitFailed, err: errors.New("expectations not met")}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "scenario", "", "scenario file, or the name of a built-in scenario (default "+scenario.DefaultName+")")
	f.StringVar(&mode, "mode", lab.ModeReal, "real (servers, database and proxies on loopback, wall-clock time) or sim (virtual clock)")
	f.StringVar(&detector, "detector", detect.ProfileDefault, "detection profile: "+strings.Join(detect.Profiles, " or "))
	f.BoolVar(&baseline, "baseline", false, "also run the scenario with mitigation off and report both")
	f.StringVar(&reportPath, "report", "", "write the JSON report to this file")
	f.StringVar(&htmlPath, "html", "", "write the run's story as one self-contained HTML page (charts included; opens from disk)")
	f.StringVar(&database, "database", "", "real mode: a PostgreSQL URL, or \"embedded\" for the store grayzone ships (default: a throwaway PostgreSQL cluster when PostgreSQL is installed, else the embedded store)")
	f.StringVar(&listen, "listen", "127.0.0.1:8090", "real mode: where to serve the live dashboard and read-only API (a taken port falls back to a free one; \"\" for none)")
	f.Int64Var(&seed, "seed", 0, "override the scenario's seed (sim mode's random choices)")
	f.BoolVarP(&verbose, "verbose", "v", false, "log every decision and action")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the summary (and errors), nothing while the run goes on")
	f.StringVar(&telemetry, "telemetry", "direct", "how the instances' server-side numbers reach the engine: "+strings.Join(telemetrypath.Names, ", ")+" (sim mode; real mode: direct)")
	f.StringVar(&frontDoor, "frontdoor", lab.FrontDoorEmbedded, "the data plane: embedded (grayzone's proxy, shifts set directly), haproxy (real mode: a real HAProxy with a generated config, driven through its runtime API), or arc (ARC StartZonalShift/CancelZonalShift through the AWS SDK against an in-process AWS stand-in, which the front door obeys; see docs/aws.md)")
	f.StringVar(&controlPlane, "control-plane", lab.ControlPlaneGroup, "how exclusions reach the instance group: instancegroup (directly), or autoscaling (UpdateAutoScalingGroup subnets through the AWS SDK against the stand-in, which the group obeys)")
	return cmd
}

// labConsole picks how the run shows while it goes: a live block on a
// terminal, plain lines in a pipe, nothing with --quiet.
func labConsole(stdout io.Writer, mode string, quiet bool) *console.Console {
	width := terminalWidth(stdout)
	o := console.Options{Mode: console.Plain, Width: width}
	switch {
	case quiet:
		o.Mode = console.Quiet
	case width != nil && mode == lab.ModeSim:
		// A sim run is over before a redraw could be seen.
		o.Mode = console.Events
	case width != nil:
		o.Mode = console.Live
	}
	return console.New(stdout, o)
}
