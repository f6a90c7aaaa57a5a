package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/lab/database"
	"github.com/grayzone/grayzone/lab/workload"
	"github.com/grayzone/grayzone/server/config"
)

// newWorkloadCmd runs the workshop's app as the backends of a serve
// configuration, so that examples/serve.yaml can be tried without a service
// of one's own — and so that a zone can be made to fail on purpose.
func newWorkloadCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		file, db string
		errPct   float64
		zones    []string
	)
	cmd := &cobra.Command{
		Use:   "workload",
		Short: "Run the workshop's demo app on every target of a serve configuration",
		Long: `Starts one instance of the workshop's app (/ride, /pay, /signin, /home, /health)
on the address of every front-door target in a grayzone serve configuration,
with the embedded store (or --database URL) behind them. With --fail-zone and
--http-error, the instances of those zones return 500 for that share of
requests (health checks included, like a real sick instance): a quick way to
watch grayzone serve detect and shift a zone.`,
		Example: `  grayzone workload --config examples/serve.yaml
  grayzone workload --config examples/serve.yaml --fail-zone use2-az1 --http-error 30`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErr("--config is required")
			}
			if errPct < 0 || errPct > 100 {
				return usageErr("--http-error %g: want a percentage from 0 to 100", errPct)
			}
			cfg, err := config.Load(file)
			if err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			ctx := cmd.Context()
			url := db
			if url == "" {
				em, err := database.StartEmbedded(ctx)
				if err != nil {
					return &exitError{code: exitUnknown, err: err}
				}
				defer em.Close()
				url = em.URL()
			}
			if err := database.Migrate(ctx, url); err != nil {
				return &exitError{code: exitUnknown, err: fmt.Errorf("prepare the database: %w", err)}
			}
			client, err := database.Open(ctx, url)
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			defer client.Close()
			failing := map[string]bool{}
			for _, z := range zones {
				failing[z] = true
			}
			n := 0
			for _, r := range cfg.Resources {
				for _, t := range r.FrontDoor.Targets {
					in, err := workload.Start(ctx, workload.Config{Zone: t.Zone, ID: t.ID, DB: client, Listen: t.Addr})
					if err != nil {
						return &exitError{code: exitUnknown, err: err}
					}
					defer in.Close()
					if failing[t.Zone] && errPct > 0 {
						in.SetFaults(workload.InstanceFaults{HTTPErrorPercent: errPct})
					}
					n++
					fmt.Fprintf(stdout, "%-10s %-10s http://%s\n", t.ID, t.Zone, in.Addr())
				}
			}
			msg := ""
			if len(zones) > 0 && errPct > 0 {
				msg = fmt.Sprintf(", %g%% of requests failing in %s", errPct, strings.Join(zones, ", "))
			}
			fmt.Fprintf(stdout, "grayzone workload: %d instances up%s; Ctrl-C to stop\n", n, msg)
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "grayzone serve configuration whose targets to run")
	f.StringVar(&db, "database", "", "PostgreSQL URL (default: the embedded store)")
	f.StringSliceVar(&zones, "fail-zone", nil, "zones whose instances fail a share of requests")
	f.Float64Var(&errPct, "http-error", 0, "percentage of requests the failing zones answer with 500")
	return cmd
}
