// Package report is the report of a run of grayzone's controller — a lab run
// or a replay of serve's recordings: the JSON contract of
// docs/scenario-format.md ("What the run writes"), whether the run met what was
// expected of it, and the short summary printed at the end of a run. What a
// scenario expects is the lab's (lab/scenario); the report only records the
// outcome. The dashboard draws it as one HTML page (dashboard.WriteReport).
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
)

// Requests counts customer requests (canary calls are not customers).
type Requests struct {
	Total  int64 `json:"total"`
	Failed int64 `json:"failed"`
	// Slow counts the requests that did not fail but took longer than their
	// operation's latency threshold: what a latency-only fault costs customers.
	Slow int64 `json:"slow"`
}

// Count adds one customer request.
func (r *Requests) Count(failed bool, slow bool) {
	r.Total++
	switch {
	case failed:
		r.Failed++
	case slow:
		r.Slow++
	}
}

// Ratio is failed/total, 0 with no requests.
func (r Requests) Ratio() float64 {
	if r.Total == 0 {
		return 0
	}
	return float64(r.Failed) / float64(r.Total)
}

// Failures says how many of the requests failed, with thousands separators
// for a person to read: "8 of 7,200 failed (0.11 %)", or with a noun
// "8 of 7,200 customer requests failed (0.11 %)".
func (r Requests) Failures(noun string) string {
	if noun != "" {
		noun = " " + noun
	}
	return fmt.Sprintf("%s of %s%s failed (%.2f %%)", Thousands(r.Failed), Thousands(r.Total), noun, 100*r.Ratio())
}

// Thousands prints n with a comma every three digits: 7,200.
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}

// Fault is one injected fault as it ran.
type Fault struct {
	Name   string   `json:"name,omitempty"`
	Kind   string   `json:"kind"`
	Target string   `json:"target"`
	Start  float64  `json:"start_s"`
	End    *float64 `json:"end_s"`
}

// Detection is one rise of an isolated-impact alarm.
type Detection struct {
	Alarm string  `json:"alarm"`
	Zone  string  `json:"zone"`
	At    float64 `json:"at_s"`
	Why   string  `json:"why,omitempty"`
}

// Shift is one zonal shift.
type Shift struct {
	AwayFrom string   `json:"away_from"`
	Start    float64  `json:"start_s"`
	End      *float64 `json:"end_s"`
	Origin   string   `json:"origin"`
	// Episode counts the shifts away from this zone in the run: 1 for the
	// first, 2 when traffic went back and the zone was shifted away again.
	// A zone that fails again after recovery ended its shift is a second
	// episode here, never folded into the first: the report shows what
	// customers went through, traffic back on a failing zone included.
	Episode int `json:"episode"`
	// Relapse marks a shift the detector started because the zone failed
	// again soon after its recovery test passed (the end was premature).
	Relapse bool `json:"relapse,omitempty"`
	// Returning (an addition) lists the gradual return's steps while the
	// shift stood: the zone's weight (percent of a full zone's) from at_s;
	// a 0 after a step is an abort (impact during the step).
	Returning []ReturnStep `json:"returning,omitempty"`
}

// ReturnStep is one step of a gradual return (runbook.Policy.Ramp).
type ReturnStep struct {
	At      float64 `json:"at_s"`
	Percent int     `json:"percent"`
}

// Previous is the shift away from the same zone before r.Shifts[i]: the one
// that ended before it began; nil for a zone's first shift.
func (r *Report) Previous(i int) *Shift {
	for j := i - 1; j >= 0; j-- {
		if r.Shifts[j].AwayFrom == r.Shifts[i].AwayFrom {
			return &r.Shifts[j]
		}
	}
	return nil
}

// Again says, for a zone's second or later shift, how it followed the one
// before: "shift 2 of use2-az1, 98.3s after traffic went back (a relapse)".
// Empty for a zone's first shift.
func (r *Report) Again(i int) string {
	s := r.Shifts[i]
	prev := r.Previous(i)
	if prev == nil {
		return ""
	}
	out := fmt.Sprintf("shift %d of %s", s.Episode, s.AwayFrom)
	if prev.End != nil {
		out += fmt.Sprintf(", %.1fs after traffic went back", s.Start-*prev.End)
	}
	if s.Relapse {
		out += " (a relapse: isolated again soon after its recovery test passed)"
	}
	return out
}

