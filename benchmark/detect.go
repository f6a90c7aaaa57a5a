// Package benchmark holds grayzone's end-to-end benchmarks, run by
// `grayzone bench`: numbers that come from running the product, printed with
// the command that reproduces them.
package benchmark

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/lab"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/report"
	"github.com/grayzone/grayzone/telemetry/operation"
)

// DetectOptions configure the detection benchmark.
type DetectOptions struct {
	Scenarios     []*scenario.Scenario // public scenarios to include
	Seeds         int                  // seeds per sweep cell and per positive scenario (default 20)
	NegativeSeeds int                  // seeds per negative scenario (default 50)
	Progress      io.Writer
}

// SweepCell is one fault size at one traffic level.
type SweepCell struct {
	Name     string  `json:"name"`
	RPS      float64 `json:"rps"`
	Kind     string  `json:"kind"`
	Size     string  `json:"size"`
	BadRate  float64 `json:"bad_rate"` // share of the zone's requests the fault makes bad
	BoundS   float64 `json:"cusum_bound_s"`
	Default  Delays  `json:"default"`
	CW       Delays  `json:"cloudwatch"`
	RatioP50 float64 `json:"default_to_bound_p50"`
}

// Delays summarises detection delays over seeds.
type Delays struct {
	Runs   int     `json:"runs"`
	Missed int     `json:"missed"`
	P50    float64 `json:"p50_s"`
	P90    float64 `json:"p90_s"`
}

// ScenarioRow is one public scenario under both profiles.
type ScenarioRow struct {
	Name      string  `json:"scenario"`
	Negative  bool    `json:"negative"`
	Default   Delays  `json:"default"`
	CW        Delays  `json:"cloudwatch"`
	FalseDef  int     `json:"false_shifts_default"`
	FalseCW   int     `json:"false_shifts_cloudwatch"`
	ExpectDef int     `json:"expect_met_default"`
	ExpectCW  int     `json:"expect_met_cloudwatch"`
	FailedDef float64 `json:"failed_vs_baseline_default"`
	FailedCW  float64 `json:"failed_vs_baseline_cloudwatch"`
}

// DetectResult is the whole benchmark.
type DetectResult struct {
	Scenarios       []ScenarioRow `json:"scenarios"`
	Sweep           []SweepCell   `json:"sweep"`
	SimMinutesPerS  float64       `json:"sim_minutes_per_wall_second"`
	Runs            int           `json:"runs"`
	WallSeconds     float64       `json:"wall_seconds"`
	FalseAlarmRate  float64       `json:"false_alarm_rate"`
	ThresholdH      float64       `json:"threshold_h"`
	MissedOverSweep int           `json:"missed_default_over_sweep"`
}

type runStats struct {
	simulated time.Duration
	runs      int
}

func (s *runStats) run(ctx context.Context, sc *scenario.Scenario, profile string, baseline bool) (*report.Report, error) {
	r, err := lab.Run(ctx, lab.Options{Scenario: sc, Mode: lab.ModeSim, Detector: profile, Baseline: baseline})
	if err != nil {
		return nil, err
	}
	s.runs++
	s.simulated += sc.Duration
	if baseline {
		s.runs++
		s.simulated += sc.Duration
	}
	return r, nil
}

// firstDetection is the delay from the first fault to the first detection, or NaN.
func firstDetection(sc *scenario.Scenario, r *report.Report) float64 {
	if len(sc.Faults) == 0 || len(r.Detections) == 0 {
		return math.NaN()
	}
	first := math.Inf(1)
	for _, f := range sc.Faults {
		if f.Kind != scenario.ControlPlaneOutage {
			first = math.Min(first, f.At.Seconds())
		}
	}
	return r.Detections[0].At - first
}

func summarise(ds []float64) Delays {
	d := Delays{Runs: len(ds)}
	var ok []float64
	for _, v := range ds {
		if math.IsNaN(v) {
			d.Missed++
		} else {
			ok = append(ok, v)
		}
	}
	sort.Float64s(ok)
	d.P50, d.P90 = percentile(ok, 0.5), percentile(ok, 0.9)
	return d
}

