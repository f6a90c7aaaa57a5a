package benchmark

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/lab"
	"github.com/grayzone/grayzone/lab/instancegroup"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/lab/sim"
	"github.com/grayzone/grayzone/report"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/operation"
)

// What the corpus benchmark counts (BENCHMARKS.md, "A simulated production day", says the same):
//
//   - A real fault is a fault whose target is a whole zone and whose kind
//     customers feel (latency, packet_loss, blackhole, reset, http_error,
//     slow). Instance, region, telemetry, canary and control-plane faults
//     are nuisance: shifting a zone for one of them is wrong.
//   - A shift episode belongs to a real fault when it is away from the
//     fault's zone and starts while the fault is in force or within
//     JustEnded after it ended (a detection that lags the end by a window).
//   - A false shift is a shift episode that belongs to no real fault: the
//     zone it moved had no real zonal fault in force or just ended.
//   - A real fault is missed when no shift episode belongs to it.
//   - Episodes per fault counts the episodes that belong to it (1 is clean);
//     an episode that ends while its fault is in force is premature.
//   - Delay is the first episode's start minus the fault's start; its bound
//     is the CUSUM bound for the fault's bad-request share at the zone's
//     request rate when it began (cusumBound).
//   - Give-back is the last episode's end minus the fault's end (a shift
//     still in force at the end of the day counts as never given back).
//   - Customer failures are compared with the same day (same seed, same
//     random stream) run without mitigation.

// JustEnded is how long after a real fault's end a shift still counts as
// belonging to it.
const JustEnded = 2 * time.Minute

// CorpusOptions configure the corpus benchmark.
type CorpusOptions struct {
	// Days are the scenarios to run, in order (the merge order).
	Days     []*scenario.Scenario
	Profiles []string // default: detect.Profiles
	Parallel int      // workers; default GOMAXPROCS
	// NoBaseline skips the runs without mitigation (a third of the cost):
	// then nothing is compared with an unmitigated day.
	NoBaseline bool
	Progress   io.Writer
}

// DayCorpus returns days generated for seeds first..first+n-1, each duration long (0: 24h).
func DayCorpus(first int64, n int, duration time.Duration) ([]*scenario.Scenario, error) {
	var out []*scenario.Scenario
	for s := first; s < first+int64(n); s++ {
		sc, err := DayScenario(s, duration)
		if err != nil {
			return nil, fmt.Errorf("corpus day %d: %w", s, err)
		}
		out = append(out, sc)
	}
	return out, nil
}

