package remote

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/actuator/xds"
)

// `grayzone frontdoor` honours a gradual return: the weight serve publishes
// over xDS reaches the table (the zone still shifted, at its weight), is
// kept in the saved state, and the shift's expiry ends it.
func TestWeightFromXDSServer(t *testing.T) {
	srv, err := xds.New(xds.Options{Listen: "127.0.0.1:0", Log: slog.New(slog.DiscardHandler), Resources: []xds.Resource{{
		Name: "web", Zones: []string{"za", "zb"},
		Targets: []xds.Target{{ID: "a1", Zone: "za", Addr: "127.0.0.1:1"}, {ID: "b1", Zone: "zb", Addr: "127.0.0.1:2"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Run(ctx)
	exp := t0.Add(time.Hour)
	if err := srv.Shift(ctx, "web", "zb", true, exp); err != nil {
		t.Fatal(err)
	}
	if err := srv.Weigh(ctx, "web", "zb", 25); err != nil {
		t.Fatal(err)
	}
	got := make(chan State, 4)
	go xds.Watch(ctx, srv.Addr(), nil, "t", map[string][]string{resource.EndpointType: {"web", "web.za", "web.zb"}}, func(u xds.Update) error {
		clas := map[string]*endpoint.ClusterLoadAssignment{}
		for n, m := range u.Resources {
			clas[n] = m.(*endpoint.ClusterLoadAssignment)
		}
		if st, err := FromAssignments("web", []string{"za", "zb"}, clas, t0); err == nil {
			got <- st
		}
		return nil
	})
	var st State
	select {
	case st = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no state within 10 s")
	}
	if !st.Shifted["zb"].Equal(exp) || st.Weights["zb"] != 25 || len(st.Shifted) != 1 {
		t.Fatalf("state: %+v, want zb shifted until %s at 25 %%", st, exp)
	}
	table := frontdoor.NewTable([]string{"za", "zb"}, frontdoor.DefaultHealthPolicy)
	if err := st.Apply(table, t0); err != nil {
		t.Fatal(err)
	}
	if !table.Shifted("zb") || table.Weight("zb") != 25 {
		t.Fatalf("table: zb shifted %v at %d %%, want shifted at 25 %%", table.Shifted("zb"), table.Weight("zb"))
	}
	n := map[string]int{}
	s := table.Snapshot()
	for range 125 { // whole cycles of 5 (za 4, zb 1)
		n[s.PickRegional().Zone]++
	}
	if n["zb"] != 25 || n["za"] != 100 {
		t.Fatalf("regional picks %v, want zb 25 of 125", n)
	}
	path := filepath.Join(t.TempDir(), "state.json")
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	if back, _, err := Load(path, "web"); err != nil || back.Weights["zb"] != 25 || back.String() != st.String() {
		t.Fatalf("load: %+v %v", back, err)
	}
	if err := st.Apply(table, exp); err != nil {
		t.Fatal(err)
	}
	if table.Shifted("zb") || table.Weight("zb") != 0 {
		t.Fatal("at its expiry the shift, and its weight, are over")
	}
}