// sweepScenario builds one sweep cell's scenario: three zones of two
// instances, the fault on zone az-b from about 60 s for 3 minutes.
func sweepScenario(rps float64, f scenario.Fault, seed int64) *scenario.Scenario {
	zones := []string{"az-a", "az-b", "az-c"}
	inst := map[string]int{}
	for _, z := range zones {
		inst[z] = 2
	}
	var mix []scenario.OperationShare
	for _, op := range operation.Catalog {
		mix = append(mix, scenario.OperationShare{Operation: op.Name, Share: op.DefaultMix})
	}
	// The fault starts at a seed-dependent phase of the 5 s canary round, so
	// that no cell is flattered by a canary burst landing on its first instant.
	phase := time.Duration(seed*1370%5000) * time.Millisecond
	f.At, f.Duration, f.Target = 60*time.Second+phase, 3*time.Minute, scenario.Target{Zone: "az-b"}
	return &scenario.Scenario{
		Version: 1, Name: "sweep", Seed: seed, Duration: 5 * time.Minute,
		Topology: scenario.Topology{Zones: zones, Instances: inst, DatabaseZone: "az-b"},
		Load:     scenario.Load{RPS: rps, Mix: mix},
		Canary:   scenario.Canary{Interval: 5 * time.Second},
		Policy:   scenario.Policy{ControlPlaneAfter: 30 * time.Second, RecoveryHold: 60 * time.Second},
		Faults:   []scenario.Fault{f},
		File:     "sweep",
	}
}

// dbShare is the share of customer traffic that touches the database.
func dbShare() float64 {
	s := 0.0
	for _, op := range operation.Catalog {
		if op.UsesDB {
			s += op.DefaultMix
		}
	}
	return s
}

// Detect runs the benchmark.
func Detect(ctx context.Context, o DetectOptions) (*DetectResult, error) {
	if o.Seeds <= 0 {
		o.Seeds = 20
	}
	if o.NegativeSeeds <= 0 {
		o.NegativeSeeds = 50
	}
	wall := time.Now()
	var st runStats
	res := &DetectResult{}
	eng, err := detect.New(detect.Config{Zones: []string{"a", "b"}})
	if err != nil {
		return nil, err
	}
	cfg := eng.Config()
	res.FalseAlarmRate = cfg.FalseAlarmRate
	// The bank's threshold, as Fast computes it for the fault floor.
	h := detect.Threshold(cfg, detect.DimFault)
	res.ThresholdH = h

	for _, sc := range o.Scenarios {
		row := ScenarioRow{Name: sc.Name, Negative: sc.Expect.Shift != nil && sc.Expect.Shift.None}
		seeds := o.Seeds
		if row.Negative {
			seeds = o.NegativeSeeds
		}
		var dDef, dCW, fDef, fCW []float64
		for seed := int64(1); seed <= int64(seeds); seed++ {
			s := *sc
			s.Seed = seed
			for _, profile := range detect.Profiles {
				r, err := st.run(ctx, &s, profile, !row.Negative)
				if err != nil {
					return nil, err
				}
				delay := firstDetection(&s, r)
				falseShift := row.Negative && len(r.Shifts) > 0
				ratio := math.NaN()
				if r.Baseline != nil && r.Baseline.Requests.Failed > 0 {
					ratio = float64(r.Requests.Failed) / float64(r.Baseline.Requests.Failed)
				}
				if profile == detect.ProfileDefault {
					dDef = append(dDef, delay)
					fDef = append(fDef, ratio)
					if falseShift {
						row.FalseDef++
					}
					if r.Expect.Met {
						row.ExpectDef++
					}
				} else {
					dCW = append(dCW, delay)
					fCW = append(fCW, ratio)
					if falseShift {
						row.FalseCW++
					}
					if r.Expect.Met {
						row.ExpectCW++
					}
				}
			}
		}
		if !row.Negative {
			row.Default, row.CW = summarise(dDef), summarise(dCW)
		} else {
			row.Default, row.CW = Delays{Runs: seeds}, Delays{Runs: seeds}
		}
		row.FailedDef, row.FailedCW = median(fDef), median(fCW)
		res.Scenarios = append(res.Scenarios, row)
		progressf(o.Progress, "scenario %-26s done (%d runs so far)\n", sc.Name, st.runs)
	}

	type faultCase struct {
		name, kind, size string
		f                scenario.Fault
		bad              float64       // share of the zone's requests made bad
		obsDelay         time.Duration // how long a bad request takes to be seen
		latency          bool
	}
	var cases []faultCase
	for _, loss := range []float64{0.05, 0.10, 0.20, 0.50} {
		p := 100 * loss / dbShare()
		cases = append(cases, faultCase{
			name: fmt.Sprintf("availability -%.0f%%", 100*loss), kind: "packet_loss", size: fmt.Sprintf("%.1f%% of db calls", p),
			f: scenario.Fault{Kind: scenario.PacketLoss, Percent: p}, bad: loss, obsDelay: 2 * time.Second})
	}
	for _, ms := range []int{100, 300} {
		cases = append(cases, faultCase{
			name: fmt.Sprintf("latency +%dms", ms), kind: "slow", size: fmt.Sprintf("+%dms on every request", ms),
			f: scenario.Fault{Kind: scenario.Slow, Latency: time.Duration(ms) * time.Millisecond}, bad: 1, obsDelay: time.Duration(ms) * time.Millisecond, latency: true})
	}
	for _, rps := range []float64{10, 30, 90} {
		for _, fc := range cases {
			cell := SweepCell{Name: fc.name, RPS: rps, Kind: fc.kind, Size: fc.size, BadRate: fc.bad}
			var dDef, dCW []float64
			for seed := int64(1); seed <= int64(o.Seeds); seed++ {
				sc := sweepScenario(rps, fc.f, seed)
				for _, profile := range detect.Profiles {
					r, err := st.run(ctx, sc, profile, false)
					if err != nil {
						return nil, err
					}
					if profile == detect.ProfileDefault {
						dDef = append(dDef, firstDetection(sc, r))
					} else {
						dCW = append(dCW, firstDetection(sc, r))
					}
				}
			}
			cell.Default, cell.CW = summarise(dDef), summarise(dCW)
			// The CUSUM bound: ln(1/α)-scale threshold over the information
			// each of the zone's requests carries, at the zone's request rate
			// (customers' third plus the canaries), plus the time a bad
			// request takes to be observed at all.
			dim := detect.DimFault
			if fc.latency {
				dim = detect.DimLatency
			}
			sc := sweepScenario(rps, fc.f, 1)
			rate := rps/float64(len(sc.Topology.Zones)) + float64(len(operation.Catalog))/sc.Canary.Interval.Seconds()
			bound := cusumBound(cfg, dim, fc.bad, rate, fc.obsDelay)
			cell.BoundS = bound
			cell.RatioP50 = cell.Default.P50 / bound
			res.MissedOverSweep += cell.Default.Missed
			res.Sweep = append(res.Sweep, cell)
			progressf(o.Progress, "sweep %-18s at %3.0f req/s done (%d runs so far)\n", fc.name, rps, st.runs)
		}
	}
	res.Runs = st.runs
	res.WallSeconds = time.Since(wall).Seconds()
	res.SimMinutesPerS = st.simulated.Minutes() / res.WallSeconds
	return res, nil
}

