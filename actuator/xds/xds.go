// Package xds is grayzone's data plane for Envoy and proxyless gRPC: an xDS
// management server (ADS over gRPC, state-of-the-world and, for every type,
// the incremental/delta protocol) built on envoyproxy/go-control-plane.
//
// Per guarded resource it serves a Listener and RouteConfiguration (for
// proxyless gRPC clients), an EDS Cluster and a ClusterLoadAssignment whose
// endpoints are grouped by locality, one locality per zone. A zonal shift
// removes the shifted zone's locality from the regional assignment (it never
// sets a locality weight of 0, which Envoy rejects); a gradual return puts it
// back at a fraction of a full zone's locality weight (Weigh). Each zone also
// has its own cluster, never shifted, for canaries.
//
// Every proxy gets the same state (one snapshot for all node ids), so a new
// or reconnecting proxy gets the current state in its first response. Each
// resource type carries a version, EPOCH.HASH: the leadership epoch of the
// last order (so grayzone's front door refuses a deposed leader's state)
// and a hash of its content: a shift changes only the endpoints, so
// state-of-the-world streams are sent only the endpoints and delta streams
// only the assignments that changed.
//
// With Options.TLS (mutual TLS) only proxies with a client certificate
// signed by the configured CA are answered at all.
package xds

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/internal/loglimit"
)

// Resource is one guarded service as the xDS server publishes it.
type Resource struct {
	Name    string
	Zones   []string
	Targets []Target
}

// Options configure a Server.
type Options struct {
	Listen    string // gRPC address, e.g. 127.0.0.1:18000
	Resources []Resource
	Log       *slog.Logger
	// TLS, when set, is the server's TLS configuration: with mutual TLS
	// (certreload.MutualServer) only proxies holding a certificate of the
	// client CA get a response. nil: plaintext (loopback or insecure: true).
	TLS *tls.Config
}

// Server is a running xDS management server. Its methods are safe for
// concurrent use.
type Server struct {
	log   *slog.Logger
	cache cache.SnapshotCache
	grpc  *grpc.Server
	ln    net.Listener

	mu     sync.Mutex
	states map[string]*state // by resource name
	serial int

	// epoch is the highest leadership epoch (fencing token) an order came
	// with; every response's version carries it (see EpochOf), so a front
	// door can refuse the state of a deposed leader.
	epoch uint64

	nacks   atomic.Uint64
	nackLog *loglimit.Limiter // a proxy's error text is its to choose: bounded
	streams sync.Map          // stream id -> node id
	pushes  atomic.Uint64

	sentMu sync.Mutex
	sent   map[int64]map[string]string // stream id -> type -> version last sent

	// while, when set, gates every stream (ServeWhile).
	while   atomic.Pointer[func() bool]
	refused atomic.Uint64
}

// ServeWhile makes the server answer only while f reports true: a stream
// opened while f reports false is refused with Unavailable, and so is an
// open stream's next request (an ACK, a NACK, a new subscription), which
// ends it. serve's replicas gate it on leadership, so a follower's proxies
// get nothing (they keep their last good state and reconnect) rather than a
// follower's view. A deposed leader publishes nothing new (its reconcile is
// gated too), so a stream still open to it is silent until it ends. Call it
// before Run.
func (s *Server) ServeWhile(f func() bool) { s.while.Store(&f) }

// Refused counts the streams refused by ServeWhile's gate.
func (s *Server) Refused() uint64 { return s.refused.Load() }

// ErrNotServing is the status of a stream the ServeWhile gate refused.
var ErrNotServing = status.Error(codes.Unavailable, "xds: this grayzone serve replica is not leading; its state is not served")

// gate is the stream interceptor of ServeWhile.
func (s *Server) gate(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	f := s.while.Load()
	if f == nil {
		return h(srv, ss)
	}
	if err := s.serving(); err != nil {
		return err
	}
	return h(srv, ss)
}

// serving is nil while the ServeWhile gate (if any) passes.
func (s *Server) serving() error {
	if f := s.while.Load(); f != nil {
		if !(*f)() {
			s.refused.Add(1)
			return ErrNotServing
		}
	}
	return nil
}

// allNodes is the cache key of every proxy: they all get one state.
type allNodes struct{}

func (allNodes) ID(*core.Node) string { return "grayzone" }

