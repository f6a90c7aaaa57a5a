package operation

import (
	"math"
	"slices"
	"testing"
)

func TestCatalog(t *testing.T) {
	if got := Names(); !slices.Equal(got, []string{"ride", "pay", "signin", "home"}) {
		t.Fatalf("Names() = %v: the order is part of sim mode's determinism", got)
	}
	sum := 0.0
	for _, op := range Catalog {
		if op.Threshold <= 0 || op.DefaultMix <= 0 {
			t.Errorf("%s: threshold %v mix %v", op.Name, op.Threshold, op.DefaultMix)
		}
		sum += op.DefaultMix
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Errorf("default mix sums to %v, want 1", sum)
	}
	// ride and pay query the database; signin and home never do: that split
	// is what makes a database-link fault gray.
	for name, db := range map[string]bool{"ride": true, "pay": true, "signin": false, "home": false} {
		op, ok := Lookup(name)
		if !ok || op.Name != name || op.UsesDB != db {
			t.Errorf("Lookup(%q) = %+v, %v", name, op, ok)
		}
	}
	if op, ok := Lookup("checkout"); ok || op != (Operation{}) {
		t.Errorf("Lookup(checkout) = %+v, %v", op, ok)
	}
	// Names returns a copy.
	n := Names()
	n[0] = "x"
	if Names()[0] != "ride" {
		t.Error("Names() shares its slice")
	}
}
