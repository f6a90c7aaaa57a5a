package detect

import (
	"fmt"
	"strings"
	"time"

	"github.com/grayzone/grayzone/engine/alarm"
	"github.com/grayzone/grayzone/telemetry/observation"
)

// Fail static: when the engine's own view is in doubt, it decides nothing
// new. Two things put the view in doubt, because each looks the same whether
// the region is failing or grayzone is blind:
//
//   - a telemetry source that was reporting has gone silent in every zone at
//     once (grayzone's own network, a collector or an agent that died);
//   - grayzone's own zonal canaries fail in every zone at once.
//
// One zone going silent while the others report is not doubt: it is evidence
// about that zone (every one of its instances stopped at once), and the
// default profile counts it as impact when the zone's canaries fail too.
//
// While in doubt the engine raises no isolated-impact alarm, and the
// controller (autoshift) also holds every automatic recovery: ending a shift
// sends customers back into a zone, which needs evidence of its health just
// as starting one needs evidence of impact.

// Reasons for failing static.
const (
	ReasonTelemetryLost    = "telemetry_lost"
	ReasonCanariesFailing  = "canaries_failing"
	canaryDoubtMinCalls    = 4 // one round of the lab's four operations
	defaultCanaryDoubtRate = 0.8
)

// FailStaticReasons lists every reason, for metrics that report each one.
var FailStaticReasons = []string{ReasonTelemetryLost, ReasonCanariesFailing}

// FailStatic is the engine's doubt about its own view at a tick.
type FailStatic struct {
	Active bool
	// Reason is one of the Reason constants ("" when not active).
	Reason string
	// Why says, in one sentence, what was seen.
	Why string
	// Since is when the doubt began (zero when not active).
	Since time.Time
}

// seen records, for each zone and source, the last closed bucket with an
// observation.
func (e *Engine) noteSeen(b *bucket) {
	for zi := range b.zone {
		for src, c := range b.zone[zi] {
			if c.N > 0 {
				e.lastSeen[zi][src] = seenAt{idx: b.idx, ok: true}
				e.began[src] = true
			}
		}
	}
}

// seenAt is the last closed bucket with an observation (ok: there was one).
type seenAt struct {
	idx int64
	ok  bool
}

// silent reports whether the source was reporting at some point and has sent
// nothing from zone zi (its index in cfg.Zones) for the silence window.
func (e *Engine) silent(zi int, src observation.Source) bool {
	if !e.began[src] {
		return false
	}
	last := e.lastSeen[zi][src]
	return !last.ok || e.last-last.idx >= buckets(e.cfg.SilenceWindow, e.cfg.Resolution)
}

// doubt works out whether the view is in doubt now.
func (e *Engine) doubt(now time.Time) FailStatic {
	var fs FailStatic
	for _, src := range sources {
		all := e.began[src]
		for zi := range e.cfg.Zones {
			all = all && e.silent(zi, src)
		}
		if all {
			fs = FailStatic{Active: true, Reason: ReasonTelemetryLost,
				Why: fmt.Sprintf("no %s observations from any zone for %s", src, e.cfg.SilenceWindow)}
			break
		}
	}
	if !fs.Active {
		var parts []string
		for zi, z := range e.cfg.Zones {
			n, bad := e.health[zi].total.Trials(DimFault)
			if n < canaryDoubtMinCalls || float64(bad) < e.cfg.CanaryDoubtRate*float64(n) {
				parts = nil
				break
			}
			parts = append(parts, fmt.Sprintf("%s %d of %d", z, bad, n))
		}
		if parts != nil {
			fs = FailStatic{Active: true, Reason: ReasonCanariesFailing,
				Why: fmt.Sprintf("zonal canaries failing in every zone over %s (%s failed)", e.cfg.HealthWindow, strings.Join(parts, ", "))}
		}
	}
	switch {
	case !fs.Active:
		e.doubtSince = time.Time{}
	case e.doubtSince.IsZero():
		e.doubtSince = now
	}
	fs.Since = e.doubtSince
	return fs
}

// failStatic withholds every isolated-impact decision while in doubt and
// says why in the assessment.
func (a *assessing) failStatic(fs FailStatic) {
	a.FailStatic = fs
	if !fs.Active {
		return
	}
	held := a.Isolated
	a.Isolated = ""
	for i := range a.Zones {
		a.Zones[i].Isolated = false
	}
	for i := range a.alarms {
		for _, z := range a.Zones {
			if a.alarms[i].Name == IsolatedAlarmName(z.Zone) {
				a.alarms[i].State = alarm.OK
				a.alarms[i].Reason = Because("fail static (" + fs.Reason + "): no decision while grayzone's own view is in doubt")
			}
		}
	}
	why := "fail static since " + fs.Since.UTC().Format(time.TimeOnly) + ": " + fs.Why +
		"; no new shift starts and no shift ends automatically until it clears"
	if held != "" {
		why += "; withheld: " + a.Why
	} else if a.Why != "" {
		why += "; detector: " + a.Why
	}
	a.Why = why
}
