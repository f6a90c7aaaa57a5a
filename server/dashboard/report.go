package dashboard

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/grayzone/grayzone/report"
	"github.com/grayzone/grayzone/telemetry/operation"
)

//go:embed report.html.tmpl
var reportTemplate string

var reportPage = template.Must(template.New("report").Parse(reportTemplate))

// availabilityTarget is the line drawn on availability charts: the
// workshop's alarm threshold (99 %), as the lab's API reports it.
const availabilityTarget = 0.99

// WriteReport writes the run as one self-contained HTML page: the story in
// a few sentences and numbers, the per-zone timeline with the fault, the
// detection, the shift and the control-plane exclusion marked, the
// detector's explanation, the expectations and the scenario itself. Styles,
// scripts (uPlot included) and data are inline, so the file opens from disk
// with no network. sc may be nil (a replay: no scenario to tell).
func WriteReport(w io.Writer, r *report.Report, sc *report.Scene) error {
	if r == nil {
		return fmt.Errorf("dashboard: no report to write")
	}
	st := buildStory(r, sc)
	data, err := json.Marshal(chartData(r))
	if err != nil {
		return fmt.Errorf("dashboard: encode the report's timeline: %w", err)
	}
	var css, js strings.Builder
	for _, f := range []string{"vendor/uPlot.min.css", "style.css"} {
		css.Write(mustAsset(f))
		css.WriteByte('\n')
	}
	for _, f := range []string{"vendor/uPlot.iife.min.js", "charts.js", "report.js"} {
		b := mustAsset(f)
		if strings.Contains(strings.ToLower(string(b)), "</script") {
			return fmt.Errorf("dashboard: %s cannot be inlined: it contains </script", f)
		}
		js.Write(b)
		js.WriteString(";\n")
	}
	st.CSS = template.CSS(css.String())
	st.JS = template.JS(js.String())
	// json.Marshal escapes <, > and &, so the data cannot end its script element.
	st.Data = template.JS(data)
	if err := reportPage.Execute(w, st); err != nil {
		return fmt.Errorf("dashboard: write report: %w", err)
	}
	return nil
}

func mustAsset(name string) []byte {
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}

// segment is a run of the headline: plain, emphasized (the zone) or bold (what was saved).
type segment struct {
	Text     string
	Em, Bold bool
}

type tile struct {
	Label, Value, Sub, Class string
}

type step struct {
	At, Kind, Class, Text string
}

type explanation struct {
	At, Alarm string
	Parts     []string
}

// story is the report page's content.
type story struct {
	Title       string
	Description string
	Meta        []string
	Headline    []segment
	Lead        string
	Tiles       []tile
	Steps       []step
	Whys        []explanation
	ExpectMet   bool
	Failures    []string
	Interrupted bool
	Source      string
	File        string

	CSS  template.CSS
	JS   template.JS
	Data template.JS
}

func clock(s float64) string {
	neg := s < 0
	t := int(math.Round(math.Abs(s)))
	out := fmt.Sprintf("%d:%02d", t/60, t%60)
	if neg {
		return "-" + out
	}
	return out
}

func seconds(d float64) string {
	if d < 10 {
		return fmt.Sprintf("%.1f s", d)
	}
	return fmt.Sprintf("%.0f s", d)
}

