package xds

import (
	"context"
	"testing"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/grayzone/grayzone/actuator"
)

// A gradual return over xDS: the shifted zone's locality is back in the
// regional assignment at w % of a full zone's weight, its zonal assignment
// says so in the metadata (for grayzone's own front door), and 0 takes the
// locality out again; the end of the shift resets the weight.
func TestWeightIsServedAsLocalityWeight(t *testing.T) {
	l := startZones(t, "za", "zb")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	updates := make(chan Update, 16)
	go Watch(ctx, l.xds.Addr(), nil, "weights", map[string][]string{
		resource.EndpointType: {"web", "web.za", "web.zb"},
	}, func(u Update) error { updates <- u; return nil })
	next := func() map[string]*endpoint.ClusterLoadAssignment {
		t.Helper()
		select {
		case u := <-updates:
			out := map[string]*endpoint.ClusterLoadAssignment{}
			for n, r := range u.Resources {
				out[n] = r.(*endpoint.ClusterLoadAssignment)
			}
			return out
		case <-time.After(10 * time.Second):
			t.Fatal("no update within 10 s")
		}
		return nil
	}
	localities := func(cla *endpoint.ClusterLoadAssignment) map[string]uint32 {
		out := map[string]uint32{}
		for _, e := range cla.GetEndpoints() {
			out[e.GetLocality().GetZone()] = e.GetLoadBalancingWeight().GetValue()
		}
		return out
	}
	next()
	var w actuator.Weigher = l.xds
	if err := w.SetWeight(ctx, "zb", 25); err != nil { // not shifted: ignored
		t.Fatal(err)
	}
	if err := l.xds.Shift(ctx, "web", "zb", true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := localities(next()["web"]); len(got) != 1 || got["za"] != 2 {
		t.Fatalf("shifted: regional localities %v, want za alone", got)
	}
	if err := w.SetWeight(ctx, "zb", 25); err != nil {
		t.Fatal(err)
	}
	clas := next()
	if got := localities(clas["web"]); got["za"] != 200 || got["zb"] != 50 {
		t.Fatalf("at 25 %%: regional localities %v, want za 200 (2 endpoints × 100), zb 50 (2 × 25)", got)
	}
	md := clas["web.zb"].GetEndpoints()[0].GetLbEndpoints()[0].GetMetadata().GetFilterMetadata()[MetadataKey]
	if md.GetFields()["shifted"].GetBoolValue() != true || md.GetFields()["weight"].GetNumberValue() != 25 {
		t.Fatalf("zonal metadata at 25 %%: %v", md)
	}
	if err := l.xds.Apply(ctx, actuator.Action{Kind: actuator.SetWeight, Resource: "web", Zone: "zb", Weight: 0}); err != nil {
		t.Fatal(err)
	}
	if got := localities(next()["web"]); len(got) != 1 || got["za"] != 2 {
		t.Fatalf("back to 0: regional localities %v, want za alone", got)
	}
	if err := w.SetWeight(ctx, "zb", 101); err == nil {
		t.Error("weight 101: no error")
	}
	_ = w.SetWeight(ctx, "zb", 5)
	next()
	if err := l.xds.Shift(ctx, "web", "zb", false, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := localities(next()["web"]); got["za"] != 2 || got["zb"] != 2 {
		t.Fatalf("after the shift: regional localities %v, want both at 2", got)
	}
}

// A real xDS client honours the weights: proxyless gRPC picks localities by
// weight (at random), so zb at 25 % of za's weight takes about 20 % of the
// RPCs. The bound is five standard deviations of the binomial: a false
// failure is about one in a million.
func TestProxylessGRPCHonoursLocalityWeight(t *testing.T) {
	l := startZones(t, "za", "zb")
	c := l.dial(t, "web")
	ctx := context.Background()
	l.reachAll(t, c, "za", "zb")
	if err := l.xds.Shift(ctx, "web", "zb", true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	l.until(t, c, "shift", func(z string) bool { return z == "za" })
	if err := l.xds.SetWeight(ctx, "zb", 25); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); l.zoneOfRPC(t, c) != "zb"; {
		if time.Now().After(deadline) {
			t.Fatal("zb at 25 %: no RPC within 10 s")
		}
	}
	n := 600
	got := l.spread(t, c, n)
	// p = 50/250; sd = sqrt(600·0.2·0.8) ≈ 9.8.
	if got["zb"] < 120-49 || got["zb"] > 120+49 {
		t.Fatalf("zb at 25 %% got %d of %d RPCs, want 120 ± 49 (%v)", got["zb"], n, got)
	}
}
