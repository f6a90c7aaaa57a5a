package shift

import (
	"context"
	"fmt"
)

// Reload replaces the manager's shifts with the store's: a replica that
// follows another keeps its view current with it, and one that becomes
// leader starts from what the last leader saved.
func (m *Manager) Reload(ctx context.Context) error {
	loaded, err := m.store.LoadShifts(ctx)
	if err != nil {
		return fmt.Errorf("shift: reload shifts: %w", err)
	}
	shifts := make(map[string]Shift, len(loaded))
	for _, s := range loaded {
		shifts[s.ID] = s.normalized()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.busy) > 0 { // a write in flight commits first, not into the new view
		m.idle.Wait()
	}
	m.shifts = shifts
	m.unsaved = make(map[string]bool)
	m.unreported = nil
	return nil
}