// ControlPlane is one control-plane exclusion.
type ControlPlane struct {
	Action   string   `json:"action"`
	Zone     string   `json:"zone"`
	At       float64  `json:"at_s"`
	Restored *float64 `json:"restored_s"`
	// Failures counts failed attempts before it took effect (e.g. during a control-plane outage).
	Failures int `json:"failed_attempts"`
}

// FailStatic is one span of doubt: end_s is null while it lasts at the end of the run.
type FailStatic struct {
	Reason string   `json:"reason"`
	Why    string   `json:"why"`
	Start  float64  `json:"start_s"`
	End    *float64 `json:"end_s"`
}

// Baseline is the unmitigated run of the same scenario.
type Baseline struct {
	Requests   Requests    `json:"requests"`
	Detections []Detection `json:"detections"`
}

// Expect is the outcome of the scenario's expect block.
type Expect struct {
	Met      bool     `json:"met"`
	Failures []string `json:"failures"`
}

// Point is one sample of the run's timeline.
type Point struct {
	At    float64     `json:"t"`
	Zones []ZonePoint `json:"zones"`
	Shift string      `json:"shift,omitempty"`
	Phase string      `json:"phase,omitempty"`
}

// ZonePoint is one zone at one sample: server-side availability (0..1) and
// p99 latency in ms over the last 10 s (-1: no data), and canary health.
type ZonePoint struct {
	Zone               string  `json:"zone"`
	Availability       float64 `json:"availability"`
	P99                float64 `json:"p99_ms"`
	Requests           int64   `json:"requests"`
	Healthy            bool    `json:"healthy"`
	CanaryAvailability float64 `json:"canary_availability"` // -1 with no data
	CanaryP99          float64 `json:"canary_p99_ms"`       // -1 with no data
	Isolated           bool    `json:"isolated,omitempty"`
	Excluded           bool    `json:"excluded,omitempty"`
}