// New builds the server and its first snapshot and binds Listen; Serve
// starts answering.
func New(o Options) (*Server, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if len(o.Resources) == 0 {
		return nil, fmt.Errorf("xds: no resources")
	}
	s := &Server{log: o.Log, states: map[string]*state{}, nackLog: loglimit.New(o.Log), sent: map[int64]map[string]string{}}
	for _, r := range o.Resources {
		s.states[r.Name] = &state{resource: r.Name, zones: slices.Clone(r.Zones), targets: slices.Clone(r.Targets),
			healthy: map[string]bool{}, shifted: map[string]time.Time{}, weight: map[string]int{}}
	}
	s.cache = cache.NewSnapshotCache(false, allNodes{}, nil)
	if err := s.publish(context.Background()); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("xds: listen on %s: %w", o.Listen, err)
	}
	s.ln = ln
	srv := server.NewServer(context.Background(), s.cache, s.callbacks())
	opts := []grpc.ServerOption{grpc.StreamInterceptor(s.gate)}
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.TLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	discovery.RegisterAggregatedDiscoveryServiceServer(s.grpc, srv)
	endpointservice.RegisterEndpointDiscoveryServiceServer(s.grpc, srv)
	clusterservice.RegisterClusterDiscoveryServiceServer(s.grpc, srv)
	routeservice.RegisterRouteDiscoveryServiceServer(s.grpc, srv)
	listenerservice.RegisterListenerDiscoveryServiceServer(s.grpc, srv)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx is done.
func (s *Server) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.grpc.Serve(s.ln); err != nil {
			s.log.Error("xds server stopped", "err", err)
		}
	}()
	<-ctx.Done()
	s.grpc.Stop()
	<-done
}

// NACKs counts the responses proxies rejected.
func (s *Server) NACKs() uint64 { return s.nacks.Load() }

// Pushes counts the responses sent.
func (s *Server) Pushes() uint64 { return s.pushes.Load() }

// SetShifted shifts the zone of the only resource away, or back.
// It is the shape serve's reconcile uses; see Shift for several resources.
func (s *Server) SetShifted(ctx context.Context, zone string, away bool) error {
	return s.SetShiftedUntil(ctx, zone, away, time.Time{})
}

// SetShiftedUntil is SetShifted with the shift's expiry, which grayzone's
// own front door honours while serve is unreachable.
func (s *Server) SetShiftedUntil(ctx context.Context, zone string, away bool, expires time.Time) error {
	name, err := s.only("SetShifted")
	if err != nil {
		return err
	}
	return s.Shift(ctx, name, zone, away, expires)
}

// only names the server's only resource, for the shapes serve's reconcile
// uses (SetShifted, SetWeight).
func (s *Server) only(what string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.states) != 1 {
		return "", fmt.Errorf("xds: %s needs exactly one resource, have %d", what, len(s.states))
	}
	for n := range s.states {
		return n, nil
	}
	return "", nil
}

// Shift sets whether a zone of a resource is shifted away, with the shift's
// expiry (zero: not given), and pushes the change, if any.
func (s *Server) Shift(ctx context.Context, resourceName, zone string, away bool, expires time.Time) error {
	return s.changeZone(ctx, resourceName, zone, func(st *state) bool {
		old, was := st.shifted[zone]
		if was == away && old.Equal(expires) {
			return false
		}
		if away {
			st.shifted[zone] = expires
		} else {
			delete(st.shifted, zone)
		}
		if was != away {
			delete(st.weight, zone) // a shift starts, and ends, at weight 0
		}
		return true
	})
}

// SetWeight implements actuator.Weigher for the only resource, as SetShifted.
func (s *Server) SetWeight(ctx context.Context, zone string, percent int) error {
	name, err := s.only("SetWeight")
	if err != nil {
		return err
	}
	return s.Weigh(ctx, name, zone, percent)
}

// Weigh gives a shifted zone of a resource percent (0-100) of a full zone's
// locality weight in the regional assignment while its shift stays in force
// (a gradual return), and pushes the change, if any. A zone not shifted
// ignores it; the end of the shift resets it.
func (s *Server) Weigh(ctx context.Context, resourceName, zone string, percent int) error {
	if err := actuator.CheckWeight(percent); err != nil {
		return fmt.Errorf("xds: zone %s: %w", zone, err)
	}
	return s.changeZone(ctx, resourceName, zone, func(st *state) bool {
		if _, shifted := st.shifted[zone]; !shifted || st.weight[zone] == percent {
			return false
		}
		if percent == 0 {
			delete(st.weight, zone)
		} else {
			st.weight[zone] = percent
		}
		return true
	})
}

