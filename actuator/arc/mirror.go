package arc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
)

// Book is what the Mirror needs of grayzone's shifts; *shift.Manager is one.
type Book interface {
	List(f shift.ListFilter) []shift.Shift
	Link(id, arcID string) (shift.Shift, error)
	Observe(now time.Time, s shift.Shift) (shift.Shift, bool, error)
	EndOutside(id string, status shift.Status, at time.Time, by string) (shift.Shift, error)
}

// Event is one thing the Mirror did or found, for the audit log.
type Event struct {
	Kind    string // shift_applied, shift_refused, shift_ended, shift_observed, arc_unreachable, arc_reachable
	ShiftID string // grayzone's
	Zone    string
	Msg     string
}

// Mirror keeps one resource's grayzone shifts and ARC's zonal shifts in
// step. It is level-triggered: each Reconcile reads ARC's list and the
// book, and makes the difference good, so a call lost to a crash, a timeout
// or an ARC outage is made by the next one.
//
//   - A grayzone shift that is active and not yet in ARC is started there
//     (or adopted, when ARC already holds it: its comment carries grayzone's
//     id, so a crash between the call and the write of the id is harmless).
//   - A grayzone shift that ended in grayzone is cancelled in ARC.
//   - A grayzone shift that ARC cancelled or expired is marked so.
//   - Every active shift that grayzone did not start is recorded as an
//     external shift (so every guard sees the zone as already shifted) and
//     is never changed or cancelled.
//
// Refusals that retrying cannot fix (conflict, validation, access denied,
// not found) end the grayzone shift with the refusal as the reason: one
// line, no retry loop. Transient failures are reported once and retried on
// the next Reconcile.
type Mirror struct {
	Client   *Client
	Resource string // grayzone's name of the resource
	Book     Book
	Report   func(Event) // nil: discard

	mu          sync.Mutex
	unreachable bool
}

