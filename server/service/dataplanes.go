package service

import (
	"context"
	"fmt"
	"log/slog"
	"sort"

	"github.com/grayzone/grayzone/actuator/haproxy"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/server/config"
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
	}
	return nil, nil
}