// CorpusDir reads every *.yaml file of dir, in name order.
func CorpusDir(dir string) ([]*scenario.Scenario, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no *.yaml scenarios", dir)
	}
	sort.Strings(files)
	var out []*scenario.Scenario
	for _, f := range files {
		sc, err := scenario.Open(f)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// FaultOutcome is what one profile did about one real fault.
type FaultOutcome struct {
	Zone      string  `json:"zone"`
	Kind      string  `json:"kind"`
	StartS    float64 `json:"start_s"`
	EndS      float64 `json:"end_s"`
	Episodes  int     `json:"episodes"`
	Premature int     `json:"premature_ends"`
	DelayS    Num     `json:"delay_s"` // NaN (null) when missed
	BoundS    Num     `json:"cusum_bound_s"`
	GiveBackS Num     `json:"give_back_s"` // +Inf (null) when never given back, NaN when missed
}

// FalseShift is a shift episode that belongs to no real fault.
type FalseShift struct {
	Zone   string  `json:"zone"`
	StartS float64 `json:"start_s"`
	// During lists the faults in force (or just ended) when it started.
	During []string `json:"during"`
}

// DayOutcome is one profile's run of one day.
type DayOutcome struct {
	Day         string         `json:"day"`
	Seed        int64          `json:"seed"`
	Faults      []FaultOutcome `json:"real_faults"`
	FalseShifts []FalseShift   `json:"false_shifts"`
	Requests    int64          `json:"requests"`
	Failed      int64          `json:"failed"`
	ExpectMet   bool           `json:"expect_met"`
	Failures    []string       `json:"expect_failures"`
}

// ProfileSummary sums one profile over the corpus.
type ProfileSummary struct {
	Profile           string       `json:"profile"`
	Days              int          `json:"days"`
	FalseShifts       int          `json:"false_shifts"`
	FalseShiftsPerDay float64      `json:"false_shifts_per_day"`
	RealFaults        int          `json:"real_faults"`
	Missed            int          `json:"missed"`
	Episodes          int          `json:"episodes"`
	MultiEpisode      int          `json:"faults_with_more_than_one_episode"`
	Premature         int          `json:"premature_ends"`
	EpisodesPerFault  float64      `json:"episodes_per_detected_fault"`
	DelayP50          Num          `json:"delay_p50_s"`
	DelayP90          Num          `json:"delay_p90_s"`
	RatioP50          Num          `json:"delay_to_bound_p50"`
	RatioP90          Num          `json:"delay_to_bound_p90"`
	GiveBackP50       Num          `json:"give_back_p50_s"`
	GiveBackP90       Num          `json:"give_back_p90_s"`
	GiveBackMax       Num          `json:"give_back_max_s"`
	Requests          int64        `json:"requests"`
	Failed            int64        `json:"failed"`
	ExpectMet         int          `json:"expect_met"`
	PerDay            []DayOutcome `json:"per_day"`
}

// CorpusResult is the whole corpus benchmark.
type CorpusResult struct {
	Days           int              `json:"days"`
	Seeds          []int64          `json:"seeds"`
	Profiles       []ProfileSummary `json:"profiles"`
	BaselineFailed int64            `json:"failed_without_mitigation"`
	BaselineTotal  int64            `json:"requests_without_mitigation"`
	Parallel       int              `json:"parallel"`
	WallSeconds    float64          `json:"wall_seconds"`
	CPUSeconds     float64          `json:"cpu_seconds"`
	SimulatedHours float64          `json:"simulated_hours"`
	Load           string           `json:"machine_load"`
}

// corpusJob is one run: a day under a profile, or ("") without mitigation.
type corpusJob struct {
	day     int
	profile string
}

// Corpus runs every day under every profile, and each day once without
// mitigation, on Parallel workers; results are merged in day order, so the
// result does not depend on which worker finished first.
func Corpus(ctx context.Context, o CorpusOptions) (*CorpusResult, error) {
	if len(o.Profiles) == 0 {
		o.Profiles = detect.Profiles
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.GOMAXPROCS(0)
	}
	// Each run's garbage is short-lived and its live heap small (tens of
	// MB: the day's timeline); a batch job with memory to spare collects it
	// rarely. GOGC 1600 against 400 cut a 2-day, 2-worker run's CPU by
	// about 7 % (24.8 -> 22.9 CPU-seconds, peak RSS 0.4 -> 1.1 GB); 400
	// against the default 100, a tenth. A soft memory limit of 1 GiB per
	// worker (unless GOMEMLIMIT sets one) keeps a many-core machine's heap
	// bounded: the collector runs sooner as the heap nears it.
	defer debug.SetGCPercent(debug.SetGCPercent(1600))
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(o.Parallel) << 30))
	}
	wall := time.Now()
	cpu0 := cpuSeconds()
	res := &CorpusResult{Days: len(o.Days), Parallel: o.Parallel, Load: loadAverage()}
	var jobs []corpusJob
	for d := range o.Days {
		for _, p := range o.Profiles {
			jobs = append(jobs, corpusJob{d, p})
		}
		if !o.NoBaseline {
			jobs = append(jobs, corpusJob{d, ""})
		}
	}
	outcomes := make([]DayOutcome, len(jobs))
	baseline := make([]report.Requests, len(jobs))
	errs := make([]error, len(jobs))
	next := make(chan int)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	for range o.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				j := jobs[i]
				sc := o.Days[j.day]
				if j.profile == "" {
					baseline[i] = Unmitigated(ctx, sc)
				} else {
					r, err := lab.Run(ctx, lab.Options{Scenario: sc, Mode: lab.ModeSim, Detector: j.profile})
					if err != nil {
						errs[i] = fmt.Errorf("%s (%s): %w", sc.Name, j.profile, err)
						continue
					}
					outcomes[i] = DayOf(sc, r)
				}
				mu.Lock()
				done++
				what := "without mitigation"
				if j.profile != "" {
					oc := outcomes[i]
					what = fmt.Sprintf("%-10s %d false shift(s), %d real fault(s), %d missed", j.profile, len(oc.FalseShifts), len(oc.Faults), missed(oc))
					for _, f := range oc.Faults {
						what += fmt.Sprintf("; %s %s in %s: %d episode(s), %d ended early, delay %.1fs (%.1f× bound), given back %.0fs after its end",
							f.Kind, fmtDuration(time.Duration((f.EndS-f.StartS)*float64(time.Second))), f.Zone, f.Episodes, f.Premature, float64(f.DelayS), float64(f.DelayS)/float64(f.BoundS), float64(f.GiveBackS))
					}
					for _, fs := range oc.FalseShifts {
						what += fmt.Sprintf("; false shift away from %s at %.0fs during %s", fs.Zone, fs.StartS, strings.Join(fs.During, ", "))
					}
				}
				progressf(o.Progress, "[%3d/%d %6.0fs] %s %s\n", done, len(jobs), time.Since(wall).Seconds(), sc.Name, what)
				mu.Unlock()
			}
		}()
	}
