// Package report is the lab's side of the run report (package report at the
// top of the tree): a lab run with its scenario, turned into the report, and
// the scenario in words for the report's page. What the scenario expects is
// judged by the scenario itself (scenario.Scenario.Unmet).
package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/grayzone/grayzone/engine/autoshift"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/lab/scenario"
	"github.com/grayzone/grayzone/report"
)

// Run is what a lab run produced: the run of its scenario.
type Run struct {
	Scenario   *scenario.Scenario
	Mode       string
	Detector   string
	Start      time.Time
	Elapsed    time.Duration // how long the run went (shorter than the scenario when interrupted)
	Requests   report.Requests
	Detections []autoshift.Detection
	Events     []runbook.Event
	FailStatic []autoshift.FailStaticPeriod
	Timeline   []report.Point
	Database   string
	Path       string // which of grayzone serve's code the run went through
}

// Build turns a lab run into a report (without baseline; expect not yet
// checked): the scenario's faults as they ran up to the run's end.
func Build(run Run) *report.Report {
	sc := run.Scenario
	var faults []report.Fault
	for _, f := range sc.Faults {
		if f.At > run.Elapsed {
			continue
		}
		rf := report.Fault{Name: f.Name, Kind: string(f.Kind), Target: f.Target.String(), Start: report.Secs(f.At)}
		if end := f.End(sc.Duration); end <= run.Elapsed {
			e := report.Secs(end)
			rf.End = &e
		}
		faults = append(faults, rf)
	}
	return report.Build(report.Run{Name: sc.Name, Seed: sc.Seed, Mode: run.Mode, Detector: run.Detector, Start: run.Start,
		Planned: sc.Duration, Elapsed: run.Elapsed, Faults: faults, Requests: run.Requests, Detections: run.Detections,
		Events: run.Events, FailStatic: run.FailStatic, Timeline: run.Timeline, Database: run.Database, Path: run.Path})
}

// Scene is the scenario in words for r's page (dashboard.WriteReport).
func Scene(r *report.Report, sc *scenario.Scenario) *report.Scene {
	n := 0
	for _, z := range sc.Topology.Zones {
		n = max(n, sc.Topology.Instances[z])
	}
	s := &report.Scene{
		Description: sc.Description,
		File:        sc.File,
		Source:      string(sc.Source),
		Meta:        []string{fmt.Sprintf("%d zones × %d instances", len(sc.Topology.Zones), n), fmt.Sprintf("%g req/s", sc.Load.RPS)},
		Start:       fmt.Sprintf("the run starts: customers send %g requests a second to the regional endpoint; canaries call every zone", sc.Load.RPS),
	}
	for _, f := range r.Faults {
		s.Faults = append(s.Faults, report.FaultScene{Zone: faultZone(f, sc), What: describe(f, sc)})
	}
	return s
}

// faultZone is the zone a fault hits ("" for the region or the control plane).
func faultZone(f report.Fault, sc *scenario.Scenario) string {
	if z, ok := strings.CutPrefix(f.Target, "zone "); ok {
		return z
	}
	if id, ok := strings.CutPrefix(f.Target, "instance "); ok {
		for _, z := range sc.Topology.Zones {
			if slices.Contains(sc.Topology.InstanceIDs(z), id) {
				return z
			}
		}
	}
	return ""
}

// describe says what a fault does in words, with its parameters when the
// scenario is at hand.
func describe(f report.Fault, sc *scenario.Scenario) string {
	var sf *scenario.Fault
	if sc != nil {
		for i := range sc.Faults {
			g := &sc.Faults[i]
			if string(g.Kind) == f.Kind && g.Target.String() == f.Target && math.Abs(g.At.Seconds()-f.Start) < 0.001 {
				sf = g
				break
			}
		}
	}
	who := strings.TrimPrefix(f.Target, "zone ")
	if f.Target == "region" {
		who = "every zone"
	}
	pctOf := func() string {
		if sf == nil || sf.Percent == 0 {
			return ""
		}
		return fmt.Sprintf("%g%% ", sf.Percent)
	}
	switch scenario.Kind(f.Kind) {
	case scenario.PacketLoss:
		return pctOf() + "packet loss between " + who + " and the database"
	case scenario.Latency:
		if sf != nil && sf.Latency > 0 {
			return fmt.Sprintf("%s of added latency between %s and the database", sf.Latency, who)
		}
		return "added latency between " + who + " and the database"
	case scenario.Blackhole:
		return "database unreachable from " + who + " (blackhole)"
	case scenario.Reset:
		return pctOf() + "of database connections reset in " + who
	case scenario.HTTPError:
		return pctOf() + "of requests failing with server errors in " + who
	case scenario.Slow:
		if sf != nil && sf.Latency > 0 {
			return fmt.Sprintf("requests slowed by %s in %s", sf.Latency, who)
		}
		return "slow requests in " + who
	case scenario.ControlPlaneOutage:
		return "the control plane (instance group) is unavailable"
	}
	return f.Kind + " on " + f.Target
}
