package frontdoor

import (
	"errors"
	"testing"
)

func TestSetShiftedFencedRefusesADeposedLeader(t *testing.T) {
	tb := NewTable([]string{"az1", "az2"}, HealthPolicy{})
	if err := tb.SetShiftedFenced("az1", true, 5); err != nil || !tb.Shifted("az1") {
		t.Fatalf("epoch 5's shift: %v shifted=%v", err, tb.Shifted("az1"))
	}
	// The deposed leader of epoch 4 tries to end it: refused, nothing changes.
	if err := tb.SetShiftedFenced("az1", false, 4); !errors.Is(err, ErrStaleFence) || !tb.Shifted("az1") {
		t.Fatalf("epoch 4's order: %v shifted=%v, want refused and still shifted", err, tb.Shifted("az1"))
	}
	// The same or a newer epoch is obeyed.
	if err := tb.SetShiftedFenced("az2", false, 5); err != nil {
		t.Fatal(err)
	}
	if err := tb.SetShiftedFenced("az1", false, 6); err != nil || tb.Shifted("az1") || tb.Fence() != 6 {
		t.Fatalf("epoch 6's order: %v shifted=%v fence=%d", err, tb.Shifted("az1"), tb.Fence())
	}
	if err := tb.SetShiftedFenced("nope", true, 7); err == nil {
		t.Fatal("unknown zone accepted")
	}
}
