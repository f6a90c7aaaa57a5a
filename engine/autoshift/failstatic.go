package autoshift

import (
	"fmt"
	"time"

	"github.com/grayzone/grayzone/engine/detect"
)

// FailStaticPeriod is one span during which the engine's view was in doubt
// and the controller kept what was in force.
type FailStaticPeriod struct {
	Reason string
	Why    string
	Start  time.Time
	End    time.Time // zero while it lasts
}

// trackFailStatic records the start and end of each period of doubt and
// audits both, so the log says why nothing moved.
func (c *Controller) trackFailStatic(now time.Time, fs detect.FailStatic) {
	var cur *FailStaticPeriod
	if n := len(c.failStatic); n > 0 && c.failStatic[n-1].End.IsZero() {
		cur = &c.failStatic[n-1]
	}
	if cur != nil && (!fs.Active || fs.Reason != cur.Reason) {
		cur.End = now
		c.o.Log.Info("fail static ended", "reason", cur.Reason, "after", now.Sub(cur.Start))
		c.emit(AuditEvent{At: now, Kind: "fail_static", Msg: fmt.Sprintf("fail static (%s) ended after %s: decisions resume",
			cur.Reason, now.Sub(cur.Start).Round(time.Second))})
		cur = nil
	}
	if cur == nil && fs.Active {
		c.failStatic = append(c.failStatic, FailStaticPeriod{Reason: fs.Reason, Why: fs.Why, Start: now})
		c.o.Log.Warn("fail static", "reason", fs.Reason, "why", fs.Why)
		c.emit(AuditEvent{At: now, Kind: "fail_static", Msg: fmt.Sprintf("fail static (%s): %s; shifts in force stay, no new shift starts and none ends automatically until it clears",
			fs.Reason, fs.Why)})
	}
}

// FailStaticPeriods lists every period of doubt so far, the last one open
// (zero End) while it lasts.
func (c *Controller) FailStaticPeriods() []FailStaticPeriod {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]FailStaticPeriod(nil), c.failStatic...)
}

// holdHealth is what the runbook is told of the zones' health while in
// doubt: nothing is healthy, so no recovery hold runs and no shift ends on
// its own; the hold starts over once the doubt clears.
func holdHealth(a detect.Assessment, h map[string]bool) map[string]bool {
	a.RecoveredInto(h)
	if a.FailStatic.Active {
		for z := range h {
			h[z] = false
		}
	}
	return h
}
