package cli

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	fdremote "github.com/grayzone/grayzone/actuator/frontdoor/remote"
)

func newFrontDoorCmd(stdout, stderr io.Writer) *cobra.Command {
	var file, logLevel string
	cmd := &cobra.Command{
		Use:   "frontdoor",
		Short: "Run the zone-aware front door as its own process, fed by grayzone serve over xDS",
		Long: `Runs grayzone's embedded front door (a regional endpoint and one endpoint per
zone) as a process of its own, so that customer traffic outlives the controller:
serve (frontdoor type xds) publishes the targets, their health and the zonal
shift in force over xDS; this process follows it, keeps the last state it
received in --config's state_file, and goes on routing with it while serve is
down, restarting or unreachable. A shift stays in force until its expiry.

Restarted on its own, the front door routes with the saved state at once,
before serve answers.

It talks to serve with mutual TLS (tls: ca_file, cert_file, key_file; off
loopback, plaintext needs insecure: true), and refuses, even from serve, a
state of an older leadership epoch than the one it holds, one with more than
one zone shifted, and one naming a target not in its own targets list: the
last good state stays in force, the refusal is logged and counted in
grayzone_frontdoor_xds_refused_total{reason} (metrics_listen). See
docs/frontdoor.md and docs/security.md.`,
		Example: `  grayzone frontdoor --config examples/frontdoor.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErr("--config is required (try examples/frontdoor.yaml)")
			}
			cfg, err := fdremote.LoadConfig(file)
			if err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErr("--log-level %q: want debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
			fd, err := fdremote.Start(cmd.Context(), fdremote.Options{Config: cfg, Log: log})
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			defer fd.Close()
			fmt.Fprintf(stdout, "grayzone frontdoor: %s regional %s, following %s\n", cfg.Resource, fd.RegionalURL(), cfg.XDS)
			<-cmd.Context().Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "front door configuration (YAML; see examples/frontdoor.yaml)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
