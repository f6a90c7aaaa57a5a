package remote

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/actuator/xds"
)

// `grayzone frontdoor` honours a gradual return: the weight serve publishes
// over xDS reaches the table (the zone still shifted, at its weight), is
// kept in the saved state, and the shift's expiry ends it.
func TestWeightFromXDSServer(t *testing.T) {
	exp := t0.Add(time.Hour)
	st := stateFrom(t, xds.Resource{
		Name: "web", Zones: []string{"za", "zb"},
		Targets: []xds.Target{{ID: "a1", Zone: "za", Addr: "127.0.0.1:1"}, {ID: "b1", Zone: "zb", Addr: "127.0.0.1:2"}},
	}, func(ctx context.Context, srv *xds.Server) error {
		if err := srv.Shift(ctx, "web", "zb", true, exp); err != nil {
			return err
		}
		return srv.Weigh(ctx, "web", "zb", 25)
	})
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