// changeZone applies change to the resource's state, fenced by the order's
// epoch (ctx), and publishes when it changed something or the epoch is new.
func (s *Server) changeZone(ctx context.Context, resourceName, zone string, change func(*state) bool) error {
	s.mu.Lock()
	st, err := s.zoneState(resourceName, zone)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	newEpoch, err := s.fenceLocked(ctx)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	changed := change(st)
	s.mu.Unlock()
	if !changed && !newEpoch {
		return nil
	}
	return s.publish(ctx)
}

// SetHealth records a target's health (from serve's health checks).
func (s *Server) SetHealth(ctx context.Context, resourceName, targetID string, healthy bool) error {
	s.mu.Lock()
	st, ok := s.states[resourceName]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("xds: unknown resource %q", resourceName)
	}
	newEpoch, err := s.fenceLocked(ctx)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if h, known := st.healthy[targetID]; ((known && h == healthy) || (!known && healthy)) && !newEpoch {
		s.mu.Unlock()
		return nil
	}
	st.healthy[targetID] = healthy
	s.mu.Unlock()
	return s.publish(ctx)
}

// Apply implements actuator.Actuator for the data-plane kinds.
func (s *Server) Apply(ctx context.Context, a actuator.Action) error {
	switch a.Kind {
	case actuator.ShiftAway, actuator.EndShift:
		return s.Shift(ctx, a.Resource, a.Zone, a.Kind == actuator.ShiftAway, time.Time{})
	case actuator.SetWeight:
		return s.Weigh(ctx, a.Resource, a.Zone, a.Weight)
	}
	return fmt.Errorf("xds: %s: %w", a, actuator.ErrUnsupported)
}

// ErrStaleFence refuses an order given under an older leadership epoch
// than one the server has already published: it comes from a deposed leader.
var ErrStaleFence = errors.New("xds: order from a deposed leader (stale fencing token)")

// fenceLocked takes the epoch of the order in ctx (actuator.WithFence):
// an older one than published is refused, a newer one is published even if
// nothing else changed, so proxies learn the new leader's epoch at once.
func (s *Server) fenceLocked(ctx context.Context) (newer bool, err error) {
	token, ok := actuator.FenceFrom(ctx)
	switch {
	case !ok || token == s.epoch:
		return false, nil
	case token < s.epoch:
		return false, fmt.Errorf("%w: token %d, already published %d", ErrStaleFence, token, s.epoch)
	}
	s.epoch = token
	return true, nil
}

// Epoch is the leadership epoch the published state carries (0: none given).
func (s *Server) Epoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// versionOf is a response's version: the epoch, then the content hash.
func versionOf(epoch uint64, hash string) string { return fmt.Sprintf("%d.%s", epoch, hash) }

// EpochOf reads the leadership epoch from a version grayzone's server
// published; ok is false for any other version.
func EpochOf(version string) (epoch uint64, ok bool) {
	e, _, found := strings.Cut(version, ".")
	if !found {
		return 0, false
	}
	n, err := strconv.ParseUint(e, 10, 64)
	return n, err == nil
}

func (s *Server) zoneState(resourceName, zone string) (*state, error) {
	st, ok := s.states[resourceName]
	if !ok {
		return nil, fmt.Errorf("xds: unknown resource %q", resourceName)
	}
	if !slices.Contains(st.zones, zone) {
		return nil, fmt.Errorf("xds: resource %s: unknown zone %q", resourceName, zone)
	}
	return st, nil
}

