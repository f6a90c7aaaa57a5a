package lab

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/lab/report"
	"github.com/grayzone/grayzone/lab/scenario"
)

// progress prints the live status lines of a real-mode run: what a person
// watching the incident wants every few seconds.
type progress struct {
	w        io.Writer
	sc       *scenario.Scenario
	mitigate bool
}

func newProgress(w io.Writer, sc *scenario.Scenario, mitigate bool) *progress {
	return &progress{w: w, sc: sc, mitigate: mitigate}
}

func (p *progress) header(db, dashboard string) {
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, "grayzone lab: %s, real mode, %s, %d zones × %v instances, %.0f req/s\n",
		p.sc.Name, p.sc.Duration, len(p.sc.Topology.Zones), p.sc.Topology.Instances[p.sc.Topology.Zones[0]], p.sc.Load.RPS)
	fmt.Fprintf(p.w, "database: %s\n", db)
	if dashboard != "" {
		fmt.Fprintf(p.w, "dashboard: %s (open it to watch the run)\n", dashboard)
	}
	for _, f := range p.sc.Faults {
		fmt.Fprintf(p.w, "fault scheduled: %s on %s at %s", f.Kind, f.Target, f.At)
		if f.Duration > 0 {
			fmt.Fprintf(p.w, " for %s", f.Duration)
		}
		fmt.Fprintln(p.w)
	}
	fmt.Fprintln(p.w, "time   zone: availability p99 [state] ...                   shift / instance group / customers")
}

func (p *progress) line(t time.Duration, a detect.Assessment, c *core, req report.Requests) {
	if p.w == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%5.0fs ", t.Seconds())
	for _, z := range a.Zones {
		state := "ok"
		switch {
		case z.Isolated:
			state = "ISOLATED"
		case z.Impacted:
			state = "impacted"
		}
		p99 := "  -  "
		if z.P99 >= 0 {
			p99 = fmt.Sprintf("%4.0fms", z.P99)
		}
		fmt.Fprintf(&b, "│ %s %6.2f%% %s %-8s ", z.Zone, 100*z.Availability, p99, state)
	}
	phase, zone := c.ctrl.Phase()
	switch {
	case !p.mitigate:
		b.WriteString("│ mitigation off")
	case phase == runbook.Idle:
		b.WriteString("│ no shift")
	default:
		fmt.Fprintf(&b, "│ shift away from %s (%s)", zone, phase)
	}
	fmt.Fprintf(&b, " │ group %s │ customers %d failed %d", c.group.Snapshot(), req.Total, req.Failed)
	if a.Regional {
		b.WriteString(" │ REGIONAL impact")
	}
	if fs := a.FailStatic; fs.Active {
		b.WriteString(" │ FAIL STATIC (" + fs.Reason + ")")
	}
	fmt.Fprintln(p.w, b.String())
}
