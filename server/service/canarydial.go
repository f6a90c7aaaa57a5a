package service

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/telemetry/canary"
)

// ownFrontDoors is serve's one canary transport. A canary whose URL is one
// of serve's own embedded front doors' endpoints is connected to it in
// memory (frontdoor.Proxy.DialContext): the call takes the front door's
// real path to a target, but no socket pair, which over loopback cost two
// descriptors in this one process per canary connection. Any other URL is
// dialed over the network, through the same pooled, per-host bounded
// transport.
type ownFrontDoors struct {
	mu     sync.RWMutex
	byAddr map[string]*frontdoor.Proxy
	tr     http.RoundTripper
}

func newOwnFrontDoors() *ownFrontDoors {
	o := &ownFrontDoors{byAddr: map[string]*frontdoor.Proxy{}}
	o.tr = canary.NewTransport(o.dial, frontdoor.ErrNotInProcess)
	return o
}

// add registers a started front door's endpoints.
func (o *ownFrontDoors) add(p *frontdoor.Proxy, zones []string) {
	urls := []string{p.RegionalURL()}
	for _, z := range zones {
		urls = append(urls, p.ZonalURL(z))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, u := range urls {
		if host, ok := strings.CutPrefix(u, "http://"); ok { // the endpoints' base URLs
			o.byAddr[host] = p
		}
	}
}

func (o *ownFrontDoors) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	o.mu.RLock()
	p := o.byAddr[addr]
	o.mu.RUnlock()
	if p == nil {
		return nil, frontdoor.ErrNotInProcess
	}
	return p.DialContext(ctx, network, addr)
}
