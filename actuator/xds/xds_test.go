package xds

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	xdsgrpc "google.golang.org/grpc/xds" // registers the xDS resolver and balancers

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/grayzone/grayzone/actuator"
)

// zonesLab is two gRPC servers per zone (the health service) and our xDS
// server publishing them as resource "web".
type zonesLab struct {
	xds    *Server
	zoneOf map[string]string // server address -> zone
}

func startZones(t *testing.T, zones ...string) *zonesLab {
	t.Helper()
	l := &zonesLab{zoneOf: map[string]string{}}
	var targets []Target
	for _, z := range zones {
		for i := 1; i <= 2; i++ {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			gs := grpc.NewServer()
			healthpb.RegisterHealthServer(gs, health.NewServer())
			go gs.Serve(ln)
			t.Cleanup(gs.Stop)
			targets = append(targets, Target{ID: fmt.Sprintf("%s-%d", z, i), Zone: z, Addr: ln.Addr().String()})
			l.zoneOf[ln.Addr().String()] = z
		}
	}
	s, err := New(Options{Listen: "127.0.0.1:0", Resources: []Resource{{Name: "web", Zones: zones, Targets: targets}}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, s)
	l.xds = s
	return l
}

// runUntilCleanup serves until the test ends.
func runUntilCleanup(t *testing.T, s *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// dial is a proxyless gRPC client of xds:///target whose bootstrap points
// at our server.
func (l *zonesLab) dial(t *testing.T, target string) healthpb.HealthClient {
	t.Helper()
	bootstrap := fmt.Sprintf(`{"xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
		"node": {"id": "test-client-%d", "locality": {"zone": "za"}}}`, l.xds.Addr(), time.Now().UnixNano())
	rb, err := xdsgrpc.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("xds:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(rb))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// zoneOfRPC sends one RPC and returns the zone that served it.
func (l *zonesLab) zoneOfRPC(t *testing.T, c healthpb.HealthClient) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var p peer.Peer
	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true)); err != nil {
		t.Fatalf("RPC: %v", err)
	}
	return l.zoneOf[p.Addr.String()]
}

func (l *zonesLab) spread(t *testing.T, c healthpb.HealthClient, n int) map[string]int {
	got := map[string]int{}
	for range n {
		got[l.zoneOfRPC(t, c)]++
	}
	return got
}

// until sends RPCs until cond holds for 20 in a row (the client applies an
// update asynchronously), for up to 10 s.
func (l *zonesLab) until(t *testing.T, c healthpb.HealthClient, what string, cond func(zone string) bool) {
	t.Helper()
	ok := 0
	for deadline := time.Now().Add(10 * time.Second); ok < 20; {
		if cond(l.zoneOfRPC(t, c)) {
			ok++
		} else {
			ok = 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}

// reachAll sends RPCs until every zone has served one, for up to 10 s: the
// client connects to each endpoint on its own, and until a subchannel is
// ready its RPCs go to those that are (all 60 of a first spread once went
// to one zone on a busy machine).
func (l *zonesLab) reachAll(t *testing.T, c healthpb.HealthClient, zones ...string) {
	t.Helper()
	seen := map[string]bool{}
	for deadline := time.Now().Add(10 * time.Second); len(seen) < len(zones); {
		seen[l.zoneOfRPC(t, c)] = true
		if time.Now().After(deadline) {
			t.Fatalf("not every zone of %v served an RPC within 10 s: %v", zones, seen)
		}
	}
}

func TestProxylessGRPCFollowsShift(t *testing.T) {
	l := startZones(t, "za", "zb", "zc")
	c := l.dial(t, "web")
	l.reachAll(t, c, "za", "zb", "zc")
	if got := l.spread(t, c, 60); got["za"] == 0 || got["zb"] == 0 || got["zc"] == 0 {
		t.Fatalf("before the shift every zone gets RPCs: %v", got)
	}
	ctx := context.Background()
	if err := l.xds.Apply(ctx, actuator.Action{Kind: actuator.ShiftAway, Resource: "web", Zone: "zb"}); err != nil {
		t.Fatal(err)
	}
	l.until(t, c, "RPCs stop reaching zb", func(z string) bool { return z != "zb" })
	if got := l.spread(t, c, 60); got["zb"] != 0 || got["za"] == 0 || got["zc"] == 0 {
		t.Fatalf("during the shift no RPC may reach zb: %v", got)
	}
	// The zonal target still reaches the shifted zone (canaries).
	zc := l.dial(t, ZonalName("web", "zb"))
	if z := l.zoneOfRPC(t, zc); z != "zb" {
		t.Fatalf("xds:///web.zb went to %q", z)
	}
	// A client that connects during the shift gets it at once.
	late := l.dial(t, "web")
	if got := l.spread(t, late, 30); got["zb"] != 0 {
		t.Fatalf("a new client must get the shift in its first state: %v", got)
	}
	if err := l.xds.Apply(ctx, actuator.Action{Kind: actuator.EndShift, Resource: "web", Zone: "zb"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); l.zoneOfRPC(t, c) != "zb"; {
		if time.Now().After(deadline) {
			t.Fatal("RPCs do not reach zb again within 10 s")
		}
	}
	if got := l.spread(t, c, 60); got["zb"] == 0 || got["za"] == 0 || got["zc"] == 0 {
		t.Fatalf("after the shift every zone gets RPCs again: %v", got)
	}
	if l.xds.NACKs() != 0 {
		t.Fatalf("the gRPC client rejected %d responses", l.xds.NACKs())
	}
}

func TestADSClientGetsStateAndOnlyChanges(t *testing.T) {
	l := startZones(t, "za", "zb")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	updates := make(chan Update, 16)
	go Watch(ctx, l.xds.Addr(), nil, "raw-client", map[string][]string{
		resource.ClusterType:  {"web"},
		resource.EndpointType: {"web", "web.za", "web.zb"},
	}, func(u Update) error { updates <- u; return nil })
	next := func() Update {
		select {
		case u := <-updates:
			return u
		case <-time.After(10 * time.Second):
			t.Fatal("no update within 10 s")
		}
		return Update{}
	}
	got := map[string]Update{}
	for range 2 {
		u := next()
		got[u.TypeURL] = u
	}
	if len(got[resource.ClusterType].Resources) != 1 || len(got[resource.EndpointType].Resources) != 3 {
		t.Fatalf("first state: %+v", got)
	}
	if v := got[resource.EndpointType].Resources["web"].(*endpoint.ClusterLoadAssignment); len(v.GetEndpoints()) != 2 {
		t.Fatalf("regional assignment: %v", v)
	}
	// A shift changes endpoints only: no cluster is re-sent.
	if err := l.xds.Shift(ctx, "web", "zb", true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	u := next()
	if u.TypeURL != resource.EndpointType {
		t.Fatalf("after a shift got %s, want only endpoints", u.TypeURL)
	}
	cla := u.Resources["web"].(*endpoint.ClusterLoadAssignment)
	if len(cla.GetEndpoints()) != 1 || cla.GetEndpoints()[0].GetLocality().GetZone() != "za" {
		t.Fatalf("regional assignment during the shift: %v", cla)
	}
	for _, e := range cla.GetEndpoints() {
		if e.GetLoadBalancingWeight().GetValue() == 0 {
			t.Fatal("a locality weight of 0")
		}
	}
	select {
	case u := <-updates:
		t.Fatalf("unexpected second update %s", u.TypeURL)
	case <-time.After(200 * time.Millisecond):
	}
}

// A client that rejects a response is counted and logged with its node id.
func TestNACKIsCounted(t *testing.T) {
	l := startZones(t, "za", "zb")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Watch(ctx, l.xds.Addr(), nil, "picky-proxy", map[string][]string{resource.EndpointType: {"web"}},
		func(Update) error { return fmt.Errorf("I reject everything") })
	for deadline := time.Now().Add(10 * time.Second); l.xds.NACKs() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no NACK counted within 10 s")
		}
	}
	// The refused version is not sent again (the snapshot cache alone would
	// answer each NACK at once with it, in a loop): the next change is.
	time.Sleep(300 * time.Millisecond)
	if n, p := l.xds.NACKs(), l.xds.Pushes(); n != 1 || p != 1 {
		t.Fatalf("without a change: %d NACKs, %d responses; want 1 and 1", n, p)
	}
	if err := l.xds.Shift(ctx, "web", "zb", true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); l.xds.NACKs() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the change after a NACK was not sent")
		}
	}
}

// Incremental xDS for endpoints: the first response has every subscribed
// assignment, a shift sends only the assignments it changed.
func TestDeltaEDSSendsOnlyChangedAssignments(t *testing.T) {
	l := startZones(t, "za", "zb", "zc")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := grpc.NewClient(l.xds.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &core.Node{Id: "delta-proxy"}
	if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.EndpointType,
		ResourceNamesSubscribe: []string{"web", "web.za", "web.zb", "web.zc"}}); err != nil {
		t.Fatal(err)
	}
	recv := func() []string {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.EndpointType, ResponseNonce: resp.GetNonce()}); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range resp.GetResources() {
			names = append(names, r.GetName())
		}
		slices.Sort(names)
		return names
	}
	if got := recv(); fmt.Sprint(got) != "[web web.za web.zb web.zc]" {
		t.Fatalf("first delta response: %v", got)
	}
	if err := l.xds.Shift(ctx, "web", "zc", true, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// The regional assignment loses zc; zc's own assignment gets the shift's mark.
	if got := recv(); fmt.Sprint(got) != "[web web.zc]" {
		t.Fatalf("delta response after the shift: %v, want only the changed assignments", got)
	}
}