// PointOf is the timeline point of an assessment at t seconds into a run:
// the runbook's phase (and the zone it concerns) and each zone's view.
func PointOf(t float64, phase, zone string, a detect.Assessment, excluded []string) Point {
	p := Point{At: t, Phase: phase}
	if phase != "idle" {
		p.Shift = zone
	}
	if n := len(a.Zones); n > 0 { // sized once: a run keeps a point per second; none stays nil
		p.Zones = make([]ZonePoint, 0, n)
	}
	for _, z := range a.Zones {
		p.Zones = append(p.Zones, ZonePoint{Zone: z.Zone, Availability: round(z.Availability, 5), P99: round(z.P99, 2), Requests: z.Requests,
			Healthy: z.Healthy, CanaryAvailability: round(z.CanaryAvailability, 5), CanaryP99: round(z.CanaryP99, 2), Isolated: z.Isolated,
			Excluded: slices.Contains(excluded, z.Zone)})
	}
	return p
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if v < 0 {
		return float64(int64(v*p-0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}

// Report is the run report.
type Report struct {
	Scenario     string         `json:"scenario"`
	Mode         string         `json:"mode"`
	Seed         int64          `json:"seed"`
	Detector     string         `json:"detector"`
	Duration     float64        `json:"duration_s"`
	Requests     Requests       `json:"requests"`
	Faults       []Fault        `json:"faults"`
	Detections   []Detection    `json:"detections"`
	Shifts       []Shift        `json:"shifts"`
	ControlPlane []ControlPlane `json:"control_plane"`
	FailStatic   []FailStatic   `json:"fail_static"` // spans of doubt: grayzone kept what was in force
	Baseline     *Baseline      `json:"baseline,omitempty"`
	Expect       Expect         `json:"expect"`
	// Interrupted is true when the run was stopped before its end (Ctrl-C).
	Interrupted bool    `json:"interrupted,omitempty"`
	Timeline    []Point `json:"timeline,omitempty"`
	// Database says what served the database in real mode.
	Database string `json:"database,omitempty"`
	// Path says which of grayzone serve's code the run went through.
	Path string `json:"path,omitempty"`
}

// Run is what a run produced, in the form the report is built from.
type Run struct {
	Name     string // the scenario's, or what a replay ran over
	Seed     int64
	Mode     string
	Detector string
	Start    time.Time
	Planned  time.Duration // how long the run was to go
	Elapsed  time.Duration // how long the run went (shorter than Planned when interrupted)
	// Faults are the faults injected up to Elapsed, as they ran.
	Faults     []Fault
	Requests   Requests
	Detections []autoshift.Detection
	Events     []runbook.Event
	FailStatic []autoshift.FailStaticPeriod
	Timeline   []Point
	Database   string
	Path       string
}

// Secs is a duration in the report's unit: seconds, to the millisecond.
func Secs(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// Build turns a run into a report (without baseline; expect not yet checked).
func Build(run Run) *Report {
	r := &Report{
		Scenario:     run.Name,
		Mode:         run.Mode,
		Seed:         run.Seed,
		Detector:     run.Detector,
		Duration:     Secs(run.Elapsed),
		Requests:     run.Requests,
		Faults:       append([]Fault{}, run.Faults...),
		Detections:   []Detection{},
		Shifts:       []Shift{},
		ControlPlane: []ControlPlane{},
		FailStatic:   []FailStatic{},
		Timeline:     run.Timeline,
		Database:     run.Database,
		Path:         run.Path,
		Interrupted:  run.Elapsed < run.Planned,
	}
	r.Detections = Detections(run.Start, run.Detections)
	for _, p := range run.FailStatic {
		fs := FailStatic{Reason: p.Reason, Why: p.Why, Start: Secs(p.Start.Sub(run.Start))}
		if !p.End.IsZero() {
			e := Secs(p.End.Sub(run.Start))
			fs.End = &e
		}
		r.FailStatic = append(r.FailStatic, fs)
	}
	failures := map[string]int{}
	episodes := map[string]int{}
	for _, ev := range run.Events {
		at := Secs(ev.At.Sub(run.Start))
		switch ev.Kind {
		case runbook.ShiftStarted:
			episodes[ev.Zone]++
			r.Shifts = append(r.Shifts, Shift{AwayFrom: ev.Zone, Start: at, Origin: "auto", Episode: episodes[ev.Zone], Relapse: ev.Relapse})
		case runbook.ShiftEnded:
			for i := len(r.Shifts) - 1; i >= 0; i-- {
				if r.Shifts[i].AwayFrom == ev.Zone && r.Shifts[i].End == nil {
					r.Shifts[i].End = &at
					break
				}
			}
		case runbook.RampStep:
			for i := len(r.Shifts) - 1; i >= 0; i-- {
				if r.Shifts[i].AwayFrom == ev.Zone && r.Shifts[i].End == nil {
					r.Shifts[i].Returning = append(r.Shifts[i].Returning, ReturnStep{At: at, Percent: ev.Weight})
					break
				}
			}
		case runbook.Failed:
			failures[string(ev.Action)+"/"+ev.Zone]++
		case runbook.Excluded:
			r.ControlPlane = append(r.ControlPlane, ControlPlane{Action: "exclude_zone", Zone: ev.Zone, At: at,
				Failures: failures["exclude_zone/"+ev.Zone]})
			failures["exclude_zone/"+ev.Zone] = 0
		case runbook.Included:
			for i := len(r.ControlPlane) - 1; i >= 0; i-- {
				if r.ControlPlane[i].Zone == ev.Zone && r.ControlPlane[i].Restored == nil {
					r.ControlPlane[i].Restored = &at
					break
				}
			}
		}
	}
	return r
}

// Detections converts the controller's detections to report times.
func Detections(start time.Time, ds []autoshift.Detection) []Detection {
	out := []Detection{}
	for _, d := range ds {
		out = append(out, Detection{Alarm: d.Alarm, Zone: d.Zone, At: Secs(d.At.Sub(start)), Why: d.Why})
	}
	return out
}

// Expectation is what was expected of a run (a scenario's expect block):
// Unmet says, one line each, what the report falls short of.
type Expectation interface {
	Unmet(r *Report) []string
}

// Check judges the report against e and records the outcome in r.Expect.
func (r *Report) Check(e Expectation) {
	failures := e.Unmet(r)
	if failures == nil {
		failures = []string{}
	}
	r.Expect = Expect{Met: len(failures) == 0, Failures: failures}
}

// WriteFile writes the report as indented JSON.
func (r *Report) WriteFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("report: encode: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	return nil
}

// Outcome is the run's result in one line, what a person wants first: the
// customer requests that failed with mitigation and, with a baseline, without.
func (r *Report) Outcome() string {
	s := "mitigated: " + r.Requests.Failures("customer requests")
	if b := r.Baseline; b != nil {
		s += "; unmitigated: " + b.Requests.Failures("")
	}
	return s
}

// Summary prints the few lines a person wants at the end of a run: the
// outcome first, then the timeline.
func (r *Report) Summary(w io.Writer) {
	fmt.Fprintln(w, r.Outcome())
	fmt.Fprintf(w, "%s (%s mode, detector %s, seed %d), %.0fs", r.Scenario, r.Mode, r.Detector, r.Seed, r.Duration)
	if r.Interrupted {
		fmt.Fprint(w, " — interrupted")
	}
	fmt.Fprintln(w)
	for _, f := range r.Faults {
		end := "end"
		if f.End != nil {
			end = fmt.Sprintf("%.1fs", *f.End)
		}
		fmt.Fprintf(w, "  fault      %-20s %-18s %.1fs → %s\n", f.Kind, f.Target, f.Start, end)
	}
	for _, d := range r.Detections {
		fmt.Fprintf(w, "  detected   %-20s at %.1fs\n", d.Alarm, d.At)
	}
	for i, s := range r.Shifts {
		end := "still in force"
		if s.End != nil {
			end = fmt.Sprintf("ended %.1fs", *s.End)
		}
		if again := r.Again(i); again != "" {
			end += "; " + again
		}
		fmt.Fprintf(w, "  shifted    away from %-10s at %.1fs, %s\n", s.AwayFrom, s.Start, end)
		if len(s.Returning) > 0 {
			steps := make([]string, len(s.Returning))
			for i, st := range s.Returning {
				steps[i] = fmt.Sprintf("%d %% at %.1fs", st.Percent, st.At)
				if st.Percent == 0 {
					steps[i] = fmt.Sprintf("aborted to 0 %% at %.1fs", st.At)
				}
			}
			fmt.Fprintf(w, "  returning  %s\n", strings.Join(steps, ", "))
		}
	}
	for _, c := range r.ControlPlane {
		rest := "not restored"
		if c.Restored != nil {
			rest = fmt.Sprintf("restored %.1fs", *c.Restored)
		}
		extra := ""
		if c.Failures > 0 {
			extra = fmt.Sprintf(" (after %d failed attempts)", c.Failures)
		}
		fmt.Fprintf(w, "  excluded   %-20s at %.1fs%s, %s\n", c.Zone, c.At, extra, rest)
	}
	for _, f := range r.FailStatic {
		end := "still in doubt"
		if f.End != nil {
			end = fmt.Sprintf("ended %.1fs", *f.End)
		}
		fmt.Fprintf(w, "  failstatic %-20s at %.1fs, %s\n", f.Reason, f.Start, end)
	}
	if r.Path != "" {
		fmt.Fprintf(w, "  path       %s\n", r.Path)
	}
	fmt.Fprintf(w, "  customers  %s, %s slow, with mitigation\n", r.Requests.Failures("requests"), Thousands(r.Requests.Slow))
	if b := r.Baseline; b != nil {
		fmt.Fprintf(w, "             %s, %s slow, without it (--baseline)", b.Requests.Failures(""), Thousands(b.Requests.Slow))
		var saved []string
		if n := b.Requests.Failed - r.Requests.Failed; n > 0 {
			saved = append(saved, Thousands(n)+" failures")
		}
		if n := b.Requests.Slow - r.Requests.Slow; n > 0 {
			saved = append(saved, Thousands(n)+" slow requests")
		}
		if len(saved) > 0 {
			fmt.Fprintf(w, ": %s saved", strings.Join(saved, " and "))
		}
		fmt.Fprintln(w)
	}
	if r.Expect.Met {
		fmt.Fprintln(w, "  expect     met")
	} else {
		for _, f := range r.Expect.Failures {
			fmt.Fprintf(w, "  expect     NOT MET: %s\n", f)
		}
	}
}
