package xds

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// Update is one accepted response of a Watch: every resource of its type.
type Update struct {
	TypeURL   string
	Version   string
	Resources map[string]proto.Message // by name
}

// decode reads a resource of one of the four types grayzone serves.
func decode(typeURL string, b []byte) (proto.Message, string, error) {
	var m interface {
		proto.Message
		GetName() string
	}
	switch typeURL {
	case resource.EndpointType:
		cla := &endpoint.ClusterLoadAssignment{}
		if err := proto.Unmarshal(b, cla); err != nil {
			return nil, "", fmt.Errorf("xds: decode %s: %w", typeURL, err)
		}
		return cla, cla.GetClusterName(), nil
	case resource.ClusterType:
		m = &cluster.Cluster{}
	case resource.ListenerType:
		m = &listener.Listener{}
	case resource.RouteType:
		m = &route.RouteConfiguration{}
	default:
		return nil, "", fmt.Errorf("xds: unexpected resource type %s", typeURL)
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, "", fmt.Errorf("xds: decode %s: %w", typeURL, err)
	}
	return m, m.GetName(), nil
}

// Watch is a minimal ADS client (state of the world) for grayzone's own
// front door: it subscribes to the named resources of each type, calls
// onUpdate with each response and ACKs it, or NACKs it with onUpdate's
// error. It returns when the stream ends (ctx done, server gone). With
// tlsConf (certreload.MutualClient) the server must prove itself against
// its roots; nil is plaintext.
func Watch(ctx context.Context, addr string, tlsConf *tls.Config, nodeID string, names map[string][]string, onUpdate func(Update) error) error {
	creds := insecure.NewCredentials()
	if tlsConf != nil {
		creds = credentials.NewTLS(tlsConf)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("xds: dial %s: %w", addr, err)
	}
	defer conn.Close()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return fmt.Errorf("xds: %s: %w", addr, err)
	}
	node := &core.Node{Id: nodeID, UserAgentName: "grayzone-frontdoor"}
	// Clusters before endpoints, as a proxy asks.
	for _, typ := range []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType} {
		if ns, ok := names[typ]; ok {
			if err := stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typ, ResourceNames: ns}); err != nil {
				return fmt.Errorf("xds: %s: %w", addr, err)
			}
		}
	}
	accepted := map[string]string{} // type -> last accepted version
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			return fmt.Errorf("xds: %s closed the stream", addr)
		}
		if err != nil {
			return fmt.Errorf("xds: %s: %w", addr, err)
		}
		u := Update{TypeURL: resp.GetTypeUrl(), Version: resp.GetVersionInfo(), Resources: map[string]proto.Message{}}
		var bad error
		for _, a := range resp.GetResources() {
			m, name, err := decode(resp.GetTypeUrl(), a.GetValue())
			if err != nil {
				bad = err
				break
			}
			u.Resources[name] = m
		}
		ack := &discovery.DiscoveryRequest{Node: node, TypeUrl: resp.GetTypeUrl(), ResourceNames: names[resp.GetTypeUrl()],
			ResponseNonce: resp.GetNonce(), VersionInfo: resp.GetVersionInfo()}
		if bad == nil {
			bad = onUpdate(u)
		}
		if err := bad; err != nil {
			ack.VersionInfo = accepted[resp.GetTypeUrl()]
			ack.ErrorDetail = &statuspb.Status{Code: 3, Message: err.Error()} // INVALID_ARGUMENT
		} else {
			accepted[resp.GetTypeUrl()] = resp.GetVersionInfo()
		}
		if err := stream.Send(ack); err != nil {
			return fmt.Errorf("xds: %s: %w", addr, err)
		}
	}
}
