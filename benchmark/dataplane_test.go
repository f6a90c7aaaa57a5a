package benchmark

import (
	"context"
	"testing"
)

// A few shifts through the in-process data planes: the harness measures
// (every shift completes, none fails), not how fast.
func TestDataplaneHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real proxies")
	}
	res, err := RunDataplane(context.Background(), DataplaneOptions{Planes: []string{PlaneEmbedded, PlaneHAProxy, PlaneHAProxyEpoch, PlaneXDS}, Shifts: 3})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range res {
		if r.Shifts != 3 || r.Failed != 0 || r.Requests == 0 || r.ShiftP99ms < r.ShiftP50ms || r.UnshiftP50ms <= 0 {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if _, ok := res[PlaneEmbedded]; !ok {
		t.Error("embedded missing")
	}
	if _, ok := res[PlaneXDS]; !ok {
		t.Error("xds_grpc missing")
	}
}