// Reconcile brings ARC and the book into step as of now.
func (m *Mirror) Reconcile(ctx context.Context, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	arcs, err := m.Client.List(ctx)
	if err != nil {
		m.transient(err)
		return err
	}
	byID := map[string]Shift{}
	for _, a := range arcs {
		byID[a.ID] = a
	}
	mine := m.Book.List(shift.ListFilter{Resource: m.Resource})
	ours := map[string]bool{} // ARC ids carrying grayzone's own shifts
	for _, s := range mine {
		if s.Origin != shift.External && s.ARCZonalShiftID != "" {
			ours[s.ARCZonalShiftID] = true
		}
	}
	var errs []error
	for _, s := range mine {
		if s.Origin == shift.External {
			continue
		}
		if err := m.own(ctx, now, s, arcs, byID, ours); err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.external(now, mine, arcs, ours); err != nil {
		errs = append(errs, err)
	}
	err = errors.Join(errs...)
	if err == nil || Permanent(err) {
		m.reachable()
	}
	return err
}

// own reconciles one of grayzone's shifts.
func (m *Mirror) own(ctx context.Context, now time.Time, s shift.Shift, arcs []Shift, byID map[string]Shift, ours map[string]bool) error {
	if s.ARCZonalShiftID == "" {
		if s.Status != shift.Active {
			return nil // ended before ARC ever held it
		}
		for _, a := range arcs {
			if Owner(a.Comment) == s.ID && a.Status == "ACTIVE" {
				if _, err := m.Book.Link(s.ID, a.ID); err != nil {
					return err
				}
				ours[a.ID] = true
				m.report(Event{Kind: "shift_applied", ShiftID: s.ID, Zone: s.AwayFrom,
					Msg: fmt.Sprintf("shift %s is ARC zonal shift %s (found in ARC after a restart)", s.ID, a.ID)})
				return nil
			}
		}
		left := s.ExpiresAt.Sub(now)
		if left < MinExpiresIn {
			left = MinExpiresIn
		}
		a, err := m.Client.Start(ctx, s.AwayFrom, left.Round(time.Minute), Comment(s.ID, s.Comment))
		if err != nil {
			if Permanent(err) {
				if _, e := m.Book.EndOutside(s.ID, shift.Canceled, now, "arc: "+err.Error()); e != nil {
					return e
				}
				m.report(Event{Kind: "shift_refused", ShiftID: s.ID, Zone: s.AwayFrom,
					Msg: fmt.Sprintf("shift %s away from %s not applied: %v", s.ID, s.AwayFrom, err)})
			} else {
				m.transient(err)
			}
			return err
		}
		if _, err := m.Book.Link(s.ID, a.ID); err != nil {
			return err
		}
		ours[a.ID] = true
		m.report(Event{Kind: "shift_applied", ShiftID: s.ID, Zone: s.AwayFrom,
			Msg: fmt.Sprintf("shift %s is ARC zonal shift %s away from %s until %s", s.ID, a.ID, a.AwayFrom, a.Expiry.UTC().Format(time.RFC3339))})
		return nil
	}
	a, found := byID[s.ARCZonalShiftID]
	switch {
	case s.Status == shift.Active && found && a.Status == "ACTIVE":
		// grayzone's expiry moved (an update, or the call was lost): ARC follows.
		if d := a.Expiry.Sub(s.ExpiresAt); (d > time.Minute || d < -time.Minute) && s.ExpiresAt.Sub(now) >= MinExpiresIn {
			left := s.ExpiresAt.Sub(now).Round(time.Minute)
			comment := Comment(s.ID, s.Comment)
			if _, err := m.Client.Update(ctx, a.ID, &left, &comment); err != nil {
				if !Permanent(err) {
					m.transient(err)
				}
				return err
			}
		}
	case s.Status == shift.Active:
		status, at, why := shift.Canceled, now, "arc: cancelled in ARC, outside grayzone"
		switch {
		case !found:
			why = "arc: ARC no longer lists zonal shift " + s.ARCZonalShiftID
		case a.Status == "EXPIRED":
			status, at, why = shift.Expired, a.Expiry, "arc: expired in ARC at "+a.Expiry.UTC().Format(time.RFC3339)
		}
		if _, err := m.Book.EndOutside(s.ID, status, at, why); err != nil {
			return err
		}
		m.report(Event{Kind: "shift_ended", ShiftID: s.ID, Zone: s.AwayFrom,
			Msg: fmt.Sprintf("shift %s away from %s is %s: %s", s.ID, s.AwayFrom, status, why)})
	case found && a.Status == "ACTIVE":
		// Ended in grayzone, still active in ARC: grayzone started it, so it ends it.
		if err := m.Client.Cancel(ctx, a.ID); err != nil {
			if !Permanent(err) {
				m.transient(err)
			}
			return err
		}
		m.report(Event{Kind: "shift_applied", ShiftID: s.ID, Zone: s.AwayFrom,
			Msg: fmt.Sprintf("ARC zonal shift %s (grayzone shift %s) cancelled", a.ID, s.ID)})
	}
	return nil
}

// ExternalID is grayzone's id for an ARC zonal shift it did not start.
func ExternalID(arcID string) string { return "arc-" + arcID }

// external records the shifts grayzone did not start, and their ends.
func (m *Mirror) external(now time.Time, mine []shift.Shift, arcs []Shift, ours map[string]bool) error {
	var errs []error
	seen := map[string]bool{}
	for _, a := range arcs {
		if ours[a.ID] || a.Status != "ACTIVE" {
			continue
		}
		seen[ExternalID(a.ID)] = true
		sh := shift.Shift{ID: ExternalID(a.ID), Resource: m.Resource, AwayFrom: a.AwayFrom, Status: shift.Active, Origin: shift.External,
			Comment: a.Comment, StartedBy: "arc:" + a.Type, Reason: "started outside grayzone (ARC " + a.Type + ")",
			StartedAt: a.StartTime, ExpiresAt: a.Expiry, ARCZonalShiftID: a.ID}
		_, changed, err := m.Book.Observe(now, sh)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		isNew := true
		for _, s := range mine {
			if s.ID == sh.ID {
				isNew = false
			}
		}
		if changed && isNew {
			m.report(Event{Kind: "shift_observed", ShiftID: sh.ID, Zone: a.AwayFrom,
				Msg: fmt.Sprintf("ARC %s %s away from %s was started outside grayzone (until %s): it counts as the zone already shifted; grayzone will not change or end it",
					a.Type, a.ID, a.AwayFrom, a.Expiry.UTC().Format(time.RFC3339))})
		}
	}
	byID := map[string]Shift{}
	for _, a := range arcs {
		byID[a.ID] = a
	}
	for _, s := range mine {
		if s.Origin != shift.External || s.Status != shift.Active || seen[s.ID] {
			continue
		}
		a, found := byID[s.ARCZonalShiftID]
		status, at, why := shift.Canceled, now, "arc: cancelled in ARC"
		if found && a.Status == "EXPIRED" {
			status, at, why = shift.Expired, a.Expiry, "arc: expired in ARC at "+a.Expiry.UTC().Format(time.RFC3339)
		} else if !found {
			why = "arc: ARC no longer lists it"
		}
		if _, err := m.Book.EndOutside(s.ID, status, at, why); err != nil {
			errs = append(errs, err)
			continue
		}
		m.report(Event{Kind: "shift_ended", ShiftID: s.ID, Zone: s.AwayFrom, Msg: fmt.Sprintf("external shift %s away from %s is %s: %s", s.ID, s.AwayFrom, status, why)})
	}
	return errors.Join(errs...)
}

// transient reports an unreachable or failing ARC once, until it answers again.
func (m *Mirror) transient(err error) {
	if m.unreachable {
		return
	}
	m.unreachable = true
	m.report(Event{Kind: "arc_unreachable", Msg: fmt.Sprintf("%v; grayzone keeps its shifts and retries", err)})
}

func (m *Mirror) reachable() {
	if m.unreachable {
		m.unreachable = false
		m.report(Event{Kind: "arc_reachable", Msg: "ARC answers again"})
	}
}

func (m *Mirror) report(e Event) {
	if m.Report != nil {
		m.Report(e)
	}
}
