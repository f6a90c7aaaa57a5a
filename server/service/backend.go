package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/observation"
)

// The Service is the API's Backend.
var _ api.Backend = (*Service)(nil)

func (s *Service) resource(name string) (*resource, error) {
	r := s.byName[name]
	if r == nil {
		return nil, fmt.Errorf("resource %q is not configured: %w", name, shift.ErrNotFound)
	}
	return r, nil
}

// Status implements api.Backend. It reads what each resource's controller
// last published (autoshift.Controller.View) and state kept under short
// locks only (the shift book, once; the front door's table; the gate's
// counters), so a call never waits for a tick in progress. It used to take
// each controller's lock, which a tick holds while the engine assesses: at
// 1,000 resources a call that met the tick loop followed it resource by
// resource, waiting at each, and took as long as the rest of the pass.
func (s *Service) Status(ctx context.Context) (api.Status, error) {
	now := s.clock.Now()
	active := s.activeShifts()
	st := api.Status{Now: now.UTC(), Resources: make([]api.ResourceStatus, 0, len(s.resources))}
	for _, r := range s.resources {
		rs := r.status(now, active)
		rs.Telemetry = r.telemetryStatus(now)
		st.Resources = append(st.Resources, rs)
	}
	st.Notifications = s.deliveryStatus(ctx)
	eng := s.ticks.status()
	st.Engine = &eng
	return st, nil
}

// activeShifts is each resource's active shift (the newest, as
// shift.Manager.Active says), from one pass over the shift book rather
// than one per resource.
func (s *Service) activeShifts() map[string]shift.Shift {
	out := map[string]shift.Shift{}
	for _, sh := range s.shifts.List(shift.ListFilter{Status: shift.Active}) { // newest first
		if _, ok := out[sh.Resource]; !ok {
			out[sh.Resource] = sh
		}
	}
	return out
}

// status is the resource's part of GET /v1/status (and of /metrics) at now,
// with active from activeShifts, but for its telemetry (telemetryStatus:
// /metrics has its own series of it).
func (r *resource) status(now time.Time, active map[string]shift.Shift) api.ResourceStatus {
	v := r.ctrl.View()
	a := v.Assessment
	rs := api.ResourceStatus{Name: r.cfg.Name, Detector: r.cfg.Detector.Profile, Phase: string(v.Phase), PhaseZone: v.Zone,
		Excluded: []string{}, Pending: make([]string, 0, len(v.Pending)), Regional: a.Regional, Isolated: a.Isolated, Why: a.Why, Autoshift: r.autoshiftMode(),
		FailStatic: api.FailStaticOf(a.FailStatic)}
	if act, ok := active[r.cfg.Name]; ok {
		rs.ActiveShift = &act
	}
	if v.State.Excluded && v.State.Zone != "" {
		rs.Excluded = append(rs.Excluded, v.State.Zone)
	}
	rs.Returning = v.State.Weight
	for _, p := range v.Pending {
		rs.Pending = append(rs.Pending, p.String())
	}
	targets := r.table.Targets()
	rs.Zones = make([]api.ZoneStatus, 0, len(r.cfg.Zones))
	for _, z := range r.cfg.Zones {
		zs := a.Zone(z)
		if zs.P99 == 0 && zs.Requests == 0 {
			zs.P99 = -1
		}
		out := api.ZoneStatus{Zone: z, Availability: zs.Availability, P99Ms: zs.P99, Requests: zs.Requests, Healthy: zs.Healthy,
			Impacted: zs.Impacted, Outlier: zs.Outlier, Contributors: zs.Contributors, Isolated: zs.Isolated, Silent: zs.Silent, Shifted: r.table.Shifted(z),
			Targets: []api.Target{}}
		if a.At.IsZero() {
			out.Availability = 1
		}
		for _, t := range targets {
			if t.Zone == z {
				out.Targets = append(out.Targets, api.Target{ID: t.ID, Addr: t.Addr, Healthy: t.Healthy})
			}
		}
		rs.Zones = append(rs.Zones, out)
	}
	return rs
}

func (r *resource) autoshiftMode() string {
	as := r.cfg.Autoshift
	switch {
	case !as.Enabled:
		return "disabled"
	case as.DryRun:
		return "dry_run"
	case as.Approval:
		return "approval"
	}
	return "enabled"
}

