package lab

import (
	"fmt"
	"slices"
	"time"

	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/internal/duration"
	"github.com/grayzone/grayzone/lab/console"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/report"
)

// progress feeds the console from the mitigated run, on the scenario's
// clock: the status at each controller tick and what happened since the last.
type progress struct {
	con   *console.Console // nil: nothing to show
	sc    *scenario.Scenario
	start time.Time
	prev  time.Duration // scenario time of the last update; -1 before the first
	// How many of the controller's detections and runbook events were shown.
	detections, events int
}

func newProgress(con *console.Console, sc *scenario.Scenario, mitigate bool, start time.Time) *progress {
	if !mitigate {
		con = nil // the baseline runs unseen beside or after the mitigated run
	}
	return &progress{con: con, sc: sc, start: start, prev: -1}
}

// header says what runs; db and dashboard are real mode's ("" for none).
func (p *progress) header(mode, db, dashboard string) {
	if p.con == nil {
		return
	}
	sc := p.sc
	p.con.Println(fmt.Sprintf("grayzone lab: %s, %s mode, %s, %d zones × %v instances, %.0f req/s",
		sc.Name, mode, duration.Format(sc.Duration), len(sc.Topology.Zones), sc.Topology.Instances[sc.Topology.Zones[0]], sc.Load.RPS))
	if db != "" {
		p.con.Println("database: " + db)
	}
	if dashboard != "" {
		p.con.Println("dashboard: " + dashboard + " (open it to watch the run)")
	}
	for _, f := range sc.Faults {
		l := fmt.Sprintf("fault scheduled: %s on %s at %s", f.Kind, f.Target, duration.Format(f.At))
		if f.Duration > 0 {
			l += " for " + duration.Format(f.Duration)
		}
		p.con.Println(l)
	}
}

// update shows the run at scenario time t.
func (p *progress) update(t time.Duration, a detect.Assessment, c *core, req report.Requests) {
	if p.con == nil {
		return
	}
	dets, evs := c.ctrl.Detections(), c.ctrl.Events()
	events := faultEvents(p.sc, p.prev, t)
	for _, d := range dets[p.detections:] {
		events = append(events, detectionEvent(d, p.start))
	}
	for _, e := range evs[p.events:] {
		if ce, ok := runbookEvent(e, p.start, p.sc); ok {
			events = append(events, ce)
		}
	}
	slices.SortStableFunc(events, func(x, y console.Event) int { return int(x.At - y.At) })
	p.prev, p.detections, p.events = t, len(dets), len(evs)
	p.con.Update(status(t, p.sc.Duration, a, c, req), events)
}

// status is the console's snapshot of the run.
func status(t, total time.Duration, a detect.Assessment, c *core, req report.Requests) console.Status {
	s := console.Status{Elapsed: t, Total: total, Regional: a.Regional, Group: c.group.Snapshot().String(), Customers: req}
	if a.FailStatic.Active {
		s.FailStatic = a.FailStatic.Reason
	}
	if phase, zone := c.ctrl.Phase(); phase != runbook.Idle {
		s.ShiftZone, s.Phase = zone, string(phase)
		if st, _ := c.ctrl.RunbookState(); st.Weight > 0 {
			s.Phase += fmt.Sprintf(", returning: %d %%", st.Weight)
		}
	}
	for _, z := range a.Zones {
		state := "ok"
		switch {
		case z.Isolated:
			state = "ISOLATED"
		case z.Impacted:
			state = "impacted"
		}
		s.Zones = append(s.Zones, console.Zone{Name: z.Zone, Availability: z.Availability, P99: z.P99, Requests: z.Requests, State: state})
	}
	return s
}

// faultEvents are the faults that started or ended in (prev, now].
func faultEvents(sc *scenario.Scenario, prev, now time.Duration) []console.Event {
	var out []console.Event
	for _, f := range sc.Faults {
		if prev < f.At && f.At <= now {
			text := fmt.Sprintf("%s on %s", f.Kind, f.Target)
			if f.Duration > 0 {
				text += " for " + duration.Format(f.Duration)
			}
			out = append(out, console.Event{At: f.At, What: "fault", Text: text})
		}
		// A fault that lasts to the end of the run has no end worth a line.
		if end := f.End(sc.Duration); end < sc.Duration && prev < end && end <= now {
			out = append(out, console.Event{At: end, What: "fault over", Text: fmt.Sprintf("%s on %s", f.Kind, f.Target)})
		}
	}
	return out
}

func detectionEvent(d autoshift.Detection, start time.Time) console.Event {
	text := d.Why // it starts with the zone: "az-a: isolated availability impact: ..."
	if text == "" {
		text = d.Alarm
	}
	return console.Event{At: d.At.Sub(start), What: "detected", Text: text}
}

// runbookEvent words a step of the runbook; Decided is left out, as the
// detection that caused it was just shown.
func runbookEvent(e runbook.Event, start time.Time, sc *scenario.Scenario) (console.Event, bool) {
	ce := console.Event{At: e.At.Sub(start)}
	switch e.Kind {
	case runbook.ShiftStarted:
		ce.What, ce.Text = "shifted", "traffic away from "+e.Zone+" (data plane)"
	case runbook.Excluded:
		ce.What, ce.Text = "excluded", e.Zone+" from the instance group (control plane)"
	case runbook.Recovered:
		ce.What, ce.Text = "recovered", e.Zone+" healthy again"
		if hold := sc.Policy.RecoveryHold; hold > 0 {
			ce.Text += " for " + duration.Format(hold)
		}
	case runbook.Included:
		ce.What, ce.Text = "included", e.Zone+" in the instance group again"
	case runbook.ExtraRemoved:
		ce.What, ce.Text = "removed", "the extra instances launched while "+e.Zone+" was excluded"
	case runbook.ShiftEnded:
		ce.What, ce.Text = "shift over", "traffic back to "+e.Zone
	case runbook.Failed:
		ce.What, ce.Text = "failed", fmt.Sprintf("%s %s: %s", e.Action, e.Zone, e.Detail)
	default:
		return ce, false
	}
	return ce, true
}