func progressf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format, args...)
	}
}

// Print writes the result as the tables of BENCHMARKS.md.
func (r *DetectResult) Print(w io.Writer) {
	f := func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return fmt.Sprintf("%.1f", v)
	}
	fmt.Fprintf(w, "Public scenarios (sim mode; delays in seconds from the fault's start; failed = customer failures relative to --baseline, median)\n\n")
	fmt.Fprintf(w, "| scenario | runs | default p50 | default p90 | cloudwatch p50 | cloudwatch p90 | missed (def/cw) | false shifts (def/cw) | expect met (def/cw) | failed vs baseline (def/cw) |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Scenarios {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %d/%d | %d/%d | %d/%d | %s/%s |\n", s.Name, s.Default.Runs,
			f(s.Default.P50), f(s.Default.P90), f(s.CW.P50), f(s.CW.P90), s.Default.Missed, s.CW.Missed,
			s.FalseDef, s.FalseCW, s.ExpectDef, s.ExpectCW, f(s.FailedDef), f(s.FailedCW))
	}
	fmt.Fprintf(w, "\nSweep: fault on one of 3 zones (2 instances each) from 60–65 s (phase varies by seed) for 3 min; %d seeds per cell; h = %.2f (α = %.0e)\n\n", r.Sweep[0].Default.Runs, r.ThresholdH, r.FalseAlarmRate)
	fmt.Fprintf(w, "| fault | req/s | default p50 | default p90 | CUSUM bound | default/bound | cloudwatch p50 | cloudwatch p90 | missed (def/cw) |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.Sweep {
		fmt.Fprintf(w, "| %s (%s) | %.0f | %s | %s | %s | %.2f× | %s | %s | %d/%d |\n", c.Name, c.Size, c.RPS,
			f(c.Default.P50), f(c.Default.P90), f(c.BoundS), c.RatioP50, f(c.CW.P50), f(c.CW.P90), c.Default.Missed, c.CW.Missed)
	}
	fmt.Fprintf(w, "\n%d simulated runs in %.1f s of wall time: %.0f simulated minutes per wall-clock second\n", r.Runs, r.WallSeconds, r.SimMinutesPerS)
}
