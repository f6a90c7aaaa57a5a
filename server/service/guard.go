package service

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/grayzone/grayzone/engine/runbook"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/api"
)

// errDryRun marks the dry-run veto.
var errDryRun = errors.New("dry run: decided and recorded, nothing acted on")

// guard decides whether an automatic shift of zone may start now. The
// controller asks it under its lock (autoshift.Guard), so it reads only
// memory: the shift model's active shift, the last automatic shift, the
// pending decisions.
func (r *resource) guard(now time.Time, zone, why string) error {
	if r.onGuard != nil {
		r.onGuard()
	}
	as := r.cfg.Autoshift
	if act, ok := r.s.shifts.Active(r.cfg.Name); ok {
		return fmt.Errorf("shift %s (%s) is already active away from %s", act.ID, act.Origin, act.AwayFrom)
	}
	// The last assessment published, before the tick asking (the guard is
	// asked in the middle of the controller's tick).
	relapsing := r.ctrl.View().Assessment.Zone(zone).Relapsing
	r.mu.Lock()
	last := r.lastAuto
	r.mu.Unlock()
	if err := runbook.Spacing(now, last, as.MinInterval, relapsing); err != nil {
		return err
	}
	if err := r.capacityCheck(zone); err != nil {
		return err
	}
	if as.DryRun {
		return errDryRun
	}
	if as.Approval {
		return r.approvalGate(now, zone, why)
	}
	return nil
}

// capacityCheck refuses a shift that would leave less than min_capacity outside zone.
func (r *resource) capacityCheck(zone string) error {
	if r.cfg.MinCapacity <= 0 || r.mirror != nil { // with ARC, the control plane checks capacity
		return nil
	}
	left := 0
	for _, t := range r.cfg.FrontDoor.Targets {
		if t.Zone != zone {
			left++
		}
	}
	if left < r.cfg.MinCapacity {
		return fmt.Errorf("shifting %s would leave %d instances, below min_capacity %d: %w", zone, left, r.cfg.MinCapacity, shift.ErrCapacity)
	}
	return nil
}

// approvalGate holds a decision until an operator approves it.
func (r *resource) approvalGate(now time.Time, zone, why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, d := range r.decisions {
		if d.Zone != zone {
			continue
		}
		switch d.Status {
		case "approved":
			delete(r.decisions, id)
			return nil
		case "pending":
			return fmt.Errorf("awaiting an operator's approval (grayzone approve %s)", id)
		}
	}
	d := &api.Decision{ID: decisionID(r.cfg.Name, zone, now), Resource: r.cfg.Name, Zone: zone, Why: why, At: now, Status: "pending"}
	r.decisions[d.ID] = d
	return fmt.Errorf("awaiting an operator's approval (grayzone approve %s)", d.ID)
}

// decisionID names a decision and its resource, gzd-RESOURCE.ZONE-UNIXTIME
// (names have no dots), so that any replica can tell which resource's
// leader an approval goes to (decisionResource), even one that never saw it.
func decisionID(resource, zone string, at time.Time) string {
	return fmt.Sprintf("gzd-%s.%s-%d", resource, zone, at.Unix())
}

// decisionResource is the resource id names ("" for none).
func decisionResource(id string) string {
	res, _, ok := strings.Cut(strings.TrimPrefix(id, "gzd-"), ".")
	if !ok || !strings.HasPrefix(id, "gzd-") {
		return ""
	}
	return res
}
