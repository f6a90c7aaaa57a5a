package service

import (
	"context"
	"fmt"
	"time"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/practice"
	"github.com/grayzone/grayzone/server/store"
)

// practiceMargin keeps a practice shift from expiring before the scheduler ends it.
const practiceMargin = 5 * time.Minute

// practiceStep runs the practice scheduler, if enabled: start a practice
// shift when one is due, end it on its outcome, record every run.
func (r *resource) practiceStep(ctx context.Context, now time.Time, a detect.Assessment) {
	if r.prac == nil {
		return
	}
	d := r.prac.Step(now, r.alarmState, func(zone string) error {
		if a.FailStatic.Active {
			return fmt.Errorf("fail static (%s): %s", a.FailStatic.Reason, a.FailStatic.Why)
		}
		if ph, _ := r.ctrl.Phase(); ph != runbook.Idle {
			return fmt.Errorf("autoshift is handling an incident (%s)", ph)
		}
		if act, ok := r.s.shifts.Active(r.cfg.Name); ok {
			return fmt.Errorf("shift %s is active away from %s", act.ID, act.AwayFrom)
		}
		return r.capacityCheck(zone)
	})
	switch d.Kind {
	case practice.Start:
		sh, err := r.s.shifts.Start(now, shift.StartRequest{Resource: r.cfg.Name, AwayFrom: d.Zone,
			ExpiresIn: r.cfg.Practice.Duration + practiceMargin, Comment: "practice run", StartedBy: "practice", Origin: shift.Practice,
			Reason: "scheduled practice run"})
		if err != nil {
			r.s.audit(ctx, store.AuditEntry{At: now, Kind: "practice", Resource: r.cfg.Name, Zone: d.Zone, Actor: "practice",
				Message: "practice run could not start its shift: " + err.Error()})
			return
		}
		r.prac.Started(now, d.Zone, sh.ID)
		r.reconcile(ctx, now)
		r.savePractice(ctx, now, d.Zone, sh.ID, "", "")
		r.s.audit(ctx, store.AuditEntry{At: now, Kind: "practice", Resource: r.cfg.Name, Zone: d.Zone, Actor: "practice",
			Message: fmt.Sprintf("practice run started: shift %s away from %s for %s", sh.ID, d.Zone, r.cfg.Practice.Duration)})
	case practice.Prevented:
		r.s.audit(ctx, store.AuditEntry{At: now, Kind: "practice", Resource: r.cfg.Name, Actor: "practice",
			Message: "practice run prevented: " + d.Reason})
	case practice.End:
		if d.ShiftID != "" {
			if sh, err := r.s.shifts.Get(d.ShiftID); err == nil && sh.Status == shift.Active {
				if _, err := r.s.shifts.Cancel(now, d.ShiftID, "practice: "+string(d.Outcome)); err != nil {
					r.s.log.Error("end practice shift", "resource", r.cfg.Name, "shift", d.ShiftID, "err", err)
					return // retried at the next tick: the scheduler repeats End until Ended
				}
			}
		}
		run, _ := r.prac.Current()
		r.prac.Ended(now)
		r.reconcile(ctx, now)
		r.savePractice(ctx, run.Decided, d.Zone, d.ShiftID, string(d.Outcome), d.Reason)
		r.s.audit(ctx, store.AuditEntry{At: now, Kind: "practice", Resource: r.cfg.Name, Zone: d.Zone, Actor: "practice",
			Message: fmt.Sprintf("practice run away from %s ended %s: %s", d.Zone, d.Outcome, d.Reason)})
	}
}

// savePractice records a practice run, keyed by its start.
func (r *resource) savePractice(ctx context.Context, started time.Time, zone, shiftID, outcome, reason string) {
	if started.IsZero() {
		started = r.s.clock.Now()
	}
	p := store.PracticeRun{ID: fmt.Sprintf("gzp-%s-%d", r.cfg.Name, started.Unix()), Resource: r.cfg.Name, Zone: zone, ShiftID: shiftID,
		StartedAt: started, Outcome: outcome, Reason: reason}
	if outcome != "" {
		end := r.s.clock.Now()
		p.EndedAt = &end
	}
	if err := r.s.db.SavePractice(ctx, p); err != nil {
		r.s.log.Error("record practice run", "resource", r.cfg.Name, "err", err)
	}
}
