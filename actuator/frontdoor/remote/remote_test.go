package remote

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/actuator/xds"
	"github.com/grayzone/grayzone/internal/clock"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// stateFrom serves the resource over xDS, makes change on the server, and
// returns the first state read from a real ADS stream.
func stateFrom(t *testing.T, res xds.Resource, change func(context.Context, *xds.Server) error) State {
	t.Helper()
	srv, err := xds.New(xds.Options{Listen: "127.0.0.1:0", Log: slog.New(slog.DiscardHandler), Resources: []xds.Resource{res}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Run(ctx)
	if err := change(ctx, srv); err != nil {
		t.Fatal(err)
	}
	names := []string{res.Name}
	for _, z := range res.Zones {
		names = append(names, xds.ZonalName(res.Name, z))
	}
	got := make(chan State, 1)
	go xds.Watch(ctx, srv.Addr(), nil, "t", map[string][]string{resource.EndpointType: names}, func(u xds.Update) error {
		clas := map[string]*endpoint.ClusterLoadAssignment{}
		for n, m := range u.Resources {
			clas[n] = m.(*endpoint.ClusterLoadAssignment)
		}
		if st, err := FromAssignments(res.Name, res.Zones, clas, t0); err == nil {
			select {
			case got <- st:
			default:
			}
		}
		return nil
	})
	select {
	case st := <-got:
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("no state within 10 s")
	}
	return State{}
}

// The state read from what actuator/xds publishes, through a real ADS stream.
func TestStateFromXDSServer(t *testing.T) {
	exp := t0.Add(time.Hour)
	st := stateFrom(t, xds.Resource{
		Name: "web", Zones: []string{"za", "zb"},
		Targets: []xds.Target{{ID: "a1", Zone: "za", Addr: "127.0.0.1:1"}, {ID: "b1", Zone: "zb", Addr: "127.0.0.1:2"}, {ID: "b2", Zone: "zb", Addr: "127.0.0.1:3"}},
	}, func(ctx context.Context, srv *xds.Server) error {
		if err := srv.Shift(ctx, "web", "zb", true, exp); err != nil {
			return err
		}
		return srv.SetHealth(ctx, "web", "a1", false)
	})
	if !st.Shifted["zb"].Equal(exp) || len(st.Shifted) != 1 || len(st.Targets) != 3 {
		t.Fatalf("state: %+v", st)
	}
	for _, tg := range st.Targets {
		if tg.Healthy != (tg.ID != "a1") {
			t.Errorf("target %s healthy=%v", tg.ID, tg.Healthy)
		}
	}
	// Applied to a table: zb shifted until its expiry, a1 left out (unhealthy for serve).
	table := frontdoor.NewTable([]string{"za", "zb"}, frontdoor.DefaultHealthPolicy)
	if err := st.Apply(table, t0); err != nil {
		t.Fatal(err)
	}
	if !table.Shifted("zb") || len(table.Targets()) != 2 {
		t.Fatalf("table: shifted zb %v, targets %v", table.Shifted("zb"), table.Targets())
	}
	if err := st.Apply(table, exp); err != nil {
		t.Fatal(err)
	}
	if table.Shifted("zb") {
		t.Fatal("at its expiry the shift is over, serve or not")
	}
	// Saved and loaded intact.
	path := filepath.Join(t.TempDir(), "state.json")
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	back, ok, err := Load(path, "web")
	if err != nil || !ok || back.String() != st.String() || !back.Shifted["zb"].Equal(exp) {
		t.Fatalf("load: %+v %v %v", back, ok, err)
	}
	if _, _, err := Load(path, "api"); err == nil {
		t.Fatal("a state file of another resource must be refused")
	}
}

func TestConfigErrors(t *testing.T) {
	base := "resource: web\nxds: 127.0.0.1:18000\nstate_file: s.json\nregional: 127.0.0.1:8081\nzonal: {za: 127.0.0.1:8091, zb: 127.0.0.1:8092}\n" +
		"targets: [{id: a1, zone: za, addr: 10.0.0.1:80}, {id: b1, zone: zb, addr: 10.0.0.2:80}]\n"
	c, err := ParseConfig("/etc/gz/fd.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.StateFile != "/etc/gz/s.json" || len(c.Zones()) != 2 || c.Health.Path != "/health" {
		t.Fatalf("config: %+v", c)
	}
	for _, tt := range []struct{ old, new, want string }{
		{"xds: 127.0.0.1:18000\n", "", "fd.yaml:1: xds: required"},
		{"xds: 127.0.0.1:18000", "xds: nowhere", `fd.yaml:2: xds: "nowhere" is not a valid address`},
		{"regional: 127.0.0.1:8081", "regional: 127.0.0.1:8091", "fd.yaml:5: zonal.za: address 127.0.0.1:8091 is already used by regional"},
		{"resource: web", "resource: web\ncolour: blue", "fd.yaml:2: colour: unknown key"},
		{"zonal: {za: 127.0.0.1:8091, zb: 127.0.0.1:8092}", "zonal: {za: 127.0.0.1:8091}", "fd.yaml:5: zonal: 1 zone(s), need at least 2"},
		{"xds: 127.0.0.1:18000", "xds: 10.0.0.9:18000", `fd.yaml:2: xds: 10.0.0.9:18000 is not a loopback address: set tls`},
		{"xds: 127.0.0.1:18000", "xds: 10.0.0.9:18000\ninsecure: true", ""},
		{"xds: 127.0.0.1:18000", "xds: 10.0.0.9:18000\ntls: {ca_file: ca.crt, cert_file: fd.crt}", `fd.yaml:3: tls.key_file: required`},
		{"xds: 127.0.0.1:18000", "xds: 127.0.0.1:18000\nmetrics_listen: 0.0.0.0:9464", `fd.yaml:3: metrics_listen: 0.0.0.0:9464 is not a loopback address`},
		{"targets: [", "targets: [{id: c1, zone: zc, addr: 10.0.0.3:80}, ", `fd.yaml:6: targets[0].zone: unknown zone "zc"`},
		{"targets: [", "targets: [{id: a1, zone: za, addr: 10.0.0.3:80}, ", `fd.yaml:6: targets[1].id: duplicate target id "a1"`},
		{"targets: [{id: a1, zone: za, addr: 10.0.0.1:80}, {id: b1, zone: zb, addr: 10.0.0.2:80}]\n", "", "targets: required"},
		{"regional: 127.0.0.1:8081", "regional: 127.0.0.1:8081\nmax_connections: 0", "fd.yaml:5: max_connections:"},
	} {
		_, err := ParseConfig("fd.yaml", []byte(strings.Replace(base, tt.old, tt.new, 1)))
		if tt.want == "" && err != nil {
			t.Errorf("%q -> %q: %v", tt.old, tt.new, err)
		}
		if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%q -> %q: got %v, want %q", tt.old, tt.new, err, tt.want)
		}
	}
}

func TestExampleConfig(t *testing.T) {
	if _, err := LoadConfig("../../../examples/frontdoor.yaml"); err != nil {
		t.Fatal(err)
	}
}

// Restarted with serve unreachable: the front door routes with its saved
// state at once, and ends the shift at its expiry on its own clock.
func TestSavedStateAndExpiryWithoutServe(t *testing.T) {
	dir := t.TempDir()
	st := State{Resource: "web", ReceivedAt: t0, Shifted: map[string]time.Time{"zb": t0.Add(time.Minute)},
		Targets: []Target{{ID: "a1", Zone: "za", Addr: "127.0.0.1:1", Healthy: true}, {ID: "b1", Zone: "zb", Addr: "127.0.0.1:2", Healthy: true}}}
	if err := st.Save(filepath.Join(dir, "state.json")); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(filepath.Join(dir, "fd.yaml"), []byte(
		"resource: web\nxds: 127.0.0.1:1\nstate_file: state.json\nregional: 127.0.0.1:0\nzonal: {za: 127.0.0.1:0, zb: 127.0.0.1:0}\n"+
			"targets: [{id: a1, zone: za, addr: 127.0.0.1:1}, {id: b1, zone: zb, addr: 127.0.0.1:2}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(t0)
	fd, err := Start(context.Background(), Options{Config: cfg, Clock: clk, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if !fd.Table().Shifted("zb") || len(fd.Table().Targets()) != 2 {
		t.Fatalf("before serve answers: shifted %v, targets %v", fd.Table().Shifted("zb"), fd.Table().Targets())
	}
	clk.Advance(59 * time.Second)
	if !fd.Table().Shifted("zb") {
		t.Fatal("the shift ended before its expiry")
	}
	clk.Advance(time.Second)
	// The expiry goroutine runs on the tick it was just sent.
	for deadline := time.Now().Add(5 * time.Second); fd.Table().Shifted("zb"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the shift did not end at its expiry")
		}
	}
}

// A saved state the front door would refuse from serve (here: a target no
// longer in its list) stops it at start, naming the file, rather than
// routing to that target.
func TestSavedStateIsCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	st := State{Resource: "web", Epoch: 3, ReceivedAt: t0,
		Targets: []Target{{ID: "a1", Zone: "za", Addr: "127.0.0.1:1", Healthy: true}, {ID: "x9", Zone: "zb", Addr: "10.9.9.9:80", Healthy: true}}}
	if err := st.Save(filepath.Join(dir, "state.json")); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(filepath.Join(dir, "fd.yaml"), []byte(
		"resource: web\nxds: 127.0.0.1:1\nstate_file: state.json\nregional: 127.0.0.1:0\nzonal: {za: 127.0.0.1:0, zb: 127.0.0.1:0}\n"+
			"targets: [{id: a1, zone: za, addr: 127.0.0.1:1}, {id: b1, zone: zb, addr: 127.0.0.1:2}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	fd, err := Start(context.Background(), Options{Config: cfg, Clock: clock.NewFake(t0), Log: slog.New(slog.DiscardHandler)})
	if err == nil {
		fd.Close()
		t.Fatal("a saved state naming an unknown target was routed with")
	}
	if !strings.Contains(err.Error(), "state.json") || !strings.Contains(err.Error(), "unknown_target") {
		t.Fatalf("error %q should name the file and the reason", err)
	}
}