feed:
	for _, i := range longestFirst(jobs, o.Days) {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	for _, sc := range o.Days {
		res.Seeds = append(res.Seeds, sc.Seed)
		runs := len(o.Profiles)
		if !o.NoBaseline {
			runs++
		}
		res.SimulatedHours += sc.Duration.Hours() * float64(runs)
	}
	for _, p := range o.Profiles {
		s := ProfileSummary{Profile: p, Days: len(o.Days)}
		for i, j := range jobs {
			if j.profile == p {
				s.add(outcomes[i])
			}
		}
		s.finish()
		res.Profiles = append(res.Profiles, s)
	}
	for i, j := range jobs {
		if j.profile == "" {
			res.BaselineFailed += baseline[i].Failed
			res.BaselineTotal += baseline[i].Total
		}
	}
	res.WallSeconds = time.Since(wall).Seconds()
	res.CPUSeconds = cpuSeconds() - cpu0
	return res, nil
}

// longestFirst is the order to hand the jobs to the workers: the costliest
// first (largest-processing-time scheduling), so that the run does not end
// with one worker on a long day while the others idle. A job's cost is
// estimated from its day's simulated time and requests (the engine's ticks
// cost about as much per second as 100 req/s at 250 ms; a run without
// mitigation has no engine and costs about half per request). The results
// are still merged in day order.
func longestFirst(jobs []corpusJob, days []*scenario.Scenario) []int {
	requests := make([]float64, len(days))
	for d, sc := range days {
		for t := time.Duration(0); t < sc.Duration; t += time.Minute {
			requests[d] += sc.Load.RPSAt(t) * min(time.Minute, sc.Duration-t).Seconds()
		}
	}
	cost := func(j corpusJob) float64 {
		if j.profile == "" {
			return requests[j.day] / 2
		}
		return requests[j.day] + 100*days[j.day].Duration.Seconds()
	}
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(cost(jobs[b]), cost(jobs[a])) })
	return order
}

func missed(d DayOutcome) int {
	n := 0
	for _, f := range d.Faults {
		if f.Episodes == 0 {
			n++
		}
	}
	return n
}

// realFault reports whether f is a real zonal fault: a whole zone, a kind customers feel.
func realFault(f scenario.Fault) bool {
	return f.Target.Zone != "" && (f.Kind.OnDBLink() || f.Kind.OnInstance())
}

