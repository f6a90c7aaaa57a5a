package resource

import (
	"context"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// New hands the detector's thresholds to the gate (the one place slow is
// resolved), builds the recorder only for a front door of grayzone's own,
// plans no control-plane step without a control plane, and Reconcile makes
// the table follow the shift model, then tells the external plane.
func TestNewAssemblesOneResource(t *testing.T) {
	var away string
	a, err := New(Config{Name: "web", Zones: zones, Record: true,
		Detect:     detect.Config{Zones: zones, Thresholds: map[string]time.Duration{"ride": 50 * time.Millisecond}},
		Now:        func() time.Time { return t0 },
		Reconciled: func(_ context.Context, z string, _ time.Time, _ int) { away = z }})
	if err != nil {
		t.Fatal(err)
	}
	if a.Recorder == nil || a.Intake.FrontDoor != a.Recorder {
		t.Fatal("Record: no recorder feeding the intake")
	}
	if !a.Policy().NoControlPlane || a.Policy().Resource != "web" {
		t.Errorf("policy %+v: want the resource's name and no control plane", a.Policy())
	}
	o := observation.Observation{At: t0, Source: observation.Server, Zone: "z1", Instance: "z1-1", Operation: "ride", Latency: 80 * time.Millisecond}
	if err := a.Intake.OfferObservation(SourceCanary, o); err != nil {
		t.Fatal(err)
	}
	var got []record.Aggregate
	a.Gate.Drain(t0, 0, func(b []record.Aggregate) { got = append(got, b...) })
	if len(got) != 1 || got[0].Slow != 1 {
		t.Fatalf("drained %+v: want 80 ms counted slow against ride's 50 ms", got)
	}
	if _, err := a.Shifts.Start(t0, shift.StartRequest{Resource: "web", AwayFrom: "z2", ExpiresIn: time.Hour}); err != nil {
		t.Fatal(err)
	}
	a.Reconcile(context.Background(), t0)
	if !a.Table.Shifted("z2") || a.Table.Shifted("z1") || away != "z2" {
		t.Errorf("after reconcile: z2 shifted %v, z1 %v, external plane told %q", a.Table.Shifted("z2"), a.Table.Shifted("z1"), away)
	}

	b, err := New(Config{Name: "api", Zones: zones, Detect: detect.Config{Zones: zones}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Recorder != nil || b.Intake.FrontDoor != nil {
		t.Error("without Record: a recorder")
	}
}
