package service

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grayzone/grayzone/actuator"
	"github.com/grayzone/grayzone/actuator/haproxy"
	"github.com/grayzone/grayzone/actuator/xds"
	"github.com/grayzone/grayzone/internal/certreload"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/haproxylog"
	"github.com/grayzone/grayzone/telemetry/observation"
)

// externalPlane is a data plane grayzone drives rather than runs: HAProxy
// (and the proxies fed over xDS). reconcile tells it the desired state of
// each zone on every tick; it acts only on changes and corrects drift in
// Run, so a failed call is retried there.
type externalPlane interface {
	SetShifted(ctx context.Context, zone string, away bool) error
	Run(ctx context.Context)
}

// newExternalPlane builds the resource's external data plane; nil for the
// embedded front door.
func newExternalPlane(rc *config.Resource, log *slog.Logger, clk clock.Clock) (externalPlane, error) {
	switch rc.FrontDoor.Type {
	case config.FrontDoorHAProxy:
		h := rc.FrontDoor.HAProxy
		zones := map[string][]haproxy.Server{}
		backends := make([]string, 0, len(h.Backends))
		for b := range h.Backends {
			backends = append(backends, b)
		}
		sort.Strings(backends)
		for _, b := range backends {
			for z, servers := range h.Backends[b] {
				for _, s := range servers {
					zones[z] = append(zones[z], haproxy.Server{Backend: b, Name: s})
				}
			}
		}
		a, err := haproxy.New(haproxy.Options{Runtime: haproxy.Runtime{Addr: h.RuntimeAPI}, Zones: zones,
			ShiftState: h.ShiftState, Interval: h.ReconcileInterval, Clock: clk, Log: log.With("resource", rc.Name)})
		if err != nil {
			return nil, fmt.Errorf("serve: resource %s: %w", rc.Name, err)
		}
		return a, nil
	case config.FrontDoorXDS:
		var targets []xds.Target
		for _, t := range rc.FrontDoor.Targets {
			targets = append(targets, xds.Target{ID: t.ID, Zone: t.Zone, Addr: t.Addr})
		}
		sec := rc.FrontDoor.XDSSecurity
		var tlsConf *tls.Config
		if sec.MutualTLS() {
			cert, err := certreload.NewCert(sec.CertFile, sec.KeyFile, clk.Now)
			if err != nil {
				return nil, fmt.Errorf("serve: resource %s: frontdoor.tls: %w", rc.Name, err)
			}
			cas, err := certreload.NewPool(sec.ClientCAFile, clk.Now)
			if err != nil {
				return nil, fmt.Errorf("serve: resource %s: frontdoor.tls.client_ca_file: %w", rc.Name, err)
			}
			tlsConf = certreload.MutualServer(cert, cas)
		} else if sec.Insecure {
			log.Warn("xds: plaintext (insecure: true): anyone who reaches the listener reads every target, and any proxy can connect",
				"resource", rc.Name, "listen", rc.FrontDoor.XDSListen)
		}
		srv, err := xds.New(xds.Options{Listen: rc.FrontDoor.XDSListen, Log: log.With("resource", rc.Name), TLS: tlsConf,
			Resources: []xds.Resource{{Name: rc.Name, Zones: rc.Zones, Targets: targets}}})
		if err != nil {
			return nil, fmt.Errorf("serve: resource %s: %w", rc.Name, err)
		}
		return srv, nil
	}
	return nil, nil
}

// Optional abilities of an external data plane.
type (
	// expiringPlane carries a shift's expiry (grayzone's own front door
	// honours it while serve is unreachable).
	expiringPlane interface {
		SetShiftedUntil(ctx context.Context, zone string, away bool, expires time.Time) error
	}
	// healthPlane publishes serve's health checks of the targets.
	healthPlane interface {
		SetHealth(ctx context.Context, resource, target string, healthy bool) error
	}
	// countingPlane reports the proxies' rejections and the responses sent.
	countingPlane interface {
		NACKs() uint64
		Pushes() uint64
	}
	// epochPlane counts the orders HAProxy's epoch record refused (a newer
	// leader's epoch was there).
	epochPlane interface {
		EpochRefusals() uint64
	}
)

