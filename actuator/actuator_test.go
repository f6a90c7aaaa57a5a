package actuator

import (
	"context"
	"errors"
	"testing"
)

func TestKindDataPlane(t *testing.T) {
	for k, want := range map[Kind]bool{
		ShiftAway: true, EndShift: true,
		ExcludeZone: false, IncludeZone: false, RemoveExtra: false,
	} {
		if got := k.DataPlane(); got != want {
			t.Errorf("%s.DataPlane() = %v, want %v", k, got, want)
		}
	}
}

func TestActionString(t *testing.T) {
	if got, want := (Action{Kind: ShiftAway, Resource: "app", Zone: "az1"}).String(), "shift_away app/az1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestPlanesRoutesByKind(t *testing.T) {
	var data, control []Kind
	p := Planes{
		Data:    Func(func(_ context.Context, a Action) error { data = append(data, a.Kind); return nil }),
		Control: Func(func(_ context.Context, a Action) error { control = append(control, a.Kind); return nil }),
	}
	for _, k := range []Kind{ShiftAway, ExcludeZone, IncludeZone, EndShift, RemoveExtra} {
		if err := p.Apply(context.Background(), Action{Kind: k, Zone: "az1"}); err != nil {
			t.Fatal(err)
		}
	}
	if len(data) != 2 || data[0] != ShiftAway || data[1] != EndShift {
		t.Errorf("data plane got %v", data)
	}
	if len(control) != 3 || control[0] != ExcludeZone || control[1] != IncludeZone || control[2] != RemoveExtra {
		t.Errorf("control plane got %v", control)
	}
}

func TestPlanesMissingPlaneIsUnsupported(t *testing.T) {
	boom := errors.New("boom")
	p := Planes{Data: Func(func(context.Context, Action) error { return boom })}
	if err := p.Apply(context.Background(), Action{Kind: ExcludeZone, Zone: "az1"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("control action with no control plane = %v, want ErrUnsupported", err)
	}
	if err := p.Apply(context.Background(), Action{Kind: ShiftAway, Zone: "az1"}); !errors.Is(err, boom) {
		t.Errorf("data plane error not passed through: %v", err)
	}
	if err := (Planes{}).Apply(context.Background(), Action{Kind: ShiftAway}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("data action with no data plane = %v, want ErrUnsupported", err)
	}
}
