package arc_test

import (
	"context"
	"testing"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/arc"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/lab/awsstandin"
)

// BenchmarkShiftAwayThroughARC is the data-plane cost of a shift through
// ARC against the stand-in on loopback: ListZonalShifts + StartZonalShift,
// each SigV4-signed by the SDK and verified by the stand-in (the end_shift
// that resets it between iterations is not timed).
func BenchmarkShiftAwayThroughARC(b *testing.B) {
	s := awsstandin.New(awsstandin.Options{Clock: clock.Real{}})
	if err := s.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.AddManagedResource(albARN, zones...)
	a := arc.Actuator{Client: arc.New(s.Config(), albARN), Owner: "bench"}
	ctx := context.Background()
	away := actuator.Action{Kind: actuator.ShiftAway, Resource: "web", Zone: "use2-az1"}
	end := actuator.Action{Kind: actuator.EndShift, Resource: "web", Zone: "use2-az1"}
	for b.Loop() {
		if err := a.Apply(ctx, away); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := a.Apply(ctx, end); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
