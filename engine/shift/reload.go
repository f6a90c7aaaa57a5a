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
	m.mu.Lock()
	defer m.mu.Unlock()
	m.replaceLocked(loaded, which)
	return nil
}

// Follow keeps the shifts of the resources which says (all, when nil)
// current with the store's, for a replica that follows them, every tick.
// With a SinceStore it reads only the shifts saved since its last read
// (after Refollow, or the first time, all of them); else it is ReloadWhere.
func (m *Manager) Follow(ctx context.Context, which func(resource string) bool) error {
	ss, ok := m.store.(SinceStore)
	if !ok {
		return m.ReloadWhere(ctx, which)
	}
	m.mu.Lock()
	after := m.seen
	m.mu.Unlock()
	loaded, top, err := ss.LoadShiftsSince(ctx, after)
	if err != nil {
		return fmt.Errorf("shift: read changed shifts: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen != after { // a Refollow meanwhile: this read may be short of it
		return nil
	}
	m.seen = top
	if after == 0 {
		m.replaceLocked(loaded, which)
		return nil
	}
	for len(m.busy) > 0 {
		m.idle.Wait()
	}
	for _, s := range loaded {
		if which != nil && !which(s.Resource) {
			continue
		}
		m.keep(s.normalized()) // the active index follows the change
		delete(m.unsaved, s.ID)
		m.dropUnreportedLocked(func(u Shift) bool { return u.ID == s.ID })
	}
	return nil
}

// Refollow makes the next Follow read every shift again: a replica calls
// it when it stops leading a resource, whose shifts others may have saved
// under versions its reads have passed while it led it.
func (m *Manager) Refollow() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = 0
}

// replaceLocked replaces the shifts of the resources which says (all, when
// nil) with loaded, keeping the others.
func (m *Manager) replaceLocked(loaded []Shift, which func(resource string) bool) {
	in := func(resource string) bool { return which == nil || which(resource) }
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
	m.dropUnreportedLocked(func(s Shift) bool { return in(s.Resource) })
}

// dropUnreportedLocked forgets the unreported expiries drop says.
func (m *Manager) dropUnreportedLocked(drop func(Shift) bool) {
	kept := m.unreported[:0]
	for _, s := range m.unreported {
		if !drop(s) {
			kept = append(kept, s)
		}
	}
	m.unreported = kept
}

// SetOwner limits expiry to the resources owns says this manager changes
// (nil: all). See Manager.owns.
func (m *Manager) SetOwner(owns func(resource string) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.owns = owns
}