func count(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + count(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func pct(r report.Requests) string {
	if r.Total == 0 {
		return "no requests"
	}
	return fmt.Sprintf("%.2f%%", 100*r.Ratio())
}

// faultScene is the i-th fault in words: from the scene when it has them,
// else what the report alone says.
func faultScene(r *report.Report, sc *report.Scene, i int) report.FaultScene {
	if sc != nil && i < len(sc.Faults) {
		return sc.Faults[i]
	}
	f := r.Faults[i]
	z, _ := strings.CutPrefix(f.Target, "zone ")
	if z == f.Target {
		z = ""
	}
	return report.FaultScene{Zone: z, What: f.Kind + " on " + f.Target}
}

func buildStory(r *report.Report, sc *report.Scene) *story {
	st := &story{Title: r.Scenario, ExpectMet: r.Expect.Met, Failures: r.Expect.Failures, Interrupted: r.Interrupted}
	if sc != nil {
		st.Description = strings.TrimSpace(sc.Description)
		st.Source = sc.Source
		st.File = sc.File
	}
	st.Meta = []string{r.Mode + " mode", "detector " + r.Detector, fmt.Sprintf("seed %d", r.Seed), "ran " + clock(r.Duration)}
	if sc != nil {
		st.Meta = append(st.Meta, sc.Meta...)
	}
	if r.Database != "" {
		st.Meta = append(st.Meta, "database: "+r.Database)
	}

	// The fault the story is about: the first one that hits a zone, else the first.
	var fault *report.Fault
	var about report.FaultScene
	for i := range r.Faults {
		if fs := faultScene(r, sc, i); fault == nil || (about.Zone == "" && fs.Zone != "") {
			fault, about = &r.Faults[i], fs
		}
	}
	zone := about.Zone
	var det *report.Detection
	for i := range r.Detections {
		if d := &r.Detections[i]; det == nil && (zone == "" || d.Zone == zone) {
			det = d
		}
	}
	if zone == "" && det != nil {
		zone = det.Zone
	}
	var sh *report.Shift
	// again are the later shifts away from the same zone: the zone failed
	// again after traffic went back. The story tells each, not only the first.
	var again []int
	for i := range r.Shifts {
		if s := &r.Shifts[i]; sh == nil && (zone == "" || s.AwayFrom == zone) {
			sh = s
		} else if sh != nil && s.AwayFrom == sh.AwayFrom {
			again = append(again, i)
		}
	}
	var cp *report.ControlPlane
	for i := range r.ControlPlane {
		if c := &r.ControlPlane[i]; cp == nil && (zone == "" || c.Zone == zone) {
			cp = c
		}
	}

	// The headline: which zone, when, what grayzone did, what it saved; the
	// lead paragraph gives the numbers behind it.
	h := &st.Headline
	add := func(text string, em, bold bool) { *h = append(*h, segment{Text: text, Em: em, Bold: bold}) }
	var saved int64
	if b := r.Baseline; b != nil {
		saved = b.Requests.Failed - r.Requests.Failed
	}
	switch {
	case fault != nil && zone != "":
		add(zone, true, false)
		add(" failed at "+clock(fault.Start)+".", false, false)
	case fault != nil:
		add("The fault began at "+clock(fault.Start)+".", false, false)
	default:
		add("No fault was injected.", false, false)
	}
	switch {
	case det != nil && fault != nil:
		add(" grayzone caught it "+seconds(det.At-fault.Start)+" later", false, false)
	case det != nil:
		add(" grayzone detected isolated impact in "+det.Zone+" at "+clock(det.At), false, false)
	case fault != nil:
		add(" grayzone did not detect isolated zonal impact", false, false)
	}
	switch {
	case sh != nil && det != nil && sh.Start-det.At > 0.5:
		add(" and shifted its traffic away "+seconds(sh.Start-det.At)+" after that", false, false)
	case sh != nil && det != nil:
		add(" and shifted its traffic away", false, false)
	case sh != nil:
		add(", yet "+sh.AwayFrom+" was shifted away at "+clock(sh.Start), false, false)
	case det != nil:
		add(" but shifted nothing", false, false)
	}
	switch {
	case saved > 0:
		add(": ", false, false)
		add("saved "+count(saved)+" failed requests", false, true)
		add(".", false, false)
	case fault != nil || det != nil:
		add(".", false, false)
	}
	lead := ""
	if fault != nil {
		lead = about.What
		lead = strings.ToUpper(lead[:1]) + lead[1:] + " from " + clock(fault.Start)
		if fault.End != nil {
			lead += " to " + clock(*fault.End)
		}
		lead += ". "
	}
	for _, i := range again {
		s, prev := r.Shifts[i], r.Previous(i)
		if prev.End != nil {
			lead += fmt.Sprintf("Traffic went back to %s at %s and it failed again: ", s.AwayFrom, clock(*prev.End))
		} else {
			lead += s.AwayFrom + " failed again: "
		}
		lead += fmt.Sprintf("shift episode %d began at %s", s.Episode, clock(s.Start))
		if s.Relapse {
			lead += " (a relapse: isolated again soon after its recovery test passed, so the shift before ended too early)"
		}
		lead += ". "
	}
	lead += fmt.Sprintf("%s of %s customer requests failed with grayzone (%s)", count(r.Requests.Failed), count(r.Requests.Total), pct(r.Requests))
	if b := r.Baseline; b != nil {
		lead += fmt.Sprintf("; %s of %s (%s) failed in the baseline run, the same scenario with mitigation off.", count(b.Requests.Failed), count(b.Requests.Total), pct(b.Requests))
	} else {
		lead += ". Run with --baseline to see how many it saved."
	}
	st.Lead = lead

	// Tiles: the same facts, at a glance.
	if fault != nil {
		sub := strings.TrimPrefix(fault.Target, "zone ") + " · " + fault.Kind
		if fault.End != nil {
			sub += " · until " + clock(*fault.End)
		}
		st.Tiles = append(st.Tiles, tile{Label: "Fault began", Value: clock(fault.Start), Sub: sub, Class: "bad"})
	}
	if det != nil {
		v := clock(det.At)
		if fault != nil {
			v = "+" + seconds(det.At-fault.Start)
		}
		st.Tiles = append(st.Tiles, tile{Label: "Detected", Value: v, Sub: "at " + clock(det.At) + " · " + det.Alarm})
	} else {
		st.Tiles = append(st.Tiles, tile{Label: "Detected", Value: "never", Sub: "no isolated-impact alarm"})
	}
	if sh != nil {
		v := clock(sh.Start)
		if fault != nil {
			v = "+" + seconds(sh.Start-fault.Start)
		}
		sub := "at " + clock(sh.Start) + " · " + sh.Origin
		if sh.End != nil {
			sub += " · ended " + clock(*sh.End)
		}
		st.Tiles = append(st.Tiles, tile{Label: "Shifted away", Value: v, Sub: sub, Class: "shift"})
	}
	for _, i := range again {
		s, prev := r.Shifts[i], r.Previous(i)
		sub := fmt.Sprintf("episode %d · at %s", s.Episode, clock(s.Start))
		if prev.End != nil {
			sub += " · " + seconds(s.Start-*prev.End) + " after traffic went back"
		}
		if s.Relapse {
			sub += " · relapse"
		}
		if s.End != nil {
			sub += " · ended " + clock(*s.End)
		}
		st.Tiles = append(st.Tiles, tile{Label: "Shifted away again", Value: clock(s.Start), Sub: sub, Class: "bad"})
	}
	if cp != nil {
		sub := "capacity replaced in the other zones"
		if cp.Restored != nil {
			sub = "restored " + clock(*cp.Restored)
		}
		if cp.Failures > 0 {
			sub += fmt.Sprintf(" · after %d failed attempts", cp.Failures)
		}
		st.Tiles = append(st.Tiles, tile{Label: "Capacity excluded", Value: clock(cp.At), Sub: sub, Class: "shift"})
	}
	st.Tiles = append(st.Tiles, tile{Label: "Failed requests", Value: count(r.Requests.Failed),
		Sub: fmt.Sprintf("of %s (%s) with grayzone", count(r.Requests.Total), pct(r.Requests))})
	if b := r.Baseline; b != nil {
		t := tile{Label: "Without grayzone", Value: count(b.Requests.Failed), Sub: fmt.Sprintf("of %s (%s) failed", count(b.Requests.Total), pct(b.Requests))}
		if saved := b.Requests.Failed - r.Requests.Failed; saved > 0 {
			t.Sub += " · " + count(saved) + " saved"
			t.Class = "ok"
		}
		st.Tiles = append(st.Tiles, t)
	}

	st.Steps = steps(r, sc)
	for _, d := range r.Detections {
		st.Whys = append(st.Whys, explanation{At: clock(d.At), Alarm: d.Alarm, Parts: splitWhy(d.Why)})
	}
	return st
}

// splitWhy breaks the detector's one-paragraph explanation at its clauses.
func splitWhy(why string) []string {
	var out []string
	for _, p := range strings.Split(why, "; ") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func steps(r *report.Report, sc *report.Scene) []step {
	type ev struct {
		at float64
		n  int // tie-break: the order things happen in
		step
	}
	var evs []ev
	push := func(at float64, n int, kind, class, text string) {
		evs = append(evs, ev{at, n, step{At: clock(at), Kind: kind, Class: class, Text: text}})
	}
	start := "the run starts"
	if sc != nil && sc.Start != "" {
		start = sc.Start
	}
	push(0, 0, "start", "", start)
	for i, f := range r.Faults {
		what := faultScene(r, sc, i).What
		push(f.Start, 1, "fault", "fault", what)
		if f.End != nil {
			push(*f.End, 1, "fault ends", "ok", "the fault ends: "+what)
		}
	}
	for _, d := range r.Detections {
		push(d.At, 2, "detected", "detected", fmt.Sprintf("%s goes into ALARM: isolated impact in %s", d.Alarm, d.Zone))
	}
	for i, s := range r.Shifts {
		if a := r.Again(i); a != "" {
			push(s.Start, 3, "shifted again", "shift", fmt.Sprintf("zonal shift (%s): the front door stops sending traffic to %s again; %s", s.Origin, s.AwayFrom, a))
		} else {
			push(s.Start, 3, "shifted", "shift", fmt.Sprintf("zonal shift (%s): the front door stops sending traffic to %s", s.Origin, s.AwayFrom))
		}
		if s.End != nil {
			push(*s.End, 6, "shift ends", "ok", fmt.Sprintf("traffic returns to %s", s.AwayFrom))
		}
	}
	for _, c := range r.ControlPlane {
		text := fmt.Sprintf("%s excluded from the instance group; replacement capacity launched in the other zones", c.Zone)
		if c.Failures > 0 {
			text += fmt.Sprintf(" (after %d failed attempts)", c.Failures)
		}
		push(c.At, 4, "excluded", "shift", text)
		if c.Restored != nil {
			push(*c.Restored, 5, "included", "ok", fmt.Sprintf("%s takes capacity again", c.Zone))
		}
	}
	end := "the run ends"
	if r.Interrupted {
		end = "the run was interrupted"
	}
	push(r.Duration, 9, "end", "", end)
	slices.SortStableFunc(evs, func(a, b ev) int {
		if a.at != b.at {
			if a.at < b.at {
				return -1
			}
			return 1
		}
		return a.n - b.n
	})
	out := make([]step, len(evs))
	for i, e := range evs {
		out[i] = e.step
	}
	return out
}

// reportData is what report.js draws: uPlot columns per zone and the marks.
type reportData struct {
	Zones      []string           `json:"zones"`
	X          []float64          `json:"x"`
	Avail      [][]*float64       `json:"avail"` // per zone: server, canary
	Latency    [][]*float64       `json:"latency"`
	Spans      []reportSpan       `json:"spans"`
	Detections []reportMark       `json:"detections"`
	Target     float64            `json:"target"`
	Thresholds map[string]float64 `json:"thresholds"`
	Duration   float64            `json:"duration"`
}

type reportSpan struct {
	Kind  string   `json:"kind"`
	From  float64  `json:"from"`
	To    *float64 `json:"to"`
	Label string   `json:"label"`
}

type reportMark struct {
	At    float64 `json:"at"`
	Label string  `json:"label"`
}

func chartData(r *report.Report) reportData {
	d := reportData{X: []float64{}, Avail: [][]*float64{}, Latency: [][]*float64{}, Spans: []reportSpan{}, Detections: []reportMark{},
		Target: availabilityTarget, Thresholds: map[string]float64{}, Duration: r.Duration}
	for _, op := range operation.Catalog {
		d.Thresholds[op.Name] = float64(op.Threshold) / float64(time.Millisecond)
	}
	idx := map[string]int{}
	for _, p := range r.Timeline {
		for _, z := range p.Zones {
			if _, ok := idx[z.Zone]; !ok {
				idx[z.Zone] = len(d.Zones)
				d.Zones = append(d.Zones, z.Zone)
			}
		}
	}
	cols := make([][4][]*float64, len(d.Zones))
	num := func(v float64, ok bool) *float64 {
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	for _, p := range r.Timeline {
		d.X = append(d.X, p.At)
		seen := make([]bool, len(d.Zones))
		for _, z := range p.Zones {
			i := idx[z.Zone]
			seen[i] = true
			c := &cols[i]
			c[0] = append(c[0], num(100*z.Availability, z.Requests > 0 && z.P99 >= 0))
			c[1] = append(c[1], num(100*z.CanaryAvailability, z.CanaryAvailability >= 0))
			c[2] = append(c[2], num(z.P99, z.P99 > 0))
			c[3] = append(c[3], num(z.CanaryP99, z.CanaryP99 > 0))
		}
		for i, ok := range seen {
			if !ok {
				for k := range cols[i] {
					cols[i][k] = append(cols[i][k], nil)
				}
			}
		}
	}
	for _, c := range cols {
		d.Avail = append(d.Avail, c[0], c[1])
		d.Latency = append(d.Latency, c[2], c[3])
	}
	for _, f := range r.Faults {
		to := f.End
		if to == nil {
			to = &d.Duration
		}
		d.Spans = append(d.Spans, reportSpan{Kind: "fault", From: f.Start, To: to, Label: "fault: " + f.Kind + " · " + strings.TrimPrefix(f.Target, "zone ")})
	}
	for i, s := range r.Shifts {
		label := "shifted away from " + s.AwayFrom
		if r.Previous(i) != nil {
			label += fmt.Sprintf(" (episode %d)", s.Episode)
		}
		d.Spans = append(d.Spans, reportSpan{Kind: "shift", From: s.Start, To: s.End, Label: label})
	}
	for _, c := range r.ControlPlane {
		d.Spans = append(d.Spans, reportSpan{Kind: "exclusion", From: c.At, To: c.Restored, Label: c.Zone + " excluded from the instance group"})
	}
	for _, det := range r.Detections {
		d.Detections = append(d.Detections, reportMark{At: det.At, Label: "detected " + det.Zone})
	}
	return d
}