// checksTargets reports whether serve health-checks the targets itself for
// this front door type (the embedded proxy, and xDS, which publishes them).
func checksTargets(rc *config.Resource) bool {
	return rc.FrontDoor.Type == config.FrontDoorEmbedded || rc.FrontDoor.Type == config.FrontDoorXDS
}

// reconcilePlane makes the external data plane match the desired state.
// weight is the shifted zone's gradual return (percent of a full zone's weight).
func (r *resource) reconcilePlane(ctx context.Context, want string, expires time.Time, weight int) {
	for _, z := range r.cfg.Zones {
		var err error
		if ep, ok := r.plane.(expiringPlane); ok && z == want {
			err = ep.SetShiftedUntil(ctx, z, true, expires)
		} else {
			err = r.plane.SetShifted(ctx, z, z == want)
		}
		if wp, ok := r.plane.(actuator.Weigher); ok && err == nil && z == want {
			err = wp.SetWeight(ctx, z, weight)
		}
		if err != nil {
			r.s.log.Warn("data plane not updated yet; retrying each reconcile interval", "resource", r.cfg.Name, "zone", z, "err", err)
		}
	}
	if hp, ok := r.plane.(healthPlane); ok {
		for _, t := range r.table.Targets() {
			if err := hp.SetHealth(ctx, r.cfg.Name, t.ID, t.Healthy); err != nil {
				r.s.log.Warn("data plane health not updated", "resource", r.cfg.Name, "target", t.ID, "err", err)
			}
		}
	}
}

var (
	mNACKs        = prometheus.NewDesc("grayzone_xds_nacks_total", "xDS responses a proxy rejected (NACK); each is logged with the proxy's node id and error.", []string{"resource"}, nil)
	mPushes       = prometheus.NewDesc("grayzone_xds_responses_total", "xDS responses sent to proxies.", []string{"resource"}, nil)
	mHAProxyEpoch = prometheus.NewDesc("grayzone_haproxy_epoch_refused_total", "Orders to HAProxy not given because its epoch record names a newer leader (this replica was deposed); each new record is logged.", []string{"resource"}, nil)
)

// planeCollector exposes the external data planes' counters.
type planeCollector Service

func (c *planeCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *planeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range (*Service)(c).resources {
		if cp, ok := r.plane.(countingPlane); ok {
			ch <- prometheus.MustNewConstMetric(mNACKs, prometheus.CounterValue, float64(cp.NACKs()), r.cfg.Name)
			ch <- prometheus.MustNewConstMetric(mPushes, prometheus.CounterValue, float64(cp.Pushes()), r.cfg.Name)
		}
		if ep, ok := r.plane.(epochPlane); ok {
			ch <- prometheus.MustNewConstMetric(mHAProxyEpoch, prometheus.CounterValue, float64(ep.EpochRefusals()), r.cfg.Name)
		}
	}
}

// startLogs receives HAProxy's per-request logs, when configured, as
// server-side observations: the server names the instance, backends: the zone.
func (r *resource) startLogs(ctx context.Context, wg *sync.WaitGroup) error {
	h := r.cfg.FrontDoor.HAProxy
	if r.cfg.FrontDoor.Type != config.FrontDoorHAProxy || h.LogListen == "" {
		return nil
	}
	zoneOf := map[string]string{}
	for _, t := range r.cfg.FrontDoor.Targets {
		zoneOf[t.ID] = t.Zone
	}
	rcv, err := haproxylog.Listen(h.LogListen)
	if err != nil {
		return fmt.Errorf("serve: resource %s: %w", r.cfg.Name, err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		rcv.Run(ctx, func(e haproxylog.Entry) {
			z, ok := zoneOf[e.Server]
			if !ok {
				return // <NOSRV>, or a server grayzone does not map
			}
			r.observe(observation.Observation{At: r.s.clock.Now(), Source: observation.Server, Zone: z, Instance: e.Server,
				Operation: observation.OperationOf(e.Path), Outcome: observation.FromStatus(e.Status), Latency: e.Total})
		})
	}()
	return nil
}