// publish rebuilds every resource and sets the snapshot. Versions are
// content hashes per type, so types that did not change are not re-sent.
func (s *Server) publish(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	byType := map[resource.Type][]types.Resource{}
	names := make([]string, 0, len(s.states))
	for n := range s.states {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		st := s.states[n]
		add := func(name string, zones []string, mark bool) error {
			l, rc, err := listenerFor(name)
			if err != nil {
				return err
			}
			cla, err := st.assignment(name, zones, mark)
			if err != nil {
				return err
			}
			byType[resource.ListenerType] = append(byType[resource.ListenerType], l)
			byType[resource.RouteType] = append(byType[resource.RouteType], rc)
			byType[resource.ClusterType] = append(byType[resource.ClusterType], clusterFor(name))
			byType[resource.EndpointType] = append(byType[resource.EndpointType], cla)
			return nil
		}
		if err := add(n, st.regionalZones(), false); err != nil {
			return err
		}
		for _, z := range st.zones {
			if err := add(ZonalName(n, z), []string{z}, true); err != nil {
				return err
			}
		}
	}
	snap := &cache.Snapshot{}
	for typ, items := range byType {
		v, err := contentVersion(items)
		if err != nil {
			return err
		}
		snap.Resources[cache.GetResponseType(typ)] = cache.NewResources(versionOf(s.epoch, v), items)
	}
	if err := snap.ConstructVersionMap(); err != nil {
		return err
	}
	// snap.Consistent is not used: it looks for route names in listeners'
	// filter chains, and these are API listeners; the names match by
	// construction (listenerFor).
	return s.cache.SetSnapshot(ctx, allNodes{}.ID(nil), snap)
}

// contentVersion hashes the deterministic encoding of the resources.
func contentVersion(items []types.Resource) (string, error) {
	h := sha256.New()
	for _, it := range items {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(it)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// callbacks log and count NACKs with the proxy's node id, and count pushes.
// A NACK's log line is truncated and rate-limited (internal/loglimit): its
// text, and how often it comes, are the proxy's to choose.
func (s *Server) callbacks() server.CallbackFuncs {
	node := func(id int64, n *core.Node) string {
		if n != nil && n.GetId() != "" {
			s.streams.Store(id, n.GetId())
			return n.GetId()
		}
		if v, ok := s.streams.Load(id); ok {
			return v.(string)
		}
		return "(unknown)"
	}
	return server.CallbackFuncs{
		StreamRequestFunc: func(id int64, req *discovery.DiscoveryRequest) error {
			if err := s.serving(); err != nil {
				return err
			}
			n := node(id, req.GetNode())
			if req.GetErrorDetail() != nil {
				s.nacks.Add(1)
				s.nackLog.Warn(context.Background(), "xds: NACK", slog.String("node", n), slog.String("type", req.GetTypeUrl()),
					slog.String("version", req.GetVersionInfo()), slog.String("nonce", req.GetResponseNonce()), slog.String("error", req.GetErrorDetail().GetMessage()))
				// A NACK names the last version the proxy accepted; the
				// snapshot cache would answer it at once with the version
				// just refused, and again on the next NACK, as fast as the
				// round trip allows. Taken as having seen the refused
				// version, the proxy gets the next change instead.
				s.sentMu.Lock()
				if v, ok := s.sent[id][req.GetTypeUrl()]; ok {
					req.VersionInfo = v
				}
				s.sentMu.Unlock()
			}
			return nil
		},
		StreamDeltaRequestFunc: func(id int64, req *discovery.DeltaDiscoveryRequest) error {
			if err := s.serving(); err != nil {
				return err
			}
			n := node(id, req.GetNode())
			if req.GetErrorDetail() != nil {
				s.nacks.Add(1)
				s.nackLog.Warn(context.Background(), "xds: NACK (delta)", slog.String("node", n), slog.String("type", req.GetTypeUrl()),
					slog.String("nonce", req.GetResponseNonce()), slog.String("error", req.GetErrorDetail().GetMessage()))
			}
			return nil
		},
		StreamResponseFunc: func(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
			s.pushes.Add(1)
			s.sentMu.Lock()
			if s.sent[id] == nil {
				s.sent[id] = map[string]string{}
			}
			s.sent[id][resp.GetTypeUrl()] = resp.GetVersionInfo()
			s.sentMu.Unlock()
		},
		StreamDeltaResponseFunc: func(int64, *discovery.DeltaDiscoveryRequest, *discovery.DeltaDiscoveryResponse) {
			s.pushes.Add(1)
		},
		StreamClosedFunc: func(id int64, _ *core.Node) {
			s.streams.Delete(id)
			s.sentMu.Lock()
			delete(s.sent, id)
			s.sentMu.Unlock()
		},
		DeltaStreamClosedFunc: func(id int64, _ *core.Node) { s.streams.Delete(id) },
	}
}
