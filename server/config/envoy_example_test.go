package config_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	// The typed configs examples/envoy.yaml names, registered for Any.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/grayzone/grayzone/actuator/xds"
	"github.com/grayzone/grayzone/server/config"
)

// TestEnvoyExampleIsAValidBootstrap checks examples/envoy.yaml as Envoy
// would first: strict proto3 JSON into envoy.config.bootstrap.v3.Bootstrap
// (an unknown field or type fails), then Envoy's own validation rules
// (protoc-gen-validate, as generated in go-control-plane). Then against
// examples/serve-xds.yaml: the ADS cluster points at serve's xDS listener,
// and every route names a cluster grayzone serves for the resource.
// There is no Envoy binary here; this is what can be checked without one.
func TestEnvoyExampleIsAValidBootstrap(t *testing.T) {
	raw, err := os.ReadFile("../../examples/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	var b bootstrap.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatalf("examples/envoy.yaml is not a v3 bootstrap: %v", err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("examples/envoy.yaml fails Envoy's validation: %v", err)
	}

	cfg, err := config.Load("../../examples/serve-xds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res := cfg.Resources[0]
	_, port, _ := strings.Cut(res.FrontDoor.XDSListen, ":")
	var ads bool
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != b.GetDynamicResources().GetAdsConfig().GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName() {
			continue
		}
		ads = true
		sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
		if strconv.Itoa(int(sa.GetPortValue())) != port {
			t.Errorf("ADS cluster %s points at port %d; serve-xds.yaml serves xDS on %s", c.GetName(), sa.GetPortValue(), res.FrontDoor.XDSListen)
		}
		// serve-xds.yaml requires client certificates: Envoy must present one
		// and verify serve against the xDS CA.
		var up tlsv3.UpstreamTlsContext
		if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&up); err != nil {
			t.Fatalf("ADS cluster %s: no TLS transport socket: %v", c.GetName(), err)
		}
		ctx := up.GetCommonTlsContext()
		if len(ctx.GetTlsCertificates()) != 1 || !strings.HasSuffix(ctx.GetValidationContext().GetTrustedCa().GetFilename(), "xds-ca.crt") ||
			!strings.HasSuffix(res.FrontDoor.XDSSecurity.ClientCAFile, "xds-ca.crt") {
			t.Errorf("ADS cluster %s: mutual TLS not set up against serve-xds.yaml's CA: %v", c.GetName(), &up)
		}
	}
	if !ads {
		t.Fatal("no static cluster for the ADS server")
	}
	served := map[string]bool{res.Name: true}
	for _, z := range res.Zones {
		served[xds.ZonalName(res.Name, z)] = true
	}
	routes := 0
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var m hcm.HttpConnectionManager
				if err := f.GetTypedConfig().UnmarshalTo(&m); err != nil {
					t.Fatalf("listener %s: %v", l.GetName(), err)
				}
				for _, vh := range m.GetRouteConfig().GetVirtualHosts() {
					for _, r := range vh.GetRoutes() {
						routes++
						if c := r.GetRoute().GetCluster(); !served[c] {
							t.Errorf("listener %s routes to cluster %q, which grayzone does not serve (it serves %v)", l.GetName(), c, served)
						}
					}
				}
			}
		}
	}
	if routes < 2 {
		t.Errorf("%d routes: want the regional listener's and at least one zone's", routes)
	}
}
