package shift

import (
	"errors"
	"testing"
	"time"
)

// A shift started outside grayzone is recorded as a fact: it blocks a
// second shift like any other, grayzone refuses to change or end it, and it
// ends when its owner ends it.
func TestExternalShifts(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m, err := NewManager([]Resource{{Name: "web", Zones: []string{"z1", "z2"}}}, NewMemoryStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ext := Shift{ID: "arc-1", Resource: "web", AwayFrom: "z2", Status: Active, Origin: External, StartedBy: "arc:ZONAL_AUTOSHIFT",
		StartedAt: t0, ExpiresAt: t0.Add(time.Hour), ARCZonalShiftID: "1"}
	if _, changed, err := m.Observe(t0, ext); err != nil || !changed {
		t.Fatalf("observe: %v %v", changed, err)
	}
	if _, changed, err := m.Observe(t0.Add(time.Second), ext); err != nil || changed {
		t.Fatalf("observing the same shift again changed it: %v %v", changed, err)
	}
	if _, err := m.Start(t0, StartRequest{Resource: "web", AwayFrom: "z1", ExpiresIn: time.Hour}); !errors.Is(err, ErrConflict) {
		t.Fatalf("start over an external shift: %v", err)
	}
	if _, err := m.Cancel(t0, "arc-1", "op"); !errors.Is(err, ErrConflict) {
		t.Fatalf("cancel of an external shift: %v", err)
	}
	d := time.Hour
	if _, err := m.Update(t0, "arc-1", UpdateRequest{ExpiresIn: &d}); !errors.Is(err, ErrConflict) {
		t.Fatalf("update of an external shift: %v", err)
	}
	if _, _, err := m.Observe(t0, Shift{ID: "x", Origin: Manual}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("observe of a non-external shift: %v", err)
	}
	end := t0.Add(10 * time.Minute)
	got, err := m.EndOutside("arc-1", Canceled, end, "arc: cancelled in ARC")
	if err != nil || got.Status != Canceled || !got.EndedAt.Equal(end) || got.EndedBy != "arc: cancelled in ARC" {
		t.Fatalf("end: %+v %v", got, err)
	}
	sh, err := m.Start(end, StartRequest{Resource: "web", AwayFrom: "z1", ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Link(sh.ID, "arc-zs-2"); err != nil || got.ARCZonalShiftID != "arc-zs-2" {
		t.Fatalf("link: %+v %v", got, err)
	}
	if _, _, err := m.Observe(end, Shift{ID: sh.ID, Origin: External}); !errors.Is(err, ErrConflict) {
		t.Fatalf("observe over grayzone's own shift: %v", err)
	}
}
