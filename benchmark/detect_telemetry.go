package benchmark

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/lab"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/lab/sim"
	"github.com/grayzone/grayzone/lab/telemetrypath"
	"github.com/grayzone/grayzone/telemetry/operation"
)

// PathRow is one telemetry path's detection delay on a scenario.
type PathRow struct {
	Path string `json:"path"`
	Delays
	// SourceDelayS is the path's own delay: its export, scrape or flush interval (0 direct).
	SourceDelayS float64 `json:"source_delay_s"`
	// BoundS is the CUSUM bound for the scenario's fault plus the source's delay.
	BoundS   float64 `json:"cusum_bound_plus_source_s"`
	RatioP50 float64 `json:"p50_to_bound"`
}

// DetectTelemetry runs sc in sim mode through each path for seeds seeds,
// with the default profile, and compares the first detection's delay with
// the CUSUM bound of sc's first packet-loss fault plus the path's interval.
func DetectTelemetry(ctx context.Context, sc *scenario.Scenario, paths []string, seeds int, progress io.Writer) ([]PathRow, error) {
	if seeds <= 0 {
		seeds = 20
	}
	eng, err := detect.New(detect.Config{Zones: []string{"a", "b"}})
	if err != nil {
		return nil, err
	}
	cfg := eng.Config()
	bound := math.NaN()
	for _, f := range sc.Faults {
		if f.Kind == scenario.PacketLoss {
			bad := f.Percent / 100 * dbShare()
			rate := sc.Load.RPS/float64(len(sc.Topology.Zones)) + float64(len(operation.Catalog))/sc.Canary.Interval.Seconds()
			bound = cusumBound(cfg, detect.DimFault, bad, rate, sim.DBTimeout)
			break
		}
	}
	var rows []PathRow
	for _, p := range paths {
		var ds []float64
		for seed := int64(1); seed <= int64(seeds); seed++ {
			s := *sc
			s.Seed = seed
			r, err := lab.Run(ctx, lab.Options{Scenario: &s, Mode: lab.ModeSim, Telemetry: p})
			if err != nil {
				return nil, err
			}
			ds = append(ds, firstDetection(&s, r))
		}
		row := PathRow{Path: p, Delays: summarise(ds)}
		if p != telemetrypath.Direct {
			row.SourceDelayS = telemetrypath.Interval.Seconds()
		}
		row.BoundS = bound + row.SourceDelayS
		row.RatioP50 = row.P50 / row.BoundS
		rows = append(rows, row)
		progressf(progress, "telemetry path %-10s done\n", p)
	}
	return rows, nil
}

// PrintPaths writes the telemetry paths' table.
func PrintPaths(w io.Writer, scenarioName string, rows []PathRow) {
	fmt.Fprintf(w, "\n### Detection through each telemetry path (%s, default profile, sim mode)\n\n", scenarioName)
	fmt.Fprintln(w, "| path | p50 | p90 | missed | source delay | CUSUM bound + source delay | p50/bound |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %.2fs | %.2fs | %d/%d | %s | %.2fs | %.2f |\n", r.Path, r.P50, r.P90, r.Missed, r.Runs,
			time.Duration(r.SourceDelayS*float64(time.Second)), r.BoundS, r.RatioP50)
	}
}
