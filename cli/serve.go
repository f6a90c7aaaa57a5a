package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/service"
)

func newServeCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		file, dataDir, listen, tokenFile, logLevel, advertise, cpuProfile string
		blockProfile, mutexProfile, traceSlow, memProfile                 string
		tickWorkers, gcPercent, memLimitMiB                               int
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run grayzone next to your service: ingest observations, detect, shift zones, keep state",
		Long: `Runs the long-running controller: the embedded zone-aware front door for each
configured resource, canaries against its zonal endpoints, the detection engine
on a real clock, autoshift with its guards (dry run, approval, minimum interval,
capacity), practice runs, and an HTTP JSON API (see docs/api.md) with
/metrics in Prometheus' format. State (shifts, practice runs, the runbook's
progress, an append-only audit log) lives in SQLite under --data-dir, so a
restart — even after kill -9 — resumes where it stopped. With store:
postgres://... in the configuration, two or more replicas share it: one leads,
the others serve reads, redirect mutations to it and take over when its lease
lapses (see docs/ha.md).

The configuration is validated strictly at start: a mistake is one line naming
the file, line and key, and the exit status is 2. Mutating API calls need a
bearer token, read from --token-file (one name:token a line; the name is what
shifts and the audit log show) or the configuration, never from the command
line. With tls_cert_file and tls_key_file the API and dashboard serve HTTPS,
and a renewed certificate is picked up without a restart. docs/security.md
says what a caller without a token can and cannot make grayzone do.

With a notifications section, every detection, decision awaiting approval,
shift, exclusion, fail static and failing action goes to Alertmanager (as
alerts) and webhooks (signed CloudEvents), delivered at least once from the
store by the leader; see docs/notifications.md.

On AWS (frontdoor type arc, control_plane type autoscaling), credentials, region
and endpoints come only from the AWS SDK's default chain (AWS_PROFILE,
AWS_REGION, instance roles, AWS_ENDPOINT_URL...); see docs/aws.md.`,
		Example: `  grayzone serve --config examples/serve.yaml
  grayzone serve --config examples/serve-alertmanager.yaml   # notifies an Alertmanager on :9093
  AWS_PROFILE=prod AWS_REGION=us-east-2 grayzone serve --config examples/aws.yaml
  grayzone serve --config serve.yaml --data-dir /var/lib/grayzone --listen :8080 --token-file /etc/grayzone/tokens`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErr("--config is required (try examples/serve.yaml)")
			}
			if tickWorkers < 0 {
				return usageErr("--tick-workers %d: want 0 (GOMAXPROCS) or more", tickWorkers)
			}
			cfg, err := config.Load(file)
			if err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			if dataDir != "" {
				cfg.DataDir = dataDir
			}
			if listen != "" {
				cfg.Listen = listen
			}
			if tokenFile != "" {
				cfg.Auth.TokensFile = tokenFile
			}
			if advertise != "" {
				host, port, err := net.SplitHostPort(advertise)
				if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
					return usageErr("--advertise %q: want host:port (the API address followers send clients to)", advertise)
				}
				cfg.Replica.Advertise = advertise
			}
			tokens, err := cfg.LoadTokens()
			if err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			if err := cfg.CheckTelemetryCredentials(tokens); err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			if err := cfg.LoadStore(); err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usageErr("--log-level %q: want debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
			if gcPercent < 0 || gcPercent > 0 && gcPercent < 10 {
				return usageErr("--gc-percent %d: want 10 or more (0: Go's default, 100, or GOGC)", gcPercent)
			}
			if memLimitMiB < 0 {
				return usageErr("--memory-limit-mib %d: want 0 (none, or GOMEMLIMIT) or more", memLimitMiB)
			}
			applyGC(log, gcPercent, memLimitMiB)
			checkFileLimit(log, len(cfg.Resources))
			if len(tokens) == 0 {
				log.Warn("no API tokens configured: every mutating call will be refused with 401")
			}
			if names := config.UnscopedTokens(tokens); len(names) > 0 {
				// Backwards compatible: a line without scopes may do everything.
				log.Info("tokens without scopes may ingest, operate and read; write name:token:scopes to narrow them (docs/security.md)",
					"tokens", strings.Join(names, ","))
			}
			for _, t := range tokens {
				if strings.HasPrefix(t.Secret, "replace-me") || strings.HasPrefix(t.Secret, "example-") {
					log.Warn("an example token from examples/tokens.txt is in use: replace it before exposing the API", "token", t.Name)
				}
				if strings.HasPrefix(t.Name, "unnamed-") {
					log.Warn("a token has no name: shifts and the audit log will show it as "+t.Name+"; write it as name:token", "token", t.Name)
				}
			}
			stopProfile, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer stopProfile()
			stopMem, err := startMemProfile(memProfile)
			if err != nil {
				return err
			}
			defer stopMem()
			stopContention, err := startContentionProfiles(blockProfile, mutexProfile)
			if err != nil {
				return err
			}
			defer stopContention()
			tracer, err := startSlowTracer(traceSlow, log)
			if err != nil {
				return err
			}
			defer tracer.stop()
			ctx, stop := context.WithCancelCause(cmd.Context())
			defer stop(nil)
			leading, leaseEpoch, lost, err := startLeaderElection(ctx, cfg, log)
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			go func() {
				if err := <-lost; err != nil {
					stop(err)
				}
			}()
			svc, err := service.Open(ctx, service.Options{Config: cfg, Tokens: tokens, Log: log, Extra: serveDashboard(cfg, tokens, log), Leading: leading, LeaseEpoch: leaseEpoch, TickWorkers: tickWorkers, Slow: tracer.hook()})
			if err != nil {
				return &exitError{code: exitUnknown, err: err}
			}
			defer svc.Close()
			go func() {
				fmt.Fprintf(stdout, "grayzone serve: API and dashboard on %s (data in %s)\n", svc.APIURL(), cfg.DataDir)
			}()
			if err := svc.Run(ctx); err != nil && !errors.Is(err, ctx.Err()) {
				return &exitError{code: exitUnknown, err: err}
			}
			if cause := context.Cause(ctx); cause != nil && cmd.Context().Err() == nil {
				return &exitError{code: exitUnknown, err: cause} // the lease was lost
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "configuration file (YAML; see examples/serve.yaml)")
	f.StringVar(&dataDir, "data-dir", "", "directory for grayzone's state (overrides data_dir)")
	f.StringVar(&listen, "listen", "", "address of the API and dashboard (overrides listen)")
	f.StringVar(&tokenFile, "token-file", "", "file of bearer tokens, one name:token a line (overrides auth.tokens_file)")
	f.StringVar(&advertise, "advertise", "", "API address followers send clients to, with a shared store (overrides replica.advertise)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.IntVar(&tickWorkers, "tick-workers", 0, "resources the tick loop ticks at once in each 250ms pass (0: GOMAXPROCS, the cores Go uses)")
	f.IntVar(&gcPercent, "gc-percent", 0, "garbage collector target: collect once allocations reach this percent of the live heap (0: Go's default, 100, or $GOGC); higher means fewer collections for more memory, for a large fleet (docs/ha.md)")
	f.IntVar(&memLimitMiB, "memory-limit-mib", 0, "soft memory limit of the process in MiB: the collector runs sooner as the heap nears it (0: none, or $GOMEMLIMIT); bounds what --gc-percent costs in memory")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file, complete when serve stops (go tool pprof)")
	f.StringVar(&memProfile, "memprofile", "", "write a heap profile to this file when serve stops: what was allocated over the run and what is live (go tool pprof -sample_index=alloc_space)")
	f.StringVar(&blockProfile, "blockprofile", "", "write where goroutines waited (channels, selects, locks) to this file when serve stops (go tool pprof)")
	f.StringVar(&mutexProfile, "mutexprofile", "", "write where contended locks were held to this file when serve stops (go tool pprof)")
	f.StringVar(&traceSlow, "trace-slow", "", "keep an execution trace of the last seconds and write it to PREFIX.tick.N.trace / PREFIX.status.N.trace when a tick pass takes over 100ms or a GET /v1/status over 200ms (a few a run; go tool trace)")
	return cmd
}
