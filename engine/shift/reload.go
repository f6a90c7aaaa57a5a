package shift

import (
	"context"
	"fmt"
)

// Reload replaces the manager's shifts with the store's: a replica that
// follows another keeps its view current with it, and one that becomes
// leader starts from what the last leader saved.
func (m *Manager) Reload(ctx context.Context) error {
	return m.ReloadWhere(ctx, nil)
}

// ReloadWhere replaces the shifts of the resources which says (all, when
// nil) with the store's, and keeps the others as they are: a replica that
// shares the resources with others reloads those it follows every tick, and
// one when it comes to lead it, without touching the ones it leads.
func (m *Manager) ReloadWhere(ctx context.Context, which func(resource string) bool) error {
	loaded, err := m.store.LoadShifts(ctx)
	if err != nil {
		return fmt.Errorf("shift: reload shifts: %w", err)
	}
	in := func(resource string) bool { return which == nil || which(resource) }
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.busy) > 0 { // a write in flight commits first, not into the new view
		m.idle.Wait()
	}
	shifts := make(map[string]Shift, len(loaded))
	for id, s := range m.shifts {
		if !in(s.Resource) {
			shifts[id] = s
		}
	}
	for _, s := range loaded {
		if in(s.Resource) {
			shifts[s.ID] = s.normalized()
		}
	}
	m.shifts, m.active = shifts, make(map[string]struct{})
	for id, s := range shifts {
		if s.Status == Active {
			m.active[id] = struct{}{}
		}
	}
	for id := range m.unsaved {
		if s, ok := shifts[id]; !ok || in(s.Resource) {
			delete(m.unsaved, id)
		}
	}
	kept := m.unreported[:0]
	for _, s := range m.unreported {
		if !in(s.Resource) {
			kept = append(kept, s)
		}
	}
	m.unreported = kept
	return nil
}

// SetOwner limits expiry to the resources owns says this manager changes
// (nil: all). See Manager.owns.
func (m *Manager) SetOwner(owns func(resource string) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.owns = owns
}
