package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grayzone/grayzone/replay"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/emf"
	"github.com/grayzone/grayzone/telemetry/prometheus"
	"github.com/grayzone/grayzone/telemetry/record"
)

func newReplayCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		file, from, resource, htmlPath, detector string
		output                                   output
		start, end                               string
		step                                     time.Duration
		falseAlarm                               float64
		minInstances                             int
	)
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Run the engine over recorded telemetry and show what it would have decided, and when",
		Long: `Replays recorded observations through a fresh detection engine, runbook and
controller on a virtual clock, with a resource's configuration from --config,
and prints what grayzone would have decided and when, with the detector's
explanation — a run report, as the lab writes. Nothing is acted on. The same input gives the
same report, byte for byte.

--from is one of:
  batch:FILE        the batch format (one POST /v1/observations body a line),
                    as grayzone serve writes with telemetry.record_observations
  emf:FILE          a CloudWatch EMF log (dimension and metric names from the
                    resource's emf source, else the workshop's)
  prometheus:URL    a Prometheus range (--start, --end, --step) with the
                    resource's prometheus source queries, else the defaults

--detector and the detector parameters override the configuration, to answer
"would this have shifted, and how fast, with these settings".

  grayzone replay --config serve.yaml --from emf:app.log --html replay.html
  grayzone replay --config serve.yaml --from prometheus:http://127.0.0.1:9090 \
      --start 2026-11-29T08:30:00Z --end 2026-11-29T09:30:00Z --detector cloudwatch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErr("--config is required")
			}
			if err := output.check(); err != nil {
				return err
			}
			cfg, err := config.Load(file)
			if err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			rc := &cfg.Resources[0]
			if resource != "" {
				var ok bool
				if rc, ok = cfg.Resource(resource); !ok {
					return usageErr("--resource %q: not in %s", resource, file)
				}
			}
			kind, src, ok := strings.Cut(from, ":")
			if !ok || src == "" {
				return usageErr("--from %q: want batch:FILE, emf:FILE or prometheus:URL", from)
			}
			dc := rc.DetectConfig()
			if detector != "" {
				dc.Profile = detector
			}
			if cmd.Flags().Changed("false-alarm-rate") {
				dc.FalseAlarmRate = falseAlarm
			}
			if cmd.Flags().Changed("min-instances") {
				dc.MinInstances = minInstances
			}
			in, err := replayInput(cmd.Context(), kind, src, rc, start, end, step)
			if err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			r, err := replay.Run(cmd.Context(), in, replay.Options{Detect: dc, Runbook: rc.RunbookPolicy()})
			if err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			if htmlPath != "" {
				if err := writeHTMLReport(htmlPath, r, nil); err != nil {
					return &exitError{code: exitUnknown, err: err}
				}
			}
			return output.write(stdout, r, func() {
				r.Summary(stdout)
				for _, d := range r.Detections {
					fmt.Fprintf(stdout, "  why        %s at %.1fs: %s\n", d.Alarm, d.At, d.Why)
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "config", "", "grayzone serve's configuration (the resource's zones, operations, detector, autoshift)")
	f.StringVar(&resource, "resource", "", "the resource to replay (default: the first)")
	f.StringVar(&from, "from", "", "batch:FILE, emf:FILE or prometheus:URL")
	f.StringVar(&start, "start", "", "prometheus: the window's start (RFC 3339)")
	f.StringVar(&end, "end", "", "prometheus: the window's end (RFC 3339)")
	f.DurationVar(&step, "step", 5*time.Second, "prometheus: the query step (the source's interval)")
	f.StringVar(&detector, "detector", "", "override the detection profile (default or cloudwatch)")
	f.Float64Var(&falseAlarm, "false-alarm-rate", 0, "override detector.false_alarm_rate")
	f.IntVar(&minInstances, "min-instances", 0, "override detector.min_instances")
	output.flag(cmd, "text (the run report's summary)")
	f.StringVar(&htmlPath, "html", "", "also write the report as one self-contained HTML page")
	return cmd
}

func replayInput(ctx context.Context, kind, src string, rc *config.Resource, start, end string, step time.Duration) (replay.Input, error) {
	switch kind {
	case "batch":
		return replay.Open("batch", src, rc.Name, emf.Names{}, 0)
	case "emf":
		names, interval := emf.WorkshopNames(), time.Second
		for _, s := range rc.Telemetry.Sources {
			if s.Type == config.SourceEMF {
				c := s.EMFConfig()
				names, interval = c.Names, c.Interval
				break
			}
		}
		return replay.Open("emf", src, rc.Name, names, interval)
	case "prometheus":
		t0, err := time.Parse(time.RFC3339, start)
		if err != nil {
			return replay.Input{}, fmt.Errorf("--start %q: want an RFC 3339 time", start)
		}
		t1, err := time.Parse(time.RFC3339, end)
		if err != nil || !t1.After(t0) {
			return replay.Input{}, fmt.Errorf("--end %q: want an RFC 3339 time after --start", end)
		}
		var pc prometheus.Config
		for _, s := range rc.Telemetry.Sources {
			if s.Type == config.SourcePrometheus {
				pc = s.PrometheusConfig()
				break
			}
		}
		pc.URL, pc.Interval = src, step
		pc.Sink = discardSink{}
		p, err := prometheus.New(pc)
		if err != nil {
			return replay.Input{}, err
		}
		aggs, err := p.Range(ctx, t0, t1, step)
		if err != nil {
			return replay.Input{}, err
		}
		return replay.Input{Name: src, Resource: rc.Name, Aggregates: aggs}, nil
	}
	return replay.Input{}, fmt.Errorf("--from: unknown source %q (want batch, emf or prometheus)", kind)
}

// discardSink: a range read hands its aggregates back instead of to a gate.
type discardSink struct{}

func (discardSink) Offer(string, []record.Aggregate, time.Time) error { return nil }
func (discardSink) Reject(string, error)                              {}