// DayOf counts one run by the definitions at the top of this file.
func DayOf(sc *scenario.Scenario, r *report.Report) DayOutcome {
	d := DayOutcome{Day: sc.Name, Seed: sc.Seed, Requests: r.Requests.Total, Failed: r.Requests.Failed,
		ExpectMet: r.Expect.Met, Failures: r.Expect.Failures, FalseShifts: []FalseShift{}, Faults: []FaultOutcome{}}
	cfg := lab.EngineConfig(sc, detect.ProfileDefault)
	eng, err := detect.New(cfg)
	if err == nil {
		cfg = eng.Config()
	}
	owned := make([]bool, len(r.Shifts))
	for _, f := range sc.Faults {
		if !realFault(f) {
			continue
		}
		start, end := f.At.Seconds(), f.End(sc.Duration).Seconds()
		fo := FaultOutcome{Zone: f.Target.Zone, Kind: string(f.Kind), StartS: start, EndS: end,
			DelayS: Num(math.NaN()), GiveBackS: Num(math.NaN()), BoundS: Num(faultBound(cfg, sc, f))}
		for i, sh := range r.Shifts {
			if sh.AwayFrom != f.Target.Zone || sh.Start < start || sh.Start > end+JustEnded.Seconds() {
				continue
			}
			owned[i] = true
			if fo.Episodes == 0 {
				fo.DelayS = Num(sh.Start - start)
			}
			fo.Episodes++
			if sh.End != nil && *sh.End < end {
				fo.Premature++
			}
			if sh.End == nil {
				fo.GiveBackS = Num(math.Inf(1))
			} else {
				fo.GiveBackS = Num(*sh.End - end)
			}
		}
		d.Faults = append(d.Faults, fo)
	}
	for i, sh := range r.Shifts {
		if owned[i] {
			continue
		}
		fs := FalseShift{Zone: sh.AwayFrom, StartS: sh.Start, During: []string{}}
		t := time.Duration(sh.Start * float64(time.Second))
		for _, f := range sc.Faults {
			if t >= f.At && t <= f.End(sc.Duration)+JustEnded {
				fs.During = append(fs.During, fmt.Sprintf("%s %s", f.Kind, f.Target))
			}
		}
		d.FalseShifts = append(d.FalseShifts, fs)
	}
	return d
}

// faultBound is the CUSUM bound for a real fault: the zone's request rate
// when it began (its share of the customers, round-robin over zones, plus
// its canaries) and the share of its requests the fault makes bad.
func faultBound(cfg detect.Config, sc *scenario.Scenario, f scenario.Fault) float64 {
	rate := sc.Load.RPSAt(f.At)/float64(len(sc.Topology.Zones)) + float64(len(operation.Catalog))/sc.Canary.Interval.Seconds()
	var db, all float64
	for _, m := range sc.Load.Mix {
		all += m.Share
		if op, _ := operation.Lookup(m.Operation); op.UsesDB {
			db += m.Share
		}
	}
	switch f.Kind {
	case scenario.PacketLoss:
		return cusumBound(cfg, detect.DimFault, f.Percent/100*db, rate, sim.DBTimeout)
	case scenario.Blackhole:
		return cusumBound(cfg, detect.DimFault, db, rate, sim.DBTimeout)
	case scenario.Reset:
		return cusumBound(cfg, detect.DimFault, f.Percent/100*db, rate, 0)
	case scenario.HTTPError:
		return cusumBound(cfg, detect.DimFault, f.Percent/100*all, rate, 0)
	case scenario.Latency:
		return cusumBound(cfg, detect.DimLatency, db, rate, f.Latency)
	case scenario.Slow:
		return cusumBound(cfg, detect.DimLatency, all, rate, f.Latency)
	}
	return math.NaN()
}

