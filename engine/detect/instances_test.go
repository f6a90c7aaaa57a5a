package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// Instances that come and go (a deployment replacing them every few
// minutes) are forgotten ten minutes of instanceActive after their last
// request, by the engine and the detector alike, and their indexes reused:
// memory stays bounded over hours. One that comes back is followed afresh.
func TestInstancesChurnStaysBounded(t *testing.T) {
	e, err := New(Config{Zones: zones3})
	if err != nil {
		t.Fatal(err)
	}
	f := e.det.(*defaultProfile)
	feed := func(sec int, inst string) {
		for _, z := range zones3 {
			e.ObserveAggregate(record.Aggregate{At: t0.Add(time.Duration(sec) * time.Second),
				Key:      record.SeriesKey{Source: observation.Server, Zone: z, Instance: z + "-" + inst, Operation: "ride"},
				Requests: 3, Latency: []record.Bucket{{Index: 40, Count: 3}}})
		}
	}
	const hours = 3
	for sec := 0; sec < hours*3600; sec++ {
		gen := sec / 120 // a new pair of instances every two minutes
		feed(sec, fmt.Sprint(gen))
		feed(sec, fmt.Sprint(gen, "b"))
		e.Tick(t0.Add(time.Duration(sec+1) * time.Second))
	}
	gone := 10 * instanceActive
	// Alive: the instances of the last ~ten minutes and a bit (two per
	// generation of two minutes), per zone.
	maxLive := 2 * (int(gone/(2*time.Minute)) + 2)
	for zi, z := range zones3 {
		if n := len(e.insts.byZone[zi]); n == 0 || n > maxLive {
			t.Errorf("%s: %d instances interned, want 1..%d", z, n, maxLive)
		}
		if n, m := len(f.byZone[zi]), len(e.insts.byZone[zi]); n != m {
			t.Errorf("%s: detector follows %d instances, engine has %d", z, n, m)
		}
	}
	if n := len(e.insts.name); n > len(zones3)*(maxLive+2) {
		t.Errorf("%d instance indexes over %d h of churn: not reused", n, hours)
	}
	// Generation 0 comes back: a new instSeq, at its (reused) index.
	sec := hours * 3600
	feed(sec, "0")
	e.Tick(t0.Add(time.Duration(sec+2) * time.Second))
	i := e.insts.index(0, "az1-0")
	if is := f.inst[i]; is == nil || is.name != "az1-0" || is.lastSeen != e.index(t0.Add(time.Duration(sec)*time.Second)) {
		t.Errorf("returning instance not followed afresh: %+v", is)
	}
}
