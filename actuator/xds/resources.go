package xds

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Target is one backend instance.
type Target struct {
	ID, Zone, Addr string // Addr is host:port
}

// Names of a resource's xDS resources. The regional ones carry the resource
// name (what clients dial: xds:///web); each zone has its own, named
// RESOURCE.ZONE (xds:///web.use2-az1), that a shift never touches, so
// canaries keep measuring a shifted zone.
func ZonalName(resource, zone string) string { return resource + "." + zone }

// MetadataKey is the filter_metadata key under which grayzone marks the
// endpoints of a shifted zone in its zonal ClusterLoadAssignment:
// {"shifted": true, "expires_at": RFC 3339}. Proxies ignore it; grayzone's
// own front door reads it to honour a shift's expiry while serve is down.
const MetadataKey = "grayzone"

// state is what the resources are built from.
type state struct {
	resource string
	zones    []string
	targets  []Target
	healthy  map[string]bool      // target id -> health (absent: healthy)
	shifted  map[string]time.Time // zone -> shift expiry (zero: none given)
	// weight: a shifted zone's gradual return, percent of a full zone's
	// locality weight (absent: 0, the shift fully in force).
	weight map[string]int
}

// listenerFor is an API listener (what proxyless gRPC clients resolve, and
// Envoy ignores unless asked for by LDS) routing everything to one cluster.
func listenerFor(name string) (*listener.Listener, *route.RouteConfiguration, error) {
	rtr, err := anypb.New(&router.Router{})
	if err != nil {
		return nil, nil, err
	}
	mgr, err := anypb.New(&hcm.HttpConnectionManager{
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource:    &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}, ResourceApiVersion: core.ApiVersion_V3},
			RouteConfigName: name,
		}},
		HttpFilters: []*hcm.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: rtr}}},
	})
	if err != nil {
		return nil, nil, err
	}
	l := &listener.Listener{Name: name, ApiListener: &listener.ApiListener{ApiListener: mgr}}
	rc := &route.RouteConfiguration{Name: name, VirtualHosts: []*route.VirtualHost{{
		Name: name, Domains: []string{"*"},
		Routes: []*route.Route{{
			Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: ""}},
			Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: name}}},
		}},
	}}}
	return l, rc, nil
}

// clusterFor is an EDS cluster over ADS, round robin, whose locality
// weights apply (Envoy ignores them without locality_weighted_lb_config).
func clusterFor(name string) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{
			EdsConfig:   &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}, ResourceApiVersion: core.ApiVersion_V3},
			ServiceName: name,
		},
		LbPolicy:       cluster.Cluster_ROUND_ROBIN,
		ConnectTimeout: nil,
		CommonLbConfig: &cluster.Cluster_CommonLbConfig{
			LocalityConfigSpecifier: &cluster.Cluster_CommonLbConfig_LocalityWeightedLbConfig_{
				LocalityWeightedLbConfig: &cluster.Cluster_CommonLbConfig_LocalityWeightedLbConfig{},
			},
		},
	}
}

// assignment groups the targets of zones by locality. A locality's weight is
// its number of endpoints, never 0 (Envoy rejects 0); a zone without
// endpoints is left out. In the regional assignment (not mark) a zone
// returning from a shift at w % weighs w % of that: every locality's weight
// is then scaled by 100 so that w fits in an integer. The zonal assignments
// (mark) say the zone's shift and weight in the endpoints' metadata.
func (s *state) assignment(name string, zones []string, mark bool) (*endpoint.ClusterLoadAssignment, error) {
	cla := &endpoint.ClusterLoadAssignment{ClusterName: name}
	scale := uint32(1)
	for _, z := range zones {
		if s.weight[z] > 0 && !mark {
			scale = 100
		}
	}
	for _, z := range zones {
		var eps []*endpoint.LbEndpoint
		for _, t := range s.targets {
			if t.Zone != z {
				continue
			}
			ep, err := lbEndpoint(t, s.healthy)
			if err != nil {
				return nil, err
			}
			if exp, shifted := s.shifted[z]; mark && shifted {
				md := map[string]any{"shifted": true}
				if !exp.IsZero() {
					md["expires_at"] = exp.UTC().Format(time.RFC3339Nano)
				}
				if w := s.weight[z]; w > 0 {
					md["weight"] = w
				}
				st, err := structpb.NewStruct(md)
				if err != nil {
					return nil, err
				}
				ep.Metadata = &core.Metadata{FilterMetadata: map[string]*structpb.Struct{MetadataKey: st}}
			}
			eps = append(eps, ep)
		}
		if len(eps) == 0 {
			continue
		}
		weight := uint32(len(eps)) * scale
		if w := s.weight[z]; w > 0 && scale > 1 {
			weight = uint32(len(eps) * w)
		}
		cla.Endpoints = append(cla.Endpoints, &endpoint.LocalityLbEndpoints{
			Locality:            &core.Locality{Zone: z},
			LbEndpoints:         eps,
			LoadBalancingWeight: wrapperspb.UInt32(weight),
		})
	}
	return cla, nil
}

func lbEndpoint(t Target, healthy map[string]bool) (*endpoint.LbEndpoint, error) {
	host, ps, err := net.SplitHostPort(t.Addr)
	if err != nil {
		return nil, fmt.Errorf("xds: target %s: address %q: %w", t.ID, t.Addr, err)
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("xds: target %s: port %q: %w", t.ID, ps, err)
	}
	hs := core.HealthStatus_HEALTHY
	if h, known := healthy[t.ID]; known && !h {
		hs = core.HealthStatus_UNHEALTHY
	}
	return &endpoint.LbEndpoint{
		HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
			Hostname: t.ID,
			Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
				Protocol: core.SocketAddress_TCP, Address: host, PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
			}}},
		}},
		HealthStatus:        hs,
		LoadBalancingWeight: wrapperspb.UInt32(1),
	}, nil
}

// regionalZones are the zones the regional cluster sends to: all but the
// shifted ones, and those at their weight.
func (s *state) regionalZones() []string {
	var out []string
	for _, z := range s.zones {
		if _, shifted := s.shifted[z]; !shifted || s.weight[z] > 0 {
			out = append(out, z)
		}
	}
	return out
}

func sortedZones(zones []string) []string {
	out := append([]string(nil), zones...)
	sort.Strings(out)
	return out
}