// cusumBound is the delay a CUSUM needs to reach h: h over the information
// each of the zone's requests carries (KL of the bad share against the
// baseline floor) times the zone's request rate, plus the time a bad
// request takes to be observed at all.
func cusumBound(cfg detect.Config, dim detect.Dim, bad, rate float64, observe time.Duration) float64 {
	return detect.Threshold(cfg, dim)/(detect.KL(math.Min(bad, 0.999), detect.Floor(cfg, dim))*rate) + observe.Seconds()
}

func (s *ProfileSummary) add(d DayOutcome) {
	s.PerDay = append(s.PerDay, d)
	s.FalseShifts += len(d.FalseShifts)
	s.Requests += d.Requests
	s.Failed += d.Failed
	if d.ExpectMet {
		s.ExpectMet++
	}
	for _, f := range d.Faults {
		s.RealFaults++
		s.Episodes += f.Episodes
		s.Premature += f.Premature
		switch {
		case f.Episodes == 0:
			s.Missed++
		case f.Episodes > 1:
			s.MultiEpisode++
		}
	}
}

func (s *ProfileSummary) finish() {
	s.FalseShiftsPerDay = float64(s.FalseShifts) / float64(max(s.Days, 1))
	if det := s.RealFaults - s.Missed; det > 0 {
		s.EpisodesPerFault = float64(s.Episodes) / float64(det)
	}
	var delays, ratios, back []float64
	for _, d := range s.PerDay {
		for _, f := range d.Faults {
			if v := float64(f.DelayS); !math.IsNaN(v) {
				delays = append(delays, v)
				ratios = append(ratios, v/float64(f.BoundS))
				back = append(back, float64(f.GiveBackS))
			}
		}
	}
	slices.Sort(delays)
	slices.Sort(ratios)
	slices.Sort(back)
	s.DelayP50, s.DelayP90 = Num(percentile(delays, 0.5)), Num(percentile(delays, 0.9))
	s.RatioP50, s.RatioP90 = Num(percentile(ratios, 0.5)), Num(percentile(ratios, 0.9))
	s.GiveBackP50, s.GiveBackP90 = Num(percentile(back, 0.5)), Num(percentile(back, 0.9))
	s.GiveBackMax = Num(math.NaN())
	if len(back) > 0 {
		s.GiveBackMax = Num(back[len(back)-1])
	}
}

// Unmitigated runs the scenario's workload with nothing acting on it and
// returns what its customers saw: the same world, seed and random stream
// as a lab run with mitigation off (whose controller never acts), without
// the cost of an engine whose verdicts nobody reads.
func Unmitigated(ctx context.Context, sc *scenario.Scenario) report.Requests {
	var req report.Requests
	table := frontdoor.NewTable(sc.Topology.Zones, frontdoor.DefaultHealthPolicy)
	w := sim.New(sim.Config{
		Scenario: sc, Table: table, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Observe:  func(observation.Observation) {},
		Server:   func(string, string, *operation.Operation) sim.ServerCounter { return discard{} },
		Tick:     func(time.Time) {},
		Customer: req.Count,
	})
	for _, z := range sc.Topology.Zones {
		for _, id := range sc.Topology.InstanceIDs(z) {
			_ = w.Launch(ctx, instancegroup.Instance{ID: id, Zone: z})
		}
	}
	w.Run(ctx)
	return req
}

// discard is a server-side counter that keeps nothing: with no engine to
// feed, a request need not build an observation only to drop it.
type discard struct{}

func (discard) Observe(time.Time, observation.Outcome, time.Duration) {}

// loadAverage is the machine's load when the benchmark started (Linux), for the record.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return fmt.Sprintf("%s %s %s on %d CPUs", f[0], f[1], f[2], runtime.NumCPU())
}

