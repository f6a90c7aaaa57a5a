package scenario

import (
	"fmt"
	"math"

	"github.com/grayzone/grayzone/report"
)

// Unmet judges a run's report against the scenario's expect block
// (report.Expectation): one line for each expectation the run fell short of,
// none when it met them all.
func (sc *Scenario) Unmet(r *report.Report) []string {
	var failures []string
	fail := func(format string, args ...any) {
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	ex := sc.Expect
	var firstFault, lastEnd float64 = -1, -1
	for _, f := range sc.Faults {
		if firstFault < 0 || report.Secs(f.At) < firstFault {
			firstFault = report.Secs(f.At)
		}
		lastEnd = math.Max(lastEnd, report.Secs(f.End(sc.Duration)))
	}
	// The shift that the expectations are about.
	var target []report.Shift
	if s := ex.Shift; s != nil {
		if s.None {
			if len(r.Shifts) > 0 {
				fail("shift: expected none, but %s was shifted at %.1fs", r.Shifts[0].AwayFrom, r.Shifts[0].Start)
			}
		} else {
			for _, sh := range r.Shifts {
				if sh.AwayFrom == s.AwayFrom {
					target = append(target, sh)
				} else {
					fail("shift: %s was shifted at %.1fs, but only %s may be", sh.AwayFrom, sh.Start, s.AwayFrom)
				}
			}
			from, what, at := firstFault, "the first fault", math.Inf(1)
			if len(target) > 0 {
				at = target[0].Start
			}
			if s.From != "" {
				for _, f := range sc.Faults {
					if f.Name == s.From {
						from, what = report.Secs(f.At), "fault "+f.Name
					}
				}
				at = firstAfter(target, from)
			}
			switch {
			case len(target) == 0:
				fail("shift: %s was never shifted away", s.AwayFrom)
			case s.Within > 0 && from >= 0 && at > from+report.Secs(s.Within):
				fail("shift: %s was shifted at %.1fs, %.1fs after %s (%.1fs); expected within %s",
					s.AwayFrom, at, at-from, what, from, s.Within)
			}
			if s.OneEpisode {
				sc.checkEpisodes(s, target, fail)
			}
		}
	} else {
		target = r.Shifts
	}
	if cp := ex.ControlPlane; cp != nil {
		checkControlPlane(r, *cp, target, fail)
	}
	if ex.RecoveredWithin > 0 {
		if len(target) == 0 {
			fail("recovered_within: no shift to recover from")
		}
		for _, sh := range target {
			switch {
			case sh.End == nil:
				fail("recovered_within: the shift away from %s never ended", sh.AwayFrom)
			case lastEnd >= 0 && *sh.End > lastEnd+report.Secs(ex.RecoveredWithin):
				fail("recovered_within: the shift away from %s ended at %.1fs, %.1fs after the last fault ended (%.1fs); expected within %s",
					sh.AwayFrom, *sh.End, *sh.End-lastEnd, lastEnd, ex.RecoveredWithin)
			}
		}
	}
	if want := ex.FailStatic; want != nil {
		switch {
		case *want && len(r.FailStatic) == 0:
			fail("fail_static: expected grayzone to fail static, but its view was never in doubt")
		case !*want && len(r.FailStatic) > 0:
			fail("fail_static: expected no doubt, but grayzone failed static (%s) at %.1fs", r.FailStatic[0].Reason, r.FailStatic[0].Start)
		}
	}
	if m := ex.MaxFailedRatio; m != nil && r.Requests.Ratio() > *m {
		fail("max_failed_ratio: %d of %d customer requests failed (%.4f), more than %g",
			r.Requests.Failed, r.Requests.Total, r.Requests.Ratio(), *m)
	}
	return failures
}

// firstAfter is the start of the first shift that is in force at or after
// t (a shift that ended before t is about something else), +Inf if none.
func firstAfter(shifts []report.Shift, t float64) float64 {
	for _, sh := range shifts {
		if sh.End == nil || *sh.End >= t {
			return sh.Start
		}
	}
	return math.Inf(1)
}

// checkEpisodes fails on flapping: each fault the expectation is about
// (the fault named by from, else every fault whose target is the zone)
// must be handled by exactly one shift episode of the zone (one shift in
// force at some point between the fault's start and its end), and that
// shift must not end while the fault is in force.
func (sc *Scenario) checkEpisodes(s *ExpectShift, shifts []report.Shift, fail func(string, ...any)) {
	for _, f := range sc.Faults {
		if (s.From != "" && f.Name != s.From) || (s.From == "" && f.Target.Zone != s.AwayFrom) {
			continue
		}
		start, end := report.Secs(f.At), report.Secs(f.End(sc.Duration))
		n := 0
		for _, sh := range shifts {
			if sh.Start > end || (sh.End != nil && *sh.End < start) {
				continue
			}
			n++
			if sh.End != nil && *sh.End < end {
				fail("one_episode: the shift away from %s ended at %.1fs while its fault (%s from %.1fs) was in force until %.1fs",
					s.AwayFrom, *sh.End, f.Kind, start, end)
			}
		}
		if n > 1 {
			fail("one_episode: %d shift episodes away from %s during its fault (%s, %.1fs to %.1fs); expected one", n, s.AwayFrom, f.Kind, start, end)
		}
	}
}

func checkControlPlane(r *report.Report, want bool, shifts []report.Shift, fail func(string, ...any)) {
	if !want {
		if len(r.ControlPlane) > 0 {
			fail("control_plane: expected no exclusion, but %s was excluded at %.1fs", r.ControlPlane[0].Zone, r.ControlPlane[0].At)
		}
		return
	}
	if len(shifts) == 0 {
		fail("control_plane: no shift, so no exclusion")
		return
	}
	for _, sh := range shifts {
		var cp *report.ControlPlane
		for i := range r.ControlPlane {
			c := &r.ControlPlane[i]
			if c.Zone == sh.AwayFrom && c.At >= sh.Start && (sh.End == nil || c.At <= *sh.End) {
				cp = c
				break
			}
		}
		switch {
		case cp == nil:
			fail("control_plane: %s was not excluded from the instance group while shifted", sh.AwayFrom)
		case sh.End == nil:
			// Still shifted at the end: included-before-end cannot be judged; recovered_within covers it.
		case cp.Restored == nil:
			fail("control_plane: %s was never included again, yet its shift ended at %.1fs", sh.AwayFrom, *sh.End)
		case *cp.Restored > *sh.End:
			fail("control_plane: %s was included again at %.1fs, after its shift ended at %.1fs", sh.AwayFrom, *cp.Restored, *sh.End)
		}
	}
}