// Alarms implements api.Backend.
func (s *Service) Alarms(ctx context.Context, name string) ([]api.Alarm, error) {
	out := []api.Alarm{}
	for _, r := range s.resources {
		if name != "" && r.cfg.Name != name {
			continue
		}
		for _, al := range r.ctrl.View().Assessment.Alarms.All() {
			out = append(out, api.Alarm{Resource: r.cfg.Name, Name: al.Name, State: string(al.State), Reason: al.Reason.String()})
		}
	}
	if name != "" {
		if _, err := s.resource(name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Shifts implements api.Backend.
func (s *Service) Shifts(ctx context.Context, f shift.ListFilter) ([]shift.Shift, error) {
	out := s.shifts.List(f)
	if out == nil {
		out = []shift.Shift{}
	}
	return out, nil
}

// Shift implements api.Backend.
func (s *Service) Shift(ctx context.Context, id string) (shift.Shift, error) { return s.shifts.Get(id) }

// StartShift implements api.Backend: a manual (or API) shift, applied to the
// front door at once.
func (s *Service) StartShift(ctx context.Context, req shift.StartRequest) (shift.Shift, error) {
	if req.Origin == "" {
		req.Origin = shift.Manual
	}
	if req.Origin == shift.Auto {
		return shift.Shift{}, fmt.Errorf("origin auto is reserved for autoshift: %w", shift.ErrInvalid)
	}
	if r := s.byName[req.Resource]; r != nil {
		// With ARC, decide on ARC's current view: a shift started or ended
		// there since the last pass counts (a failure is audited; the
		// book as it stands decides).
		_ = r.syncARC(ctx)
	}
	now := s.clock.Now()
	sh, err := s.shifts.Start(now, req)
	if err != nil {
		return sh, err
	}
	r := s.byName[sh.Resource]
	if r != nil {
		r.reconcile(ctx, now)
	}
	s.audit(ctx, store.AuditEntry{At: now, Kind: "shift_started", Resource: sh.Resource, Zone: sh.AwayFrom, Actor: sh.StartedBy,
		Message: fmt.Sprintf("%s shift %s away from %s until %s: %s", sh.Origin, sh.ID, sh.AwayFrom, sh.ExpiresAt.Format(time.RFC3339), sh.Comment)})
	if r != nil {
		// With ARC as the front door, the shift holds once ARC took it. A
		// refusal ended it (and is in the audit log): the caller gets it.
		// Unreachable ARC: the shift is recorded and the mirror keeps trying.
		if perr := r.pushed(ctx, sh.ID); errors.Is(perr, shift.ErrConflict) || errors.Is(perr, shift.ErrInvalid) {
			return shift.Shift{}, perr
		}
		sh, _ = s.shifts.Get(sh.ID)
	}
	return sh, nil
}

// UpdateShift implements api.Backend.
func (s *Service) UpdateShift(ctx context.Context, id string, req shift.UpdateRequest) (shift.Shift, error) {
	now := s.clock.Now()
	sh, err := s.shifts.Update(now, id, req)
	if err != nil {
		return sh, err
	}
	if r := s.byName[sh.Resource]; r != nil {
		_ = r.syncARC(ctx) // a failure is audited by the mirror, which retries
	}
	s.audit(ctx, store.AuditEntry{At: now, Kind: "shift_updated", Resource: sh.Resource, Zone: sh.AwayFrom, Actor: req.By,
		Message: fmt.Sprintf("shift %s now expires %s; comment %q", sh.ID, sh.ExpiresAt.Format(time.RFC3339), sh.Comment)})
	return sh, nil
}

// CancelShift implements api.Backend.
func (s *Service) CancelShift(ctx context.Context, id, by string) (shift.Shift, error) {
	now := s.clock.Now()
	sh, err := s.shifts.Cancel(now, id, by)
	if err != nil {
		return sh, err
	}
	if r := s.byName[sh.Resource]; r != nil {
		r.reconcile(ctx, now)
		_ = r.syncARC(ctx) // a failure is audited by the mirror, which retries
	}
	s.audit(ctx, store.AuditEntry{At: now, Kind: "shift_canceled", Resource: sh.Resource, Zone: sh.AwayFrom, Actor: by,
		Message: fmt.Sprintf("%s shift %s away from %s canceled", sh.Origin, sh.ID, sh.AwayFrom)})
	return sh, nil
}

// Audit implements api.Backend.
func (s *Service) Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	out, err := s.db.Audit(ctx, q)
	if out == nil && err == nil {
		out = []store.AuditEntry{}
	}
	return out, err
}

// Practices implements api.Backend.
func (s *Service) Practices(ctx context.Context, name string, limit int) ([]store.PracticeRun, error) {
	out, err := s.db.Practices(ctx, name, limit)
	if out == nil && err == nil {
		out = []store.PracticeRun{}
	}
	return out, err
}

// Ingest implements api.Backend: single observations from the batch
// source, through the gate (its zone check, caps and buffer) like any other.
func (s *Service) Ingest(ctx context.Context, name string, obs []observation.Observation) error {
	return s.IngestAggregates(ctx, name, "batch", obs, nil)
}

// Decisions implements api.Backend.
func (s *Service) Decisions(ctx context.Context) ([]api.Decision, error) {
	out := []api.Decision{}
	for _, r := range s.resources {
		out = append(out, r.shownDecisions()...)
	}
	slices.SortFunc(out, func(a, b api.Decision) int { return b.At.Compare(a.At) })
	return out, nil
}

// Approve implements api.Backend.
func (s *Service) Approve(ctx context.Context, id, by string) (api.Decision, error) {
	for _, r := range s.resources {
		r.mu.Lock()
		d, ok := r.decisions[id]
		if ok {
			if d.Status != "pending" {
				r.mu.Unlock()
				return *d, fmt.Errorf("decision %s is %s, not pending: %w", id, d.Status, shift.ErrConflict)
			}
			d.Status, d.ApprovedBy = "approved", by
			out := *d
			r.mu.Unlock()
			s.audit(ctx, store.AuditEntry{Kind: "approved", Resource: r.cfg.Name, Zone: d.Zone, Actor: by,
				Message: fmt.Sprintf("decision %s to shift away from %s approved", id, d.Zone), Detail: jsonDetail(map[string]string{"decision_id": id})})
			return out, nil
		}
		r.mu.Unlock()
	}
	return api.Decision{}, fmt.Errorf("decision %q: %w", id, shift.ErrNotFound)
}