// Print writes the corpus result as the table of BENCHMARKS.md.
func (r *CorpusResult) Print(w io.Writer) {
	f := func(n Num) string {
		v := float64(n)
		switch {
		case math.IsNaN(v):
			return "–"
		case math.IsInf(v, 1):
			return "never"
		}
		return fmt.Sprintf("%.1f", v)
	}
	unmitigated := " + one unmitigated run"
	if r.BaselineTotal == 0 {
		unmitigated = ""
	}
	fmt.Fprintf(w, "Day corpus: %d simulated days (seeds %s), %d profile(s)%s each\n\n", r.Days, seedRange(r.Seeds), len(r.Profiles), unmitigated)
	fmt.Fprintf(w, "| | %s |\n|---|%s\n", strings.Join(profileNames(r.Profiles), " | "), strings.Repeat("---|", len(r.Profiles)))
	row := func(name string, v func(ProfileSummary) string) {
		var cells []string
		for _, p := range r.Profiles {
			cells = append(cells, v(p))
		}
		fmt.Fprintf(w, "| %s | %s |\n", name, strings.Join(cells, " | "))
	}
	row("false shifts (per day)", func(p ProfileSummary) string { return fmt.Sprintf("%d (%.2f)", p.FalseShifts, p.FalseShiftsPerDay) })
	row("real zonal faults missed", func(p ProfileSummary) string { return fmt.Sprintf("%d of %d", p.Missed, p.RealFaults) })
	row("shift episodes per detected fault", func(p ProfileSummary) string { return fmt.Sprintf("%.2f", p.EpisodesPerFault) })
	row("faults with >1 episode", func(p ProfileSummary) string { return fmt.Sprintf("%d", p.MultiEpisode) })
	row("shifts ended while their fault was in force", func(p ProfileSummary) string { return fmt.Sprintf("%d", p.Premature) })
	row("delay p50 / p90 (s)", func(p ProfileSummary) string { return f(p.DelayP50) + " / " + f(p.DelayP90) })
	row("delay / CUSUM bound p50 / p90", func(p ProfileSummary) string { return f(p.RatioP50) + "× / " + f(p.RatioP90) + "×" })
	row("traffic given back after the fault's end p50 / p90 / max (s)", func(p ProfileSummary) string {
		return f(p.GiveBackP50) + " / " + f(p.GiveBackP90) + " / " + f(p.GiveBackMax)
	})
	row("customer requests failed (vs no mitigation)", func(p ProfileSummary) string {
		return fmt.Sprintf("%d (%s)", p.Failed, failedRatio(p.Failed, r.BaselineFailed))
	})
	row("days meeting their expect", func(p ProfileSummary) string { return fmt.Sprintf("%d of %d", p.ExpectMet, p.Days) })
	if r.BaselineTotal > 0 {
		fmt.Fprintf(w, "\nWithout mitigation: %d of %d customer requests failed.\n", r.BaselineFailed, r.BaselineTotal)
	} else {
		fmt.Fprintf(w, "\nNo run without mitigation (--no-baseline).\n")
	}
	fmt.Fprintf(w, "%.0f simulated hours in %.0f s of wall time (%d workers, %.0f CPU-seconds; load at start %s): %.0f× real time per CPU.\n",
		r.SimulatedHours, r.WallSeconds, r.Parallel, r.CPUSeconds, r.Load, r.SimulatedHours*3600/math.Max(r.CPUSeconds, 1e-9))
	for _, p := range r.Profiles {
		for _, d := range p.PerDay {
			for _, fs := range d.FalseShifts {
				fmt.Fprintf(w, "  %s false shift: %s away from %s at %.0fs during %s\n", p.Profile, d.Day, fs.Zone, fs.StartS, strings.Join(fs.During, ", "))
			}
		}
	}
}

func failedRatio(a, b int64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f× of %d", float64(a)/float64(b), b)
}

func profileNames(ps []ProfileSummary) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Profile)
	}
	return out
}

func seedRange(s []int64) string {
	if len(s) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d–%d", s[0], s[len(s)-1])
}

// Num is a number that may be NaN (nothing to measure) or +Inf (never),
// written to JSON as null, which JSON has no other way to say.
type Num float64

// MarshalJSON implements json.Marshaler.
func (n Num) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(n), 'g', 6, 64), nil
}

// cpuSeconds is the process's user and system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
